"""Recorded telemetry in, through the real pipeline, into the archive.

Reads a recording, sends every downlink frame through the TelemetryProcessor and the
ArchiveWriter exactly as a live link would, and archives uplink frames as sent. Formats:

- JSON lines as recorded from UDP sessions: {"t": unix_s, "dir": "up"|"down", "hex": ...}
- CCSDS packet files (concatenated space packets, as flight projects record them); a
  trailing piece that is not a whole packet is archived as a malformed frame.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from groundctl.archive.writer import ArchiveWriter
from groundctl.errors import GroundctlError
from groundctl.mdb.codec import split_packets
from groundctl.mdb.model import Mission
from groundctl.telemetry.model import Event, Frame
from groundctl.telemetry.pipeline import Processed, TelemetryProcessor


class RecordingError(GroundctlError):
    title = "recording error"


@dataclass
class IngestReport:
    """What an ingest did. `interrupted`: stopped early by a signal (all read is archived)."""

    frames: int = 0
    uplink: int = 0
    samples: int = 0
    events: int = 0
    alerts: int = 0
    malformed: int = 0
    unknown: int = 0
    interrupted: bool = False
    problems: list[str] = field(default_factory=list)  # unreadable records, by file and line


def read_recording(path: Path, node: str, link: str, time_s: float) -> Iterator[tuple[Frame, str]]:
    """(frame, problem) for each record of a recording file, in order.

    A record that cannot be read (a JSON line without "hex", bad hex, a cut-off last line,
    a trailing piece of a packet file) still comes out: its bytes as a frame, with the
    problem naming file and line, so that it is archived as malformed and nothing is
    lost. Raises RecordingError only when the file itself cannot be read.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RecordingError(f"cannot read {path}: {error.strerror or error}") from None
    if path.suffix in (".jsonl", ".json") or data[:1] == b"{":
        for number, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                raw = bytes.fromhex(record["hex"])
                t = float(record["t"])
                direction = record.get("dir", "down")
                if direction not in ("up", "down"):
                    raise ValueError(f'"dir" is {direction!r}, expected "up" or "down"')
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                problem = f"{path}:{number}: not a recorded datagram ({error})"
                yield Frame(bytes(line), time_s, link, node, "down"), problem
                continue
            yield Frame(raw, t, link, node, direction), ""
        return
    for chunk in split_packets(data):
        problem = f"{path} byte {chunk.offset}: {chunk.error}" if chunk.error else ""
        yield Frame(chunk.data, time_s, link, node, "down"), problem


def ingest(
    path: Path,
    archive_path: Path,
    mission: Mission,
    *,
    node: str,
    link: str = "recording",
    import_time_s: float,
    batch_rows: int = 20_000,
    stop: threading.Event | None = None,
    progress: Callable[[IngestReport], None] | None = None,
) -> IngestReport:
    """Run a recording through the pipeline into the archive; return what it gave.

    When `stop` is set (e.g. by a SIGINT/SIGTERM handler), reading stops and every frame
    read so far is committed before returning. `progress` is called every 1,000 frames.
    """
    writer = ArchiveWriter(archive_path, batch_rows=batch_rows)
    processor = TelemetryProcessor(default=mission, first_alert_id=writer.next_alert_id)
    report = IngestReport()
    try:
        for frame, problem in read_recording(path, node, link, import_time_s):
            if stop is not None and stop.is_set():
                report.interrupted = True
                break
            if problem:
                # Unreadable record: keep its bytes, with the reason, and say so.
                writer.add(
                    Processed(
                        frame,
                        "malformed",
                        problem,
                        events=[
                            Event(
                                frame.time_s, node, "ground", "malformed-record", "WARNING", problem
                            )
                        ],
                    )
                )
                report.malformed += 1
                report.problems.append(problem)
            elif frame.direction == "up":
                writer.add_frame(frame, "sent")
                report.uplink += 1
            else:
                processed = processor.process(frame)
                writer.put(processed)
                report.frames += 1
                report.samples += len(processed.samples)
                report.events += len(processed.events)
                report.alerts += len(processed.alerts)
                report.malformed += processed.status == "malformed"
                report.unknown += processed.status == "unknown"
            if writer.due():
                writer.put_pending()
            if progress is not None and (report.frames + report.uplink) % 1000 == 0:
                progress(report)
    finally:
        writer.close()
    return report


def stop_on_signals() -> tuple[threading.Event, Callable[[], None]]:
    """An Event set by SIGINT or SIGTERM, and a function that restores the old handlers.

    Lets a long import end cleanly: the caller stops reading and flushes the archive.
    """
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda number, frame: stop.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return stop, restore
