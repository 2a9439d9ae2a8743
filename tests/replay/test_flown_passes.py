"""Flown passes: each pass as flown is a row of the archive, linked to what happened in it.

Oracles: the contact plan from the pass predictor and planner (not the pass recorder),
independent SQL over the frames, samples, alerts and commands tables, and the real cFS
recording's known packet counts.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from testsupport import aio, rows

from groundctl.archive import open_archive
from groundctl.config import Config, demo_config_path, load_config
from groundctl.engine import Engine
from groundctl.fleet import load_fleet
from groundctl.links.base import LinkContext
from groundctl.links.sim import SimLink
from groundctl.orbits.passes import predict
from groundctl.orbits.plan import plan_contacts
from groundctl.session import Session
from groundctl.telemetry.flown import SEQUENCE_MODULO, PassRecorder
from groundctl.telemetry.model import Frame

ROOT = Path(__file__).parents[2]
CFS_SESSION = ROOT / "tests" / "fixtures" / "cfs" / "cfs-lab-session.jsonl"
CFS_MISSION = ROOT / "data" / "missions" / "cfs-lab.toml"
NODES = ("ODC-07", "ODC-01")
HOURS = 3
START = datetime(2026, 11, 29, tzinfo=UTC)


def demo_config() -> Config:
    return load_config(demo_config_path())


def groundctl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "groundctl", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def flown(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three simulated hours of two nodes, gated by the contact plan, with faults."""
    path = tmp_path_factory.mktemp("flown") / "flown.db"
    done = groundctl(
        "--archive", path, "sim", "--speed", "0", "--duration", str(HOURS * 3600),
        "--start", START.isoformat(), "--nodes", ",".join(NODES),
        "--fault", "ODC-07 PACKET_CORRUPTION at 420 for 60",
        "--fault", "ODC-07 BATTERY_UNDERVOLTAGE at 430 for 300",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return path


def passes(path: Path) -> list[dict]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM flown_passes ORDER BY id")]
    finally:
        conn.close()


def test_every_planned_contact_is_a_flown_pass_at_its_station(flown):
    config = demo_config()
    sats = load_fleet(config, now=START).satellites(list(NODES))
    prediction = predict(
        sats, config.stations, START - timedelta(minutes=30), START + timedelta(hours=HOURS + 1)
    )
    end_s = START.timestamp() + HOURS * 3600
    planned = [
        p
        for p in plan_contacts(prediction.passes, config.stations)
        if p.scheduled and p.aos.timestamp() >= START.timestamp() and p.los.timestamp() < end_s
    ]
    assert len(planned) >= 8
    found = passes(flown)
    assert all(f["status"] == "flown" for f in found)
    by_key = {(f["node"], f["station"]): [] for f in found}
    for f in found:
        by_key[(f["node"], f["station"])].append(f)
    for p in planned:
        match = [
            f
            for f in by_key.get((p.node, p.station), [])
            if abs(f["aos"] - p.aos.timestamp()) < 1.5
        ]
        assert len(match) == 1, f"no flown pass for {p.node} at {p.station} {p.aos}"
        assert abs(match[0]["los"] - p.los.timestamp()) < 1.5
        assert match[0]["max_elevation_deg"] == pytest.approx(p.max_elevation_deg, abs=0.01)
    assert len(found) == len(planned)


def test_a_pass_is_linked_to_its_frames_samples_events_and_alerts(flown):
    for f in passes(flown):
        # the frames the node sent between AOS and LOS, found by time, not by pass id
        by_time = rows(
            flown,
            "SELECT count(*), sum(length), sum(status = 'malformed') FROM frames "
            "WHERE node = ? AND direction = 'down' AND time >= ? AND time <= ?",
            f["node"], f["aos"], f["los"],
        )[0]  # fmt: skip
        by_pass = rows(
            flown,
            "SELECT count(*), sum(length), sum(status = 'malformed') FROM frames "
            "WHERE pass_id = ? AND direction = 'down'",
            f["id"],
        )[0]
        assert by_pass == by_time
        assert (f["frames_down"], f["bytes_down"], f["malformed"]) == by_time
        [[samples]] = rows(
            flown,
            "SELECT count(*) FROM samples s JOIN frames f ON f.id = s.frame_id "
            "WHERE f.node = ? AND f.time >= ? AND f.time <= ?",
            f["node"], f["aos"], f["los"],
        )  # fmt: skip
        assert f["samples"] == samples
        [[raised]] = rows(
            flown,
            "SELECT count(*) FROM alerts WHERE node = ? AND raised >= ? AND raised <= ?",
            f["node"], f["aos"], f["los"],
        )  # fmt: skip
        assert f["alerts_raised"] == raised
        linked = rows(flown, "SELECT count(*) FROM alerts WHERE pass_id = ?", f["id"])[0][0]
        assert linked == raised
        kinds = [k for (k,) in rows(flown, "SELECT kind FROM events WHERE pass_id = ?", f["id"])]
        assert kinds[0] == "aos" and kinds[-1] == "los"
        assert f["events"] == len(kinds)
    # the faults: corrupted packets and a red battery in ODC-07's first pass
    first = next(f for f in passes(flown) if f["node"] == "ODC-07")
    assert first["malformed"] > 0 and first["alerts_raised"] >= 1
    assert rows(flown, "SELECT parameter FROM alerts WHERE pass_id = ?", first["id"]) == [
        ("POWER_HK.BATT_VOLTAGE",)
    ]


def test_sequence_gaps_count_missing_packets_across_the_counter_wrap():
    recorder = PassRecorder()
    wrap = SEQUENCE_MODULO - 3
    seen = [(0x101, c) for c in (0, 1, 2, 5, 6, 6, 4, 7)]
    seen += [(0x102, c) for c in (wrap, wrap + 1, wrap + 2, 0, 3)]
    for t, (apid, count) in enumerate(seen):
        recorder.downlink(
            "N", "l", float(t), 10, status="ok", packet_id=apid, sequence=count,
            samples=0, events=0, alerts_raised=0,
        )  # fmt: skip
    [flown] = recorder.flying()
    # 0x101: 2 -> 5 misses 3 and 4; 6 again is a repeat and 4 late, neither a gap nor
    # a reason to count 5 and 6 missing before 7. 0x102: 16383 -> 0 is the counter's
    # wrap; 0 -> 3 misses 1 and 2.
    assert (flown.gaps, flown.missing) == (2, 4)
    assert flown.frames_down == len(seen) and flown.bytes_down == 10 * len(seen)


def test_a_link_without_a_contact_plan_makes_a_pass_of_each_span_of_reception():
    recorder = PassRecorder(silence_s=60)
    for t in (0.0, 10.0, 65.0):  # 55 s apart: one pass
        recorder.downlink("N", "udp", t, 1, status="ok", packet_id=None, sequence=None,
                          samples=0, events=0, alerts_raised=0)  # fmt: skip
    assert recorder.tick(100.0) == []
    [closed] = recorder.tick(125.0)  # 60 s after the last frame
    assert (closed.aos, closed.los, closed.status, closed.frames_down) == (0.0, 65.0, "flown", 3)
    assert closed.longest_silence_s == 55.0
    pass_id, opened = recorder.downlink("N", "udp", 200.0, 1, status="ok", packet_id=None,
                                        sequence=None, samples=0, events=0, alerts_raised=0)  # fmt: skip
    assert [p.id for p in opened] == [pass_id] == [closed.id + 1]
    [down] = recorder.link_down("udp", 230.0)
    assert (down.aos, down.los) == (200.0, 200.0)


def test_an_imported_recording_is_one_pass_with_every_frame(tmp_path):
    archive = tmp_path / "cfs.db"
    done = groundctl(
        "--archive", archive, "db", "import", CFS_SESSION, "--mission", CFS_MISSION,
        "--node", "cfs",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [flown] = passes(archive)
    # the recording's README: 560 downlink packets; 8 uplink commands, the first sent
    # before anything was heard (TO_LAB sends nothing until told to)
    assert (flown["frames_down"], flown["frames_up"], flown["station"]) == (560, 7, "")
    assert (flown["gaps"], flown["missing"]) == (0, 0)  # "No sequence-count gaps"
    assert rows(archive, "SELECT count(*) FROM frames WHERE pass_id IS NULL") == [(1,)]
    first, last = rows(archive, "SELECT min(time), max(time) FROM frames WHERE direction = 'down'")[
        0
    ]
    assert (flown["aos"], flown["los"]) == (first, last)


@aio
async def test_commands_sent_in_a_pass_are_counted_and_linked(tmp_path):
    config = demo_config()
    path = tmp_path / "ops.db"
    link = SimLink(
        "sim", "fleet", {"speed": 0, "start": START.isoformat(), "nodes": "ODC-07", "gate": False}
    )
    link.bind(LinkContext(config=config))
    session = Session(config, path, links=[link], operator="alice")
    await session.start()
    try:
        assert session.commander is not None
        outcome = await session.commander.issue("ODC-07 NOOP")
        await outcome.done.wait()
        assert outcome.stage == "completed"
    finally:
        await session.stop()
    [flown] = passes(path)
    assert (flown["commands_sent"], flown["commands_verified"], flown["commands_failed"]) == (
        1,
        1,
        0,
    )
    assert rows(path, "SELECT pass_id FROM commands") == [(flown["id"],)]
    up = rows(path, "SELECT pass_id, raw FROM frames WHERE direction = 'up'")
    assert up == rows(path, "SELECT pass_id, raw FROM commands")
    assert flown["frames_up"] == 1
    # the engine stopped while the (ungated, unplanned) pass was open: it ends at the
    # last frame heard
    [[last]] = rows(
        path, "SELECT max(time) FROM frames WHERE node = 'ODC-07' AND direction = 'down'"
    )
    assert flown["los"] == last


@aio
async def test_a_pass_left_flying_by_a_crash_is_marked_interrupted(tmp_path):
    path = tmp_path / "ops.db"
    engine = Engine(path)
    await engine.start()
    await engine.receive(Frame(b"\x01\x02", 100.0, "udp", "N", "down"))
    await engine.receive(Frame(b"\x01\x02", 101.5, "udp", "N", "down"))
    engine._write_passes(engine.passes.flying())  # as the periodic update writes them
    assert engine.writer is not None
    await engine.writer.aflush()
    assert rows(path, "SELECT status, los FROM flown_passes") == [("flying", None)]
    # a crash: nothing more is written (the writer process ends with its pipe)
    engine.writer.close()
    engine.writer = None
    restarted = Engine(path)
    await restarted.start()
    await restarted.stop()
    assert rows(path, "SELECT status, aos, los FROM flown_passes") == [
        ("interrupted", 100.0, 101.5)
    ]
    with open_archive(path) as archive:
        assert archive.flown_pass(1)["status"] == "interrupted"
