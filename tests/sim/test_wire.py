"""The simulator's wire format against the `odc-node` mission database.

wire.py packs packets with its own struct layouts, as flight software would; the mission
database's codec decodes them here, and its encoder builds the commands the simulator
parses, so each side checks the other.
"""

from __future__ import annotations

import struct

import pytest

from groundctl.mdb.codec import cfs_checksum
from groundctl.sim import wire

EPOCH_2000 = 946_684_800.0

# One set of distinct raw values per packet, in the wire layout's order, and what the
# mission database must decode from them (bit fields included).
PACKED = {
    wire.POWER_HK: (
        (12150, 28400, 34506, 10520, -850, 157, 3, 10003, 25500, 0x80),
        {
            "SA_VOLTAGE": 12150,
            "SA_CURRENT": 28400,
            "SA_POWER": 34506,
            "BATT_VOLTAGE": 10520,
            "BATT_CURRENT": -850,
            "BATT_SOC": 157,
            "POWER_MODE": 3,
            "BUS_VOLTAGE": 10003,
            "LOAD_POWER": 25500,
            "ECLIPSE": 1,
            "SUN_POINTING": 0,
            "SPARE": 0,
        },
    ),
    wire.THERMAL_HK: (
        (2100, 2300, 900, 1600, 0xA0, 4),
        {
            "CPU_TEMP": 2100,
            "GPU_TEMP": 2300,
            "RADIATOR_TEMP": 900,
            "BATT_TEMP": 1600,
            "HEATER_BATTERY": 1,
            "HEATER_AVIONICS": 0,
            "HEATER_RADIATOR": 1,
            "SPARE": 0,
            "THROTTLE_LEVEL": 4,
        },
    ),
    wire.COMPUTE_HK: (
        (12, 4, 1873, 9, 8725, 4210, 1_250_000, 2_750_000, 48_318_382_080),
        {
            "JOBS_QUEUED": 12,
            "JOBS_RUNNING": 4,
            "JOBS_DONE": 1873,
            "JOBS_FAILED": 9,
            "GPU_UTIL": 8725,
            "CPU_UTIL": 4210,
            "STORAGE_USED": 1_250_000,
            "STORAGE_FREE": 2_750_000,
            "RESULTS_PENDING": 48_318_382_080,
        },
    ),
    wire.COMMS_HK: (
        (-64, 12_500_000, 52_000_000_000, 0x80, 100, 42, 7, 3),
        {
            "LINK_MARGIN": -64,
            "DOWNLINK_RATE": 12_500_000,
            "DOWNLINK_QUEUED": 52_000_000_000,
            "DOWNLINK_ACTIVE": 1,
            "SPARE": 0,
            "LAST_FC": 100,
            "CMD_COUNT": 42,
            "ERR_COUNT": 7,
            "AUTH_FAILURES": 3,
        },
    ),
    wire.ATTITUDE_HK: (
        (0.5, 0.5, -0.5, 0.5, 0.0625, -0.03125, 0.125, 2, 0x80),
        {
            "Q_W": 0.5,
            "Q_X": 0.5,
            "Q_Y": -0.5,
            "Q_Z": 0.5,
            "RATE_X": 0.0625,
            "RATE_Y": -0.03125,
            "RATE_Z": 0.125,
            "POINTING_MODE": 2,
            "ECLIPSE": 1,
            "SPARE": 0,
        },
    ),
}

# A valid value for each argument without a default.
REQUIRED = {
    ("SET_POWER_MODE", "mode"): "PERFORMANCE",
    ("SUBMIT_JOB", "job_id"): 0x01020304,
    ("SUBMIT_JOB", "gpu_seconds"): 3600,
    ("CANCEL_JOB", "job_id"): 1042,
    ("SET_THROTTLE", "level"): "MEDIUM",
    ("INJECT_FAULT", "fault"): "LINK_DROP",
}


def arguments_for(command):
    return {
        a.name: REQUIRED[(command.name, a.name)] for a in command.arguments if a.default is None
    }


def test_layouts_have_the_databases_ids_lengths_and_periods(odc):
    telemetry = {p.id: p for p in odc.mission.packets.values()}
    assert set(wire.PERIOD_S) | {wire.EVENT} == set(telemetry)
    for apid, packet in telemetry.items():
        assert wire.packet_length(apid) == packet.length, packet.name
        assert wire.PERIOD_S.get(apid) == packet.period_s, packet.name


