"""The odc-node mission database: it loads, its packets round-trip, its commands encode.

Also runs the complete example of docs/mdb.md, so the format's documentation stays true.
Expected engineering values are computed here from the calibrations as written in the TOML
(by hand), not by the codec.
"""

from __future__ import annotations

import math
import re
import struct
import tomllib
from pathlib import Path

import pytest

from groundctl.mdb.codec import (
    Codec,
    encode_command,
    encode_telemetry,
    parse_header,
    verify_cfs_checksum,
)
from groundctl.mdb.expr import compile_expression
from groundctl.mdb.loader import load_mission
from groundctl.mdb.validate import convert_argument
from groundctl.telemetry.limits import classify

ROOT = Path(__file__).parents[2]
ODC = ROOT / "data" / "missions" / "odc-node.toml"
DOC = ROOT / "docs" / "mdb.md"

EPOCH_2000 = 946684800.0  # 2000-01-01T00:00:00Z in Unix seconds
PACKET_TIME = EPOCH_2000 + 800_000_000 + 0.25  # 0.25 s = 16384 subsecond counts

# Realistic raw values for every field of every telemetry packet (a sunlit node at work),
# and the engineering values they stand for.
RAW = {
    "POWER_HK": {
        "SA_VOLTAGE": 12150,
        "SA_CURRENT": 28400,
        "SA_POWER": 34506,
        "BATT_VOLTAGE": 10520,
        "BATT_CURRENT": 850,
        "BATT_SOC": 157,
        "POWER_MODE": 2,
        "BUS_VOLTAGE": 10003,
        "LOAD_POWER": 25500,
        "ECLIPSE": 0,
        "SUN_POINTING": 1,
        "SPARE": 0,
    },
    "THERMAL_HK": {
        "CPU_TEMP": 2100,
        "GPU_TEMP": 2300,
        "RADIATOR_TEMP": 900,
        "BATT_TEMP": 1600,
        "HEATER_BATTERY": 0,
        "HEATER_AVIONICS": 1,
        "HEATER_RADIATOR": 0,
        "SPARE": 0,
        "THROTTLE_LEVEL": 1,
    },
    "COMPUTE_HK": {
        "JOBS_QUEUED": 12,
        "JOBS_RUNNING": 4,
        "JOBS_DONE": 1873,
        "JOBS_FAILED": 9,
        "GPU_UTIL": 8725,
        "CPU_UTIL": 4210,
        "STORAGE_USED": 1_250_000,
        "STORAGE_FREE": 2_750_000,
        "RESULTS_PENDING": 48_318_382_080,  # 45 GiB: needs more than 32 bits
    },
    "COMMS_HK": {
        "LINK_MARGIN": 64,
        "DOWNLINK_RATE": 12_500_000,
        "DOWNLINK_QUEUED": 52_000_000_000,
        "DOWNLINK_ACTIVE": 1,
        "SPARE": 0,
        "LAST_FC": 3,
        "CMD_COUNT": 42,
        "ERR_COUNT": 0,
        "AUTH_FAILURES": 0,
    },
    "ATTITUDE_HK": {
        # exactly representable in f32, so raw values compare equal after the round trip
        "Q_W": 0.5,
        "Q_X": 0.5,
        "Q_Y": -0.5,
        "Q_Z": 0.5,
        "RATE_X": 0.0625,
        "RATE_Y": -0.03125,
        "RATE_Z": 0.125,
        "POINTING_MODE": 2,
        "ECLIPSE": 0,
        "SPARE": 0,
    },
    "EVENT": {
        "APP": "COMPUTE",
        "EVENT_ID": 20,
        "SEVERITY": 2,
        "SPARE": 0,
        "TEXT": "job 1042 queued (priority NORMAL, 3600 GPU s)",
    },
}

