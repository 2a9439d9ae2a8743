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
import itertools
import marshal
import multiprocessing
import operator
import pickle
import signal
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
from groundctl.telemetry.flown import COLUMNS as FLOWN_COLUMNS
from groundctl.telemetry.model import Event, Frame
from groundctl.telemetry.pipeline import Processed

_PARAMETER = operator.itemgetter(2)  # Sample.parameter


@dataclass
class _Batch:
    frames: list[tuple[Any, ...]] = field(default_factory=list)
    samples: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    alerts: list[tuple[Any, ...]] = field(default_factory=list)
    actions: list[tuple[Any, ...]] = field(default_factory=list)
    packets: list[tuple[str, str, str]] = field(default_factory=list)  # parameter_packets
    passes: list[tuple[Any, ...]] = field(default_factory=list)  # flown_passes rows
    station: list[tuple[Any, ...]] = field(default_factory=list)  # station_log rows

    def __len__(self) -> int:
        return (
            len(self.frames)
            + len(self.samples)
            + len(self.events)
            + len(self.alerts)
            + len(self.passes)
            + len(self.station)
        )


class ArchiveWriter:
    """Writes processed telemetry to the archive at `path` in batches.

    Use `put`/`flush`/`close` from synchronous code, or `aput`/`aflush`/`aclose` from
    the event loop (they never block it). The writer process is started with the `spawn`
    method (safe beside threads), so a script that creates a writer at its top level needs
    the usual `if __name__ == "__main__":` guard. Raises ArchiveError (from the next call) when the
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
            row = archive.conn.execute("SELECT max(id) FROM flown_passes").fetchone()
            self.next_pass_id = int(row[0] or 0) + 1
        self._batch = _Batch()
        self._batch_started = time.monotonic()
        # Parameters already sent for parameter_packets, per (node, packet): each mapping
        # goes to the writer once per ArchiveWriter (INSERT OR IGNORE there).
        self._packet_parameters: dict[tuple[str, str], set[str]] = {}
        self._error: str | None = None
        self._sent = 0  # batches handed to the writer
        self._acked = 0  # batches it has committed (or failed)
        self.committed_frames = 0
        context = multiprocessing.get_context("spawn")
        child_batches, self._batches = context.Pipe(duplex=False)  # (reader, writer)
        self._acks, child_acks = context.Pipe(duplex=False)
        self._lock = threading.Lock()  # one hand-off at a time (put and aput may mix)
        self._alock: asyncio.Lock | None = None
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
    def add(self, processed: Processed, pass_id: int | None = None) -> int:
        """Add one processed frame to the current batch; return its frame id. `pass_id`:
        the flown pass it belongs to (its events and the alerts it raises too).

        Does not block; `put` (or `put_pending`) passes full batches on.
        """
        frame = processed.frame
        frame_id = self._next_frame
        self._next_frame += 1
        batch = self._batch
        samples = processed.samples
        packet = processed.packet
        batch.frames.append(
            (
                frame_id,
                frame.time_s,
                frame.node,
                frame.link,
                frame.direction,
                len(frame.raw),
                frame.raw,
                packet,
                processed.packet_id,
                processed.sequence_count,
                processed.status,
                processed.error,
                samples[0].time_s if samples else frame.time_s,  # packet_time
                pass_id,
            )
        )
        if samples:
            # Sample is a NamedTuple (time_s, node, parameter, raw, value, state).
            tail = (frame_id,)
            batch.samples.extend([s + tail for s in samples])
            if packet is not None:
                key = (frame.node, packet)
                known = self._packet_parameters.get(key)
                if known is None:
                    known = self._packet_parameters[key] = set()
                if not known.issuperset(map(_PARAMETER, samples)):
                    for s in samples:
                        if s.parameter not in known:
                            known.add(s.parameter)
                            batch.packets.append((frame.node, s.parameter, packet))
        if processed.events:
            self._add_events(processed.events, frame_id, pass_id)
        if processed.alerts:
            self._add_alerts(processed.alerts, pass_id)
        return frame_id

    def add_frame(
        self, frame: Frame, status: str = "ok", error: str = "", pass_id: int | None = None
    ) -> int:
        """Archive a frame that did not go through the processor (e.g. an uplink)."""
        return self.add(Processed(frame, status, error), pass_id)

    def add_events(self, events: Iterable[Event], pass_id: int | None = None) -> None:
        self._add_events(events, None, pass_id)

    def add_alerts(self, changes: Iterable[AlertChange], pass_id: int | None = None) -> None:
        """Alert changes; `pass_id` is kept for the alerts they raise."""
        self._add_alerts(changes, pass_id)

    def add_station(self, row: tuple[Any, ...]) -> None:
        """A station_log row (its columns after id, in order)."""
        self._batch.station.append(row)

    def add_passes(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Flown-pass rows (`groundctl.telemetry.flown.FlownPass.row()`), new or updated."""
        self._batch.passes.extend(rows)

    def _add_events(
        self, events: Iterable[Event], frame_id: int | None, pass_id: int | None
    ) -> None:
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
                    pass_id,
                )
            )
            self._next_event += 1

    def _add_alerts(self, changes: Iterable[AlertChange], pass_id: int | None) -> None:
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
                    pass_id,
                )
            )
            who = a.acked_by if change.action == "acknowledged" else None
            comment = a.ack_comment if change.action == "acknowledged" else ""
            self._batch.actions.append(
                (a.id, change.time_s, change.action, a.severity, who, comment)
            )

    def due(self) -> bool:
        """True when the current batch should be handed to the writer thread."""
        rows = len(self._batch)
        return rows >= self.batch_rows or (
            rows > 0 and time.monotonic() - self._batch_started >= self.max_delay_s
        )

    def put(self, processed: Processed, pass_id: int | None = None) -> int:
        """`add`, then hand the batch on if due (waits while the writer is behind)."""
        frame_id = self.add(processed, pass_id)
        if self.due():
            self._hand_off(wait=False)
        return frame_id

    def put_pending(self) -> None:
        """Hand the current batch on now (waits while the writer is behind)."""
        self._hand_off(wait=False)

    def flush(self) -> None:
        """Hand on the current batch and wait until everything put so far is committed."""
        self._flush_batch(self._take())

    def _flush_batch(self, batch: _Batch) -> None:
        self._check()
        with self._lock:
            self._send(batch)
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
            with contextlib.suppress(OSError):  # a dead writer cannot hear the end
                self._batches.send_bytes(b"")
            self._process.join(timeout=60)
            self._batches.close()
        self._check()

    # The async side takes each batch on the event loop's thread (where rows are added)
    # and only sends it from a worker thread; one hand-off at a time, in order, however
    # many tasks feed the writer.
    async def aput(self, processed: Processed, pass_id: int | None = None) -> int:
        frame_id = self.add(processed, pass_id)
        if self.due():
            await self.apending()
        return frame_id

    async def apending(self) -> None:
        """Hand the current batch on now (waits while the writer is behind)."""
        async with self._async_lock():
            batch = self._take()
            await asyncio.to_thread(self._hand_off_batch, batch)

    async def aflush(self) -> None:
        async with self._async_lock():
            batch = self._take()
            await asyncio.to_thread(self._flush_batch, batch)

    def _async_lock(self) -> asyncio.Lock:
        if self._alock is None:
            self._alock = asyncio.Lock()
        return self._alock

    async def aclose(self) -> None:
        async with self._async_lock():
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
        self._hand_off_batch(self._take())

    def _hand_off_batch(self, batch: _Batch) -> None:
        with self._lock:
            self._send(batch)
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
        payload = _encode(
            (
                batch.frames,
                batch.samples,
                batch.events,
                batch.alerts,
                batch.actions,
                batch.packets,
                batch.passes,
                batch.station,
            )
        )
        try:
            self._batches.send_bytes(payload)
        except OSError:  # BrokenPipeError: the writer process has died
            self._error = self._error or "the writer process ended unexpectedly"
            raise ArchiveError(
                f"writing to archive {self.path} failed: {self._error}",
                hint="the archive keeps what was committed before",
            ) from None
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


