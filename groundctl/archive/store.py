"""Opening, migrating, writing and reading the archive.

Every write is one transaction (`BEGIN IMMEDIATE`), so a reader (the `sqlite3` shell,
Datasette, another groundctl) never sees half a TLE set or half a prediction run; WAL mode
lets those readers run while groundctl writes. SQLite failures (locked, disk full, not a
database) become `ArchiveError` naming the file.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import sqlite_utils

from groundctl.archive.audit import COLUMNS as AUDIT_COLUMNS
from groundctl.archive.audit import ChainReport, verify_chain
from groundctl.archive.schema import MIGRATIONS
from groundctl.errors import ArchiveError
from groundctl.orbits.model import TLE, Pass, Prediction, Station
from groundctl.telemetry.alerts import Alert

SQLITE_MAGIC = b"SQLite format 3\x00"
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_text(t: datetime) -> str:
    """A timezone-aware datetime as stored: UTC, ISO 8601 with microseconds and Z.

    Raises ValueError for a naive datetime (it would silently be taken as local time).
    """
    if t.tzinfo is not UTC:  # the fast path (UTC) matters: 600,000 calls per 200,000 passes
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError(f"archive times must be timezone-aware (UTC), got naive {t!r}")
        t = t.astimezone(UTC)
    # isoformat() is ~2x faster than strftime(); cut its "+00:00".
    return t.isoformat(timespec="microseconds")[:-6] + "Z"


def to_texts(times: Sequence[datetime]) -> list[str]:
    """`to_text` of many times at once, vectorised with numpy (3x faster for 600,000).

    Raises ValueError for a naive datetime.
    """
    try:
        micros = np.fromiter(
            ((t - _UNIX_EPOCH) // _MICROSECOND for t in times), dtype=np.int64, count=len(times)
        )
    except TypeError:  # aware minus naive: let to_text name the culprit
        for t in times:
            to_text(t)
        raise
    texts: list[str] = np.datetime_as_string(
        micros.astype("datetime64[us]"), unit="us", timezone="UTC"
    ).tolist()
    return texts


def from_text(text: str) -> datetime:
    """The inverse of `to_text` (also accepts +00:00 and no fraction)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class StoredTLESet:
    """A TLE set as archived.

    `source` is the file path or URL it came from (for CelesTrak, the canonical URL of
    `groundctl.tle_update.source_url`); `fetched_at` (UTC) is the last time this exact
    content was downloaded (a duplicate download moves it forward, see
    `Archive.store_tle_set`); `count` the number of TLEs stored. In the summaries
    `Archive.tle_sets` lists, and from `latest_tle_set(..., with_tles=False)`, `raw` is ""
    and `tles` is () to keep listing cheap.
    """

    id: int
    source: str
    query: str
    fmt: str
    fetched_at: datetime
    sha256: str
    count: int
    raw: str = ""
    tles: tuple[TLE, ...] = ()