ENGINEERING = {
    "POWER_HK": {
        "SA_VOLTAGE": 121.5,
        "SA_CURRENT": 28.4,
        "SA_POWER": 3450.6,
        "BATT_VOLTAGE": 105.2,
        "BATT_CURRENT": 8.5,
        "BATT_SOC": 78.5,
        "POWER_MODE": "NOMINAL",
        "BUS_VOLTAGE": 100.03,
        "LOAD_POWER": 2550.0,
        "ECLIPSE": "NO",
        "SUN_POINTING": "YES",
        "SPARE": 0,
    },
    "THERMAL_HK": {
        "CPU_TEMP": -50 + 0.05 * 2100,  # 55 degC
        "GPU_TEMP": -50 + 0.05 * 2300,  # 65 degC
        "RADIATOR_TEMP": 40 + (0 - 40) * (900 - 600) / (1200 - 600),  # 20 degC
        "BATT_TEMP": 40 + (20 - 40) * (1600 - 1000) / (1800 - 1000),  # 25 degC
        "HEATER_BATTERY": "OFF",
        "HEATER_AVIONICS": "ON",
        "HEATER_RADIATOR": "OFF",
        "SPARE": 0,
        "THROTTLE_LEVEL": "LOW",
    },
    "COMPUTE_HK": {
        "JOBS_QUEUED": 12,
        "JOBS_RUNNING": 4,
        "JOBS_DONE": 1873,
        "JOBS_FAILED": 9,
        "GPU_UTIL": 87.25,
        "CPU_UTIL": 42.1,
        "STORAGE_USED": 1250.0,
        "STORAGE_FREE": 2750.0,
        "RESULTS_PENDING": 48_318_382_080,
    },
    "COMMS_HK": {
        "LINK_MARGIN": 6.4,
        "DOWNLINK_RATE": 12_500_000,
        "DOWNLINK_QUEUED": 52_000_000_000,
        "DOWNLINK_ACTIVE": "YES",
        "SPARE": 0,
        "LAST_FC": "SUBMIT_JOB",
        "CMD_COUNT": 42,
        "ERR_COUNT": 0,
        "AUTH_FAILURES": 0,
    },
    "ATTITUDE_HK": {
        "Q_W": 0.5,
        "Q_X": 0.5,
        "Q_Y": -0.5,
        "Q_Z": 0.5,
        "RATE_X": 0.0625,
        "RATE_Y": -0.03125,
        "RATE_Z": 0.125,
        "POINTING_MODE": "NADIR",
        "ECLIPSE": "NO",
        "SPARE": 0,
    },
    "EVENT": {
        "APP": "COMPUTE",
        "EVENT_ID": 20,
        "SEVERITY": "INFO",
        "SPARE": 0,
        "TEXT": "job 1042 queued (priority NORMAL, 3600 GPU s)",
    },
}

# Arguments an operator must always give (no default): a valid value for each.
REQUIRED_ARGUMENTS = {
    ("SET_POWER_MODE", "mode"): "ECO",
    ("SUBMIT_JOB", "job_id"): 0x01020304,
    ("SUBMIT_JOB", "gpu_seconds"): 3600,
    ("CANCEL_JOB", "job_id"): 1042,
    ("SET_THROTTLE", "level"): "MEDIUM",
    ("INJECT_FAULT", "fault"): "THERMAL_RUNAWAY",
}

FUNCTION_CODES = {
    "NOOP": 0,
    "RESET_COUNTERS": 1,
    "SET_POWER_MODE": 2,
    "SUBMIT_JOB": 3,
    "CANCEL_JOB": 4,
    "SET_THROTTLE": 5,
    "START_DOWNLINK": 6,
    "STOP_DOWNLINK": 7,
    "REBOOT": 8,
    "SAFE_MODE": 9,
    "INJECT_FAULT": 100,
    "CLEAR_FAULTS": 101,
}


@pytest.fixture(scope="module")
def mission():
    return load_mission(ODC)


@pytest.fixture(scope="module")
def codec(mission):
    return Codec(mission)


def decode(mission, codec, name, raw_values):
    packet = mission.packet_named(name)
    decoded = codec.decode(encode_telemetry(mission, packet, raw_values, time_s=PACKET_TIME))
    assert decoded.error == ""
    assert decoded.packet is packet
    return decoded


