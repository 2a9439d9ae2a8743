"""A simulated node as the ground sees it: commands built with the mission database, every
packet decoded with it, limits checked by the real telemetry pipeline.

Nodes run on the lab bench (no contact gating) from a fixed start, on their real orbits;
contacts are tested in test_fleet.py.
"""

from __future__ import annotations

import itertools
import struct
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest

from groundctl.mdb.codec import cfs_checksum
from groundctl.sim.fleet import Transmission, parse_faults
from groundctl.sim.node import Contact, NodeParams, SimNode
from groundctl.telemetry.model import Frame
from groundctl.telemetry.pipeline import TelemetryProcessor

HOUSEKEEPING = {"POWER_HK", "THERMAL_HK", "COMPUTE_HK", "COMMS_HK", "ATTITUDE_HK"}
ORBIT_S = 5730  # the demo shell's period at 550 km, about 95.5 minutes
START_S = datetime(2026, 11, 29, tzinfo=UTC).timestamp()  # as conftest's fleets start


def process(odc, received):
    """Run received packets through a fresh TelemetryProcessor; all its results."""
    processor = TelemetryProcessor(default=odc.mission)
    return [processor.process(Frame(r.raw, r.sent_s, "sim", r.node)) for r in received]


def alerts_of(processed):
    return [
        (c.action, c.alert.node, c.alert.parameter, c.alert.severity)
        for p in processed
        for c in p.alerts
    ]


def ground_events(processed, kind_prefix=""):
    return [
        e
        for p in processed
        for e in p.events
        if e.source == "ground" and e.kind.startswith(kind_prefix)
    ]


def with_checksum(raw: bytes | bytearray) -> bytes:
    buf = bytearray(raw)
    buf[7] = 0
    buf[7] = cfs_checksum(buf)
    return bytes(buf)


# --- every packet ----------------------------------------------------------------------


def test_every_packet_decodes_with_the_database_in_sequence_and_on_time(make_fleet, odc):
    fleet = make_fleet("ODC-07", "ODC-20", gate=False, seed=1)
    sent = list(fleet.advance(fleet.t + 100)[0])
    for node in ("ODC-07", "ODC-20"):  # commands, so that events go out too
        fleet.command(node, odc.command("NOOP"))
        fleet.command(node, odc.command("SUBMIT_JOB", job_id=1, gpu_seconds=60))
        fleet.command(node, odc.command("SET_THROTTLE", level="LOW"))
    sent += fleet.advance(fleet.t + 500)[0]
    assert fleet.transmitted == len(sent)
    received = odc.decode(sent)

    lengths = {p.name: p.length for p in odc.mission.packets.values()}
    counts = defaultdict(list)
    seconds = defaultdict(set)
    for r in received:
        assert r.ok, r.decoded.error
        assert len(r.raw) == lengths[r.packet]
        counts[(r.node, r.packet)].append(r.decoded.header.sequence_count)
        if r.packet == "EVENT":
            assert r.decoded.time_s <= r.sent_s
        else:
            assert r.decoded.time_s == r.sent_s  # packet time is the simulated second
            seconds[(r.node, r.packet)].add(r.sent_s - fleet.start_s)
    for stream, seen in counts.items():
        assert seen == list(range(len(seen))), stream
    for node in ("ODC-07", "ODC-20"):
        for packet in ("POWER_HK", "COMMS_HK", "ATTITUDE_HK"):
            assert seconds[(node, packet)] == set(range(1, 601))
        for packet in ("THERMAL_HK", "COMPUTE_HK"):
            assert seconds[(node, packet)] == set(range(2, 601, 2))
        ids = [(e["APP"], e["EVENT_ID"]) for e in odc.events(received, node)]
        assert ids == [("CMD", 1), ("COMPUTE", 20), ("THERMAL", 30), ("COMPUTE", 22)]


@pytest.fixture(scope="module")
def three_orbits(make_fleet, odc):
    """An idle NOMINAL node for three orbits, through the telemetry pipeline."""
    fleet = make_fleet("ODC-16", gate=False, seed=11)
    processor = TelemetryProcessor(default=odc.mission)
    return [
        processor.process(Frame(tx.raw, tx.time_s, "sim", tx.node))
        for tx in fleet.advance(fleet.t + 3 * ORBIT_S)[0]
    ]


def samples_of(processed, node, parameter):
    return [
        s.value for p in processed for s in p.samples if s.node == node and s.parameter == parameter
    ]


