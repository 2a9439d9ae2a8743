"""Batched, crash-safe archiving of telemetry, in a writer process of its own.

The engine hands every processed frame to `put`; rows gather in the current batch, and a
batch goes to the writer process when it holds `batch_rows` rows or is `max_delay_s` old.
The writer commits each batch in one transaction. The pipe between them holds little, so
when the writer falls behind `put` waits (back-pressure) instead of letting memory grow.
If the caller dies, even by `kill -9`, the writer commits every batch it has received and
exits; what is lost is at most the batch that was still being filled. `flush` and
`close` return once everything put so far is committed.

Why a process and not a thread: CPython's sqlite3 releases the GIL around every row it
steps, and a thread that must win the GIL back from a busy decoder for each row waits up
to the interpreter's switch interval each time, which made a writer thread several times
slower than SQLite. A process has its own interpreter, so decoding and writing use both
cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundctl.archive.store import open_archive
from groundctl.errors import ArchiveError
from groundctl.telemetry.alerts import AlertChange
from groundctl.telemetry.model import Event, Frame
from groundctl.telemetry.pipeline import Processed


@dataclass
class _Batch:
    frames: list[tuple[Any, ...]] = field(default_factory=list)
    samples: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    alerts: list[tuple[Any, ...]] = field(default_factory=list)
    actions: list[tuple[Any, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames) + len(self.samples) + len(self.events) + len(self.alerts)


class ArchiveWriter:
    """Writes processed telemetry to the archive at `path` in batches.

    Use `put`/`flush`/`close` from synchronous code, or `aput`/`aflush`/`aclose` from
    the event loop (they never block it). Raises ArchiveError (from the next call) when the
    writer could not write a batch.
    """

    def __init__(
        self, path: str | Path, *, batch_rows: int = 20_000, max_delay_s: float = 0.25
    ) -> None:
        self.path = Path(path)
        self.batch_rows = batch_rows
        self.max_delay_s = max_delay_s
        with open_archive(self.path) as archive:  # creates and migrates
            row = archive.conn.execute("SELECT max(id) FROM frames").fetchone()
            self._next_frame = int(row[0] or 0) + 1
            row = archive.conn.execute("SELECT max(id) FROM events").fetchone()
            self._next_event = int(row[0] or 0) + 1
            row = archive.conn.execute("SELECT max(id) FROM alerts").fetchone()
            self.next_alert_id = int(row[0] or 0) + 1
        self._batch = _Batch()
        self._batch_started = time.monotonic()
        self._error: str | None = None
        self._sent = 0  # batches handed to the writer
        self._acked = 0  # batches it has committed (or failed)
        self.committed_frames = 0
        context = multiprocessing.get_context("spawn")
        child_batches, self._batches = context.Pipe(duplex=False)  # (reader, writer)
        self._acks, child_acks = context.Pipe(duplex=False)
        self._lock = threading.Lock()  # one hand-off at a time (put and aput may mix)
        self._process = context.Process(
            target=_write_forever,
            args=(str(self.path), child_batches, child_acks),
            name="groundctl-archive-writer",
            daemon=True,
        )
        self._process.start()
        child_batches.close()
        child_acks.close()

    # --- the caller's side --------------------------------------------------------------
    def add(self, processed: Processed) -> int:
        """Add one processed frame to the current batch; return its frame id.

        Does not block; `put` (or `put_pending`) passes full batches on.
        """
        frame = processed.frame
        frame_id = self._next_frame
        self._next_frame += 1
        batch = self._batch
        batch.frames.append(
            (
                frame_id,
                frame.time_s,
                frame.node,
                frame.link,
                frame.direction,
                len(frame.raw),
                frame.raw,
                processed.packet,
                processed.packet_id,
                processed.sequence_count,
                processed.status,
                processed.error,
            )
        )
        if processed.samples:
            batch.samples.extend(
                (s.time_s, s.node, s.parameter, s.raw, s.value, s.state, frame_id)
                for s in processed.samples
            )
        self._add_events(processed.events, frame_id)
        self._add_alerts(processed.alerts)
        return frame_id

    def add_frame(self, frame: Frame, status: str = "ok", error: str = "") -> int:
        """Archive a frame that did not go through the processor (e.g. an uplink)."""
        return self.add(Processed(frame, status, error))

    def add_events(self, events: Iterable[Event]) -> None:
        self._add_events(events, None)

    def add_alerts(self, changes: Iterable[AlertChange]) -> None:
        self._add_alerts(changes)

    def _add_events(self, events: Iterable[Event], frame_id: int | None) -> None:
        for e in events:
            self._batch.events.append(
                (
                    self._next_event,
                    e.time_s,
                    e.node,
                    e.source,
                    e.kind,
                    e.severity,
                    e.event_id,
                    e.text,
                    frame_id,
                )
            )
            self._next_event += 1

    def _add_alerts(self, changes: Iterable[AlertChange]) -> None:
        for change in changes:
            a = change.alert
            value = a.value if isinstance(a.value, int | float | str | bytes) else str(a.value)
            self._batch.alerts.append(
                (
                    a.id,
                    a.node,
                    a.parameter,
                    a.severity,
                    a.raised_s,
                    a.cleared_s,
                    value,
                    a.count,
                    a.acked_by,
                    a.acked_s,
                    a.ack_comment,
                    a.shelved_until_s,
                )
            )
            who = a.acked_by if change.action == "acknowledged" else None
            comment = a.ack_comment if change.action == "acknowledged" else ""
            self._batch.actions.append(
                (a.id, change.time_s, change.action, a.severity, who, comment)
            )

    def due(self) -> bool:
        """True when the current batch should be handed to the writer thread."""
        return len(self._batch) >= self.batch_rows or (
            len(self._batch) > 0 and time.monotonic() - self._batch_started >= self.max_delay_s
        )

    def put(self, processed: Processed) -> int:
        """`add`, then hand the batch on if due (waits while the writer is behind)."""
        frame_id = self.add(processed)
        if self.due():
            self._hand_off(wait=False)
        return frame_id

    def put_pending(self) -> None:
        """Hand the current batch on now (waits while the writer is behind)."""
        self._hand_off(wait=False)

    def flush(self) -> None:
        """Hand on the current batch and wait until everything put so far is committed."""
        self._check()
        with self._lock:
            self._send(self._take())
            while self._acked < self._sent:
                self._receive_ack()
        self._check()

    def close(self) -> None:
        """Flush and stop the writer process."""
        if not self._process.is_alive():
            self._check()
            return
        try:
            self.flush()
        finally:
            self._batches.send(None)
            self._process.join(timeout=60)
            self._batches.close()
        self._check()

    async def aput(self, processed: Processed) -> int:
        frame_id = self.add(processed)
        if self.due():
            await asyncio.to_thread(self._hand_off, False)
        return frame_id

    async def aflush(self) -> None:
        await asyncio.to_thread(self.flush)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def _take(self) -> _Batch:
        batch = self._batch
        self._batch = _Batch()
        self._batch_started = time.monotonic()
        return batch

    def _hand_off(self, wait: bool) -> None:
        if wait:
            self.flush()
            return
        with self._lock:
            self._send(self._take())
            # Keep at most two batches in flight: back-pressure when the writer is behind.
            while self._sent - self._acked > 1:
                self._receive_ack()
            while self._acks.poll():
                self._receive_ack()

    def _send(self, batch: _Batch) -> None:
        if not len(batch) and not batch.actions:
            return
        if not self._process.is_alive():
            raise ArchiveError(
                f"the archive writer for {self.path} has stopped",
                hint="see the messages above; the archive keeps what was committed",
            )
        self._batches.send((batch.frames, batch.samples, batch.events, batch.alerts, batch.actions))
        self._sent += 1

    def _receive_ack(self) -> None:
        try:
            frames, error = self._acks.recv()
        except EOFError:
            self._error = self._error or "the writer process ended unexpectedly"
            self._acked = self._sent
            return
        self._acked += 1
        self.committed_frames += frames
        if error and self._error is None:
            self._error = error

    def _check(self) -> None:
        if self._error is not None:
            raise ArchiveError(
                f"writing to archive {self.path} failed: {self._error}",
                hint="check free disk space and that no other program holds the file",
            )


_INSERTS = (
    "INSERT INTO frames (id, time, node, link, direction, length, raw, packet, packet_id, "
    "sequence, status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO samples (time, node, parameter, raw, value, state, frame_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO events (id, time, node, source, kind, severity, event_id, text, frame_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO alerts (id, node, parameter, severity, raised, cleared, value, count, "
    "acked_by, acked, ack_comment, shelved_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET severity = excluded.severity, raised = excluded.raised, "
    "cleared = excluded.cleared, value = excluded.value, count = excluded.count, "
    "acked_by = excluded.acked_by, acked = excluded.acked, "
    "ack_comment = excluded.ack_comment, shelved_until = excluded.shelved_until",
    "INSERT INTO alert_actions (alert_id, time, action, severity, who, comment) "
    "VALUES (?, ?, ?, ?, ?, ?)",
)


def _write_forever(path: str, batches: Any, acks: Any) -> None:
    """The writer process: commit each batch received; exit at None or when the pipe ends.

    Each batch is acknowledged with (frames committed, error text or "").
    """
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-65536")
    failed = ""
    try:
        while True:
            try:
                batch = batches.recv()
            except (EOFError, OSError):
                break  # the caller is gone: everything received is committed
            if batch is None:
                break
            if failed:
                _ack(acks, 0, failed)
                continue
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for sql, rows in zip(_INSERTS, batch, strict=True):
                        if rows:
                            conn.executemany(sql, rows)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                _ack(acks, len(batch[0]), "")
            except sqlite3.Error as error:
                failed = str(error)
                _ack(acks, 0, failed)
    finally:
        conn.close()


def _ack(acks: Any, frames: int, error: str) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):  # the caller is gone: still committed
        acks.send((frames, error))