def test_the_database_loads_with_its_packets_and_commands(mission):
    assert mission.name == "odc-node"
    assert (mission.id_kind, mission.checksum) == ("apid", "cfs-xor")
    assert mission.time is not None
    assert mission.time.epoch_unix_s == EPOCH_2000
    assert (mission.time.seconds.bit_offset, mission.time.seconds.bits) == (48, 32)
    assert (mission.time.subseconds.bit_offset, mission.time.subseconds.bits) == (80, 16)
    assert {p.name: p.id for p in mission.packets.values()} == {
        "POWER_HK": 0x101,
        "THERMAL_HK": 0x102,
        "COMPUTE_HK": 0x103,
        "COMMS_HK": 0x104,
        "ATTITUDE_HK": 0x105,
        "EVENT": 0x10F,
    }
    assert set(RAW) == {p.name for p in mission.packets.values()}
    assert {c.name: c.function_code for c in mission.commands.values()} == FUNCTION_CODES
    assert [d.name for d in mission.derived] == [
        "BATT_POWER",
        "NET_POWER",
        "STORAGE_FILL",
        "JOB_FAILURE_FRACTION",
        "BODY_RATE",
        "QUAT_NORM",
    ]
    event = mission.packet_named("EVENT").event
    assert event is not None
    assert (event.app, event.event_id, event.severity, event.text) == (
        "APP",
        "EVENT_ID",
        "SEVERITY",
        "TEXT",
    )


def test_every_packet_is_exactly_covered_by_its_fields(mission):
    """Fields fit the stated length, start after the secondary header and leave no gap."""
    declared = {p["name"]: p["length"] for p in tomllib.loads(ODC.read_text())["packets"]}
    for packet in mission.packets.values():
        length = declared[packet.name]
        assert packet.min_length == length, packet.name
        assert max(f.end_bit for f in packet.fields) <= length * 8
        assert min(f.bit_offset for f in packet.fields) == 12 * 8, packet.name
        assert sum(f.bits for f in packet.fields) == (length - 12) * 8, packet.name
        assert packet.period_s is not None or packet.event is not None, packet.name


def test_every_field_has_a_description_or_is_self_explaining(mission):
    for packet in mission.packets.values():
        assert packet.description, packet.name
        for f in packet.fields:
            assert f.description or f.calibration is not None, f"{packet.name}.{f.name}"


@pytest.mark.parametrize("name", list(RAW))
def test_each_packet_round_trips_to_the_expected_engineering_values(mission, codec, name):
    decoded = decode(mission, codec, name, RAW[name])
    assert decoded.raw_values == RAW[name]
    assert decoded.values == pytest.approx(ENGINEERING[name])
    assert decoded.time_s == pytest.approx(PACKET_TIME, abs=1e-6)
    assert decoded.header.apid == mission.packet_named(name).id
    assert decoded.header.secondary_header


@pytest.mark.parametrize("name", list(RAW))
def test_realistic_values_are_within_limits(mission, codec, name):
    decoded = decode(mission, codec, name, RAW[name])
    for f in mission.packet_named(name).fields:
        if f.limits is not None:
            assert classify(f.limits, decoded.values[f.name]) == "nominal", f.name


def test_limit_edges_are_inside_and_bands_are_sensible(mission):
    power = mission.packet_named("POWER_HK")
    battery = power.field("BATT_VOLTAGE").limits
    assert [classify(battery, v) for v in (85.99, 86.0, 89.99, 90.0, 116.0, 118.0, 118.01)] == [
        "red",
        "yellow",
        "yellow",
        "nominal",
        "nominal",
        "yellow",
        "red",
    ]
    assert classify(power.field("POWER_MODE").limits, "SAFE") == "red"
    margin = mission.packet_named("COMMS_HK").field("LINK_MARGIN").limits
    assert [classify(margin, v) for v in (0.9, 2.0, 3.0, 40.0)] == [
        "red",
        "yellow",
        "nominal",
        "nominal",
    ]
    throttle = mission.packet_named("THERMAL_HK").field("THROTTLE_LEVEL").limits
    assert classify(throttle, "HIGH") == "yellow"
    assert classify(throttle, "SUSPENDED") == "red"


def test_bit_fields_are_most_significant_bit_first(mission, codec):
    power = mission.packet_named("POWER_HK")
    eclipse = encode_telemetry(mission, power, {**RAW["POWER_HK"], "ECLIPSE": 1, "SUN_POINTING": 0})
    assert eclipse[28] == 0x80
    assert codec.decode(eclipse).values["ECLIPSE"] == "YES"
    thermal = mission.packet_named("THERMAL_HK")
    heaters = encode_telemetry(mission, thermal, {"HEATER_BATTERY": 1, "HEATER_RADIATOR": 1})
    assert heaters[20] == 0b1010_0000