def test_an_idle_nominal_node_raises_no_alert_over_three_orbits(three_orbits):
    processed = three_orbits
    assert len(processed) == 3 * ORBIT_S * 4  # 3 packets a second, 2 every other one
    assert {p.status for p in processed} == {"ok"}
    assert alerts_of(processed) == []
    # the ground noticed nothing either: no gap, repeat or reset, though the 14-bit
    # counters of the 1 s packets wrapped once
    assert ground_events(processed) == []
    power = [p.sequence_count for p in processed if p.packet == "POWER_HK"]
    assert power.count(0) == 2 and power.index(16383) == 16383  # from 0, and wrapped once


def test_battery_discharges_in_eclipse_and_charges_in_sunlight(three_orbits):
    soc = samples_of(three_orbits, "ODC-16", "POWER_HK.BATT_SOC")
    eclipse = samples_of(three_orbits, "ODC-16", "POWER_HK.ECLIPSE")
    current = samples_of(three_orbits, "ODC-16", "POWER_HK.BATT_CURRENT")
    # split into runs of sunlight and eclipse
    runs = []
    for t, (state, value, amps) in enumerate(zip(eclipse, soc, current, strict=True)):
        if not runs or runs[-1][0] != state:
            runs.append((state, []))
        runs[-1][1].append((t, value, amps))
    shadows = [r for s, r in runs if s == "YES" and len(r) > 600]
    sunlit = [r for s, r in runs if s == "NO" and len(r) > 600]
    assert len(shadows) >= 2 and len(sunlit) >= 2
    for run in shadows:
        values = [v for _, v, _ in run]
        assert values == sorted(values, reverse=True)
        # 600 W of avionics out of 6 kWh: about 10 % an hour
        expected = 600.0 * len(run) / 3600 / 6000 * 100
        assert values[0] - values[-1] == pytest.approx(expected, abs=1.0)
        assert all(-7 < a < -5 for _, _, a in run)  # 600 W from a ~100 V battery
    for run in sunlit:
        values = [v for _, v, _ in run]
        assert values == sorted(values)
        assert values[-1] > values[0] or values[0] == 100.0
        charging = [a for _, v, a in run if v < 99]
        assert all(20 < a < 30 for a in charging)  # the 2.6 kW charge limit


# --- commands ----------------------------------------------------------------------------


def test_noop_is_counted_and_raises_cmd_1(bench):
    b = bench()
    b.run(5)
    assert b.latest("COMMS_HK.CMD_COUNT") == 0
    b.send("NOOP")
    got = b.run(2)
    assert b.latest("COMMS_HK.CMD_COUNT") == 1
    assert b.latest("COMMS_HK.ERR_COUNT") == 0
    assert b.latest("COMMS_HK.LAST_FC") == "NOOP"
    [event] = b.odc.events(got)
    assert (event["APP"], event["EVENT_ID"], event["SEVERITY"]) == ("CMD", 1, "INFO")
    assert event["TEXT"] == "NOOP received, ODC-07 ok"


def bad_commands(odc):
    noop = odc.command("NOOP")
    longer = bytearray(noop + b"\x00")
    longer[4:6] = struct.pack(">H", len(longer) - 7)
    unknown = bytearray(noop)
    unknown[6] = 50
    mode = bytearray(odc.command("SET_POWER_MODE", mode="ECO"))
    mode[8] = 9
    return {
        "bad checksum": (noop[:7] + bytes([noop[7] ^ 0x01]), 3, "command rejected: bad checksum"),
        "short datagram": (noop[:7], 6, "command rejected: command of 7 bytes is too short"),
        "length field": (
            noop + b"\x00",
            6,
            "command rejected: length field says 8 bytes, 9 received",
        ),
        "wrong length": (
            with_checksum(longer),
            4,
            "command rejected: NOOP: 1 argument bytes, expected 0",
        ),
        "unknown function": (
            with_checksum(unknown),
            4,
            "command rejected: invalid function code 50",
        ),
        "bad argument": (with_checksum(mode), 7, "SET_POWER_MODE rejected: mode 9 unknown"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "bad checksum",
        "short datagram",
        "length field",
        "wrong length",
        "unknown function",
        "bad argument",
    ],
)
def test_rejected_commands_count_errors_and_say_why(bench, odc, case):
    raw, event_id, text = bad_commands(odc)[case]
    b = bench()
    b.send("NOOP")
    b.run(3)
    b.send_raw(raw)
    got = b.run(3)
    assert b.latest("COMMS_HK.ERR_COUNT") == 1
    assert b.latest("COMMS_HK.CMD_COUNT") == 1
    [event] = odc.events(got)
    assert (event["APP"], event["EVENT_ID"], event["SEVERITY"], event["TEXT"]) == (
        "CMD",
        event_id,
        "ERROR",
        text,
    )
    # the database's limit on ERR_COUNT turns the rejection into an alert
    assert ("raised", "ODC-07", "COMMS_HK.ERR_COUNT", "yellow") in alerts_of(
        process(odc, b.received)
    )


