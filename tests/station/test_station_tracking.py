"""Tracking a pass with the real Hamlib daemons: rotctld and rigctld with their dummy
devices, started on free loopback ports.

The node's true direction and range rate come from Skyfield (not from the tracker's own
geometry); what the antenna and radio did is read from the daemons. The dummy rotator
moves at 6 deg/s of wall time, so the pass is flown at a speed that keeps the node's
motion within the rotator's reach.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hamlib_support
import pytest
from skyfield.api import EarthSatellite, load, wgs84
from testsupport import aio

from groundctl.bus import Bus, StationMessage
from groundctl.config import (
    RadioConfig,
    RotatorConfig,
    StationControl,
    demo_config_path,
    load_config,
)
from groundctl.engine import Engine
from groundctl.fleet import load_fleet
from groundctl.links.base import LinkContext
from groundctl.links.sim import SimLink
from groundctl.orbits.passes import predict
from groundctl.orbits.plan import plan_contacts
from groundctl.session import Session
from groundctl.station.tracker import StationTracker
from groundctl.station.tracking import C_M_S, separation_deg
from groundctl.telemetry.model import Event

ROOT = Path(__file__).parents[2]
rotctld = hamlib_support.rotctld
rigctld = hamlib_support.rigctld
hamlib_daemons = hamlib_support.hamlib_daemons
raw_request = hamlib_support.raw_request

START = datetime(2026, 11, 29, tzinfo=UTC)
NODE, STATION = "ODC-07", "Awarua"  # its 00:52:57 contact rises at azimuth 349 (north)
SPEED = 10.0  # the node moves up to 0.36 deg/s: 3.6 deg/s of wall time, under 6
THRESHOLD_DEG = 4.0
# the dummy rig takes 40 ms to set a frequency: an update every 2 simulated seconds is
# every 0.2 s of wall time at this speed, time for the rotator and the radio both
UPDATE_S = 2.0
DOWN_HZ, UP_HZ = 437_000_000, 145_900_000


@pytest.fixture(scope="module")
def scene():
    config = load_config(demo_config_path())
    sat = load_fleet(config, now=START).satellites([NODE])[0]
    station = next(s for s in config.stations if s.name == STATION)
    prediction = predict([sat], config.stations, START, START + timedelta(hours=3))
    contact = next(
        p
        for p in plan_contacts(prediction.passes, config.stations)
        if p.scheduled and p.station == STATION and p.aos > START + timedelta(minutes=45)
    )
    ts = load.timescale()
    return sat, station, contact, EarthSatellite(sat.line1, sat.line2, NODE, ts), ts


def truth(scene, time_s: float) -> tuple[float, float, float]:
    """Skyfield's azimuth, elevation and range rate (m/s) of the node at `time_s`."""
    _, station, _, skyfield_sat, ts = scene
    topos = wgs84.latlon(station.lat_deg, station.lon_deg, station.alt_m)
    relative = (skyfield_sat - topos).at(ts.from_datetime(datetime.fromtimestamp(time_s, UTC)))
    alt, az, _ = relative.altaz()
    *_, rate = relative.frame_latlon_and_rates(topos)
    return az.degrees, alt.degrees, rate.km_per_s * 1000.0


def control(rot_port: int | None, rig_port: int | None, **rotator: object) -> StationControl:
    return StationControl(
        STATION,
        RotatorConfig(
            "127.0.0.1", rot_port, update_s=UPDATE_S, threshold_deg=THRESHOLD_DEG,
            preposition_s=60.0, **rotator,
        )
        if rot_port
        else None,
        RadioConfig("127.0.0.1", rig_port) if rig_port else None,
    )  # fmt: skip


def tracker_for(scene, ctl: StationControl, clock, **kw) -> tuple[StationTracker, list, list]:
    sat, station, contact, _, _ = scene
    messages: list[StationMessage] = []
    events: list[Event] = []
    tracker = StationTracker(
        station,
        ctl,
        clock=clock,
        contacts=lambda: [contact],
        tles={NODE: (sat.line1, sat.line2)},
        frequencies={NODE: (DOWN_HZ, UP_HZ)},
        publish=messages.append,
        note=events.append,
        speed=SPEED,
        **kw,
    )
    return tracker, messages, events


def sim_clock(start_s: float):
    loop = asyncio.get_running_loop()
    wall0 = loop.time()
    return lambda: start_s + (loop.time() - wall0) * SPEED


async def run_until(tracker: StationTracker, clock, end_s: float, during=None) -> None:
    task = tracker.start()
    try:
        while clock() < end_s:
            if during is not None:
                await during()
            await asyncio.sleep(0.05)
        assert not task.done(), task.exception()
    finally:
        await tracker.stop()


