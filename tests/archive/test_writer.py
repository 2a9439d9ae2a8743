"""The batched archive writer: everything put is committed; a kill -9 loses at most a batch."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from groundctl.archive.writer import ArchiveWriter
from groundctl.mdb.loader import load_mission
from groundctl.telemetry.model import Frame
from groundctl.telemetry.pipeline import TelemetryProcessor

ROOT = Path(__file__).parents[2]
SESSION = ROOT / "tests" / "fixtures" / "cfs" / "cfs-lab-session.jsonl"


def session_frames():
    rows = [json.loads(x) for x in SESSION.read_text().splitlines()]
    return [
        Frame(bytes.fromhex(r["hex"]), r["t"], "udp", "cfs") for r in rows if r["dir"] == "down"
    ]


def test_everything_put_is_committed_by_flush(tmp_path):
    mission = load_mission(ROOT / "data" / "missions" / "cfs-lab.toml")
    path = tmp_path / "a.db"
    writer = ArchiveWriter(path, batch_rows=500)
    processor = TelemetryProcessor(default=mission, first_alert_id=writer.next_alert_id)
    expected_samples = 0
    garbage = Frame(b"\x08\x00\xc0", 5.0, "udp", "cfs")
    for frame in [*session_frames(), garbage]:
        processed = processor.process(frame)
        expected_samples += len(processed.samples)
        writer.put(processed)
    writer.flush()
    # A second connection (another reader) sees it all while the writer is still open.
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM frames").fetchone()[0] == 561
    assert db.execute("SELECT count(*) FROM samples").fetchone()[0] == expected_samples
    status, raw, error = db.execute(
        "SELECT status, raw, error FROM frames WHERE id = 561"
    ).fetchone()
    assert (status, raw) == ("malformed", b"\x08\x00\xc0")
    assert error == "truncated: 3 bytes, a header needs 6"
    alerts = db.execute("SELECT parameter, severity, count FROM alerts ORDER BY id").fetchall()
    assert alerts == [("ES_HK.ERR_COUNT", "yellow", 1), ("CI_LAB_HK.INGEST_ERRORS", "yellow", 1)]
    writer.close()

    # A second writer on the same file continues the ids.
    again = ArchiveWriter(path)
    assert again.next_alert_id == 3
    again.add_frame(Frame(b"\x18\x06\xc0\x00\x00\x01\x00\x21", 9.0, "udp", "cfs", "up"), "sent")
    again.close()
    assert db.execute("SELECT max(id), count(*) FROM frames").fetchone() == (562, 562)


CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from groundctl.archive.writer import ArchiveWriter
    from groundctl.mdb.loader import load_mission
    from groundctl.telemetry.model import Frame
    from groundctl.telemetry.pipeline import TelemetryProcessor

    root, path = Path(sys.argv[1]), Path(sys.argv[2])
    mission = load_mission(root / "data" / "missions" / "cfs-lab.toml")
    rows = [json.loads(x) for x in (root / sys.argv[3]).read_text().splitlines()]
    frames = [bytes.fromhex(r["hex"]) for r in rows if r["dir"] == "down"]
    writer = ArchiveWriter(path, batch_rows=3000, max_delay_s=60)
    print("writer", writer._process.pid, flush=True)
    processor = TelemetryProcessor(default=mission)
    committed = put = 0
    while True:
        for raw in frames:
            writer.put(processor.process(Frame(raw, float(put), "udp", "cfs")))
            put += 1
            if writer.committed_frames != committed:
                committed = writer.committed_frames
                print(f"committed {committed} put {put}", flush=True)
    """
)