def test_reset_counters_zeroes_them_and_raises_cmd_2(bench, odc):
    b = bench()
    b.send("NOOP")
    b.send("NOOP")
    b.send_raw(bad_commands(odc)["bad checksum"][0])
    b.run(2)
    assert (b.latest("COMMS_HK.CMD_COUNT"), b.latest("COMMS_HK.ERR_COUNT")) == (2, 1)
    t = b.now
    b.send("RESET_COUNTERS")
    b.run(2)
    assert (b.latest("COMMS_HK.CMD_COUNT"), b.latest("COMMS_HK.ERR_COUNT")) == (0, 0)
    assert b.latest("COMMS_HK.LAST_FC") == "RESET_COUNTERS"
    assert [(e["APP"], e["EVENT_ID"]) for e in b.events(t)] == [("CMD", 2)]


def test_power_mode_changes_the_mode_and_the_load(bench):
    b = bench()
    b.run(3)
    assert b.latest("POWER_HK.POWER_MODE") == "NOMINAL"
    assert b.latest("POWER_HK.LOAD_POWER") == 600.0
    t = b.now
    b.send("SET_POWER_MODE", mode="ECO")
    b.run(3)
    assert b.latest("POWER_HK.POWER_MODE") == "ECO"
    assert b.latest("POWER_HK.LOAD_POWER") == 500.0
    [event] = b.events(t)
    assert (event["APP"], event["EVENT_ID"], event["TEXT"]) == ("POWER", 10, "power mode ECO")


def test_jobs_run_heat_the_gpus_and_leave_results(bench):
    b = bench()
    b.run(10)
    cold = b.latest("THERMAL_HK.GPU_TEMP")
    assert (b.latest("COMPUTE_HK.GPU_UTIL"), b.latest("COMPUTE_HK.JOBS_RUNNING")) == (0.0, 0)
    submitted = b.now
    b.send("SUBMIT_JOB", job_id=1, gpu_seconds=90)
    b.send("SUBMIT_JOB", job_id=2, gpu_seconds=3000, priority="HIGH")
    b.run(2)
    assert b.latest("COMPUTE_HK.JOBS_RUNNING") == 2
    assert b.latest("COMPUTE_HK.JOBS_QUEUED") == 0
    # two of eight GPUs, at the NOMINAL mode's 0.75 speed
    assert b.latest("COMPUTE_HK.GPU_UTIL") == pytest.approx(100 * 2 * 0.75 / 8, abs=0.01)
    for job in range(3, 9):
        b.send("SUBMIT_JOB", job_id=job, gpu_seconds=3000)
    b.run(200)
    assert b.latest("THERMAL_HK.GPU_TEMP") > cold + 15
    done = [e for e in b.events(submitted) if (e["APP"], e["EVENT_ID"]) == ("COMPUTE", 22)]
    assert [(e["t"] - submitted, e["TEXT"]) for e in done] == [(120.0, "job 1 done, 90 MB")]
    assert b.latest("COMPUTE_HK.JOBS_DONE") == 1
    assert b.latest("COMPUTE_HK.JOBS_RUNNING") == 7
    assert b.latest("COMPUTE_HK.RESULTS_PENDING") == 90_000_000
    assert b.latest("COMPUTE_HK.STORAGE_USED") == pytest.approx(0.09)  # GB
    assert b.latest("COMMS_HK.DOWNLINK_QUEUED") == 90_000_000
    queued = [e["TEXT"] for e in b.events(submitted) if e["EVENT_ID"] == 20]
    assert queued[:2] == ["job 1 queued (90 GPU-s)", "job 2 queued (3000 GPU-s)"]