@aio
async def test_a_whole_pass_is_followed_within_the_threshold_and_tuned_for_doppler(
    scene, rotctld, rigctld, tmp_path
):
    _, rot_port = rotctld
    _, rig_port = rigctld
    _, _, contact, _, _ = scene
    aos, los = contact.aos.timestamp(), contact.los.timestamp()
    engine = Engine(tmp_path / "ops.db")
    await engine.start()
    clock = sim_clock(aos - 70.0)
    tracker, messages, events = tracker_for(scene, control(rot_port, rig_port), clock)
    tracker.publish = lambda m: (messages.append(m), engine.station(m))
    await run_until(tracker, clock, los + 20.0)
    await engine.stop()

    phases = [m.phase for m in messages]
    assert phases[0] == "prepositioning" and "tracking" in phases and phases[-1] == "parking", [
        (round(m.time_s - los, 1), m.phase, m.detail) for m in messages[-5:]
    ]
    tracking = [m for m in messages if m.phase == "tracking"]
    assert len(tracking) > 0.8 * (los - aos) / tracker.update_s
    # the pass crosses north (349 -> 104): one sweep on the dummy's -180..450 azimuth
    sent = [m.target_az for m in tracking if m.target_az is not None]
    assert sent[0] < 0 and max(sent) > 60
    assert all(abs(b - a) < 3 * THRESHOLD_DEG for a, b in itertools.pairwise(sent))
    for m in tracking:
        az, el, rate = truth(scene, m.time_s)
        assert m.actual_az is not None and m.actual_el is not None
        # where the antenna really pointed (read back from rotctld) vs where the node was
        error = separation_deg(m.actual_az % 360.0, m.actual_el, az, el)
        assert error <= THRESHOLD_DEG, (m, az, el)
        # the frequencies set: within 1 Hz of the Doppler formula on Skyfield's range rate
        assert abs(m.downlink_hz - DOWN_HZ * (1 - rate / C_M_S)) <= 1.0
        assert abs(m.uplink_hz - UP_HZ * (1 + rate / C_M_S)) <= 1.0
    # retuned only when the frequency changed, in whole hertz
    tunes = [m.downlink_hz for m in messages if m.tuned]
    assert len(tunes) == len(set(tunes)) > 10
    # the radio holds the last frequencies set (asked directly)
    assert raw_request(rig_port, "f")[1] == f"Frequency: {messages[-1].downlink_hz}"
    assert raw_request(rig_port, "i")[1] == f"TX Frequency: {messages[-1].uplink_hz}"
    assert messages[-1].detail == "parked"
    # archived: one row per update, the targets as sent
    conn = sqlite3.connect(tmp_path / "ops.db")
    rows = conn.execute(
        "SELECT phase, target_az, actual_az, downlink_hz FROM station_log ORDER BY id"
    ).fetchall()
    conn.close()
    assert [r[0] for r in rows] == phases
    assert [r[1] for r in rows] == [m.target_az for m in messages]
    assert not [e for e in events if e.severity != "INFO"]


@aio
async def test_tracking_resumes_when_the_rotator_daemon_comes_back(scene, rotctld):
    daemon = rotctld
    _, _, contact, _, _ = scene
    aos = contact.aos.timestamp()
    clock = sim_clock(aos + 60.0)
    tracker, messages, events = tracker_for(scene, control(daemon.port, None), clock)
    state = {"killed": False, "restarted": False}

    async def outage() -> None:
        if not state["killed"] and clock() > aos + 100.0:
            daemon.kill()
            state["killed"] = True
        elif state["killed"] and not state["restarted"] and clock() > aos + 130.0:
            await asyncio.to_thread(daemon.start)
            state["restarted"] = True

    await run_until(tracker, clock, aos + 400.0, during=outage)
    down = [m for m in messages if aos + 105 < m.time_s < aos + 130]
    assert down and all(m.actual_az is None and m.detail for m in down)
    texts = [e.text for e in events]
    assert any("lost" in t for t in texts)
    assert sum(t.endswith("connected") for t in texts) >= 2  # first connection, and again
    # back: the restarted dummy starts at 0,0; the tracker points again, catches up and
    # then stays within the threshold to the end
    after = [m for m in messages if m.time_s > aos + 130 and m.actual_az is not None]
    errors = []
    for m in after:
        az, el, _ = truth(scene, m.time_s)
        errors.append(separation_deg(m.actual_az % 360.0, m.actual_el, az, el))
    # settled: from the update after the last one beyond the threshold (the antenna may
    # cross the node's direction on its way back before it has caught up)
    beyond = [i for i, e in enumerate(errors) if e > THRESHOLD_DEG]
    settled = beyond[-1] + 1 if beyond else 0
    assert settled < len(errors) and after[settled].time_s < aos + 330, errors
    assert len(errors) - settled > 10


