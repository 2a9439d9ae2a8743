"""The `sim` link through a real engine into a real SQLite archive.

The engine is the one the console and `groundctl sim` drive; the archive is a file in
tmp_path read back with plain sqlite3. Simulated time at speed 0 makes every run the same.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from groundctl.bus import Bus, LinkStateMessage
from groundctl.engine import Engine
from groundctl.links import sim as sim_link
from groundctl.links.base import LinkContext, LinkError, LinkState
from groundctl.links.sim import SimLink

START = datetime(2026, 11, 29, tzinfo=UTC)
START_S = START.timestamp()
START_TEXT = "2026-11-29T00:00:00Z"


def make_link(config, **options):
    options.setdefault("start", START_TEXT)
    options.setdefault("speed", 0.0)
    link = SimLink("sim", "fleet", options)
    link.bind(LinkContext(config=config))
    return link


async def run_engine(path, mission, link, timeout_s=60.0):
    """Attach, open, let the simulation run to its end, stop. Returns the frames delivered,
    what a staleness check at the simulated end raised, and the link-state messages."""
    bus = Bus()
    states = bus.subscribe(LinkStateMessage)
    engine = Engine(path, default=mission, clock=link.clock, bus=bus)
    await engine.start()
    try:
        pump = engine.attach(link)
        await link.open()
        delivered = await asyncio.wait_for(asyncio.shield(pump), timeout_s)
        stale_at_end = engine.tick()  # staleness checked at the simulated end, too
    finally:
        await engine.stop()
    return delivered, stale_at_end, states.drain()


def rows(path, sql, *args):
    with sqlite3.connect(path) as db:
        return db.execute(sql, args).fetchall()


def test_speed_zero_archives_every_frame_with_contacts_and_link_states(
    tmp_path, config, odc, contact_plan
):
    path = tmp_path / "sim.db"
    link = make_link(config, nodes="ODC-07,ODC-01", duration=1500.0, seed=1)
    delivered, stale_at_end, states = asyncio.run(run_engine(path, odc.mission, link))

    assert delivered == link.generated == link.counters.frames_in > 1000
    frames = rows(path, "SELECT node, time, packet_time, status FROM frames ORDER BY id")
    assert len(frames) == link.generated  # nothing dropped between the link and the archive
    assert {status for *_, status in frames} == {"ok"}
    assert {node for node, *_ in frames} == {"ODC-07", "ODC-01"}
    times = [t for _, t, _, _ in frames]
    assert min(times) > START_S and max(times) <= START_S + 1500
    assert all(packet_t <= t for _, t, packet_t, _ in frames)

    # AOS and LOS, at the seconds of the contact plan
    expected = []
    for p in contact_plan("ODC-07", "ODC-01"):
        if p.scheduled:
            aos, los = math.ceil(p.aos.timestamp()), math.ceil(p.los.timestamp())
            if START_S < aos <= START_S + 1500:
                expected.append((aos - START_S, p.node, "aos"))
            if START_S < los <= START_S + 1500:
                expected.append((los - START_S, p.node, "los"))
    contacts = rows(
        path,
        "SELECT time - ?, node, kind FROM events WHERE source = 'ground' AND kind IN ('aos', 'los') ORDER BY id",
        START_S,
    )
    assert contacts == sorted(expected) and len(contacts) == 4
    # each node's frames lie within its contacts
    spans = defaultdict(list)
    for t, node, _ in contacts:
        spans[node].append(t)
    for node, (aos, los) in spans.items():
        times = {t - START_S for n, t, _, _ in frames if n == node}
        assert min(times) == aos and max(times) == los - 1

    # the link's life: archived in simulated time, and published on the bus
    life = rows(
        path,
        "SELECT time - ?, node, severity, text FROM events WHERE kind = 'link-state' ORDER BY id",
        START_S,
    )
    assert life == [
        (0.0, "fleet", "INFO", "link sim: closed -> connecting"),
        (0.0, "fleet", "INFO", "link sim: connecting -> up"),
        (1500.0, "fleet", "WARNING", "link sim: up -> down"),
        (1500.0, "fleet", "INFO", "link sim: down -> closed"),
    ]
    assert [(m.link, m.old, m.new, m.time_s - START_S) for m in states] == [
        ("sim", "closed", "connecting", 0.0),
        ("sim", "connecting", "up", 0.0),
        ("sim", "up", "down", 1500.0),
        ("sim", "down", "closed", 1500.0),
    ]
    # both nodes set during the run and were silent for minutes: no alert of any kind
    assert stale_at_end == []
    assert rows(path, "SELECT node, parameter, severity FROM alerts") == []


def test_silence_in_contact_goes_stale_and_clears_when_the_node_is_heard(tmp_path, config, odc):
    path = tmp_path / "drop.db"
    link = make_link(
        config, nodes="ODC-07,ODC-01", duration=1500.0, faults="ODC-07 LINK_DROP at 500 for 120"
    )
    delivered, _, _ = asyncio.run(run_engine(path, odc.mission, link))
    assert delivered == link.generated
    alerts = rows(
        path,
        "SELECT node, parameter, severity, raised - ?, cleared - ? FROM alerts ORDER BY parameter",
        START_S,
        START_S,
    )
    assert [a[:3] for a in alerts] == [
        ("ODC-07", f"{packet} (stale)", "stale")
        for packet in ("ATTITUDE_HK", "COMMS_HK", "COMPUTE_HK", "POWER_HK", "THERMAL_HK")
    ]
    limits = {p.name: 3 * p.period_s for p in odc.mission.packets.values() if p.period_s}
    for _, parameter, _, raised, cleared in alerts:
        # stale while ODC-07 is in contact but silent (500 to 620), from the moment its
        # last packet before the drop is 3 periods old; fresh once heard again
        packet = parameter.removesuffix(" (stale)")
        [[last]] = rows(
            path,
            "SELECT max(time) - ? FROM frames WHERE node = 'ODC-07' AND packet = ? AND time < ?",
            START_S, packet, START_S + 550,
        )  # fmt: skip
        assert 495 <= last < 500
        assert raised == last + limits[packet]
        assert 620 <= cleared <= 622
    # and ODC-07's long silence after its LOS (865) raised nothing
    assert all(raised < 865 for *_, raised, _ in alerts)


def test_a_node_silent_from_its_aos_goes_stale(tmp_path, config, odc):
    # ODC-07 is heard over Weilheim (393 to 864 s), then its link drops from 3000 s, so it
    # is silent over Awarua from its AOS at 3178 s: the streams it sent before are missed.
    path = tmp_path / "aos.db"
    link = make_link(
        config, nodes="ODC-07", duration=3300.0, faults="ODC-07 LINK_DROP at 3000 for 1000"
    )
    _, stale_at_end, _ = asyncio.run(run_engine(path, odc.mission, link))
    assert sorted(c.alert.parameter for c in stale_at_end) == [
        f"{packet} (stale)"
        for packet in ("ATTITUDE_HK", "COMMS_HK", "COMPUTE_HK", "POWER_HK", "THERMAL_HK")
    ]
    # each went stale 3 of its periods after the AOS it should have been heard from
    limits = {p.name: 3 * p.period_s for p in odc.mission.packets.values() if p.period_s}
    assert {
        (c.action, c.alert.node, c.time_s - START_S - limits[c.alert.parameter[: -len(" (stale)")]])
        for c in stale_at_end
    } == {("raised", "ODC-07", 3178.0)}
    # those are the only alerts, and the archive has them
    assert rows(path, "SELECT count(*) FROM alerts") == [(5,)]
    aos = rows(path, "SELECT time - ? FROM events WHERE kind = 'aos' ORDER BY id", START_S)
    assert aos == [(393.0,), (3178.0,)]


def test_detach_delivers_everything_simulated(tmp_path, config, odc):
    async def main():
        link = make_link(config, nodes="ODC-07,ODC-20", gate=False)  # runs on, at full speed
        async with Engine(tmp_path / "detach.db", default=odc.mission, clock=link.clock) as engine:
            engine.attach(link)
            await link.open()
            await until(lambda: link.counters.frames_in > 3000, 30)
            delivered = await engine.detach("sim")
            assert engine.links == {}
        return link, delivered

    link, delivered = asyncio.run(main())
    assert delivered == link.generated == link.counters.frames_in
    assert link.state is LinkState.CLOSED
    assert rows(tmp_path / "detach.db", "SELECT count(*) FROM frames") == [(delivered,)]


async def until(condition, timeout_s):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_commands_reach_the_node_in_contact_and_are_refused_out_of_it(config, odc):
    async def main():
        lab = make_link(config, nodes="ODC-07", gate=False, duration=30.0)
        await lab.open()
        await lab.send(odc.command("NOOP"), node="ODC-07")
        received = odc.decode_frames([f async for f in lab.frames()])
        await lab.close()
        with pytest.raises(LinkError, match="link sim is closed: nothing was sent"):
            await lab.send(odc.command("NOOP"), node="ODC-07")

        gated = make_link(config, nodes="ODC-07")
        await gated.open()
        with pytest.raises(LinkError) as refused:
            await gated.send(odc.command("NOOP"), node="ODC-07")
        with pytest.raises(LinkError) as unknown:
            await gated.send(odc.command("NOOP"), node="ODC-99")
        await gated.close()
        return lab, received, refused.value, unknown.value

    lab, received, refused, unknown = asyncio.run(main())
    assert (unknown.message, unknown.hint) == (
        "link sim: no simulated node 'ODC-99'",
        "nodes: ODC-07",
    )
    assert lab.counters.frames_out == 1
    assert odc.latest(received, "COMMS_HK.CMD_COUNT") == 1
    assert [(e["APP"], e["EVENT_ID"]) for e in odc.events(received)] == [("CMD", 1)]
    assert refused.message == (
        "link sim: ODC-07 is not in contact: nothing was sent "
        "(next AOS 2026-11-29 00:06:32Z at Weilheim)"
    )


def test_a_slow_consumer_loses_nothing(config, odc, monkeypatch):
    monkeypatch.setattr(sim_link, "QUEUE_FRAMES", 64)

    async def main():
        link = make_link(config, nodes="ODC-07,ODC-20", gate=False, duration=300.0)
        await link.open()
        frames, fullest = [], 0
        async for frame in link.frames():
            fullest = max(fullest, link._queue.qsize())
            frames.append(frame)
            await asyncio.sleep(0)  # a consumer with other things to do
        return link, frames, fullest

    link, frames, fullest = asyncio.run(main())
    # the simulation waited for the consumer at the queue's bound (measured after a get)
    assert fullest == 64 - 1
    assert len(frames) == link.generated == 2 * 300 * 4
    assert [f.time_s for f in frames] == sorted(f.time_s for f in frames)
    counts = defaultdict(list)
    for r in odc.decode_frames(frames):
        counts[(r.node, r.packet)].append(r.decoded.header.sequence_count)
    assert all(seen == list(range(len(seen))) for seen in counts.values())
    assert link.state is LinkState.DOWN  # the simulation ran its course


def test_speed_sets_the_pace_of_simulated_time(config):
    async def main():
        link = make_link(config, nodes="ODC-07", gate=False, speed=60.0)
        await link.open()
        began = time.monotonic()
        simulated = []

        async def consume():
            async for _ in link.frames():
                if link.clock() - START_S >= 120:
                    simulated.append((time.monotonic() - began, link.clock() - START_S))
                    return

        await asyncio.wait_for(consume(), 30)
        lag = link.lag_s
        await link.close()
        return simulated[0], lag

    (wall_s, sim_s), lag = asyncio.run(main())
    # 120 simulated seconds take 2 wall seconds at speed 60: never less, and not much more
    assert 120 <= sim_s <= 122
    assert 1.9 <= wall_s < 10
    assert lag < 60


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"speed": -1.0}, "link sim: speed must be 0 (as fast as possible) to 100000"),
        ({"start": "tomorrow"}, "link sim: option 'start': 'tomorrow' is not an ISO 8601 time"),
        ({"duration": -5.0}, "link sim: duration must be 0 (run on) or more seconds"),
        (
            {"faults": "ODC-07 MELTDOWN at 5"},
            "link sim: option 'faults': fault 1: unknown fault 'MELTDOWN'",
        ),
        ({"speed": "fast"}, "link sim: option 'speed' must be a float, found 'fast'"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(config, options, message):
    with pytest.raises(LinkError) as error:
        make_link(config, **options)
    assert error.value.message == message


def test_unknown_nodes_are_refused_at_open(config):
    link = make_link(config, nodes="ODC-07, odc-99")
    with pytest.raises(LinkError, match=r"link sim: option 'nodes': not in the fleet: odc-99"):
        asyncio.run(link.open())
