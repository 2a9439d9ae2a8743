"""The engine and the bus: frames in; archive, samples, events and alerts out."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from groundctl.bus import AlertMessage, Bus, EventMessage, FrameMessage, SampleMessage
from groundctl.engine import Engine
from groundctl.mdb.loader import load_mission
from groundctl.telemetry.model import Frame, Sample

ROOT = Path(__file__).parents[1]


def session_frames():
    rows = [
        json.loads(x)
        for x in (ROOT / "tests/fixtures/cfs/cfs-lab-session.jsonl").read_text().splitlines()
    ]
    return [
        Frame(bytes.fromhex(r["hex"]), r["t"], "udp", "cfs") for r in rows if r["dir"] == "down"
    ]


async def source(frames):
    for frame in frames:
        yield frame


def test_engine_archives_and_publishes_the_real_session(tmp_path):
    mission = load_mission(ROOT / "data" / "missions" / "cfs-lab.toml")
    frames = session_frames()

    async def main():
        bus = Bus()
        events = bus.subscribe(EventMessage)
        alerts = bus.subscribe(AlertMessage)
        latest = bus.subscribe(SampleMessage, mode="latest")
        summary = bus.subscribe(FrameMessage, maxsize=100)
        async with Engine(tmp_path / "e.db", default=mission, bus=bus) as engine:
            assert await engine.run(source(frames)) == 560
            raised = alerts.drain()
            alert_id = raised[0].change.alert.id
            engine.acknowledge(alert_id, "ops1", "known: test command")
            await engine.sent(Frame(bytes.fromhex("1806c00000010021"), 1.0, "udp", "cfs", "up"))
        return events.drain(), raised, latest.drain(), summary, alert_id

    events, raised, latest, summary, alert_id = asyncio.run(main())
    assert len(events) == 10
    assert events[0].event.text == "TO telemetry output enabled for IP 127.0.0.1"
    assert [a.change.alert.parameter for a in raised] == [
        "ES_HK.ERR_COUNT",
        "CI_LAB_HK.INGEST_ERRORS",
    ]
    # The coalesced subscriber holds one value per parameter: the newest.
    values = {m.sample.parameter: m.sample.value for m in latest}
    assert len(values) == len(latest)
    assert values["ES_HK.CMD_COUNT"] == 2 and values["CI_LAB_HK.INGEST_PACKETS"] == 7
    # The bounded log subscriber dropped the oldest frame summaries, and says how many.
    assert summary.pending() == 100 and summary.dropped == 461  # 560 received + 1 sent

    db = sqlite3.connect(tmp_path / "e.db")
    assert db.execute("SELECT count(*) FROM frames").fetchone()[0] == 561
    assert db.execute("SELECT direction, status, raw FROM frames WHERE id = 561").fetchone() == (
        "up",
        "sent",
        bytes.fromhex("1806c00000010021"),
    )
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 10
    assert db.execute(
        "SELECT acked_by, ack_comment FROM alerts WHERE id = ?", (alert_id,)
    ).fetchone() == ("ops1", "known: test command")
    actions = db.execute(
        "SELECT action, who FROM alert_actions WHERE alert_id = ? ORDER BY id", (alert_id,)
    ).fetchall()
    assert actions == [("raised", None), ("acknowledged", "ops1")]


def test_stale_stream_alert_from_the_ticker(tmp_path):
    mission = load_mission(ROOT / "data" / "missions" / "cfs-lab.toml")
    es = [f for f in session_frames() if f.raw[:2] == b"\x08\x00"][:2]
    now = [es[0].time_s]

    async def main():
        bus = Bus()
        alerts = bus.subscribe(AlertMessage)
        async with Engine(
            tmp_path / "s.db", default=mission, bus=bus, clock=lambda: now[0]
        ) as engine:
            await engine.receive(es[0])
            now[0] += 100.0  # silence far beyond 3 housekeeping periods
            engine.tick()
            stale = alerts.drain()
            await engine.receive(Frame(es[1].raw, now[0], "udp", "cfs"))
            back = alerts.drain()
        return stale, back

    stale, back = asyncio.run(main())
    assert ("raised", "ES_HK (stale)") in [
        (m.change.action, m.change.alert.parameter) for m in stale
    ]
    assert [(m.change.action, m.change.alert.parameter) for m in back] == [
        ("cleared", "ES_HK (stale)")
    ]


def test_bus_never_blocks_the_publisher_and_all_mode_keeps_order():
    async def main():
        bus = Bus()
        ordered = bus.subscribe(SampleMessage)
        nobody_reads = bus.subscribe(SampleMessage, maxsize=10)
        for i in range(1000):
            bus.publish(SampleMessage(Sample(float(i), "N", "P", i, i, "")))
        got = [await ordered.get() for _ in range(1000)]
        return got, nobody_reads

    got, nobody_reads = asyncio.run(main())
    assert [m.sample.value for m in got] == list(range(1000))
    assert nobody_reads.pending() == 10 and nobody_reads.dropped == 990


def test_alerts_carry_over_a_restart(tmp_path):
    mission = load_mission(ROOT / "data" / "missions" / "cfs-lab.toml")
    frames = session_frames()
    es = [f for f in frames if f.raw[:2] == b"\x08\x00"]

    async def first_run():
        async with Engine(tmp_path / "r.db", default=mission) as engine:
            await engine.run(source(frames))
            return {a.parameter: a.id for a in engine.processor.alerts.visible(0)}

    async def second_run(alert_id):
        bus = Bus()
        alerts = bus.subscribe(AlertMessage)
        async with Engine(tmp_path / "r.db", default=mission, bus=bus) as engine:
            engine.acknowledge(alert_id, "ops2", "after restart")  # no KeyError
            await engine.receive(es[0])  # ES error counter back at 0: nominal
            return [(m.change.action, m.change.alert.id) for m in alerts.drain()]

    raised = asyncio.run(first_run())
    es_alert = raised["ES_HK.ERR_COUNT"]
    actions = asyncio.run(second_run(es_alert))
    assert ("acknowledged", es_alert) in actions and ("cleared", es_alert) in actions
    assert all(alert_id == es_alert or alert_id in raised.values() for _, alert_id in actions)
    db = sqlite3.connect(tmp_path / "r.db")
    row = db.execute("SELECT cleared IS NOT NULL, acked_by FROM alerts WHERE id = ?", (es_alert,))
    assert row.fetchone() == (1, "ops2")
    assert db.execute("SELECT count(*) FROM alerts").fetchone()[0] == len(raised)
