"""Benchmark: headless replay as fast as possible (`groundctl replay --max`) vs ingest.

Two sources, each replayed headless at speed 0 (`Replay(..., speed=0.0).run()`, what
`groundctl replay ... --max` runs) into a new archive, and, in the same run, the same
frames through the pipeline without the session around it (no event loop, link, bus or
commander): TelemetryProcessor, flown-pass recorder and ArchiveWriter as
`groundctl.ingest.ingest` drives them, the floor of the pipeline's cost. Both times
include starting the archive writer's process and opening the new archive.

- cFS lab: the real recorded cFS session (560 downlink frames in 60 s), too short to
  time alone (starting the archive writer's process would dominate), so copied end to
  end into a longer JSON-lines session (each copy's times shifted past the one before,
  sequence counts carried on); each side is run `--repeats` times and the median
  printed. Baseline: `groundctl.ingest.ingest` of the same file.
- fleet: a 100-node Walker shell (10 planes of 10) over the demo's five stations, every
  node transmitting (no contact gating: 400 packets per simulated second), recorded by
  the simulator at speed 0 into an archive for `--minutes` simulated minutes; then the
  window `--from/--to` of all nodes is replayed. Baseline: the window's frames read from
  that archive and fed through TelemetryProcessor and ArchiveWriter the way ingest feeds
  them.

Prints frames/s and samples/s of both, and the ratio replay / baseline: what the session
costs on top (the event loop, the bus, the commander's view of every frame, staleness
ticks, the link's chunked reading in a worker thread and its pacing machinery).

    python bench/replay.py                 # cFS x 50 copies, 3 repeats; 100 nodes x 10 min
    python bench/replay.py --quick         # a few seconds: smoke test
    python bench/replay.py --nodes 50 --minutes 5 --copies 20 --repeats 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from groundctl.archive import open_archive
from groundctl.archive.writer import ArchiveWriter
from groundctl.config import Config, demo_config_path, parse_config
from groundctl.engine import Engine
from groundctl.ingest import ingest
from groundctl.links.base import LinkContext
from groundctl.links.sim import SimLink
from groundctl.mdb.loader import load_mission
from groundctl.mdb.model import Mission
from groundctl.replay import Replay, resolve_source
from groundctl.session import load_missions
from groundctl.telemetry.flown import PassRecorder
from groundctl.telemetry.model import Frame
from groundctl.telemetry.pipeline import TelemetryProcessor

ROOT = Path(__file__).resolve().parents[1]
CFS_SESSION = ROOT / "tests" / "fixtures" / "cfs" / "cfs-lab-session.jsonl"
CFS_MISSION = ROOT / "data" / "missions" / "cfs-lab.toml"
START = datetime(2026, 11, 29, tzinfo=UTC)
BATCH = 20_000  # the writer's batch, as ingest and the engine use

Run = tuple[float, int, int]  # wall seconds, downlink frames, samples


def fleet_config(nodes: int) -> Config:
    """The demo's stations with a Walker shell of `nodes` (10 per plane)."""
    demo = demo_config_path()
    text = demo.read_text()
    planes = max(1, nodes // 10)
    text = text.replace(
        'walker = { name_format = "ODC-{n:02d}", planes = 4, per_plane = 6,',
        f'walker = {{ name_format = "ODC-{{n:03d}}", planes = {planes}, '
        f"per_plane = {min(nodes, 10)},",
    )
    assert f"planes = {planes}" in text
    return parse_config(text, demo)


# --- the cFS lab session --------------------------------------------------------------------
def cfs_copies(copies: int, path: Path) -> int:
    """Write the cFS session `copies` times end to end to `path`: each copy's times
    shifted past the one before by the session's span and a second, each packet id's
    sequence counts carried on from the copy before. The downlink frames written."""
    rows = [json.loads(line) for line in CFS_SESSION.read_text().splitlines() if line.strip()]
    span = rows[-1]["t"] - rows[0]["t"] + 1.0
    first: dict[str, int] = {}  # packet id -> its first sequence count in the session
    last: dict[str, int] = {}  # packet id -> its last sequence count written
    downlink = 0
    with path.open("w") as out:
        for copy in range(copies):
            shift: dict[str, int] = {}
            for row in rows:
                raw = bytearray.fromhex(row["hex"])
                if row["dir"] == "down" and len(raw) >= 6:
                    key = raw[:2].hex()
                    sequence = ((raw[2] & 0x3F) << 8) | raw[3]
                    first.setdefault(key, sequence)
                    if copy and key not in shift:
                        shift[key] = last[key] + 1 - first[key]
                    sequence = (sequence + shift.get(key, 0)) % 0x4000
                    raw[2] = (raw[2] & 0xC0) | (sequence >> 8)
                    raw[3] = sequence & 0xFF
                    last[key] = sequence
                    downlink += 1
                record = {**row, "t": row["t"] + copy * span, "hex": raw.hex()}
                out.write(json.dumps(record) + "\n")
    return downlink


def ingest_file(path: Path, mission: Mission, folder: Path, run: int) -> Run:
    t0 = time.perf_counter()
    report = ingest(
        path, folder / f"ingest-{run}.db", mission, node="cfs", import_time_s=time.time()
    )
    return time.perf_counter() - t0, report.frames, report.samples


def replay_file(config: Config, path: Path, mission: Mission, folder: Path, run: int) -> Run:
    source = resolve_source(str(path), archive_path=folder / "none.db", node="cfs")
    job = Replay(config, source, folder / f"replay-{run}.db", speed=0.0, missions=({}, mission))
    report = asyncio.run(job.run())
    return report.wall_s, report.frames, report.samples


# --- the 100-node pass ------------------------------------------------------------------------
async def record_fleet(config: Config, minutes: float, path: Path) -> tuple[int, float]:
    """The simulator at speed 0, every node transmitting, for `minutes` simulated minutes
    into the archive at `path` (as `groundctl sim --speed 0 --no-gate --duration` does).
    The frames archived and the wall seconds it took."""
    missions, default = load_missions(config, [])
    link = SimLink(
        "sim",
        "fleet",
        {"speed": 0.0, "seed": 1, "start": START.isoformat(), "gate": False,
         "duration": minutes * 60.0},
    )  # fmt: skip
    link.bind(LinkContext(config=config))
    engine = Engine(path, missions, default, clock=link.clock)
    t0 = time.perf_counter()
    await engine.start()
    try:
        pump = engine.attach(link)
        await link.open()
        await pump
    finally:
        await engine.stop()
    return link.counters.frames_in, time.perf_counter() - t0


def feed_archive(config: Config, archive: Path, end: datetime, target: Path) -> Run:
    """The window's downlink frames, read from `archive`, through TelemetryProcessor and
    ArchiveWriter into `target` as `groundctl.ingest.ingest` drives them, except that the
    flown passes are ticked once a recorded second, as the engine ticks them, not before
    every frame (a tick looks at every open pass: 100 of them here)."""
    missions, default = load_missions(config, [])
    t0 = time.perf_counter()
    writer = ArchiveWriter(target, batch_rows=BATCH)
    processor = TelemetryProcessor(missions, default, first_alert_id=writer.next_alert_id)
    passes = PassRecorder(writer.next_pass_id)
    frames = samples = 0
    next_tick_s = -math.inf
    try:
        with open_archive(archive) as source:
            for row in source.downlink_frames(START.timestamp(), end.timestamp()):
                frame = Frame(row.raw, row.time_s, "replay", row.node, "down")
                if frame.time_s >= next_tick_s:
                    next_tick_s = frame.time_s + 1.0
                    writer.add_passes(p.row() for p in passes.tick(frame.time_s))
                processed = processor.process(frame)
                pass_id, opened = passes.downlink(
                    frame.node,
                    frame.link,
                    frame.time_s,
                    len(frame.raw),
                    status=processed.status,
                    packet_id=processed.packet_id,
                    sequence=processed.sequence_count,
                    samples=len(processed.samples),
                    events=len(processed.events),
                    alerts_raised=sum(c.action == "raised" for c in processed.alerts),
                )
                writer.add_passes(p.row() for p in opened)
                writer.put(processed, pass_id)
                frames += 1
                samples += len(processed.samples)
                if writer.due():
                    writer.put_pending()
    finally:
        writer.add_passes(p.row() for p in passes.close_all(math.inf))
        writer.close()
    return time.perf_counter() - t0, frames, samples


def replay_archive(config: Config, archive: Path, end: datetime, target: Path) -> Run:
    """`groundctl replay --from START --to END --max` of `archive`, into `target`."""
    source = resolve_source(
        None, archive_path=archive, start=START.isoformat(), end=end.isoformat()
    )
    report = asyncio.run(Replay(config, source, target, speed=0.0).run())
    return report.wall_s, report.frames, report.samples


# --- printing ---------------------------------------------------------------------------------
def median_run(runs: list[Run]) -> Run:
    """The run of median wall time (frames and samples are the same in every run)."""
    return sorted(runs)[(len(runs) - 1) // 2]


def compare(replay: list[Run], baseline: list[Run]) -> None:
    what = f"median of {len(replay)} runs" if len(replay) > 1 else "one run"
    rows = (("replay --max", median_run(replay)), ("baseline (ingest)", median_run(baseline)))
    for label, (wall, frames, samples) in rows:
        print(
            f"  {label}: {frames:,} frames ({samples:,} samples) in {wall:.2f} s = "
            f"{frames / wall:,.0f} frames/s, {samples / wall:,.0f} samples/s ({what})"
        )
    (r_wall, r_frames, _), (b_wall, b_frames, _) = rows[0][1], rows[1][1]
    if len(replay) > 1:
        spread = ", ".join(f"{f / w:,.0f}" for w, f, _ in replay)
        print(f"  replay frames/s of each run: {spread}")
    print(f"  ratio (replay / baseline, frames/s): {(r_frames / r_wall) / (b_frames / b_wall):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    parser.add_argument(
        "--nodes", type=int, help="simulated nodes, 10 a plane (default 100; quick 10)"
    )
    parser.add_argument("--minutes", type=float, help="simulated minutes (default 10; quick 1)")
    parser.add_argument("--copies", type=int, help="cFS session copies (default 50; quick 2)")
    parser.add_argument("--repeats", type=int, help="cFS runs per side (default 3; quick 1)")
    args = parser.parse_args()
    nodes = args.nodes or (10 if args.quick else 100)
    minutes = args.minutes or (1.0 if args.quick else 10.0)
    copies = args.copies or (2 if args.quick else 50)
    repeats = args.repeats or (1 if args.quick else 3)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mission = load_mission(CFS_MISSION)
        config = fleet_config(nodes)
        session = folder / "cfs-copies.jsonl"
        downlink = cfs_copies(copies, session)
        print(
            f"cFS lab: the recorded session (560 downlink frames) x {copies} copies end to end "
            f"(times shifted, sequence counts carried on) = {downlink:,} frames; "
            f"median of {repeats} run{'s' if repeats > 1 else ''} per side"
        )
        replayed: list[Run] = []
        ingested: list[Run] = []
        for i in range(repeats):  # alternately, so that both sides see the same machine
            replayed.append(replay_file(config, session, mission, folder, i))
            ingested.append(ingest_file(session, mission, folder, i))
        compare(replayed, ingested)

        recorded = folder / "fleet.db"
        # the simulator's last frames are stamped at the end itself: --to one second past
        end = START + timedelta(minutes=minutes, seconds=1)
        frames, wall = asyncio.run(record_fleet(config, minutes, recorded))
        print(
            f"fleet: {nodes} nodes x 5 stations, all in view, {minutes:g} simulated min "
            f"recorded at speed 0 ({frames:,} frames in {wall:.1f} s); replay of "
            f"--from {START:%Y-%m-%dT%H:%M:%SZ} --to {end:%Y-%m-%dT%H:%M:%SZ}, all nodes"
        )
        fleet_replay = replay_archive(config, recorded, end, folder / "fleet-replay.db")
        fleet_base = feed_archive(config, recorded, end, folder / "fleet-ingest.db")
        compare([fleet_replay], [fleet_base])


if __name__ == "__main__":
    main()
