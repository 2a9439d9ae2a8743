"""The simulated fleet: real orbits, the real Sun, contact-plan gating, faults, determinism.

Oracles: Skyfield's own `is_sunlit` (with the DE421 ephemeris groundctl ships) for
eclipses, and a contact plan computed here with `groundctl.orbits.passes.predict` and
`groundctl.orbits.plan.plan_contacts` for the contacts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from skyfield.api import EarthSatellite, load

from groundctl.orbits.sun import ephemeris
from groundctl.sim import fleet as sim_fleet
from groundctl.sim.fleet import NotInContact, ScheduledFault, SimError, SimFleet, parse_faults
from groundctl.sim.node import NodeParams

START = datetime(2026, 11, 29, tzinfo=UTC)  # as conftest's fleets start
START_S = START.timestamp()
# Nodes with contention for antennas in the first hours: ODC-01 (priority 10) holds
# Wallops when ODC-19 passes, ODC-05 holds Awarua when ODC-10 passes.
CONTENDING = ("ODC-01", "ODC-05", "ODC-10", "ODC-19")
POWER_HK = b"\x09\x01"  # first header word of APID 0x101


def seconds_of(p):
    """The simulated seconds of a contact: from the first whole second at or after AOS to
    the last one before LOS."""
    return range(math.ceil(p.aos.timestamp()), math.ceil(p.los.timestamp()))


# --- sunlight ------------------------------------------------------------------------------


def test_eclipses_agree_with_skyfield(make_fleet, satellites, odc):
    names = ("ODC-02", "ODC-09", "ODC-20")  # one from each of three planes
    fleet = make_fleet(*names, gate=False)
    span = 5730  # one orbit
    sent = fleet.advance(START_S + span)[0]
    eclipse = {}
    for tx in sent:
        if tx.raw[:2] == POWER_HK:
            decoded = odc.codec.decode(tx.raw)
            eclipse[(tx.node, decoded.time_s)] = decoded.values["ECLIPSE"] == "YES"
    ts = load.timescale(builtin=True)
    times = np.arange(START_S + 1, START_S + span + 1)
    t = ts.from_datetimes([datetime.fromtimestamp(x, UTC) for x in times])
    for sat in satellites(*names):
        sunlit = EarthSatellite(sat.line1, sat.line2, sat.name, ts).at(t).is_sunlit(ephemeris())
        simulated = np.array([not eclipse[(sat.name, x)] for x in times])
        assert simulated.any() and not simulated.all(), sat.name  # both seen in an orbit
        boundaries = times[1:][np.diff(sunlit.astype(int)) != 0]
        assert len(boundaries) >= 2
        for when in times[simulated != sunlit]:
            assert np.min(np.abs(boundaries - when)) <= 10, (sat.name, when - START_S)


# --- contacts --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gated(make_fleet, contact_plan):
    """Four contending nodes, gated, for two hours; and their contact plan."""
    fleet = make_fleet(*CONTENDING, seed=3)
    span = 7200
    sent, changes = fleet.advance(START_S + span)
    return fleet, sent, changes, contact_plan(*CONTENDING), span


def test_nodes_transmit_exactly_during_their_scheduled_contacts(gated):
    _, sent, _, plan, span = gated
    window = range(int(START_S) + 1, int(START_S) + span + 1)
    refused = [p for p in plan if p.scheduled is False and START_S < p.aos.timestamp() < window[-1]]
    assert len(refused) >= 3  # the plan did refuse passes: gating is more than visibility
    sending = defaultdict(set)
    for tx in sent:
        sending[tx.node].add(int(tx.time_s))
    for node in CONTENDING:
        expected = set()
        for p in plan:
            if p.node == node and p.scheduled:
                expected |= set(seconds_of(p)) & set(window)
        assert sending[node] == expected, node
    # ODC-19 passes over Wallops twice, but ODC-01 holds the antenna both times
    assert sending["ODC-19"] == set()
    assert [p.reason[:25] for p in refused if p.node == "ODC-19"] == [
        "antenna busy: ODC-01 (pri"
    ] * 2
    # every second in contact carries a POWER_HK: nothing is sent outside, nothing missed
    power = {(tx.node, int(tx.time_s)) for tx in sent if tx.raw[:2] == POWER_HK}
    assert power == {(tx.node, int(tx.time_s)) for tx in sent}


def test_aos_and_los_come_at_the_contact_seconds(gated):
    fleet, _, changes, plan, span = gated
    end = START_S + span
    expected = []
    for p in plan:
        if not p.scheduled:
            continue
        seconds = seconds_of(p)
        if START_S < seconds[0] <= end:
            expected.append((float(seconds[0]), p.node, p.station, "aos"))
        if START_S < seconds[-1] + 1 <= end:
            expected.append((float(seconds[-1] + 1), p.node, p.station, "los"))
    got = [(c.time_s, c.node, c.station, c.kind) for c in changes]
    assert sorted(got) == sorted(expected)
    assert got == sorted(got, key=lambda c: c[0])  # in time order
    for c in changes:
        assert c.contact.node == c.node and c.contact.scheduled
    assert [p.aos for p in fleet.contacts()] == sorted(p.aos for p in plan if p.scheduled)


def test_commands_out_of_contact_are_refused_with_the_next_aos(make_fleet, contact_plan, odc):
    fleet = make_fleet("ODC-07", seed=1)
    fleet.advance(START_S + 60)
    upcoming = min(
        (p for p in contact_plan("ODC-07") if p.scheduled),
        key=lambda p: p.aos if p.aos.timestamp() > START_S + 60 else START + timedelta(days=9),
    )
    with pytest.raises(NotInContact) as refused:
        fleet.command("ODC-07", odc.command("NOOP"))
    assert str(refused.value.message) == (
        "ODC-07 is not in contact: nothing was sent "
        f"(next AOS {upcoming.aos:%Y-%m-%d %H:%M:%S}Z at {upcoming.station})"
    )
    assert upcoming.station == "Weilheim"
    with pytest.raises(SimError, match="no simulated node 'ODC-99'"):
        fleet.command("ODC-99", odc.command("NOOP"))
    # in contact, it is heard; the refused one was never counted
    fleet.advance(math.ceil(upcoming.aos.timestamp()) + 2)
    assert fleet.reachable("ODC-07") and fleet.contact_of("ODC-07").station == "Weilheim"
    fleet.command("ODC-07", odc.command("NOOP"))
    received = odc.decode(fleet.advance(fleet.t + 2)[0])
    assert odc.latest(received, "COMMS_HK.CMD_COUNT") == 1


def test_downlink_drains_results_at_the_rate_and_only_in_contact(make_fleet, odc):
    rate = 200_000.0  # B/s: slow enough that a pass does not empty the store
    fleet = make_fleet("ODC-07", seed=4, params=NodeParams(downlink_rate_bps=rate))
    first, second = [p for p in fleet.contacts() if p.aos.timestamp() > START_S][:2]
    fleet.advance(first.aos.timestamp() + 5)
    for job in range(1, 9):
        fleet.command("ODC-07", odc.command("SUBMIT_JOB", job_id=job, gpu_seconds=60))
    received = odc.decode(fleet.advance(fleet.t + 100)[0])
    assert odc.latest(received, "COMPUTE_HK.RESULTS_PENDING") == 8 * 60_000_000
    started = fleet.t
    fleet.command("ODC-07", odc.command("START_DOWNLINK"))
    received = odc.decode(fleet.advance(second.aos.timestamp() + 30)[0])
    assert fleet.nodes["ODC-07"].state.downlink_active  # still going after the first pass
    queued = odc.series(received, "COMMS_HK.DOWNLINK_QUEUED")
    rates = dict(odc.series(received, "COMMS_HK.DOWNLINK_RATE"))
    assert {rates[t] for t, _ in queued} == {rate}  # good margin throughout
    first_pass = [(t, q) for t, q in queued if t < second.aos.timestamp()]
    second_pass = [(t, q) for t, q in queued if t > second.aos.timestamp()]
    # N seconds in contact drain rate * N bytes
    (t0, q0), (t1, q1) = first_pass[0], first_pass[-1]
    assert t0 == started + 1 and t1 == math.ceil(first.los.timestamp()) - 1
    assert q0 == 8 * 60_000_000 - rate
    assert q0 - q1 == rate * (t1 - t0)
    # nothing is sent between the passes: at the next AOS, one second's worth less
    assert second_pass[0][0] == math.ceil(second.aos.timestamp())
    assert second_pass[0][1] == q1 - rate
    assert second_pass[0][1] - second_pass[-1][1] == rate * (second_pass[-1][0] - second_pass[0][0])
    [event] = [e for e in odc.events(received) if e["EVENT_ID"] == 40]
    assert event["TEXT"] == "downlink started, 480000000 B queued"
    # the link margin follows the slant range: best near TCA, thin towards LOS
    margin = [
        (t, m)
        for t, m in odc.series(received, "COMMS_HK.LINK_MARGIN")
        if t < second.aos.timestamp()
    ]
    tca = first.tca.timestamp()
    near = [m for t, m in margin if abs(t - tca) <= 30]
    late = [m for t, m in margin if t > margin[-1][0] - 30]
    assert len(near) >= 60 and sum(near) / len(near) > max(late) + 3
    # the compute housekeeping agrees, second by second
    results = odc.series(received, "COMPUTE_HK.RESULTS_PENDING")
    assert len(results) > 100 and set(results) <= set(queued)


def test_link_drop_mid_pass_silences_the_node_and_commands_go_unheard(make_fleet, odc):
    fleet = make_fleet("ODC-07", seed=5, faults=parse_faults("ODC-07 LINK_DROP at 500 for 120"))
    contact = next(p for p in fleet.contacts() if p.aos.timestamp() > START_S)
    assert seconds_of(contact)[0] < START_S + 450 and seconds_of(contact)[-1] > START_S + 700
    sent = fleet.advance(START_S + 550)[0]
    fleet.command("ODC-07", odc.command("NOOP"))  # the plan says in contact: no error
    sent += fleet.advance(START_S + 700)[0]
    seconds = {tx.time_s - START_S for tx in sent}
    assert seconds == set(range(math.ceil(contact.aos.timestamp() - START_S), 500)) | set(
        range(620, 701)
    )
    received = odc.decode(sent)
    assert odc.latest(received, "COMMS_HK.CMD_COUNT") == 0
    assert [(e["t"] - START_S, e["EVENT_ID"]) for e in odc.events(received)] == [
        (500.0, 90),
        (620.0, 92),
    ]


def test_events_raised_out_of_contact_wait_for_the_next_pass(make_fleet, odc):
    faults = parse_faults("ODC-07 SENSOR_STUCK at 1000 for 60")  # between two passes
    fleet = make_fleet("ODC-07", seed=8, faults=faults)
    fleet.advance(START_S + 2000)
    node = fleet.nodes["ODC-07"]
    for n in range(300):  # more than the on-board log holds
        node._event(START_S + 2000, "TEST", 99, "DEBUG", f"filler {n}")
    aos = next(p.aos for p in fleet.contacts() if p.aos.timestamp() > START_S + 2000)
    sent = fleet.advance(math.ceil(aos.timestamp()) + 5)[0]
    events = [(r.sent_s, r.decoded.values) for r in odc.decode(sent) if r.packet == "EVENT"]
    # all sent at the AOS second, with the time each happened; the oldest were overwritten
    assert {sent_s for sent_s, _ in events} == {math.ceil(aos.timestamp())}
    texts = [v["TEXT"] for _, v in events]
    assert texts == [f"filler {n}" for n in range(44, 300)]
    assert node.events_lost == 300 + 2 - 256
    assert {v["SEVERITY"] for _, v in events} == {"DEBUG"}


def test_events_keep_the_time_they_happened(make_fleet, odc):
    fleet = make_fleet("ODC-07", seed=8, faults=parse_faults("ODC-07 SENSOR_STUCK at 1000 for 60"))
    aos = next(p.aos for p in fleet.contacts() if p.aos.timestamp() > START_S + 1000)
    received = odc.decode(fleet.advance(math.ceil(aos.timestamp()) + 5)[0])
    late = [
        (r.sent_s - START_S, r.decoded.time_s - START_S, r.decoded.values["EVENT_ID"])
        for r in received
        if r.packet == "EVENT"
    ]
    first_second = math.ceil(aos.timestamp()) - START_S
    assert late == [(first_second, 1000.0, 90), (first_second, 1060.0, 92)]


def test_replanning_keeps_a_contact_in_progress(make_fleet, contact_plan, monkeypatch):
    # Plan an hour at a time, so the plan is redone every half hour: at START + 3600
    # ODC-07 is over Awarua.
    monkeypatch.setattr(sim_fleet, "PLAN_HOURS", 1.0)
    fleet = make_fleet("ODC-07", seed=6)
    _, changes = fleet.advance(START_S + 4000)
    expected = []
    for p in contact_plan("ODC-07"):
        seconds = seconds_of(p)
        if seconds[0] > START_S and seconds[-1] < START_S + 4000:
            expected += [(seconds[0], p.station, "aos"), (seconds[-1] + 1, p.station, "los")]
    assert expected[2:] == [(expected[2][0], "Awarua", "aos"), (expected[3][0], "Awarua", "los")]
    assert expected[2][0] < START_S + 3600 < expected[3][0]
    assert [(c.time_s, c.station, c.kind) for c in changes] == expected


# --- determinism -------------------------------------------------------------------------------


def run_with_commands(make_fleet, odc, seed):
    fleet = make_fleet("ODC-07", "ODC-01", seed=seed)
    sent = fleet.advance(START_S + 400)[0]
    fleet.command("ODC-07", odc.command("SUBMIT_JOB", job_id=1, gpu_seconds=100))
    fleet.command("ODC-07", odc.command("INJECT_FAULT", fault="PACKET_CORRUPTION", duration_s=200))
    sent += fleet.advance(START_S + 1200)[0]
    return sent


def test_the_same_seed_start_and_commands_give_the_same_bytes(make_fleet, odc):
    a = run_with_commands(make_fleet, odc, seed=42)
    b = run_with_commands(make_fleet, odc, seed=42)
    c = run_with_commands(make_fleet, odc, seed=43)
    assert len(a) > 2000
    assert a == b
    assert [(t.node, t.time_s) for t in c] == [(t.node, t.time_s) for t in a]
    assert sum(x.raw != y.raw for x, y in zip(a, c, strict=True)) > len(a) // 2


# --- fault schedules ------------------------------------------------------------------------------


def test_fault_schedules_parse():
    assert parse_faults(" ODC-07 THERMAL_RUNAWAY at 600 for 300;ODC-02 seu_reboot at 90 ;; ") == [
        ScheduledFault("ODC-07", "THERMAL_RUNAWAY", 600.0, 300.0),
        ScheduledFault("ODC-02", "SEU_REBOOT", 90.0, 60.0),
    ]
    assert parse_faults("") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "ODC-07 at 10",
            "fault 1 ('ODC-07 at 10'): expected 'NODE FAULT at SECONDS [for SECONDS]'",
        ),
        ("ODC-07 LINK_DROP at 10; ODC-07 MELTDOWN at 5", "fault 2: unknown fault 'MELTDOWN'"),
        ("ODC-07 LINK_DROP at 1.2.3", "fault 1: 'at 1.2.3' is not a number of seconds"),
        ("ODC-07 LINK_DROP at 10 for 1..5", "fault 1: 'for 1..5' is not a number of seconds"),
        ("ODC-07 LINK_DROP at 10 for 0", "fault 1: 'for 0': a fault lasts more than 0 s"),
        (
            "ODC-07 LINK_DROP in 10",
            "fault 1 ('ODC-07 LINK_DROP in 10'): expected 'NODE FAULT at SECONDS [for SECONDS]'",
        ),
    ],
)
def test_fault_schedule_errors_say_which_entry_and_why(text, message):
    with pytest.raises(SimError) as error:
        parse_faults(text)
    assert error.value.message == message
    assert error.value.hint == (
        "e.g. 'ODC-07 THERMAL_RUNAWAY at 600 for 300'; faults: SENSOR_STUCK, "
        "BATTERY_UNDERVOLTAGE, THERMAL_RUNAWAY, SEU_REBOOT, PACKET_CORRUPTION, LINK_DROP"
    )


def test_fleet_refuses_what_it_cannot_simulate(make_fleet, satellites, config):
    with pytest.raises(SimError, match="faults name nodes that are not simulated: ODC-99"):
        make_fleet("ODC-07", faults=parse_faults("ODC-99 LINK_DROP at 5"))
    with pytest.raises(SimError, match="no nodes to simulate"):
        SimFleet([], config.stations, start_s=START_S)
    with pytest.raises(SimError, match="no ground stations"):
        SimFleet(satellites("ODC-07"), [], start_s=START_S)
    # node names in schedules are matched as the fleet's `nodes` are: whatever the case
    fleet = make_fleet("ODC-07", gate=False, faults=parse_faults("odc-07 LINK_DROP at 5"))
    sent = fleet.advance(START_S + 10)[0]
    assert max(tx.time_s for tx in sent) == START_S + 4