@aio
async def test_targets_beyond_the_limits_are_refused_before_sending(scene, rotctld):
    _, port = rotctld
    _, _, contact, _, _ = scene
    aos, los = contact.aos.timestamp(), contact.los.timestamp()
    # the config narrows the rotator to azimuth 0..60: the pass goes on to 104
    tracker, _messages, _ = tracker_for(
        scene, control(port, None, min_az=0.0, max_az=60.0), clock=lambda: los - 20
    )
    try:
        found = await tracker.update(los - 20)
    finally:
        await tracker.stop()
    assert found is not None and found.target_az is None
    assert "60" in found.detail and "azimuth" in found.detail
    assert raw_request(port, "p")[1:3] == ["Azimuth: 0.00", "Elevation: 0.00"]  # never moved
    del aos


@aio
async def test_a_session_tracks_its_stations_from_the_simulators_contact_plan(
    scene, rotctld, rigctld, tmp_path
):
    """The config's [stations.rotator] and [stations.radio] are driven by the session:
    updates go on the bus and into the archive's station_log."""
    _, rot_port = rotctld
    _, rig_port = rigctld
    _, _, contact, _, _ = scene
    text = demo_config_path().read_text()
    text = text.replace('path = "../missions/', f'path = "{ROOT}/data/missions/')
    mask = "horizon_mask = [[0, 8], [270, 8], [300, 14], [330, 12]]\n"
    assert mask in text
    text = text.replace(
        mask,
        mask + f'\n[stations.rotator]\naddress = "127.0.0.1:{rot_port}"\nupdate_s = 2\n'
        f"threshold_deg = {THRESHOLD_DEG}\npreposition_s = 30\n"
        f'\n[stations.radio]\naddress = "127.0.0.1:{rig_port}"\n',
    )
    text = text.replace("[nodes.ODC-07]\n", f"[nodes.ODC-07]\ndownlink_hz = {DOWN_HZ}\n")
    path = tmp_path / "groundctl.toml"
    path.write_text(text)
    config = load_config(path)
    assert set(config.control) == {STATION}
    start = contact.aos - timedelta(seconds=40)
    link = SimLink(
        "sim", "fleet", {"speed": SPEED, "start": start.isoformat(), "nodes": NODE, "seed": 1}
    )
    link.bind(LinkContext(config=config))
    bus = Bus()
    seen = bus.subscribe(StationMessage, maxsize=10_000)
    session = Session(config, tmp_path / "ops.db", links=[link], bus=bus, stations=True)
    await session.start()
    try:
        assert [t.station.name for t in session.trackers] == [STATION]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while link.clock() < contact.aos.timestamp() + 40 and loop.time() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await session.stop()
    messages = seen.drain()
    phases = {m.phase for m in messages}
    assert {"prepositioning", "tracking"} <= phases
    tracking = [m for m in messages if m.phase == "tracking"]
    assert all(m.node == NODE and m.downlink_hz is not None for m in tracking)
    assert tracking[-1].uplink_hz is None  # no uplink frequency configured for ODC-07
    conn = sqlite3.connect(tmp_path / "ops.db")
    rows = conn.execute("SELECT phase, node, downlink_hz FROM station_log ORDER BY id").fetchall()
    conn.close()
    assert [r[0] for r in rows] == [m.phase for m in messages]
    assert raw_request(rig_port, "f")[1] == f"Frequency: {tracking[-1].downlink_hz}"


@aio
async def test_a_north_crossing_pass_is_flown_flipped_on_a_0_to_360_rotator(scene, hamlib_daemons):
    """A rotator of azimuth 0..360 and elevation 0..180 (rotctld's own limits): the pass
    from 349 over north to 104 is tracked flipped, never crossing the azimuth stop."""
    daemon = hamlib_daemons("rotctld", "-C", "min_az=0,max_az=360,min_el=0,max_el=180")
    assert "Maximum Elevation: 180.000000" in raw_request(daemon.port, "\\dump_state")
    _, _, contact, _, _ = scene
    aos, los = contact.aos.timestamp(), contact.los.timestamp()
    tracker, messages, events = tracker_for(scene, control(daemon.port, None), clock=lambda: aos)
    try:
        for t in range(int(aos) + 1, int(los), 20):
            await tracker.update(float(t))
    finally:
        await tracker.stop()
    sent = [m for m in messages if m.target_az is not None]
    assert len(sent) > 5 and not any(m.detail for m in messages)
    for m in sent:
        assert 0 <= m.target_az <= 360 and 90 < m.target_el <= 180  # flipped
    # over the pass the flipped azimuth sweeps 169 -> 284 without jumping at a stop
    azimuths = [m.target_az for m in sent]
    assert azimuths == sorted(azimuths)
    assert any("flipped" in e.text for e in events)
    # unflipped, each target is where the node is (a little ahead of it)
    for m in sent:
        az, el, _ = truth(scene, m.time_s)
        sky = ((m.target_az + 180.0) % 360.0, 180.0 - m.target_el)
        assert separation_deg(*sky, az, el) <= THRESHOLD_DEG