def running(pid: int) -> bool:
    """True while the process exists and has not exited (a zombie has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_kill_9_during_ingest_loses_at_most_the_uncommitted_batches(tmp_path):
    path = tmp_path / "crash.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(ROOT), str(path), str(SESSION.relative_to(ROOT))],
        stdout=subprocess.PIPE,
        text=True,
    )
    committed = put = 0
    first = child.stdout.readline().split()
    assert first[0] == "writer"
    writer_pid = int(first[1])
    for line in child.stdout:
        _, committed_text, _, put_text = line.split()
        committed, put = int(committed_text), int(put_text)
        if committed >= 3000:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    # The orphaned writer commits the batches it had received, then exits.
    deadline = time.monotonic() + 60
    while running(writer_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(writer_pid), "the writer did not finish"

    # The writer process outlives its killed caller and commits the batches it had
    # received: read one snapshot, so that a commit cannot land between the queries.
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ids = [r[0] for r in db.execute("SELECT id FROM frames ORDER BY id")]
    # Whole batches only: contiguous ids from 1, at least what was reported committed,
    # and every archived frame has all its samples (no half-written batch).
    assert ids == list(range(1, len(ids) + 1))
    assert len(ids) >= committed
    per_frame = dict(db.execute("SELECT frame_id, count(*) FROM samples GROUP BY frame_id"))
    by_packet = dict(
        db.execute(
            "SELECT packet, max(c) FROM (SELECT f.packet, count(*) c "
            "FROM frames f JOIN samples s ON s.frame_id = f.id GROUP BY f.id) "
            "GROUP BY packet"
        )
    )
    for frame_id, packet in db.execute("SELECT id, packet FROM frames"):
        assert per_frame.get(frame_id, 0) == by_packet[packet], (frame_id, packet)
    # Lost: only the batch still being filled in the killed caller. A batch is 3,000
    # rows, and a frame is at least 3 rows (itself and two samples): at most 1,000 frames.
    # `put` was printed before the kill, so it can only be lower than what was put.
    assert len(ids) >= put - 1000


SIGTERM_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from groundctl.ingest import ingest, stop_on_signals
    from groundctl.mdb.loader import load_mission

    root, path, recording = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    stop, restore = stop_on_signals()
    report = ingest(
        recording, path, load_mission(root / "data" / "missions" / "cfs-lab.toml"),
        node="cfs", import_time_s=time.time(), batch_rows=3000, stop=stop,
        progress=lambda r: print("read", r.frames + r.uplink, flush=True),
    )
    restore()
    print("done", report.frames + report.uplink, report.interrupted, flush=True)
    """
)


def test_sigterm_stops_cleanly_with_everything_read_archived(tmp_path):
    # A long recording: the real session repeated 60 times (33,600 frames).
    lines = SESSION.read_text().splitlines()
    recording = tmp_path / "long.jsonl"
    recording.write_text("\n".join(lines * 60) + "\n")
    path = tmp_path / "term.db"
    child = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_CHILD, str(ROOT), str(path), str(recording)],
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in child.stdout:
        if line.startswith("read") and int(line.split()[1]) >= 3000:
            child.send_signal(signal.SIGTERM)
            break
    rest = child.stdout.read().split()
    assert child.wait(timeout=60) == 0
    assert rest[-3] == "done" and rest[-1] == "True"  # interrupted, and said so
    read = int(rest[-2])
    assert 3000 <= read < len(lines) * 60
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM frames").fetchone()[0] == read
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_integers_beyond_sqlite_range_are_kept_exactly_as_text(tmp_path):
    from groundctl.mdb.codec import encode_telemetry

    mission = load_mission(ROOT / "data" / "missions" / "odc-node.toml")
    packet = next(
        p for p in mission.packets.values() if any(f.bits == 64 and f.kind == "u" for f in p.fields)
    )
    big = next(f for f in packet.fields if f.bits == 64 and f.kind == "u")
    raw = encode_telemetry(mission, packet, {big.name: 2**64 - 1}, time_s=1.0e9)
    path = tmp_path / "big.db"
    writer = ArchiveWriter(path)
    processor = TelemetryProcessor(default=mission)
    for i in range(3):
        writer.put(processor.process(Frame(raw, 1.0e9 + i, "udp", "ODC-01")))
    writer.close()  # raises ArchiveError if anything was lost
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM frames").fetchone()[0] == 3
    values = db.execute(
        "SELECT raw FROM samples WHERE parameter = ?", (f"{packet.name}.{big.name}",)
    ).fetchall()
    assert values == [(str(2**64 - 1),)] * 3