def test_multi_byte_fields_are_big_endian_and_signed_where_they_should_be(mission, codec):
    comms = mission.packet_named("COMMS_HK")
    raw = encode_telemetry(mission, comms, {**RAW["COMMS_HK"], "LINK_MARGIN": -25})
    assert raw[12:14] == struct.pack(">h", -25)
    assert raw[18:26] == (52_000_000_000).to_bytes(8, "big")
    assert codec.decode(raw).values["LINK_MARGIN"] == pytest.approx(-2.5)
    battery = encode_telemetry(
        mission, mission.packet_named("POWER_HK"), {**RAW["POWER_HK"], "BATT_CURRENT": -2150}
    )
    assert codec.decode(battery).values["BATT_CURRENT"] == pytest.approx(-21.5)


def test_unlisted_states_decode_as_unknown(mission, codec):
    decoded = decode(mission, codec, "POWER_HK", {**RAW["POWER_HK"], "POWER_MODE": 7})
    assert decoded.values["POWER_MODE"] == "UNKNOWN(7)"


def test_derived_parameters_compute_from_decoded_values(mission, codec):
    env = {}
    for name, raw in RAW.items():
        for field, value in decode(mission, codec, name, raw).values.items():
            env[f"{name}.{field}"] = value
    results = {}
    for d in mission.derived:
        results[d.name] = compile_expression(d.expression).evaluate({**env, **results})
    assert results["BATT_POWER"] == pytest.approx(105.2 * 8.5)
    assert results["NET_POWER"] == pytest.approx(3450.6 - 2550.0)
    assert results["STORAGE_FILL"] == pytest.approx(1250 / 4000)
    assert results["JOB_FAILURE_FRACTION"] == pytest.approx(9 / 1882)
    assert results["BODY_RATE"] == pytest.approx(math.hypot(0.0625, 0.03125, 0.125))
    assert results["QUAT_NORM"] == pytest.approx(1.0)
    for d in mission.derived:
        if d.limits is not None:
            assert classify(d.limits, results[d.name]) == "nominal", d.name


def test_derived_limit_conditions_are_valid(mission):
    """The loader checks `when` on fields but not on derived parameters: check them here."""
    known = {f"{p.name}.{f.name}" for p in mission.packets.values() for f in p.fields}
    known |= {d.name for d in mission.derived}
    for d in mission.derived:
        if d.limits is not None and d.limits.when:
            assert compile_expression(d.limits.when).names <= known, d.name


def arguments_for(command):
    """Every argument's raw value: its default, or a valid value when it has none."""
    values = {}
    for argument in command.arguments:
        value = argument.default
        if value is None:
            value = REQUIRED_ARGUMENTS[(command.name, argument.name)]
        values[argument.name] = convert_argument(argument, value)
    return values


def test_exactly_the_expected_arguments_have_no_default(mission):
    missing = {
        (c.name, a.name)
        for c in mission.commands.values()
        for a in c.arguments
        if a.default is None
    }
    assert missing == set(REQUIRED_ARGUMENTS)


@pytest.mark.parametrize("name", list(FUNCTION_CODES))
def test_every_command_encodes_with_a_valid_checksum(mission, name):
    command = mission.commands[name]
    raw = encode_command(mission, command, arguments_for(command), sequence_count=5)
    assert verify_cfs_checksum(raw)
    header = parse_header(raw)
    assert (header.type, header.secondary_header, header.apid) == (1, True, 0x180)
    assert header.sequence_count == 5
    assert header.packet_length == len(raw)
    assert raw[6] == FUNCTION_CODES[name]
    assert len(raw) == 8 + sum(a.bits for a in command.arguments) // 8


def test_commands_with_all_defaults_encode_without_arguments(mission):
    for name in ("NOOP", "RESET_COUNTERS", "STOP_DOWNLINK", "REBOOT", "SAFE_MODE", "CLEAR_FAULTS"):
        assert len(encode_command(mission, mission.commands[name], {})) == 8
    start = encode_command(mission, mission.commands["START_DOWNLINK"], {})
    assert verify_cfs_checksum(start)
    assert start[8:] == bytes(8)  # max_bytes 0: everything queued