def test_higher_priority_jobs_run_first(bench):
    b = bench()
    for job in range(1, 9):
        b.send("SUBMIT_JOB", job_id=job, gpu_seconds=100_000, priority="LOW")
    b.send("SUBMIT_JOB", job_id=99, gpu_seconds=30, priority="URGENT")
    submitted = b.now
    b.run(2)
    assert (b.latest("COMPUTE_HK.JOBS_RUNNING"), b.latest("COMPUTE_HK.JOBS_QUEUED")) == (8, 1)
    b.run(60)
    done = [e for e in b.events(submitted) if e["EVENT_ID"] == 22]
    assert [(e["t"] - submitted, e["TEXT"]) for e in done] == [(40.0, "job 99 done, 30 MB")]
    assert (b.latest("COMPUTE_HK.JOBS_RUNNING"), b.latest("COMPUTE_HK.JOBS_QUEUED")) == (8, 0)


def test_cancel_and_throttle(bench):
    b = bench()
    b.send("SUBMIT_JOB", job_id=5, gpu_seconds=10_000)
    b.send("SUBMIT_JOB", job_id=6, gpu_seconds=10_000)
    b.run(2)
    assert b.latest("COMPUTE_HK.GPU_UTIL") == pytest.approx(18.75)
    t = b.now
    b.send("SET_THROTTLE", level="MEDIUM")
    b.run(2)
    assert b.latest("THERMAL_HK.THROTTLE_LEVEL") == "MEDIUM"
    assert b.latest("COMPUTE_HK.GPU_UTIL") == pytest.approx(18.75 / 2, abs=0.01)
    b.send("CANCEL_JOB", job_id=5)
    b.send("CANCEL_JOB", job_id=404)
    b.run(2)
    assert b.latest("COMPUTE_HK.JOBS_RUNNING") == 1
    assert (b.latest("COMMS_HK.CMD_COUNT"), b.latest("COMMS_HK.ERR_COUNT")) == (4, 1)
    assert [(e["APP"], e["EVENT_ID"], e["TEXT"]) for e in b.events(t)] == [
        ("THERMAL", 30, "throttle MEDIUM"),
        ("COMPUTE", 21, "job 5 cancelled"),
        ("CMD", 7, "CANCEL_JOB rejected: no job 404"),
    ]


def test_downlink_stops_at_max_bytes_or_when_told(bench):
    b = bench()
    b.send("SUBMIT_JOB", job_id=1, gpu_seconds=30)
    b.run(45)  # done after 40 s: 30 MB of results
    assert b.latest("COMPUTE_HK.RESULTS_PENDING") == 30_000_000
    t = b.now
    b.send("START_DOWNLINK", max_bytes=1_000_000)
    b.run(3)
    assert b.latest("COMPUTE_HK.RESULTS_PENDING") == 29_000_000
    assert b.latest("COMMS_HK.DOWNLINK_ACTIVE") == "NO"
    assert [(e["APP"], e["EVENT_ID"], e["TEXT"]) for e in b.events(t)] == [
        ("COMMS", 40, "downlink started, 30000000 B queued"),
        ("COMMS", 41, "downlink complete"),
    ]
    b.send("START_DOWNLINK")
    b.run(1)
    assert b.latest("COMMS_HK.DOWNLINK_ACTIVE") == "YES"
    assert b.latest("COMMS_HK.DOWNLINK_RATE") == 18_750_000  # a lab bench: a good margin
    assert b.latest("POWER_HK.LOAD_POWER") == 600 + 120  # the transmitter is on
    b.send("STOP_DOWNLINK")
    b.run(3)
    assert b.latest("COMMS_HK.DOWNLINK_ACTIVE") == "NO"
    assert b.latest("COMMS_HK.DOWNLINK_RATE") == 0
    assert b.latest("COMPUTE_HK.RESULTS_PENDING") == 29_000_000 - 18_750_000
    assert b.latest("COMMS_HK.LAST_FC") == "STOP_DOWNLINK"


def test_downlink_rate_follows_the_link_margin(odc):
    node = SimNode("ODC-07", seed=1, start_s=START_S)
    node.state.results_pending_b = node.state.storage_used_b = 1e9
    node.receive(odc.command("START_DOWNLINK"), START_S)
    # the slant range sets the margin: 6 dB at 1500 km, 6 dB less for each doubling
    for second, range_km in enumerate((1000.0, 2400.0, 3000.0, 1500.0), 1):
        node.step(START_S + second, True, Contact("Weilheim", range_km))
    received = odc.decode(Transmission("ODC-07", 0.0, raw) for raw in node.take_packets())
    margin = [m for _, m in odc.series(received, "COMMS_HK.LINK_MARGIN")]
    rate = [r for _, r in odc.series(received, "COMMS_HK.DOWNLINK_RATE")]
    assert margin == pytest.approx([9.5, 1.9, 0.0, 6.0], abs=0.7)
    full = node.params.downlink_rate_bps
    assert rate == [full, full / 2, 0, full]  # half below 3 dB, nothing below 1 dB
    pending = [v for _, v in odc.series(received, "COMMS_HK.DOWNLINK_QUEUED")]
    assert pending == [1e9 - full, 1e9 - 1.5 * full, 1e9 - 1.5 * full, 1e9 - 2.5 * full]


