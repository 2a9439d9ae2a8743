"""Recorded telemetry in, through the real pipeline, into the archive.

Reads a recording, sends every downlink frame through the TelemetryProcessor and the
ArchiveWriter exactly as a live link would, and archives uplink frames as sent. Formats:

- JSON lines as recorded from UDP sessions: {"t": unix_s, "dir": "up"|"down", "hex": ...}
- CCSDS packet files (concatenated space packets, as flight projects record them); a
  trailing piece that is not a whole packet is archived as a malformed frame.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from groundctl.archive.writer import ArchiveWriter
from groundctl.errors import GroundctlError
from groundctl.mdb.codec import split_packets
from groundctl.mdb.model import Mission
from groundctl.telemetry.model import Frame
from groundctl.telemetry.pipeline import TelemetryProcessor


class RecordingError(GroundctlError):
    title = "recording error"


@dataclass
class IngestReport:
    frames: int = 0
    uplink: int = 0
    samples: int = 0
    events: int = 0
    alerts: int = 0
    malformed: int = 0
    unknown: int = 0


def read_recording(path: Path, node: str, link: str, time_s: float) -> Iterator[Frame]:
    """Frames of a recording file, in order. Raises RecordingError naming file and line."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RecordingError(f"cannot read {path}: {error.strerror or error}") from None
    if path.suffix in (".jsonl", ".json") or data[:1] == b"{":
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                raw = bytes.fromhex(record["hex"])
                t = float(record["t"])
                direction = record.get("dir", "down")
            except (ValueError, KeyError, TypeError) as error:
                raise RecordingError(
                    f"{path}:{number}: not a recorded datagram ({error})",
                    hint='each line is {"t": unix seconds, "dir": "up"|"down", "hex": "..."}',
                ) from None
            if direction not in ("up", "down"):
                raise RecordingError(f'{path}:{number}: "dir" must be "up" or "down"')
            yield Frame(raw, t, link, node, direction)
        return
    for chunk in split_packets(data):
        yield Frame(chunk.data, time_s, link, node, "down")


def ingest(
    path: Path,
    archive_path: Path,
    mission: Mission,
    *,
    node: str,
    link: str = "recording",
    import_time_s: float,
    batch_rows: int = 20_000,
) -> IngestReport:
    """Run a recording through the pipeline into the archive; return what it gave."""
    writer = ArchiveWriter(archive_path, batch_rows=batch_rows)
    processor = TelemetryProcessor(default=mission, first_alert_id=writer.next_alert_id)
    report = IngestReport()
    try:
        for frame in read_recording(path, node, link, import_time_s):
            if frame.direction == "up":
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
    finally:
        writer.close()
    return report
