"""Exports of the archive: one flown pass, or the frames received in a time range, as a
CCSDS packet file, a CSV file of samples, or a self-contained SQLite archive.

What goes in, per format:

- ccsds: the downlink frames byte for byte as received, concatenated, in receive order
  (time, then id); malformed frames and frames of nodes without a mission only on request
  (a malformed frame is not a whole packet).
- csv: the samples of those frames (both directions, every status), in frame order, then
  parameter: time (ISO 8601 UTC with milliseconds), node, parameter, raw, value, state,
  frame_id; written row by row as SQLite reads them.
- sqlite: a groundctl archive (created and migrated by `open_archive`, so every groundctl
  command opens it) holding the flown pass(es), the frames of both directions with their
  samples, the `parameter_packets` rows of those nodes, the events and alerts (with all
  the actions of those alerts), and the commands with all their stages, each row with its
  id, so every reference between them stays true. For a range the passes are those that
  overlap it (and any pass a copied row names), whole: their summary figures count the
  whole pass, not just the part in the range.

  The audit trail is left out: its hash chain starts at the first row of the whole
  trail, each row hashing the one before it, so a copy of some of its rows cannot be
  verified (`groundctl db verify` would report rows removed), and a re-hashed copy would
  no longer carry the original hashes it is meant to prove. The commands and their
  stages (who, what, when, with what result) are in the export; the audit rows stay in
  the source archive, where the chain verifies. TLE sets, predictions, command counters
  and procedure runs are not part of a pass and are left out too.

Every writer writes `OUTPUT.part` and renames it to OUTPUT only when complete, so a
reader never sees half an export. Errors: OSError when the file cannot be written,
ArchiveError when SQLite fails (the partial file is removed in both cases).
"""

from __future__ import annotations

import csv
import math
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from groundctl.archive.store import SQLITE_MAGIC, Archive, StoredFrame, open_archive
from groundctl.errors import ArchiveError

Format = Literal["ccsds", "csv", "sqlite"]
FORMATS: tuple[Format, ...] = ("ccsds", "csv", "sqlite")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
SKIPPED_STATUSES = ("malformed", "no-mission")
"""Frame statuses left out of a CCSDS export unless asked for (not whole packets, or
packets of no known mission)."""

CSV_FIELDS = ("time", "node", "parameter", "raw", "value", "state", "frame_id")

# Tables copied into a SQLite export, in copy order (rows that others are found through
# come first); `SqliteExport.rows` lists them in REPORT_ORDER.
REPORT_ORDER = (
    "flown_passes",
    "frames",
    "samples",
    "parameter_packets",
    "events",
    "alerts",
    "alert_actions",
    "commands",
    "command_stages",
)


