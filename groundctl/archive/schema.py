"""The archive's schema as an ordered list of migrations.

Each migration runs once, in version order, inside its own transaction (see
`Archive.migrate`), and is recorded in `schema_migrations(version, name, applied_at)`.
Never edit a migration that has been released: add a new one at the end of `MIGRATIONS`.

Planning tables (TLE sets, passes) keep times as TEXT in ISO 8601 UTC with microseconds
and a `Z` (`2026-05-14T03:04:05.123456Z`), so the `sqlite3` shell, sqlite-utils and
Datasette show them as they are. The telemetry tables (frames, samples, events, alerts),
written hundreds of thousands of rows a second, keep `time` as REAL Unix seconds; each has
a `*_utc` view with the same rows and an ISO 8601 `time_utc` column for people.
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

_UTC = "strftime('%Y-%m-%dT%H:%M:%fZ', {0}, 'unixepoch')"

_V2 = _statements(
    """CREATE TABLE frames (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,         -- receive (or send) time, Unix seconds UTC
        node TEXT NOT NULL,
        link TEXT NOT NULL,
        direction TEXT NOT NULL,    -- down or up
        length INTEGER NOT NULL,
        raw BLOB NOT NULL,          -- every byte, decoded or not
        packet TEXT,                -- packet name when decoded
        packet_id INTEGER,          -- APID or message id, when there was a header
        sequence INTEGER,
        status TEXT NOT NULL,       -- ok, malformed, unknown, no-mission
        error TEXT NOT NULL DEFAULT '',
        packet_time REAL            -- the decoded packet's time when it has one, else `time`
    )""",
    "CREATE INDEX frames_time ON frames(time)",
    "CREATE INDEX frames_node_time ON frames(node, time)",
    # Samples are found through their frame: parameter_packets says which packets carry a
    # parameter, this index gives that packet's frames in packet-time order, and the
    # samples' primary key (frame_id, parameter) gives the sample of each frame.
    "CREATE INDEX frames_node_packet_time ON frames(node, packet, packet_time)",
    # Keyed by frame: rows arrive in frame order, so every insert appends to the b-tree
    # (no per-sample index with random insert positions). The key columns come first, in
    # key order, as SQLite stores them: SQLite 3.40's integrity_check misreads the NOT
    # NULL columns of a WITHOUT ROWID table otherwise. samples_utc shows the usual order.
    """CREATE TABLE samples (
        frame_id INTEGER NOT NULL,
        parameter TEXT NOT NULL,    -- PACKET.FIELD or a derived parameter
        time REAL NOT NULL,         -- packet time when it has one, else receive time
        node TEXT NOT NULL,
        raw,
        value,
        state TEXT NOT NULL,        -- nominal, yellow, red, disabled, or '' (no limits)
        PRIMARY KEY (frame_id, parameter)
    ) WITHOUT ROWID""",
    # Which packet(s) carry a parameter on a node; a derived parameter is stored with the
    # frame whose packet triggered it, so it maps to those packets.
    """CREATE TABLE parameter_packets (
        node TEXT NOT NULL,
        parameter TEXT NOT NULL,
        packet TEXT NOT NULL,
        PRIMARY KEY (node, parameter, packet)
    ) WITHOUT ROWID""",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        node TEXT NOT NULL,
        source TEXT NOT NULL,       -- the node app, or 'ground'
        kind TEXT NOT NULL,
        severity TEXT NOT NULL,
        event_id INTEGER,
        text TEXT NOT NULL,
        frame_id INTEGER
    )""",
    "CREATE INDEX events_time ON events(time)",
    """CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,     -- the alert id operators see
        node TEXT NOT NULL,
        parameter TEXT NOT NULL,
        severity TEXT NOT NULL,
        raised REAL NOT NULL,
        cleared REAL,
        value,
        count INTEGER NOT NULL,
        acked_by TEXT,
        acked REAL,
        ack_comment TEXT NOT NULL DEFAULT '',
        shelved_until REAL
    )""",
    """CREATE TABLE alert_actions (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL,
        time REAL NOT NULL,
        action TEXT NOT NULL,       -- raised, escalated, cleared, acknowledged, shelved
        severity TEXT NOT NULL,
        who TEXT,
        comment TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX alert_actions_alert ON alert_actions(alert_id, time)",
    f"CREATE VIEW frames_utc AS SELECT {_UTC.format('time')} AS time_utc, * FROM frames",
    f"CREATE VIEW samples_utc AS SELECT {_UTC.format('time')} AS time_utc, "
    "time, node, parameter, raw, value, state, frame_id FROM samples",
    f"CREATE VIEW events_utc AS SELECT {_UTC.format('time')} AS time_utc, * FROM events",
    f"CREATE VIEW alerts_utc AS SELECT {_UTC.format('raised')} AS raised_utc, "
    f"{_UTC.format('cleared')} AS cleared_utc, * FROM alerts",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tle sets, tles, prediction runs, passes", _V1),
    Migration(2, "telemetry: frames, samples, events, alerts", _V2),
)
