"""Batched, crash-safe archiving of telemetry, on a thread of its own.

The engine hands every processed frame to `put`; rows gather in the current batch, and a
batch goes to the writer thread when it holds `batch_rows` rows or is `max_delay_s` old.
The thread writes each batch in one transaction. Only one batch is in flight while the
next fills: when the thread falls behind, `put` waits (back-pressure) instead of letting
memory grow, and a crash (even `kill -9`) loses at most the batch that was being filled
and the one being written. `flush` and `close` return once everything put is committed.

SQLite calls release the GIL, so decoding in the caller and writing in the thread use
both cores.
"""

from __future__ import annotations

import asyncio
import queue
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
    done: threading.Event | None = None  # set when committed (for flush)

    def __len__(self) -> int:
        return len(self.frames) + len(self.samples) + len(self.events) + len(self.alerts)


_STOP = object()


class ArchiveWriter:
    """Writes processed telemetry to the archive at `path` in batches.

    Use `put`/`flush`/`close` from synchronous code, or `aput`/`aflush`/`aclose` from
    the event loop (they never block it). Raises ArchiveError (from the next call) when the
    thread could not write a batch.
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
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self.committed_frames = 0
        self._thread = threading.Thread(target=self._run, name="archive-writer", daemon=True)
        self._thread.start()

    # --- the caller's side --------------------------------------------------------------
    def add(self, processed: Processed) -> int:
        """Add one processed frame to the current batch; return its frame id.

        Does not block; call `maybe_hand_off` (or use `put`) to pass full batches on.
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
        """`add`, then hand the batch on if due (waits while the thread is busy)."""
        frame_id = self.add(processed)
        if self.due():
            self._hand_off(wait=False)
        return frame_id

    def put_pending(self) -> None:
        """Hand the current batch on now (waits while the thread is busy)."""
        self._hand_off(wait=False)

    def flush(self) -> None:
        """Hand on the current batch and wait until everything put so far is committed."""
        self._check()
        self._hand_off(wait=True)
        self._check()

    def close(self) -> None:
        """Flush and stop the thread."""
        if not self._thread.is_alive():
            self._check()
            return
        try:
            self.flush()
        finally:
            self._queue.put(_STOP)
            self._thread.join()
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

    def _hand_off(self, wait: bool) -> None:
        batch = self._batch
        self._batch = _Batch()
        self._batch_started = time.monotonic()
        if wait:
            batch.done = threading.Event()
        if len(batch) or wait:
            self._queue.put(batch)  # blocks while the previous batch is being written
        if batch.done is not None:
            batch.done.wait()

    def _check(self) -> None:
        if self._error is not None:
            raise ArchiveError(
                f"writing to archive {self.path} failed: {self._error}",
                hint="check free disk space and that no other program holds the file",
            )

    # --- the writer thread --------------------------------------------------------------
    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")
        try:
            while True:
                batch = self._queue.get()
                if batch is _STOP:
                    break
                if self._error is None and len(batch):
                    try:
                        self._write(conn, batch)
                    except sqlite3.Error as error:
                        self._error = error
                if batch.done is not None:
                    batch.done.set()
        finally:
            conn.close()

    def _write(self, conn: sqlite3.Connection, batch: _Batch) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO frames (id, time, node, link, direction, length, raw, packet, "
                "packet_id, sequence, status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                batch.frames,
            )
            conn.executemany(
                "INSERT INTO samples (time, node, parameter, raw, value, state, frame_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                batch.samples,
            )
            conn.executemany(
                "INSERT INTO events (id, time, node, source, kind, severity, event_id, text, "
                "frame_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                batch.events,
            )
            conn.executemany(
                "INSERT INTO alerts (id, node, parameter, severity, raised, cleared, value, "
                "count, acked_by, acked, ack_comment, shelved_until) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "severity = excluded.severity, raised = excluded.raised, "
                "cleared = excluded.cleared, value = excluded.value, count = excluded.count, "
                "acked_by = excluded.acked_by, acked = excluded.acked, "
                "ack_comment = excluded.ack_comment, shelved_until = excluded.shelved_until",
                batch.alerts,
            )
            conn.executemany(
                "INSERT INTO alert_actions (alert_id, time, action, severity, who, comment) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                batch.actions,
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self.committed_frames += len(batch.frames)
