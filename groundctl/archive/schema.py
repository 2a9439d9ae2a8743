"""The archive's schema as an ordered list of migrations.

Each migration runs once, in version order, inside its own transaction (see
`Archive.migrate`), and is recorded in `schema_migrations(version, name, applied_at)`.
Never edit a migration that has been released: add a new one at the end of `MIGRATIONS`.

Times are TEXT in ISO 8601 UTC with microseconds and a `Z` (`2026-05-14T03:04:05.123456Z`)
so that the `sqlite3` shell, sqlite-utils and Datasette show them as they are, and so that
they sort chronologically as strings.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema change; `apply` gets the connection inside an open transaction."""

    version: int
    name: str
    apply: Callable[[sqlite3.Connection], None]


def _statements(*sql: str) -> Callable[[sqlite3.Connection], None]:
    # One execute() per statement: executescript() would COMMIT the open transaction.
    def apply(conn: sqlite3.Connection) -> None:
        for statement in sql:
            conn.execute(statement)

    return apply


_V1 = _statements(
    """CREATE TABLE tle_sets (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,       -- file path or URL
        query TEXT,
        format TEXT NOT NULL,
        fetched_at TEXT NOT NULL,   -- ISO 8601 UTC, Z
        sha256 TEXT NOT NULL,
        raw TEXT,
        count INTEGER NOT NULL
    )""",
    """CREATE TABLE tles (
        id INTEGER PRIMARY KEY,
        set_id INTEGER NOT NULL REFERENCES tle_sets(id),
        norad_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        epoch TEXT NOT NULL,
        line1 TEXT NOT NULL,
        line2 TEXT NOT NULL,
        source_line INTEGER
    )""",
    """CREATE TABLE prediction_runs (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        start TEXT,
        "end" TEXT,
        config TEXT,
        stations TEXT NOT NULL,     -- JSON
        parameters TEXT NOT NULL,   -- JSON
        pass_count INTEGER NOT NULL
    )""",
    """CREATE TABLE passes (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES prediction_runs(id),
        node TEXT NOT NULL,
        norad_id INTEGER NOT NULL,
        station TEXT NOT NULL,
        aos TEXT NOT NULL,
        tca TEXT NOT NULL,
        los TEXT NOT NULL,
        max_elevation_deg REAL,
        aos_azimuth_deg REAL,
        tca_azimuth_deg REAL,
        los_azimuth_deg REAL,
        tca_range_km REAL,
        duration_s REAL,
        sunlit INTEGER NOT NULL,
        priority INTEGER,
        scheduled INTEGER,          -- NULL until a contact plan decided
        antenna INTEGER,
        reason TEXT
    )""",
    "CREATE INDEX idx_tles_set_id ON tles(set_id)",
    "CREATE INDEX idx_tles_norad_id_epoch ON tles(norad_id, epoch)",
    "CREATE INDEX idx_tle_sets_source_fetched_at ON tle_sets(source, fetched_at)",
    "CREATE INDEX idx_passes_run_id_aos ON passes(run_id, aos)",
    "CREATE INDEX idx_passes_node_aos ON passes(node, aos)",
    "CREATE INDEX idx_passes_station_aos ON passes(station, aos)",
)

MIGRATIONS: tuple[Migration, ...] = (Migration(1, "tle sets, tles, prediction runs, passes", _V1),)