def test_a_job_fails_when_its_results_do_not_fit(bench, odc):
    b = bench(params=NodeParams(storage_mb=100))
    b.send("SUBMIT_JOB", job_id=1, gpu_seconds=60)
    b.send("SUBMIT_JOB", job_id=2, gpu_seconds=60)
    b.run(90)
    assert (b.latest("COMPUTE_HK.JOBS_DONE"), b.latest("COMPUTE_HK.JOBS_FAILED")) == (1, 1)
    assert b.latest("COMPUTE_HK.STORAGE_USED") == pytest.approx(0.06)
    assert b.latest("COMPUTE_HK.STORAGE_FREE") == pytest.approx(0.04)
    outcomes = [
        (e["EVENT_ID"], e["SEVERITY"], e["TEXT"]) for e in b.events() if e["EVENT_ID"] in (22, 23)
    ]
    assert outcomes == [
        (22, "INFO", "job 1 done, 60 MB"),
        (23, "ERROR", "job 2 failed: storage full"),
    ]
    raised = alerts_of(process(odc, b.received))
    assert ("raised", "ODC-07", "JOB_FAILURE_FRACTION", "red") in raised
    assert ("raised", "ODC-07", "COMPUTE_HK.STORAGE_FREE", "red") in raised


def test_reboot_counts_goes_silent_and_comes_back_from_zero(bench, odc):
    b = bench()
    b.send("NOOP")
    b.send("SUBMIT_JOB", job_id=1, gpu_seconds=10_000)
    b.run(20)
    rebooted = b.now
    b.send("REBOOT")
    b.run(60)
    boot_s = b.sim.params.boot_s
    housekeeping = [r for r in b.received if r.packet in HOUSEKEEPING]
    before = [r for r in housekeeping if r.decoded.time_s <= rebooted]
    after = [r for r in b.received if r.decoded.time_s > rebooted]
    # the last word before going down: COMMS_HK with the reboot counted
    last = before[-1]
    assert (last.packet, last.decoded.values["CMD_COUNT"]) == ("COMMS_HK", 3)
    assert last.decoded.values["LAST_FC"] == "REBOOT"
    # then nothing for boot_s
    assert min(r.decoded.time_s for r in after) == rebooted + boot_s
    first = [r for r in after if r.decoded.time_s == rebooted + boot_s]
    assert {r.packet for r in first} >= HOUSEKEEPING | {"EVENT"}
    assert all(r.decoded.header.sequence_count == 0 for r in first if r.packet != "EVENT")
    values = {r.packet: r.decoded.values for r in first}
    assert (values["COMMS_HK"]["CMD_COUNT"], values["COMMS_HK"]["ERR_COUNT"]) == (0, 0)
    assert values["COMMS_HK"]["LAST_FC"] == "NOOP"  # 0: nothing received since boot
    assert (values["COMPUTE_HK"]["JOBS_RUNNING"], values["COMPUTE_HK"]["JOBS_DONE"]) == (0, 0)
    assert [
        (e["t"] - rebooted, e["APP"], e["EVENT_ID"], e["TEXT"]) for e in b.events(rebooted)
    ] == [
        (0.0, "COMPUTE", 24, "1 running jobs lost in reboot"),
        (boot_s, "CMD", 5, "boot complete (REBOOT command)"),
    ]
    # the ground's sequence tracking sees every stream restart, and nothing lost
    processed = process(odc, b.received)
    resets = {e.text.split()[2] for e in ground_events(processed, "sequence-reset")}
    assert resets == {"0x0101:", "0x0102:", "0x0103:", "0x0104:", "0x0105:", "0x010f:"}
    assert ground_events(processed, "sequence-gap") == []


