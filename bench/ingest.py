"""Benchmark: telemetry ingest end to end (decode + limits + archive) vs bare SQLite inserts.

Builds a realistic stream from the mission databases in data/missions: the real recorded
cFS lab packets (every housekeeping and event packet of the session) and, when present,
generated odc-node housekeeping packets, with consecutive sequence counts. Then, in one run:

- end to end: every frame through TelemetryProcessor and ArchiveWriter into a new SQLite
  file (WAL, one transaction per batch), until everything is committed;
- ceiling: the same frame, sample and parameter_packets rows inserted with plain
  executemany into another new file with the same schema, in one transaction per batch of
  the same size;
- their ratio, and the peak memory of the process.

Usage: python bench/ingest.py [--frames N]
Targets (issue 3): at least 300,000 samples/s end to end, at least 30% of the ceiling.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sqlite3
import tempfile
import time
from bisect import bisect_right
from pathlib import Path

from groundctl.archive.store import open_archive
from groundctl.archive.writer import WAL_AUTOCHECKPOINT_PAGES, ArchiveWriter
from groundctl.mdb.codec import encode_telemetry, int_range
from groundctl.mdb.loader import load_mission
from groundctl.mdb.model import Mission
from groundctl.telemetry.model import Frame
from groundctl.telemetry.pipeline import TelemetryProcessor

ROOT = Path(__file__).resolve().parents[1]
BATCH = 20_000


def cfs_frames() -> list[bytes]:
    session = ROOT / "tests" / "fixtures" / "cfs" / "cfs-lab-session.jsonl"
    rows = [json.loads(x) for x in session.read_text().splitlines()]
    return [bytes.fromhex(r["hex"]) for r in rows if r["dir"] == "down"]


def odc_frames(mission: Mission, count: int) -> list[bytes]:
    rng = random.Random(7)
    frames = []
    packets = [p for p in mission.packets.values() if p.event is None]
    for i in range(count):
        packet = packets[i % len(packets)]
        values = {}
        for f in packet.fields:
            if f.kind in ("u", "i"):
                low, high = int_range(f.kind, f.bits)
                values[f.name] = rng.randint(max(low, 0), min(high, 1000))
            elif f.kind == "f":
                values[f.name] = rng.uniform(-1, 1)
        frames.append(encode_telemetry(mission, packet, values, time_s=1.0e9 + i))
    return frames


def with_sequence(frames: list[bytes], total: int) -> list[bytes]:
    """Repeat `frames` to `total`, giving each packet id consecutive sequence counts."""
    counts: dict[bytes, int] = {}
    out = []
    for i in range(total):
        raw = bytearray(frames[i % len(frames)])
        key = bytes(raw[:2])
        n = counts.get(key, 0)
        counts[key] = n + 1
        raw[2] = (raw[2] & 0xC0) | ((n >> 8) & 0x3F)
        raw[3] = n & 0xFF
        out.append(bytes(raw))
    return out


def end_to_end(streams: list[tuple[str, Mission, list[bytes]]], path: Path) -> tuple[float, int]:
    writer = ArchiveWriter(path, batch_rows=BATCH, max_delay_s=60)
    processors = {node: TelemetryProcessor(default=mission) for node, mission, _ in streams}
    samples = 0
    t0 = time.perf_counter()
    for node, _, frames in streams:
        processor = processors[node]
        for i, raw in enumerate(frames):
            processed = processor.process(Frame(raw, 1.0e9 + i * 0.01, "bench", node))
            samples += len(processed.samples)
            writer.put(processed)
    writer.close()
    return time.perf_counter() - t0, samples


def ceiling(rows_path: Path, path: Path) -> tuple[float, int]:
    """Insert the exact rows the end-to-end run archived, with bare executemany."""
    source = sqlite3.connect(rows_path)
    frames = source.execute(
        "SELECT id, time, node, link, direction, length, raw, packet, packet_id, sequence, "
        "status, error, packet_time FROM frames ORDER BY id"
    ).fetchall()
    # In the order the writer inserted them: by frame, then as the frame carried them.
    samples = source.execute(
        "SELECT time, node, parameter, raw, value, state, frame_id FROM samples ORDER BY frame_id"
    ).fetchall()
    # Each (node, parameter, packet) with the first frame that carried it: the writer
    # sends a mapping with the batch of the first frame that carries it.
    mappings = source.execute(
        "SELECT f.node, s.parameter, f.packet, min(f.id) FROM samples AS s "
        "JOIN frames AS f ON f.id = s.frame_id GROUP BY f.node, s.parameter, f.packet "
        "ORDER BY min(f.id)"
    ).fetchall()
    source.close()
    open_archive(path).close()  # the same schema and indexes
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")  # as the writer
    per_frame = max(1, len(samples) // max(1, len(frames)))
    step = max(1, BATCH // (per_frame + 1))
    # Cut the rows into the same batches before timing: only SQLite work is measured.
    frame_ids = [row[6] for row in samples]
    mapping_ids = [row[3] for row in mappings]
    batches = []
    s = m = 0
    for i in range(0, len(frames), step):
        chunk = frames[i : i + step]
        j = bisect_right(frame_ids, chunk[-1][0], lo=s)
        k = bisect_right(mapping_ids, chunk[-1][0], lo=m)
        batches.append((chunk, samples[s:j], [row[:3] for row in mappings[m:k]]))
        s, m = j, k
    t0 = time.perf_counter()
    for chunk, rows, packets in batches:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO frames (id, time, node, link, direction, length, raw, packet, "
            "packet_id, sequence, status, error, packet_time) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            chunk,
        )
        conn.executemany(
            "INSERT INTO samples (time, node, parameter, raw, value, state, frame_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        if packets:
            conn.executemany(
                "INSERT OR IGNORE INTO parameter_packets (node, parameter, packet) "
                "VALUES (?, ?, ?)",
                packets,
            )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed, len(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000, help="frames per mission")
    args = parser.parse_args()

    cfs = load_mission(ROOT / "data" / "missions" / "cfs-lab.toml")
    streams = [("cfs", cfs, with_sequence(cfs_frames(), args.frames))]
    odc_path = ROOT / "data" / "missions" / "odc-node.toml"
    if odc_path.exists():
        odc = load_mission(odc_path)
        streams.append(("ODC-01", odc, with_sequence(odc_frames(odc, 500), args.frames)))
    total = sum(len(f) for _, _, f in streams)
    print(f"stream: {total} frames ({', '.join(f'{n}: {len(f)}' for n, _, f in streams)})")

    with tempfile.TemporaryDirectory() as folder:
        e2e_s, samples = end_to_end(streams, Path(folder) / "e2e.db")
        rate = samples / e2e_s
        print(
            f"end to end: {samples} samples in {e2e_s:.2f} s = {rate:,.0f} samples/s "
            f"({total / e2e_s:,.0f} frames/s)"
        )
        bare_s, bare_samples = ceiling(Path(folder) / "e2e.db", Path(folder) / "bare.db")
        bare_rate = bare_samples / bare_s
        print(
            f"bare executemany: {bare_samples} samples in {bare_s:.2f} s = "
            f"{bare_rate:,.0f} samples/s"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    writer_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"peak memory: {peak:.0f} MB (this process, which holds the whole stream), "
        f"{writer_peak:.0f} MB (archive writer process)"
    )
    print(f"ratio: {rate / bare_rate:.2f}")


if __name__ == "__main__":
    main()