def open_archive(path: str | Path) -> Archive:
    """Open the archive at `path`, creating it and applying pending migrations.

    The parent folder is created if needed. The connection uses WAL mode,
    `synchronous=NORMAL` and foreign keys; each pending migration runs in its own
    transaction and is recorded in `schema_migrations`.

    Raises ArchiveError when the file is not a SQLite database, was written by a newer
    groundctl (schema version unknown here), or cannot be opened or migrated.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise ArchiveError(f"archive path {path} is a folder", hint="give a file name")
        if path.exists() and path.stat().st_size > 0:
            with path.open("rb") as f:
                if f.read(16) != SQLITE_MAGIC:
                    raise ArchiveError(
                        f"{path} is not a SQLite database",
                        hint="choose another --archive file; this one was not written by groundctl",
                    )
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    except OSError as error:
        raise ArchiveError(
            f"cannot open archive {path}: {error.strerror or error}",
            hint="check the folder exists and is writable",
        ) from None
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        # Up to 64 MiB of page cache (allocated as used): bulk inserts of passes update
        # three (name, time) indexes in scattered order and thrash the default 2 MiB.
        conn.execute("PRAGMA cache_size=-65536")
        archive = Archive(path, conn)
        archive.migrate()
    except ArchiveError:
        conn.close()
        raise
    except sqlite3.DatabaseError as error:
        conn.close()
        raise ArchiveError(
            f"cannot use archive {path}: {error}",
            hint="if it is not a groundctl archive, choose another --archive file",
        ) from None
    return archive


class Archive:
    """An open archive. Use as a context manager or call `close()`."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self.db = sqlite_utils.Database(conn)

    # --- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed on success, rolled back on any error.

        `BEGIN IMMEDIATE` takes the write lock at once (waiting up to the connection's
        10 s busy timeout), so two writers never deadlock half-way. SQLite errors become
        ArchiveError naming the file; other exceptions propagate after the rollback.
        """
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise self._error("start a write transaction", error) from None
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as error:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise self._error("write", error) from None
            raise

    def _error(self, action: str, error: sqlite3.Error) -> ArchiveError:
        hint = "check the disk has space and the file is writable"
        if "locked" in str(error) or "busy" in str(error):
            hint = "another program holds a write lock on the archive; try again"
        return ArchiveError(f"cannot {action} in archive {self.path}: {error}", hint=hint)

    # --- schema -------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        """The highest migration version applied to this file (0 for none)."""
        row = self.conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def migrate(self) -> list[int]:
        """Apply pending migrations in order, one transaction each; return those applied.

        The version is re-read inside each transaction, so two processes opening a new
        archive at once do not both run a migration. Raises ArchiveError when the file's
        schema is newer than this code knows, or when a migration fails (that migration
        is rolled back; the earlier ones stay).
        """
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        newest = MIGRATIONS[-1].version
        applied = []
        for migration in MIGRATIONS:
            if migration.version <= self._check_version(newest):
                continue
            try:
                with self.transaction() as conn:
                    if migration.version <= self._check_version(newest):
                        continue  # another process applied it meanwhile
                    migration.apply(conn)
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        (migration.version, migration.name, to_text(datetime.now(UTC))),
                    )
            except ArchiveError as error:
                raise ArchiveError(
                    f"{self.path}: migration {migration.version} ({migration.name}) failed: "
                    f"{error.message}",
                    hint="the archive is unchanged by this migration; if the file holds "
                    "tables of another program, use another --archive file",
                ) from None
            applied.append(migration.version)
        return applied

    def _check_version(self, newest: int) -> int:
        current = self.schema_version
        if current > newest:
            raise ArchiveError(
                f"{self.path} has schema version {current}; this groundctl knows up to {newest}",
                hint="upgrade groundctl, or use another --archive file",
            )
        return current

    # --- TLE sets -----------------------------------------------------------------------
    def store_tle_set(
        self,
        source: str,
        query: str,
        fmt: str,
        raw: str,
        tles: Sequence[TLE],
        fetched_at: datetime,
    ) -> int:
        """Archive a TLE set and its TLEs in one transaction; return the set's id.

        `source` is the file path or URL (the key `latest_tle_set` looks up), `query` what
        was asked for (e.g. "group:starlink"), `fmt` the format ("tle", "3le", "json"),
        `raw` the text exactly as received, `tles` the records parsed from it and
        `fetched_at` the (timezone-aware) download time.

        When the newest set of the same source has the same content (sha256 of `raw`),
        nothing new is stored: that set's id is returned and its `fetched_at` moves forward
        to `fetched_at`, so "newest set younger than 2 h" still means "downloaded less
        than 2 h ago" when the server's data has not changed.
        Raises ValueError for a naive `fetched_at`, ArchiveError when SQLite fails.
        """
        digest = hashlib.sha256(raw.encode()).hexdigest()
        fetched = to_text(fetched_at)
        with self.transaction() as conn:
            newest = conn.execute(
                "SELECT id, sha256, fetched_at FROM tle_sets WHERE source = ? "
                "ORDER BY fetched_at DESC, id DESC LIMIT 1",
                (source,),
            ).fetchone()
            if newest is not None and newest[1] == digest:
                if fetched > newest[2]:
                    conn.execute(
                        "UPDATE tle_sets SET fetched_at = ? WHERE id = ?", (fetched, newest[0])
                    )
                return int(newest[0])
            cursor = conn.execute(
                "INSERT INTO tle_sets (source, query, format, fetched_at, sha256, raw, count) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (source, query, fmt, fetched, digest, raw, len(tles)),
            )
            set_id = int(cursor.lastrowid or 0)
            conn.executemany(
                "INSERT INTO tles (set_id, norad_id, name, epoch, line1, line2, source_line) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (set_id, t.norad_id, t.name, to_text(t.epoch), t.line1, t.line2, t.line)
                    for t in tles
                ],
            )
        return set_id

    def latest_tle_set(self, source: str, *, with_tles: bool = True) -> StoredTLESet | None:
        """The newest archived set of `source` (by `fetched_at`); None if there is none.

        The TLEs are rebuilt from the `tles` rows (epoch tz-aware UTC, `source` = the set's
        source, `line` = the line number in the raw text). With `with_tles=False` only the
        summary is read (`raw` "" and `tles` ()), which is cheap for a 10,000-TLE set.
        """
        if not with_tles:
            row = self.conn.execute(
                "SELECT id, source, query, format, fetched_at, sha256, count FROM tle_sets "
                "WHERE source = ? ORDER BY fetched_at DESC, id DESC LIMIT 1",
                (source,),
            ).fetchone()
            return None if row is None else StoredTLESet(*_set_fields(row))
        row = self.conn.execute(
            "SELECT id, source, query, format, fetched_at, sha256, count, raw FROM tle_sets "
            "WHERE source = ? ORDER BY fetched_at DESC, id DESC LIMIT 1",
            (source,),
        ).fetchone()
        if row is None:
            return None
        tles = tuple(
            TLE(
                name=name,
                line1=l1,
                line2=l2,
                norad_id=norad,
                epoch=from_text(epoch),
                source=source,
                line=line,
            )
            for name, l1, l2, norad, epoch, line in self.conn.execute(
                "SELECT name, line1, line2, norad_id, epoch, source_line FROM tles "
                "WHERE set_id = ? ORDER BY id",
                (row[0],),
            )
        )
        return StoredTLESet(*_set_fields(row), raw=row[7], tles=tles)

    def latest_tle_set_for_query(self, query: str) -> StoredTLESet | None:
        """The newest archived set fetched for a GP query (e.g. "group:starlink"), from
        whichever server or mirror it came; None if there is none."""
        source = _latest_source_for_query(self, query)
        return None if source is None else self.latest_tle_set(source)

    def tle_sets(self) -> list[StoredTLESet]:
        """Summaries of every archived set, newest first (without raw text or TLEs)."""
        rows = self.conn.execute(
            "SELECT id, source, query, format, fetched_at, sha256, count FROM tle_sets "
            "ORDER BY fetched_at DESC, id DESC"
        )
        return [StoredTLESet(*_set_fields(row)) for row in rows]

    # --- predictions --------------------------------------------------------------------
    def store_prediction(
        self,
        prediction: Prediction,
        stations: Sequence[Station],
        parameters: Mapping[str, Any],
        config_path: str,
    ) -> int:
        """Archive a prediction run and all its passes (with their plan); return the run id.

        `stations` and `parameters` (e.g. {"hours": 24}) are stored as JSON (values JSON
        cannot hold are stored as their str()); `config_path` names the config used. The
        window is `prediction.start`/`end` (else the first AOS / last LOS, else NULL).
        One transaction with one executemany: 200,000 passes take under 2 s.
        Raises ValueError for naive datetimes, ArchiveError when SQLite fails.
        """
        passes = prediction.passes
        start = prediction.start or (passes[0].aos if passes else None)
        end = prediction.end or (max(p.los for p in passes) if passes else None)
        # Rows are built before the write lock is taken; times formatted in bulk.
        aos = to_texts([p.aos for p in passes])
        tca = to_texts([p.tca for p in passes])
        los = to_texts([p.los for p in passes])
        rows = [
            (
                p.node,
                p.norad_id,
                p.station,
                a,
                t,
                e,
                p.max_elevation_deg,
                p.aos_azimuth_deg,
                p.tca_azimuth_deg,
                p.los_azimuth_deg,
                p.tca_range_km,
                p.duration_s,
                int(p.sunlit),
                p.priority,
                None if p.scheduled is None else int(p.scheduled),
                p.antenna,
                p.reason,
            )
            for p, a, t, e in zip(passes, aos, tca, los, strict=True)
        ]
        with self.transaction() as conn:
            cursor = conn.execute(
                'INSERT INTO prediction_runs (created_at, start, "end", config, stations, '
                "parameters, pass_count) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    to_text(datetime.now(UTC)),
                    None if start is None else to_text(start),
                    None if end is None else to_text(end),
                    config_path,
                    json.dumps([asdict(s) for s in stations]),
                    json.dumps(dict(parameters), default=str),
                    len(prediction.passes),
                ),
            )
            run_id = int(cursor.lastrowid or 0)
            conn.executemany(
                "INSERT INTO passes (run_id, node, norad_id, station, aos, tca, los, "
                "max_elevation_deg, aos_azimuth_deg, tca_azimuth_deg, los_azimuth_deg, "
                "tca_range_km, duration_s, sunlit, priority, scheduled, antenna, reason) "
                f"VALUES ({run_id}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return run_id

    def passes(
        self, run_id: int | None = None, *, node: str | None = None, station: str | None = None
    ) -> list[Pass]:
        """Passes of a prediction run (default: the newest), optionally of one node/station.

        Sorted by AOS; times come back tz-aware UTC with their microseconds; node and
        station names match exactly. Empty when there is no such run (or no run at all).
        """
        if run_id is None:
            row = self.conn.execute("SELECT max(id) FROM prediction_runs").fetchone()
            if row[0] is None:
                return []
            run_id = int(row[0])
        sql = (
            "SELECT node, norad_id, station, aos, tca, los, max_elevation_deg, aos_azimuth_deg, "
            "tca_azimuth_deg, los_azimuth_deg, tca_range_km, sunlit, priority, scheduled, "
            "antenna, reason FROM passes WHERE run_id = ?"
        )
        args: list[Any] = [run_id]
        if node is not None:
            sql += " AND node = ?"
            args.append(node)
        if station is not None:
            sql += " AND station = ?"
            args.append(station)
        result = []
        for r in self.conn.execute(sql + " ORDER BY aos, station, node", args):
            result.append(
                Pass(
                    node=r[0],
                    norad_id=r[1],
                    station=r[2],
                    aos=from_text(r[3]),
                    tca=from_text(r[4]),
                    los=from_text(r[5]),
                    max_elevation_deg=r[6],
                    aos_azimuth_deg=r[7],
                    tca_azimuth_deg=r[8],
                    los_azimuth_deg=r[9],
                    tca_range_km=r[10],
                    sunlit=bool(r[11]),
                    priority=r[12],
                    scheduled=None if r[13] is None else bool(r[13]),
                    antenna=r[14],
                    reason=r[15],
                )
            )
        return result

    # --- audit trail (rows are appended with groundctl.archive.audit.append) -------------
    def audit_rows(self, limit: int | None = None, node: str | None = None) -> list[dict[str, Any]]:
        """Audit rows, newest first: at most `limit` (None: all), of one node when given.

        Each row is a dict of the `audit` columns: id, time (Unix seconds UTC), operator,
        role, action, node, command_id (int or None), detail (the stored JSON text),
        prev_hash and hash.
        """
        sql = f"SELECT {AUDIT_COLUMNS} FROM audit"
        args: list[Any] = []
        if node is not None:
            sql += " WHERE node = ?"
            args.append(node)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        names = AUDIT_COLUMNS.split(", ")
        return [dict(zip(names, row, strict=True)) for row in self.conn.execute(sql, args)]

    def verify_audit(self) -> ChainReport:
        """Check the audit trail's hash chain and triggers (see `audit.verify_chain`)."""
        return verify_chain(self.conn)

    def stats(self) -> dict[str, int]:
        """Row count of every table, by table name (including `schema_migrations`; not
        `parameter_packets`, which is part of how samples are indexed)."""
        return {
            name: self.db[name].count for name in self.db.table_names() if name not in _INDEX_TABLES
        }

    # --- telemetry: statistics, queries, export, retention ------------------------------
    # Samples are stored keyed by frame: their primary key is (frame_id, parameter) and
    # they have no other index, so archiving appends. Reads go parameter_packets (which
    # packets carry a parameter on a node) -> frames(node, packet, packet_time) (that
    # packet's frames in packet-time order) -> samples(frame_id, parameter). A frame's
    # packet_time is the time of every sample it carries.

    def disk_bytes(self) -> tuple[int, int]:
        """Bytes on disk of the database file and of its write-ahead log (0 when none)."""
        sizes = []
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                sizes.append(path.stat().st_size)
            except OSError:
                sizes.append(0)
        return sizes[0], sizes[1]

    def frame_status_counts(self) -> dict[tuple[str, str], int]:
        """Archived frames by (direction, status): ("down", "ok"), ("up", "sent"), ..."""
        rows = self.conn.execute(
            "SELECT direction, status, count(*) FROM frames GROUP BY direction, status "
            "ORDER BY direction, status"
        )
        return {(direction, status): int(n) for direction, status, n in rows}

    def time_span(self, table: str) -> tuple[float, float] | None:
        """First and last `time` (Unix seconds UTC) of "frames", "samples" or "events".

        Frames carry their receive (or send) time; samples and events the packet time when
        the packet has one. None when the table is empty; ValueError for another table.
        """
        if table not in ("frames", "samples", "events"):
            raise ValueError(f"no telemetry table {table!r}")
        if table == "samples":
            return self._sample_time_span()
        # Two subqueries: min() and max() in one SELECT would defeat the index on time.
        row = self.conn.execute(
            f"SELECT (SELECT min(time) FROM {table}), (SELECT max(time) FROM {table})"
        ).fetchone()
        return None if row[0] is None else (float(row[0]), float(row[1]))

    def _sample_time_span(self) -> tuple[float, float] | None:
        # Per packet that carries samples: its first and last frame that has samples, by
        # packet time (two seeks on frames(node, packet, packet_time)).
        first: float | None = None
        last: float | None = None
        for node, packet in self.conn.execute(_SAMPLE_PACKETS_SQL).fetchall():
            low = self.conn.execute(_PACKET_SAMPLE_TIME_SQL.format("ASC"), (node, packet))
            row = low.fetchone()
            if row is None:
                continue
            high = self.conn.execute(_PACKET_SAMPLE_TIME_SQL.format("DESC"), (node, packet))
            top = high.fetchone()
            first = row[0] if first is None else min(first, row[0])
            last = top[0] if last is None else max(last, top[0])
        return None if first is None or last is None else (float(first), float(last))

    def node_counts(self) -> dict[str, dict[str, int]]:
        """Per node, sorted by name: counts of "downlink" and "uplink" frames, "samples"
        and "events"."""
        counts: dict[str, dict[str, int]] = {}

        def add(node: str, key: str, n: int) -> None:
            entry = counts.setdefault(node, dict.fromkeys(_NODE_COUNT_KEYS, 0))
            entry[key] += int(n)

        for node, direction, n in self.conn.execute(
            "SELECT node, direction, count(*) FROM frames GROUP BY node, direction"
        ):
            add(node, "downlink" if direction == "down" else "uplink", n)
        # Through the frames (in node order) and the samples' primary key: no sort.
        for node, n in self.conn.execute(
            "SELECT f.node, count(*) FROM frames AS f CROSS JOIN samples AS s "
            "ON s.frame_id = f.id GROUP BY f.node"
        ):
            add(node, "samples", n)
        for node, n in self.conn.execute("SELECT node, count(*) FROM events GROUP BY node"):
            add(node, "events", n)
        return dict(sorted(counts.items()))

    def sample_nodes(self, parameter: str | None = None) -> list[str]:
        """Nodes that have samples (of `parameter`, when given), sorted."""
        nodes: list[str] = []
        if parameter is None:
            for node, packet in self.conn.execute(_SAMPLE_PACKETS_SQL).fetchall():
                if (not nodes or nodes[-1] != node) and self._packet_has_samples(node, packet):
                    nodes.append(node)
            return nodes
        for node, packet in self._parameter_packets(parameter):
            if (not nodes or nodes[-1] != node) and self._has_samples(node, parameter, packet):
                nodes.append(node)
        return nodes

    def sample_parameters(self, node: str | None = None) -> list[str]:
        """Distinct parameter names with samples (of `node`, when given), sorted."""
        sql = "SELECT node, parameter, packet FROM parameter_packets"
        args: tuple[str, ...] = ()
        if node is not None:
            sql += " WHERE node = ?"
            args = (node,)
        names: set[str] = set()
        for name, parameter, packet in self.conn.execute(sql, args).fetchall():
            if parameter not in names and self._has_samples(name, parameter, packet):
                names.add(parameter)
        return sorted(names)

    def _parameter_packets(self, parameter: str, node: str | None = None) -> list[Any]:
        """(node, packet) pairs that carry `parameter` (on `node`), sorted."""
        if node is not None:
            return self.conn.execute(
                "SELECT node, packet FROM parameter_packets WHERE node = ? AND parameter = ? "
                "ORDER BY node, packet",
                (node, parameter),
            ).fetchall()
        return self.conn.execute(
            "SELECT node, packet FROM parameter_packets WHERE parameter = ? ORDER BY node, packet",
            (parameter,),
        ).fetchall()

    def _has_samples(self, node: str, parameter: str, packet: str) -> bool:
        # Newest frames first: retention removes the oldest samples.
        row = self.conn.execute(
            _SAMPLE_SQL.format(where="", order="DESC", limit=" LIMIT 1"),
            {"node": node, "packet": packet, "parameter": parameter},
        ).fetchone()
        return row is not None

    def _packet_has_samples(self, node: str, packet: str) -> bool:
        row = self.conn.execute(_PACKET_SAMPLE_TIME_SQL.format("DESC"), (node, packet))
        return row.fetchone() is not None

    def query_samples(
        self,
        parameter: str,
        *,
        node: str | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
        limit: int = 0,
    ) -> Iterator[StoredSample]:
        """Samples of `parameter` with start_s <= time < end_s (Unix seconds; None: open),
        of one node or of every node, in time order (then node); at most `limit` (0: all).

        Rows are read lazily, so millions of samples stream in constant memory: one
        indexed read per packet that carries the parameter on a node, merged by time.
        """
        pairs = self._parameter_packets(parameter, node)
        if not pairs:
            return iter(())
        where, args = _time_range(start_s, end_s)
        sql = _SAMPLE_SQL.format(
            where=where, order="ASC", limit=f" LIMIT {int(limit)}" if limit > 0 else ""
        )
        cursors = [
            self.conn.execute(sql, {**args, "node": n, "packet": p, "parameter": parameter})
            for n, p in pairs
        ]
        rows: Iterator[Any] = (
            cursors[0]
            if len(cursors) == 1
            else heapq.merge(*cursors, key=lambda r: (r[0], r[1], r[6]))
        )
        if limit > 0:
            rows = itertools.islice(rows, limit)
        return (StoredSample(*row[:6]) for row in rows)

    def latest_samples(
        self,
        parameter: str,
        *,
        node: str | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
    ) -> list[StoredSample]:
        """The latest sample of `parameter` per node (with start_s <= time < end_s when
        given), sorted by node; one index seek per node and packet carrying it."""
        where, args = _time_range(start_s, end_s)
        sql = _SAMPLE_SQL.format(where=where, order="DESC", limit=" LIMIT 1")
        latest: dict[str, Any] = {}
        for name, packet in self._parameter_packets(parameter, node):
            row = self.conn.execute(
                sql, {**args, "node": name, "packet": packet, "parameter": parameter}
            ).fetchone()
            if row is None:
                continue
            best = latest.get(name)
            if best is None or (row[0], row[6]) > (best[0], best[6]):
                latest[name] = row
        return [StoredSample(*latest[name][:6]) for name in sorted(latest)]

    def downlink_frames(
        self,
        start_s: float,
        end_s: float,
        *,
        node: str | None = None,
        pass_id: int | None = None,
    ) -> Iterator[StoredFrame]:
        """Downlink frames received with start_s <= time < end_s (Unix seconds), of one node
        or all (or of one flown pass), in receive order (time, then id), every status,
        read lazily."""
        sql = (
            "SELECT id, time, node, link, status, raw FROM frames "
            "WHERE direction = 'down' AND time >= ? AND time < ?"
        )
        sql, args = _equal(sql, [start_s, end_s], node=node, pass_id=pass_id)
        cursor = self.conn.execute(sql + " ORDER BY time, id", args)
        return (StoredFrame(*row) for row in cursor)

    # --- flown passes -------------------------------------------------------------------
    def flown_pass(self, pass_id: int) -> dict[str, Any] | None:
        """The `flown_passes` row `pass_id` as a dict, or None."""
        cursor = self.conn.execute("SELECT * FROM flown_passes WHERE id = ?", (pass_id,))
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cursor.description], row, strict=True))

    def flown_passes(
        self,
        *,
        node: str | None = None,
        station: str | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Flown passes (rows as dicts) overlapping start_s..end_s, of a node and a station
        when given, by AOS; with `limit`, the newest `limit` of them (still by AOS)."""
        where = ["1"]
        args: list[Any] = []
        if node is not None:
            where.append("node = ?")
            args.append(node)
        if station is not None:
            where.append("station = ?")
            args.append(station)
        if start_s is not None:
            where.append("(los IS NULL OR los >= ?)")
            args.append(start_s)
        if end_s is not None:
            where.append("aos < ?")
            args.append(end_s)
        sql = f"SELECT * FROM flown_passes WHERE {' AND '.join(where)} ORDER BY aos DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        cursor = self.conn.execute(sql, args)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in reversed(cursor.fetchall())]

    def contact_events(
        self,
        start_s: float,
        end_s: float,
        *,
        node: str | None = None,
        pass_id: int | None = None,
    ) -> list[tuple[float, str, str, str]]:
        """The ground's AOS and LOS events with start_s <= time <= end_s (of a node, or of
        a flown pass), as (time, node, kind, text), in the order they were archived."""
        sql = (
            "SELECT time, node, kind, text FROM events WHERE source = 'ground' "
            "AND kind IN ('aos', 'los') AND time >= ? AND time <= ?"
        )
        sql, args = _equal(sql, [start_s, end_s], node=node, pass_id=pass_id)
        return [
            (float(t), str(n), str(k), str(x))
            for t, n, k, x in self.conn.execute(sql + " ORDER BY time, id", args)
        ]

    def prune_telemetry(self, before_s: float, *, dry_run: bool = False) -> dict[str, int]:
        """Delete telemetry older than `before_s` (Unix seconds) in one transaction; return
        the rows removed per table (with `dry_run`, the rows that would be, deleting none).

        Each table goes by its own `time`: frames by receive time, samples and events by
        packet time when the packet had one (a node with an unset clock has samples in
        1980), alert_actions only of alerts both cleared and acknowledged. Samples are
        stored with their frame, so the samples of a frame removed go with it. Alerts stay
        (their row is the summary). Does not shrink the file: see `vacuum`.
        """
        if dry_run:
            return {
                table: int(
                    self.conn.execute(
                        f"SELECT count(*) FROM {table} WHERE {_PRUNE_WHERE[table]}", (before_s,)
                    ).fetchone()[0]
                )
                for table in _PRUNE_ORDER
            }
        with self.transaction() as conn:
            # Samples first: they are found through the frames about to go.
            removed = {
                table: conn.execute(
                    f"DELETE FROM {table} WHERE {_PRUNE_WHERE[table]}", (before_s,)
                ).rowcount
                for table in _PRUNE_WHERE
            }
        return {table: removed[table] for table in _PRUNE_ORDER}

    def vacuum(self) -> None:
        """Rebuild the file without free pages (SQLite VACUUM), then fold the write-ahead
        log back in, so the size on disk is what remains. Needs exclusive access for the
        duration; raises ArchiveError when another program holds the archive."""
        try:
            self.conn.execute("VACUUM")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as error:
            raise self._error("vacuum", error) from None


def _set_fields(row: Sequence[Any]) -> tuple[int, str, str, str, datetime, str, int]:
    return (int(row[0]), row[1], row[2], row[3], from_text(row[4]), row[5], int(row[6]))


@dataclass(frozen=True)
class StoredSample:
    """One archived sample. `time_s` is Unix seconds UTC: the packet time when the packet
    has one, else the receive time. `raw` and `value` (engineering) are int, float, str or
    bytes as decoded; `state` is the limit state ('' when the parameter has no limits)."""

    time_s: float
    node: str
    parameter: str
    raw: Any
    value: Any
    state: str


@dataclass(frozen=True)
class StoredFrame:
    """One archived frame: `raw` is every byte as received; `time_s` the receive time
    (Unix seconds UTC); `status` ok, malformed, unknown, no-mission (or sent, uplink)."""

    id: int
    time_s: float
    node: str
    link: str
    status: str
    raw: bytes


_NODE_COUNT_KEYS = ("downlink", "uplink", "samples", "events")

# Tables that index other tables, left out of `Archive.stats`.
_INDEX_TABLES = frozenset({"parameter_packets"})

# The (node, packet) pairs that carry samples, in order.
_SAMPLE_PACKETS_SQL = "SELECT DISTINCT node, packet FROM parameter_packets ORDER BY node, packet"

# The packet time of the first (ASC) or last (DESC) frame of a packet that has samples.
_PACKET_SAMPLE_TIME_SQL = (
    "SELECT f.packet_time FROM frames AS f WHERE f.node = ? AND f.packet = ? "
    "AND EXISTS (SELECT 1 FROM samples AS s WHERE s.frame_id = f.id) "
    "ORDER BY f.packet_time {0}, f.id {0} LIMIT 1"
)

# Samples of one parameter carried by one packet of a node, in packet-time order: a range
# of frames(node, packet, packet_time), then a seek on samples(frame_id, parameter) each.
# CROSS JOIN keeps frames the outer loop. The last column (frame id) orders ties.
_SAMPLE_SQL = (
    "SELECT s.time, s.node, s.parameter, s.raw, s.value, s.state, f.id "
    "FROM frames AS f CROSS JOIN samples AS s ON s.frame_id = f.id AND s.parameter = :parameter "
    "WHERE f.node = :node AND f.packet = :packet{where} "
    "ORDER BY f.packet_time {order}, f.id {order}{limit}"
)

# Frames whose samples a prune removes: by packet time (through the packets that carry
# samples), or going themselves by receive time.
_PRUNED_SAMPLE_FRAMES = (
    "SELECT f.id FROM (SELECT DISTINCT node, packet FROM parameter_packets) AS k "
    "CROSS JOIN frames AS f ON f.node = k.node AND f.packet = k.packet AND f.packet_time < ?1 "
    "UNION ALL SELECT id FROM frames WHERE time < ?1"
)

# In deletion order (samples before the frames they are found through).
_PRUNE_WHERE = {
    "samples": f"frame_id IN ({_PRUNED_SAMPLE_FRAMES})",
    "frames": "time < ?1",
    "events": "time < ?1",
    "alert_actions": "time < ?1 AND alert_id IN "
    "(SELECT id FROM alerts WHERE cleared IS NOT NULL AND acked IS NOT NULL)",
}
_PRUNE_ORDER = ("frames", "samples", "events", "alert_actions")


def _time_range(start_s: float | None, end_s: float | None) -> tuple[str, dict[str, float]]:
    """The packet-time condition on frames `f` for start_s <= time < end_s."""
    sql, args = "", {}
    if start_s is not None:
        sql += " AND f.packet_time >= :start"
        args["start"] = start_s
    if end_s is not None:
        sql += " AND f.packet_time < :end"
        args["end"] = end_s
    return sql, args


def _latest_source_for_query(archive: Archive, query: str) -> str | None:
    row = archive.conn.execute(
        "SELECT source FROM tle_sets WHERE query = ? ORDER BY fetched_at DESC, id DESC LIMIT 1",
        (query,),
    ).fetchone()
    return None if row is None else str(row[0])


def open_alerts(archive: Archive) -> list[Alert]:
    """Alerts still active or not yet acknowledged, as an engine restarting needs them."""
    rows = archive.conn.execute(
        "SELECT id, node, parameter, severity, raised, value, count, cleared, acked_by, acked, "
        "ack_comment, shelved_until FROM alerts WHERE cleared IS NULL OR acked IS NULL "
        "ORDER BY id"
    ).fetchall()
    return [
        Alert(
            id=r[0],
            node=r[1],
            parameter=r[2],
            severity=r[3],
            raised_s=r[4],
            value=r[5],
            count=r[6],
            cleared_s=r[7],
            acked_by=r[8],
            acked_s=r[9],
            ack_comment=r[10] or "",
            shelved_until_s=r[11],
        )
        for r in rows
    ]


def _equal(sql: str, args: list[Any], **columns: Any) -> tuple[str, list[Any]]:
    """`sql` (ending in a WHERE clause) with `AND column = ?` for each column given a
    value (None: not filtered), and the arguments to go with it."""
    for column, value in columns.items():
        if value is not None:
            sql += f" AND {column} = ?"
            args.append(value)
    return sql, args