def test_safe_mode_sheds_load_points_at_the_sun_and_holds_the_jobs(bench, odc):
    b = bench()
    for job in (1, 2, 3):
        b.send("SUBMIT_JOB", job_id=job, gpu_seconds=10_000)
    b.run(4)
    t = b.now
    b.send("SAFE_MODE")
    b.run(6)
    assert b.latest("POWER_HK.POWER_MODE") == "SAFE"
    assert b.latest("ATTITUDE_HK.POINTING_MODE") == "SAFE_SUN"
    assert b.latest("POWER_HK.LOAD_POWER") == 350.0
    assert b.latest("COMPUTE_HK.GPU_UTIL") == 0.0
    # nothing runs in SAFE: the jobs wait in the queue
    assert (b.latest("COMPUTE_HK.JOBS_RUNNING"), b.latest("COMPUTE_HK.JOBS_QUEUED")) == (0, 3)
    [event] = b.events(t)
    assert (event["APP"], event["EVENT_ID"], event["TEXT"]) == (
        "POWER",
        10,
        "power mode SAFE (commanded)",
    )
    raised = alerts_of(process(odc, b.received))
    assert ("raised", "ODC-07", "POWER_HK.POWER_MODE", "red") in raised
    assert ("raised", "ODC-07", "ATTITUDE_HK.POINTING_MODE", "yellow") in raised
    b.send("SET_POWER_MODE", mode="NOMINAL")
    b.run(4)
    assert b.latest("ATTITUDE_HK.POINTING_MODE") == "SUN_TRACK"
    assert (b.latest("COMPUTE_HK.JOBS_RUNNING"), b.latest("COMPUTE_HK.JOBS_QUEUED")) == (3, 0)


def test_inject_and_clear_faults_raise_sim_events(bench, odc):
    b = bench()
    t = b.now
    b.send("INJECT_FAULT", fault="THERMAL_RUNAWAY", duration_s=600)
    b.send("INJECT_FAULT", fault="SENSOR_STUCK")
    b.run(5)
    assert set(b.sim.faults) == {"THERMAL_RUNAWAY", "SENSOR_STUCK"}
    b.send("CLEAR_FAULTS")
    bad = bytearray(odc.command("INJECT_FAULT", fault="LINK_DROP"))
    bad[8] = 42
    b.send_raw(with_checksum(bad))
    bad = bytearray(odc.command("INJECT_FAULT", fault="LINK_DROP"))
    bad[9:13] = struct.pack(">I", 0)
    b.send_raw(with_checksum(bad))
    b.run(5)
    assert b.sim.faults == {}
    assert [(e["APP"], e["EVENT_ID"], e["SEVERITY"], e["TEXT"]) for e in b.events(t)] == [
        ("SIM", 90, "WARNING", "fault THERMAL_RUNAWAY injected for 600 s"),
        ("SIM", 90, "WARNING", "fault SENSOR_STUCK injected for 60 s"),
        ("SIM", 91, "INFO", "injected faults cleared"),
        ("CMD", 7, "ERROR", "INJECT_FAULT rejected: fault 42 unknown"),
        ("CMD", 7, "ERROR", "INJECT_FAULT rejected: duration 0 s out of range"),
    ]
    assert (b.latest("COMMS_HK.CMD_COUNT"), b.latest("COMMS_HK.ERR_COUNT")) == (3, 2)


def test_seu_reboot_by_command_is_counted_before_the_node_goes_down(bench, odc):
    b = bench()
    b.run(3)
    t = b.now
    b.send("INJECT_FAULT", fault="SEU_REBOOT")
    b.run(40)
    before = [r for r in b.received if r.decoded.time_s <= t and r.packet != "EVENT"]
    assert (before[-1].packet, before[-1].decoded.values["CMD_COUNT"]) == ("COMMS_HK", 1)
    assert min(r.decoded.time_s for r in b.received if r.decoded.time_s > t) == t + 30
    assert b.latest("COMMS_HK.CMD_COUNT") == 0  # counters restart after the reboot
    assert [(e["APP"], e["EVENT_ID"], e["TEXT"]) for e in b.events(t)] == [
        ("SIM", 90, "fault SEU_REBOOT injected for 60 s"),
        ("CMD", 5, "boot complete (single-event upset)"),
    ]


# --- physics and faults ------------------------------------------------------------------