def format_for(path: str | Path) -> Format:
    """The export format an output name implies: .csv -> csv, .db/.sqlite/.sqlite3 ->
    sqlite, anything else -> ccsds (case does not matter)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in SQLITE_SUFFIXES:
        return "sqlite"
    return "ccsds"


def partial_path(target: Path) -> Path:
    """Where an export is written until complete: OUTPUT.part next to OUTPUT."""
    return target.with_name(target.name + ".part")


def is_sqlite_file(path: Path) -> bool:
    """True when `path` is a file that starts with the SQLite header (an archive, say)."""
    try:
        with path.open("rb") as f:
            return f.read(16) == SQLITE_MAGIC
    except OSError:
        return False


@dataclass(frozen=True)
class Selection:
    """What to export: the flown pass `pass_id`, or the frames received (or sent) with
    start_s <= time < end_s (Unix seconds UTC), of `node` when given.

    Raises ValueError unless exactly one of the two is given, or for a `node` with a pass
    (a pass is one node's).
    """

    pass_id: int | None = None
    start_s: float | None = None
    end_s: float | None = None
    node: str | None = None

    def __post_init__(self) -> None:
        by_range = self.start_s is not None and self.end_s is not None
        if (self.pass_id is not None) == by_range or (
            not by_range and (self.start_s is not None or self.end_s is not None)
        ):
            raise ValueError("select either a pass id or a start and end time")
        if self.pass_id is not None and self.node is not None:
            raise ValueError("a pass is one node's: select a pass without a node")


@dataclass(frozen=True)
class CcsdsExport:
    """What a CCSDS export wrote: frames and bytes, and the frames left out by status."""

    frames: int
    bytes: int
    skipped: Mapping[str, int]


@dataclass(frozen=True)
class CsvExport:
    """What a CSV export wrote: sample rows (without the header) and the frames they
    came from."""

    samples: int
    frames: int


@dataclass(frozen=True)
class SqliteExport:
    """Rows copied into a SQLite export, per table, in `REPORT_ORDER`."""

    rows: Mapping[str, int]


# --- ccsds ------------------------------------------------------------------------------


def downlink_frames(archive: Archive, selection: Selection) -> Iterator[StoredFrame]:
    """The selected downlink frames in receive order (time, then id), every status, read
    lazily: a pass's through the `frames_pass` index, a range's by receive time."""
    if selection.pass_id is not None:
        return archive.downlink_frames(-math.inf, math.inf, pass_id=selection.pass_id)
    assert selection.start_s is not None and selection.end_s is not None
    return archive.downlink_frames(selection.start_s, selection.end_s, node=selection.node)


def export_ccsds(
    archive: Archive, selection: Selection, target: Path, *, include_all: bool = False
) -> CcsdsExport:
    """Write the selected downlink frames, byte for byte, concatenated, to `target` (via
    `target.part`). Frames of `SKIPPED_STATUSES` are counted in `skipped` and left out
    unless `include_all`. Raises OSError when the file cannot be written."""
    partial = partial_path(target)
    count = size = 0
    skipped: dict[str, int] = {}
    try:
        with partial.open("wb") as out:
            for frame in downlink_frames(archive, selection):
                if frame.status in SKIPPED_STATUSES and not include_all:
                    skipped[frame.status] = skipped.get(frame.status, 0) + 1
                    continue
                out.write(frame.raw)
                count += 1
                size += len(frame.raw)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return CcsdsExport(count, size, dict(sorted(skipped.items())))


# --- csv --------------------------------------------------------------------------------

# Samples through their frames, in frame order (receive time, then id) and parameter
# (the samples' primary key). CROSS JOIN keeps frames the outer loop: a range reads
# frames_time or frames_node_time in order, so nothing is sorted; a pass's frames come
# from frames_pass and are sorted (a pass is minutes long).
_SAMPLES_SQL = (
    "SELECT s.time, s.node, s.parameter, s.raw, s.value, s.state, s.frame_id "
    "FROM frames AS f CROSS JOIN samples AS s ON s.frame_id = f.id WHERE {where} "
    "ORDER BY f.time, f.id, s.parameter"
)


def sample_rows(archive: Archive, selection: Selection) -> Iterator[tuple[Any, ...]]:
    """The samples of the selected frames as (time_s, node, parameter, raw, value, state,
    frame_id) tuples, in frame order then parameter, read lazily."""
    where, args = _frame_where(selection, "f.")
    cursor = archive.conn.execute(_SAMPLES_SQL.format(where=where), args)
    return iter(cursor)


def utc_ms(time_s: float) -> str:
    """Unix seconds as ISO 8601 UTC with milliseconds (truncated) and a Z; a time no
    calendar date can hold is written as the number."""
    try:
        t = datetime.fromtimestamp(time_s, UTC)
    except (OverflowError, OSError, ValueError):
        return repr(time_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _plain(value: Any) -> Any:
    """A decoded value as CSV holds it: bytes as hex, NaN and infinities as text."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def export_csv(archive: Archive, selection: Selection, target: Path) -> CsvExport:
    """Write the samples of the selected frames to `target` (via `target.part`) as CSV
    with a header row (`CSV_FIELDS`), one row per sample, streamed. Raises OSError when
    the file cannot be written, ArchiveError when the archive cannot be read."""
    partial = partial_path(target)
    samples = frames = 0
    last_frame: int | None = None
    try:
        with partial.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(CSV_FIELDS)
            for time_s, node, parameter, raw, value, state, frame_id in sample_rows(
                archive, selection
            ):
                writer.writerow(
                    (utc_ms(time_s), node, parameter, _plain(raw), _plain(value), state, frame_id)
                )
                samples += 1
                if frame_id != last_frame:
                    frames += 1
                    last_frame = frame_id
        partial.replace(target)
    except sqlite3.Error as error:
        partial.unlink(missing_ok=True)
        raise ArchiveError(f"cannot read archive {archive.path}: {error}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return CsvExport(samples, frames)


# --- sqlite -----------------------------------------------------------------------------


def export_sqlite(archive: Archive, selection: Selection, target: Path) -> SqliteExport:
    """Write the selection as a self-contained groundctl archive at `target` (built at
    `target.part`, renamed when complete; an existing `target` is replaced, with its
    `-wal` and `-shm` files). See the module docstring for what is copied; ids are kept.

    The source is read in one read transaction (one snapshot), through a second
    connection that ATTACHes it: a live engine can keep writing to it meanwhile (the
    copy never takes the source's write lock). The new file is left in rollback-journal
    mode, one file with no write-ahead log; groundctl switches it to WAL when it opens it.

    Raises ArchiveError when SQLite fails (reading the source or writing the copy) and
    OSError when the file cannot be created or renamed.
    """
    partial = partial_path(target)
    _remove_database(partial)
    try:
        copy = open_archive(partial)
    except BaseException:
        _remove_database(partial)
        raise
    try:
        try:
            rows = _copy(copy.conn, archive.path.resolve(), selection)
            copy.conn.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error as error:
            raise ArchiveError(
                f"cannot export from {archive.path} to {target}: {error}",
                hint="check the disk has space and the folder is writable",
            ) from None
        finally:
            copy.close()
        for suffix in ("-wal", "-shm"):
            target.with_name(target.name + suffix).unlink(missing_ok=True)
        partial.replace(target)
    except BaseException:
        _remove_database(partial)
        raise
    return SqliteExport(rows)


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _copy(conn: sqlite3.Connection, source: Path, selection: Selection) -> dict[str, int]:
    conn.execute("ATTACH DATABASE ? AS src", (str(source),))
    try:
        # A deferred BEGIN: BEGIN IMMEDIATE would take the write lock of every attached
        # database, the live source's too. The first read fixes the source's snapshot.
        conn.execute("BEGIN")
        try:
            rows = _copy_rows(conn, selection)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("DETACH DATABASE src")
    return {table: rows[table] for table in REPORT_ORDER}


def _copy_rows(conn: sqlite3.Connection, selection: Selection) -> dict[str, int]:
    frames_where, args = _frame_where(selection, "")
    if selection.pass_id is not None:
        by_pass = "pass_id = :pass"
        wheres = {
            "frames": frames_where,
            "events": by_pass,
            "alerts": by_pass,
            "commands": by_pass,
            "flown_passes": "id = :pass",
        }
    else:
        node = " AND node = :node" if selection.node is not None else ""
        in_range = "{0} >= :start AND {0} < :end" + node
        wheres = {
            "frames": frames_where,
            # Node events with the frames that carried them (frames go by receive time,
            # an event by its packet time); ground events by their time.
            "events": "frame_id IN (SELECT id FROM main.frames) "
            f"OR (frame_id IS NULL AND {in_range.format('time')})",
            "alerts": in_range.format("raised"),
            # Commands sent in the range, as a pass holds the commands sent in it.
            "commands": "id IN (SELECT command_id FROM src.command_stages WHERE stage = 'sent' "
            f"AND time >= :start AND time < :end){node}",
            "flown_passes": f"(los IS NULL OR los >= :start) AND aos < :end{node}",
        }
    rows: dict[str, int] = {}

    def copy(table: str, where: str) -> None:
        columns = ", ".join(
            f'"{name}"' for _, name, *_ in conn.execute(f"PRAGMA main.table_info({table})")
        )
        rows[table] = conn.execute(
            f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM src.{table} WHERE {where}",
            args,
        ).rowcount

    copy("frames", wheres["frames"])
    # Through the copied frames, in their id order: each sample appends to the b-tree.
    copy("samples", "frame_id IN (SELECT id FROM main.frames)")
    copy("parameter_packets", "node IN (SELECT DISTINCT node FROM main.frames)")
    copy("events", wheres["events"])
    copy("alerts", wheres["alerts"])
    copy("alert_actions", "alert_id IN (SELECT id FROM main.alerts)")
    copy("commands", wheres["commands"])
    copy("command_stages", "command_id IN (SELECT id FROM main.commands)")
    # The pass(es), and any pass a copied row names, so that every pass_id resolves.
    referenced = " UNION ".join(
        f"SELECT pass_id FROM main.{table} WHERE pass_id IS NOT NULL"
        for table in ("frames", "events", "alerts", "commands")
    )
    copy("flown_passes", f"({wheres['flown_passes']}) OR id IN ({referenced})")
    return rows


def _frame_where(selection: Selection, alias: str) -> tuple[str, dict[str, Any]]:
    """The condition on frames (columns prefixed with `alias`) for a selection, and its
    named arguments."""
    if selection.pass_id is not None:
        return f"{alias}pass_id = :pass", {"pass": selection.pass_id}
    where = f"{alias}time >= :start AND {alias}time < :end"
    args: dict[str, Any] = {"start": selection.start_s, "end": selection.end_s}
    if selection.node is not None:
        where += f" AND {alias}node = :node"
        args["node"] = selection.node
    return where, args
