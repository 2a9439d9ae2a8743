"""Recorded telemetry in, through the real pipeline, into the archive.

Reads a recording, sends every downlink frame through the TelemetryProcessor and the
ArchiveWriter exactly as a live link would, and archives uplink frames as sent. Formats:

- JSON lines as recorded from UDP sessions: {"t": unix_s, "dir": "up"|"down", "hex": ...}
- CCSDS packet files (concatenated space packets, as flight projects record them); a
  trailing piece that is not a whole packet is archived as a malformed frame.
- any format a plugin registers under the `groundctl.recordings` entry-point group (see
  groundctl.recordings), e.g. KISS capture files from groundctl-kiss.

RecordingError is defined in groundctl.recordings (plugins raise it) and exported here.
"""

from __future__ import annotations

import json
import math
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from groundctl.archive.writer import ArchiveWriter
from groundctl.errors import GroundctlError
from groundctl.mdb.codec import split_packets
from groundctl.mdb.model import Mission
from groundctl.recordings import (
    JSON_SUFFIXES,
    SNIFF_BYTES,
    RecordingError,
    RecordingFormat,
    by_sniff,
    by_suffix,
    loaded_formats,
    origin,
)
from groundctl.telemetry.flown import PassRecorder
from groundctl.telemetry.model import Event, Frame
from groundctl.telemetry.pipeline import Processed, TelemetryProcessor

__all__ = [
    "JSON_SUFFIXES",
    "IngestReport",
    "RecordingError",
    "ingest",
    "read_recording",
    "stop_on_signals",
]


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
    problems: list[str] = field(default_factory=list)  # unreadable records, where and why


def read_recording(path: Path, node: str, link: str, time_s: float) -> Iterator[tuple[Frame, str]]:
    """(frame, problem) for each record of a recording file, in order.

    A record that cannot be read (a JSON line without "hex", bad hex, a cut-off last line,
    a trailing piece of a packet file) still comes out: its bytes as a frame, with the
    problem naming file and line (or byte offset), so that it is archived as malformed and
    nothing is lost. `time_s` is the receive time of frames whose file records none.
    Raises RecordingError only when the file itself cannot be read.

    The format is chosen in this order (groundctl.recordings): a plugin format whose
    suffix ends the file name; the built-in JSON lines by suffix (.jsonl, .json) or a
    first byte "{"; a plugin format whose sniff() recognises the file's first bytes; else
    a CCSDS packet file. A plugin that fails to load is warned about once and skipped.
    """
    plugins = loaded_formats()
    fmt = by_suffix(path, plugins)
    if fmt is None and path.suffix not in JSON_SUFFIXES:
        head = _read_bytes(path, SNIFF_BYTES)
        if head[:1] != b"{":
            fmt = by_sniff(head, plugins)
    if fmt is not None:
        yield from _read_plugin_format(fmt, path, node, link, time_s)
        return
    data = _read_bytes(path)
    if path.suffix in JSON_SUFFIXES or data[:1] == b"{":
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


def _read_bytes(path: Path, size: int = -1) -> bytes:
    """The file's first `size` bytes (all when -1); RecordingError when it cannot be read."""
    try:
        with path.open("rb") as f:
            return f.read(size)
    except OSError as error:
        raise RecordingError(f"cannot read {path}: {error.strerror or error}") from None


def _read_plugin_format(
    fmt: RecordingFormat, path: Path, node: str, link: str, time_s: float
) -> Iterator[tuple[Frame, str]]:
    """A plugin format's records. Any exception but a GroundctlError is a bug in the
    plugin: it becomes a RecordingError naming the format and plugin, so that the user
    knows whom to tell (the frames read before it have already come out)."""
    try:
        yield from fmt.read(path, node, link, time_s)
    except GroundctlError:
        raise
    except Exception as error:  # a plugin can fail in any way
        raise RecordingError(
            f"cannot read {path}: the {fmt.NAME!r} recording format ({origin(fmt)}) failed: "
            f"{type(error).__name__}: {error}",
            hint="this is a bug in the plugin that provides the format; report it to its authors",
        ) from error


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

    A recording has no contact plan: its frames make flown passes as a link without one
    does (from the first frame until the node has been silent `DEFAULT_SILENCE_S`).
    """
    writer = ArchiveWriter(archive_path, batch_rows=batch_rows)
    processor = TelemetryProcessor(default=mission, first_alert_id=writer.next_alert_id)
    passes = PassRecorder(writer.next_pass_id)
    next_tick_s = -math.inf
    report = IngestReport()
    try:
        for frame, problem in read_recording(path, node, link, import_time_s):
            if stop is not None and stop.is_set():
                report.interrupted = True
                break
            if frame.time_s >= next_tick_s:  # silences are looked for once a recorded second
                next_tick_s = frame.time_s + 1.0
                writer.add_passes(p.row() for p in passes.tick(frame.time_s))
            if problem:
                # Unreadable record: keep its bytes, with the reason, and say so.
                unreadable = Processed(
                    frame,
                    "malformed",
                    problem,
                    events=[
                        Event(frame.time_s, node, "ground", "malformed-record", "WARNING", problem)
                    ],
                )
                pass_id, opened = passes.processed(unreadable)
                writer.add_passes(p.row() for p in opened)
                writer.add(unreadable, pass_id)
                report.malformed += 1
                report.problems.append(problem)
            elif frame.direction == "up":
                writer.add_frame(frame, "sent", pass_id=passes.uplink(node, len(frame.raw)))
                report.uplink += 1
            else:
                processed = processor.process(frame)
                pass_id, opened = passes.processed(processed)
                writer.add_passes(p.row() for p in opened)
                writer.put(processed, pass_id)
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
        writer.add_passes(p.row() for p in passes.close_all(math.inf))
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