def test_performance_with_eight_jobs_drains_the_battery_over_orbits(make_fleet, odc):
    # ODC-07 and ODC-10 share an orbital plane, half an orbit apart: over whole orbits
    # both spend as long in the Earth's shadow
    fleet = make_fleet("ODC-07", "ODC-10", gate=False, seed=5)
    fleet.command("ODC-07", odc.command("SET_POWER_MODE", mode="PERFORMANCE"))
    for job in range(1, 9):
        fleet.command("ODC-07", odc.command("SUBMIT_JOB", job_id=job, gpu_seconds=200_000))
    sent = fleet.advance(fleet.t + 2 * ORBIT_S)[0]
    power = odc.decode(tx for tx in sent if tx.raw[:2] == b"\x09\x01")  # POWER_HK only
    busy = [v for _, v in odc.series(power, "POWER_HK.BATT_SOC", "ODC-07")]
    idle = [v for _, v in odc.series(power, "POWER_HK.BATT_SOC", "ODC-10")]
    # 700 W of avionics in PERFORMANCE and eight GPUs at full speed
    assert odc.latest(power, "POWER_HK.LOAD_POWER", "ODC-07") == pytest.approx(700 + 8 * 375)
    assert odc.latest(power, "POWER_HK.LOAD_POWER", "ODC-10") == 600
    # each orbit costs the busy node charge that sunlight does not give back
    assert busy[-1] - busy[0] < -20
    assert idle[-1] - idle[0] > -5


def test_low_battery_forces_safe_mode(bench):
    b = bench()
    b.run(2)
    assert b.latest("POWER_HK.ECLIPSE") == "YES"  # ODC-07 starts in the Earth's shadow
    b.sim.state.soc = 0.101
    b.send("SET_POWER_MODE", mode="PERFORMANCE")
    for job in range(1, 9):
        b.send("SUBMIT_JOB", job_id=job, gpu_seconds=10_000)
    t = b.now
    b.run(60)
    assert b.latest("POWER_HK.POWER_MODE") == "SAFE"
    events = [(e["APP"], e["EVENT_ID"], e["SEVERITY"]) for e in b.events(t + 1)]
    assert ("POWER", 11, "CRITICAL") in events and ("POWER", 10, "INFO") in events
    assert b.latest("COMPUTE_HK.GPU_UTIL") == 0.0


def test_thermal_runaway_is_throttled_and_released(bench, odc):
    b = bench()
    for job in range(1, 9):
        b.send("SUBMIT_JOB", job_id=job, gpu_seconds=200_000)
    b.run(300)
    t = b.now
    b.send("INJECT_FAULT", fault="THERMAL_RUNAWAY", duration_s=1800)
    b.run(3300)
    throttle = odc.series(b.received, "THERMAL_HK.THROTTLE_LEVEL")
    gpu = odc.series(b.received, "THERMAL_HK.GPU_TEMP")
    util = dict(odc.series(b.received, "COMPUTE_HK.GPU_UTIL"))
    levels = [level for _, level in throttle]
    assert {"HIGH", "SUSPENDED"} <= set(levels)
    assert levels[-1] == "OFF" and util[throttle[-1][0]] == 75.0
    # protection holds the GPUs below the database's red limit (90 degC)
    assert max(v for _, v in gpu) < 90.0
    # the jobs run at the throttle's speed (compute reacts one step after protection)
    for (_, before), (time_s, level) in itertools.pairwise(throttle):
        if before == level:
            expected = {"OFF": 75.0, "HIGH": 75.0 / 4, "SUSPENDED": 0.0}[level]
            assert util[time_s] == pytest.approx(expected, abs=0.01), (time_s, level)
    events = [(e["t"] - t, e["APP"], e["EVENT_ID"]) for e in b.events(t)]
    protect = [e for e in events if e[1] == "THERMAL"]
    assert protect[0][2] == 31 and protect[-1][2] == 32
    assert protect[-1][0] > 1800  # released only once the fault is over
    assert (1800.0, "SIM", 92) in events
    raised = alerts_of(process(odc, b.received))
    assert ("raised", "ODC-07", "THERMAL_HK.THROTTLE_LEVEL", "yellow") in raised


def test_a_stuck_gpu_sensor_reads_the_same_whatever_the_load(bench, odc):
    b = bench()
    b.run(10)
    t = b.now
    b.send("INJECT_FAULT", fault="SENSOR_STUCK", duration_s=600)
    b.run(100)
    for job in range(1, 9):
        b.send("SUBMIT_JOB", job_id=job, gpu_seconds=200_000)
    b.run(700)
    during = [
        (s, v)
        for s, v in odc.series(b.received, "THERMAL_HK.GPU_TEMP", raw=True)
        if t < s < t + 600
    ]
    assert len({v for _, v in during}) == 1
    cpu = [v for s, v in odc.series(b.received, "THERMAL_HK.CPU_TEMP") if t < s < t + 600]
    assert max(cpu) - min(cpu) > 3  # the load did change what other sensors read
    utils = {v for s, v in odc.series(b.received, "COMPUTE_HK.GPU_UTIL") if t < s < t + 600}
    assert utils == {0.0, 75.0}
    after = [v for s, v in odc.series(b.received, "THERMAL_HK.GPU_TEMP", raw=True) if s > t + 600]
    assert min(after) > during[0][1] + 100  # reading the hot GPUs again (5 degC = 100 counts)
    assert (600.0, "SIM", 92) in [(e["t"] - t, e["APP"], e["EVENT_ID"]) for e in b.events(t)]