@pytest.mark.parametrize("apid", list(PACKED), ids=lambda a: f"0x{a:03x}")
def test_packed_fields_decode_where_the_database_puts_them(odc, apid):
    values, expected = PACKED[apid]
    time_s = EPOCH_2000 + 800_000_000 + 0.25
    raw = wire.pack(apid, 77, time_s, *values)
    decoded = odc.codec.decode(raw)
    assert decoded.error == ""
    assert decoded.packet.id == apid
    assert decoded.raw_values == expected
    assert decoded.time_s == time_s
    header = decoded.header
    assert (header.version, header.type, header.secondary_header) == (0, 0, True)
    assert (header.sequence_flags, header.sequence_count) == (3, 77)


def test_time_is_seconds_and_65536ths_since_2000(odc):
    for offset in (0.0, 1.0, 0.5, 123_456_789.999_99, 0.000_007):
        raw = wire.pack(wire.COMMS_HK, 0, EPOCH_2000 + offset, 0, 0, 0, 0, 0, 0, 0, 0)
        seconds, sub = struct.unpack_from(">IH", raw, 6)
        assert seconds + sub / 65536 == pytest.approx(offset, abs=0.5 / 65536 + 1e-9)
        assert odc.codec.decode(raw).time_s == pytest.approx(EPOCH_2000 + offset, abs=1e-4)


def test_sequence_counts_wrap_at_14_bits(odc):
    counts = [
        odc.codec.decode(wire.pack(wire.COMMS_HK, n, EPOCH_2000, 0, 0, 0, 0, 0, 0, 0, 0))
        for n in (16382, 16383, 16384, 16385)
    ]
    assert [d.header.sequence_count for d in counts] == [16382, 16383, 0, 1]
    assert all(d.header.sequence_flags == 3 and d.error == "" for d in counts)


@pytest.mark.parametrize("severity", list(wire.SEVERITY))
def test_event_packets_decode_as_events(odc, severity):
    text = "x" * 120  # longer than the field: cut to its 96 bytes
    raw = wire.pack_event(3, EPOCH_2000 + 10, "THERMAL_PROTECTION", 31, severity, text)
    decoded = odc.codec.decode(raw)
    assert decoded.error == ""
    assert len(raw) == odc.mission.packet_named("EVENT").length
    assert decoded.values["APP"] == "THERMAL_PROTECTI"
    assert decoded.values["EVENT_ID"] == 31
    assert decoded.values["SEVERITY"] == severity
    assert decoded.values["TEXT"] == "x" * 96


def test_every_database_command_parses_to_its_function_code_and_arguments(odc):
    for command in odc.mission.commands.values():
        arguments = arguments_for(command)
        raw = odc.command(command.name, **arguments)
        parsed = wire.parse_command(raw)
        assert parsed.error == "", (command.name, parsed.error)
        assert (parsed.function_code, parsed.name) == (command.function_code, command.name)
        expected = []
        for a in command.arguments:
            value = arguments.get(a.name, a.default)
            expected.append(a.states[value] if isinstance(value, str) else value)
        assert list(parsed.arguments) == expected, command.name
        # the simulator's own builder agrees with the database's encoder byte for byte
        assert wire.build_command(command.function_code, *parsed.arguments) == raw


def with_checksum(raw: bytes | bytearray) -> bytes:
    buf = bytearray(raw)
    buf[7] = 0
    buf[7] = cfs_checksum(buf)
    return bytes(buf)


def test_rejections_say_why_and_which_event(odc):
    noop = odc.command("NOOP")
    job = odc.command("SUBMIT_JOB", job_id=7, gpu_seconds=60)
    longer = bytearray(noop + b"\x00")
    longer[4:6] = struct.pack(">H", len(longer) - 7)
    unknown = bytearray(noop)
    unknown[6] = 50
    cases = [
        (noop[:7], 6, "command of 7 bytes is too short"),
        (b"\x08\x01" + noop[2:], 6, "not a command for this node (0x0801)"),
        (noop + b"\x00", 6, "length field says 8 bytes, 9 received"),
        (noop[:7] + bytes([noop[7] ^ 0x10]), 3, "bad checksum"),
        (job[:-1] + bytes([job[-1] ^ 1]), 3, "bad checksum"),
        (with_checksum(unknown), 4, "invalid function code 50"),
        (with_checksum(longer), 4, "NOOP: 1 argument bytes, expected 0"),
    ]
    for raw, event_id, error in cases:
        parsed = wire.parse_command(raw)
        assert (parsed.event_id, parsed.error) == (event_id, error), raw.hex()