def test_command_arguments_are_big_endian(mission):
    submit = mission.commands["SUBMIT_JOB"]
    raw = encode_command(mission, submit, arguments_for(submit))
    assert raw[8:17] == bytes.fromhex("01020304") + (3600).to_bytes(4, "big") + bytes([1])
    fault = mission.commands["INJECT_FAULT"]
    raw = encode_command(mission, fault, arguments_for(fault))
    assert raw[8:] == bytes([3]) + (60).to_bytes(4, "big")


def test_command_ids_are_apart_from_telemetry(mission):
    telemetry = set(mission.packets)
    for command in mission.commands.values():
        assert command.id & 0xF800 == 0x1800, command.name  # command, secondary header
        assert command.id & 0x7FF not in telemetry, command.name


def test_commands_are_verified_by_the_comms_counters(mission):
    for command in mission.commands.values():
        verify = command.verification
        assert verify.failed == (
            "COMMS_HK.ERR_COUNT += 1",
            "COMMS_HK.AUTH_FAILURES += 1",
        ), command.name
        assert verify.completed, command.name
        if command.name == "RESET_COUNTERS":
            assert verify.accepted == ("COMMS_HK.CMD_COUNT == 0",)
        else:
            assert verify.accepted == ("COMMS_HK.CMD_COUNT += 1",), command.name
    hazardous = {c.name for c in mission.commands.values() if c.hazardous}
    assert hazardous == {"REBOOT", "SAFE_MODE"}


def test_last_function_code_names_every_command(mission):
    states = mission.packet_named("COMMS_HK").field("LAST_FC").calibration.states
    assert {states[c.function_code] for c in mission.commands.values()} == set(mission.commands)
    assert all(states[c.function_code] == c.name for c in mission.commands.values())


# --- docs/mdb.md ----------------------------------------------------------------------


def doc_example():
    """The complete example of docs/mdb.md: its TOML, its Python and the printed output."""
    text = DOC.read_text()
    section = text.split("## A complete example", 1)[1]
    toml_text, python, output = re.search(
        r"```toml\n(.*?)```.*?```python\n(.*?)```\s*```\n(.*?)```", section, re.DOTALL
    ).groups()
    return toml_text, python, output


def test_the_documented_example_loads_and_decodes(tmp_path):
    toml_text, _, _ = doc_example()
    path = tmp_path / "demo-node.toml"
    path.write_text(toml_text)
    mission = load_mission(path)
    assert set(mission.commands) == {"NOOP", "SET_MODE", "HEAT"}
    hk = mission.packet_named("HK")
    assert hk.min_length == 21
    raw = encode_telemetry(
        mission,
        hk,
        {"BATT_V": 2720, "BATT_I": 250, "TEMP": 3072, "MODE": 0, "HEATER": 1, "ERR_COUNT": 2},
        time_s=EPOCH_2000 + 10,
    )
    decoded = Codec(mission).decode(raw)
    assert decoded.error == ""
    assert decoded.values == pytest.approx(
        {
            "BATT_V": 27.2,
            "BATT_I": 0.25,
            "TEMP": 25 + (125 - 25) * (3072 - 2048) / (4095 - 2048),
            "MODE": "SAFE",
            "HEATER": "ON",
            "SPARE": 0,
            "CMD_COUNT": 0,
            "ERR_COUNT": 2,
        }
    )
    assert decoded.time_s == EPOCH_2000 + 10
    heat = mission.commands["HEAT"]
    assert heat.hazardous
    command = encode_command(mission, heat, {"duration_s": 60})
    assert verify_cfs_checksum(command)
    assert command[6:7] == b"\x02" and command[8:] == (60).to_bytes(2, "big")


def test_the_documented_python_prints_what_the_document_says(tmp_path, monkeypatch, capsys):
    toml_text, python, output = doc_example()
    (tmp_path / "demo-node.toml").write_text(toml_text)
    monkeypatch.chdir(tmp_path)
    exec(compile(python, "docs/mdb.md", "exec"), {})
    assert capsys.readouterr().out == output