def test_battery_undervoltage_trips_the_voltage_limit(bench, odc):
    b = bench()
    b.run(60)
    normal = b.latest("POWER_HK.BATT_VOLTAGE")
    t = b.now
    b.send("INJECT_FAULT", fault="BATTERY_UNDERVOLTAGE", duration_s=300)
    b.run(400)
    volts = odc.series(b.received, "POWER_HK.BATT_VOLTAGE")
    during = [v for s, v in volts if t < s < t + 300]
    assert max(during) < normal - 10
    assert b.latest("POWER_HK.BATT_VOLTAGE") > normal - 2  # back after the fault
    processed = process(odc, b.received)
    changes = [(c.action, c.alert.parameter, c.time_s - t) for p in processed for c in p.alerts]
    raised = [c for c in changes if c[:2] == ("raised", "POWER_HK.BATT_VOLTAGE")]
    cleared = [c for c in changes if c[:2] == ("cleared", "POWER_HK.BATT_VOLTAGE")]
    assert len(raised) == 1 and 0 < raised[0][2] <= 5
    assert len(cleared) == 1 and 300 <= cleared[0][2] <= 305


def test_packet_corruption_spoils_frames_but_loses_none(make_fleet, odc):
    clean = make_fleet("ODC-07", gate=False, seed=2)
    spoilt = make_fleet(
        "ODC-07", gate=False, seed=2, faults=parse_faults("ODC-07 PACKET_CORRUPTION at 60 for 900")
    )
    a = clean.advance(clean.t + 1000)[0]
    b = spoilt.advance(spoilt.t + 1000)[0]
    # every packet still goes out, at the same second (the fault's two events aside)
    per_second = Counter(tx.time_s for tx in a)
    per_second[clean.start_s + 60] += 1
    per_second[clean.start_s + 960] += 1
    assert Counter(tx.time_s for tx in b) == per_second
    processed = process(odc, odc.decode(b))
    status = Counter(p.status for p in processed)
    assert status["malformed"] >= 10
    assert status["ok"] + status["malformed"] + status["unknown"] == len(b)
    bad = [p for p in processed if p.status != "ok"]
    assert all(clean.start_s + 60 <= p.frame.time_s < clean.start_s + 960 for p in bad)
    # each frame the ground could not decode is reported, with its reason
    assert len(ground_events(processed, "malformed-frame")) == status["malformed"]
    assert all(p.error for p in bad)


def test_link_drop_silences_the_node_and_it_hears_nothing(bench, odc):
    b = bench(faults=parse_faults("ODC-07 LINK_DROP at 100 for 120"))
    b.run(150)
    b.send("NOOP")  # into the void
    b.run(150)
    start = b.fleet.start_s
    silent = {r.sent_s - start for r in b.received if 100 <= r.sent_s - start < 220}
    assert silent == set()
    assert {r.sent_s - start for r in b.received if r.packet == "POWER_HK"} == set(
        range(1, 100)
    ) | set(range(220, 301))
    assert b.latest("COMMS_HK.CMD_COUNT") == 0
    assert [(e["t"] - start, e["EVENT_ID"], e["TEXT"]) for e in b.events()] == [
        (100.0, 90, "fault LINK_DROP injected for 120 s"),
        (220.0, 92, "fault LINK_DROP ended"),
    ]


def test_scheduled_seu_reboots_the_node(bench, odc):
    b = bench(faults=parse_faults("ODC-07 SEU_REBOOT at 50"))
    b.send("NOOP")
    b.run(100)
    start = b.fleet.start_s
    times = sorted({r.decoded.time_s - start for r in b.received if r.packet == "POWER_HK"})
    assert times == [*range(1, 50), *range(80, 101)]
    assert b.latest("COMMS_HK.CMD_COUNT") == 0
    assert [(e["t"] - start, e["APP"], e["EVENT_ID"], e["TEXT"]) for e in b.events(start + 1)] == [
        (50.0, "SIM", 90, "fault SEU_REBOOT injected for 60 s"),
        (80.0, "CMD", 5, "boot complete (single-event upset)"),
    ]
    resets = ground_events(process(odc, b.received), "sequence-reset")
    assert len(resets) == 5