WAL_AUTOCHECKPOINT_PAGES = 16_384

_INSERT_SAMPLES = (
    "INSERT INTO samples (time, node, parameter, raw, value, state, frame_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# Samples go in 256 rows to a statement: SQLite then runs one statement per 256 rows
# instead of one per row, which inserts them about 1.5 times as fast.
_SAMPLES_PER_STATEMENT = 256
_INSERT_SAMPLES_MANY = (
    "INSERT INTO samples (time, node, parameter, raw, value, state, frame_id) VALUES "
    + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * _SAMPLES_PER_STATEMENT)
)

_PASS_COLUMNS = ", ".join(FLOWN_COLUMNS)
_UPSERT_PASS = (
    f"INSERT INTO flown_passes ({_PASS_COLUMNS}) VALUES ({', '.join('?' * len(FLOWN_COLUMNS))}) "
    "ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in FLOWN_COLUMNS if c != "id")
)

_INSERTS = (
    "INSERT INTO frames (id, time, node, link, direction, length, raw, packet, packet_id, "
    "sequence, status, error, packet_time, pass_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    _INSERT_SAMPLES,
    "INSERT INTO events (id, time, node, source, kind, severity, event_id, text, frame_id, "
    "pass_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    # an alert keeps the pass it was raised in
    "INSERT INTO alerts (id, node, parameter, severity, raised, cleared, value, count, "
    "acked_by, acked, ack_comment, shelved_until, pass_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET severity = excluded.severity, raised = excluded.raised, "
    "cleared = excluded.cleared, value = excluded.value, count = excluded.count, "
    "acked_by = excluded.acked_by, acked = excluded.acked, "
    "ack_comment = excluded.ack_comment, shelved_until = excluded.shelved_until",
    "INSERT INTO alert_actions (alert_id, time, action, severity, who, comment) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    "INSERT OR IGNORE INTO parameter_packets (node, parameter, packet) VALUES (?, ?, ?)",
    _UPSERT_PASS,
    "INSERT INTO station_log (time, station, node, phase, node_az, node_el, target_az, "
    "target_el, actual_az, actual_el, error_deg, downlink_hz, uplink_hz, detail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)


def _write_forever(path: str, batches: Any, acks: Any) -> None:
    """The writer process: commit each batch received; exit at None or when the pipe ends.

    Each batch is acknowledged with (frames committed, error text or "").
    """
    # Ctrl-C in a terminal interrupts the whole process group: the writer leaves stopping
    # to its caller, which hands over its last batches first, and ends with the pipe.
    # SIGTERM sent to the whole process group (systemd, `timeout`) likewise: the caller
    # flushes, and the writer commits everything handed over before it ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-65536")
    # Checkpoint the write-ahead log every 16,384 pages (64 MiB) rather than every 1,000:
    # each checkpoint copies every page changed since the last one back into the file,
    # and the frames(node, packet, packet_time) index changes pages all over itself.
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    try:
        while True:
            try:
                data = batches.recv_bytes()
            except (EOFError, OSError):
                break  # the caller is gone: everything received is committed
            if not data:
                break
            batch = _decode(data)
            try:
                _commit(conn, batch)
            except OverflowError:
                # An integer beyond SQLite's 64-bit range (a u64 of 2**63 or more, or a
                # derived value): keep it exactly, as decimal text, and write the batch again.
                _commit(conn, _fit_integers(batch))
            except Exception as error:  # the batch stays unwritten; say so, keep serving
                _ack(acks, 0, f"{type(error).__name__}: {error}")
                continue
            _ack(acks, len(batch[0]), "")
    finally:
        conn.close()


_LOCK_RETRIES = 6


def _commit(conn: sqlite3.Connection, batch: tuple[list[Any], ...]) -> None:
    """Write one batch in one transaction, retrying while another program holds a lock."""
    for attempt in range(_LOCK_RETRIES + 1):
        try:
            conn.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            if attempt == _LOCK_RETRIES:
                raise
            time.sleep(min(0.5 * 2**attempt, 8.0))
    try:
        for sql, rows in zip(_INSERTS, batch, strict=True):
            if sql is _INSERT_SAMPLES:
                _insert_samples(conn, rows)
            elif rows:
                conn.executemany(sql, rows)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


_INT64 = (-(2**63), 2**63 - 1)


def _fit_integers(batch: tuple[list[Any], ...]) -> tuple[list[Any], ...]:
    """The batch with integers outside SQLite's 64-bit range turned into decimal text."""

    def fit(value: Any) -> Any:
        if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
            return str(value)
        return value

    return tuple([tuple(fit(v) for v in row) for row in rows] for rows in batch)


def _insert_samples(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert sample rows in order, `_SAMPLES_PER_STATEMENT` to a statement."""
    whole = len(rows) // _SAMPLES_PER_STATEMENT * _SAMPLES_PER_STATEMENT
    if whole:
        values = list(itertools.chain.from_iterable(rows[:whole]))
        step = 7 * _SAMPLES_PER_STATEMENT
        conn.executemany(
            _INSERT_SAMPLES_MANY, [values[i : i + step] for i in range(0, len(values), step)]
        )
    if whole < len(rows):
        conn.executemany(_INSERT_SAMPLES, rows[whole:])


def _encode(batch: tuple[list[Any], ...]) -> bytes:
    """A batch as bytes for the pipe: marshal, which (un)packs rows of ints, floats, str,
    bytes and None about twice as fast as pickle, or pickle when a value is of another
    type. Both ends run the same interpreter."""
    try:
        return b"M" + marshal.dumps(batch)
    except ValueError:
        return b"P" + pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)


def _decode(data: bytes) -> Any:
    body = memoryview(data)[1:]
    return marshal.loads(body) if data[:1] == b"M" else pickle.loads(body)


def _ack(acks: Any, frames: int, error: str) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):  # the caller is gone: still committed
        acks.send((frames, error))
