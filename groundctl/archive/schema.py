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

# The audit trail: append-only (triggers refuse UPDATE and DELETE) and hash-chained: each
# row's `hash` is SHA-256 over the previous row's hash and this row's fields
# (groundctl.archive.audit), so `groundctl db verify` finds a row changed, removed or
# inserted by someone who dropped the triggers.
_V3 = _statements(
    """CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,         -- Unix seconds UTC (the engine's clock)
        operator TEXT NOT NULL,     -- login name (a procedure's: who ran it)
        role TEXT NOT NULL,
        action TEXT NOT NULL,       -- command, confirm, denied, edited, cancelled, released,
                                    -- sent, accepted, completed, failed, timeout,
                                    -- acknowledged, shelved, procedure-start, procedure-end
        node TEXT NOT NULL DEFAULT '',
        command_id INTEGER,
        detail TEXT NOT NULL,       -- JSON object
        prev_hash TEXT NOT NULL,    -- hex; 64 zeros for the first row
        hash TEXT NOT NULL          -- hex SHA-256 of prev_hash and this row
    )""",
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END""",
    """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END""",
    f"CREATE VIEW audit_utc AS SELECT {_UTC.format('time')} AS time_utc, * FROM audit",
)

# Commands: one row per command with its current status; command_stages holds every stage
# with its time. The store-and-forward queue is the commands whose status is 'queued'.
_V4 = _statements(
    """CREATE TABLE commands (
        id INTEGER PRIMARY KEY,
        created REAL NOT NULL,      -- when it was issued
        operator TEXT NOT NULL,
        role TEXT NOT NULL,
        node TEXT NOT NULL,
        mission TEXT NOT NULL,
        command TEXT NOT NULL,      -- the command name
        arguments TEXT NOT NULL,    -- JSON object, as given (validated)
        text TEXT NOT NULL,         -- the command line, e.g. ODC-07 SET_POWER_MODE mode=ECO
        hazardous INTEGER NOT NULL,
        confirmed INTEGER NOT NULL, -- 1 when a hazardous command was confirmed
        source TEXT NOT NULL,       -- cli, console, procedure:<run id>
        release TEXT NOT NULL,      -- now (at the next contact, or at once), time (time tag)
        release_at REAL,            -- the time tag, or the expected AOS when known
        status TEXT NOT NULL,       -- queued, released, sent, accepted, completed, failed,
                                    -- timeout, cancelled
        detail TEXT NOT NULL DEFAULT '',
        link TEXT NOT NULL DEFAULT '',
        counter INTEGER,            -- the authentication counter, when signed
        raw BLOB,                   -- the bytes sent (signed), once sent
        updated REAL NOT NULL
    )""",
    "CREATE INDEX commands_status_node ON commands(status, node, id)",
    """CREATE TABLE command_stages (
        id INTEGER PRIMARY KEY,
        command_id INTEGER NOT NULL REFERENCES commands(id),
        time REAL NOT NULL,
        stage TEXT NOT NULL,        -- queued, released, sent, accepted, completed, failed,
                                    -- timeout, cancelled, edited
        detail TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX command_stages_command ON command_stages(command_id, id)",
    # The last authentication counter used per node: counters only ever increase.
    """CREATE TABLE command_counters (
        node TEXT PRIMARY KEY,
        counter INTEGER NOT NULL
    )""",
    """CREATE TABLE procedure_runs (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,       -- of the procedure file as run
        arguments TEXT NOT NULL,    -- JSON object
        operator TEXT NOT NULL,
        dry_run INTEGER NOT NULL,
        started REAL NOT NULL,
        ended REAL,
        status TEXT NOT NULL,       -- running, passed, failed, error, interrupted
        message TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE procedure_log (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES procedure_runs(id),
        time REAL NOT NULL,
        kind TEXT NOT NULL,         -- step, log, check, command, alert, error
        text TEXT NOT NULL,
        ok INTEGER                  -- for checks and commands: 1 passed, 0 failed
    )""",
    "CREATE INDEX procedure_log_run ON procedure_log(run_id, id)",
    f"CREATE VIEW commands_utc AS SELECT {_UTC.format('created')} AS created_utc, "
    f"{_UTC.format('release_at')} AS release_at_utc, * FROM commands",
    f"CREATE VIEW command_stages_utc AS SELECT {_UTC.format('time')} AS time_utc, * "
    "FROM command_stages",
)

# Flown passes: one row per pass as it was flown (AOS to LOS of a node at a station, or,
# on a link without a contact plan, a span of reception), with its summary figures. The
# frames of a pass (down and up), its events, the alerts raised in it and the commands
# sent in it carry its id in `pass_id`; its samples are its frames' samples.
_V5 = _statements(
    """CREATE TABLE flown_passes (
        id INTEGER PRIMARY KEY,
        node TEXT NOT NULL,
        station TEXT NOT NULL,      -- the contact plan's station; '' for a link without one
        link TEXT NOT NULL,
        aos REAL NOT NULL,          -- AOS (or the first frame), Unix seconds
        los REAL,                   -- LOS (or the last frame); NULL while flying
        status TEXT NOT NULL,       -- flying, flown, interrupted (groundctl stopped in it)
        planned_aos REAL,           -- the contact plan's AOS, LOS and maximum elevation
        planned_los REAL,
        max_elevation_deg REAL,
        frames_down INTEGER NOT NULL,
        bytes_down INTEGER NOT NULL,
        frames_up INTEGER NOT NULL,
        bytes_up INTEGER NOT NULL,
        malformed INTEGER NOT NULL, -- downlink frames that could not be decoded
        unknown INTEGER NOT NULL,   -- packets the mission database does not define
        gaps INTEGER NOT NULL,      -- sequence-count discontinuities
        missing INTEGER NOT NULL,   -- packets missing by their sequence counts
        longest_silence_s REAL NOT NULL,  -- longest time between two downlink frames
        samples INTEGER NOT NULL,
        events INTEGER NOT NULL,    -- node events and ground events of the pass
        alerts_raised INTEGER NOT NULL,
        commands_sent INTEGER NOT NULL,
        commands_verified INTEGER NOT NULL,  -- completed
        commands_failed INTEGER NOT NULL     -- failed or timed out
    )""",
    "CREATE INDEX flown_passes_node_aos ON flown_passes(node, aos)",
    "CREATE INDEX flown_passes_aos ON flown_passes(aos)",
    "ALTER TABLE frames ADD COLUMN pass_id INTEGER",
    "ALTER TABLE events ADD COLUMN pass_id INTEGER",
    "ALTER TABLE alerts ADD COLUMN pass_id INTEGER",
    "ALTER TABLE commands ADD COLUMN pass_id INTEGER",
    # Partial indexes: frames outside any pass cost nothing more to insert.
    "CREATE INDEX frames_pass ON frames(pass_id) WHERE pass_id IS NOT NULL",
    "CREATE INDEX events_pass ON events(pass_id) WHERE pass_id IS NOT NULL",
    "CREATE INDEX alerts_pass ON alerts(pass_id) WHERE pass_id IS NOT NULL",
    "CREATE INDEX commands_pass ON commands(pass_id) WHERE pass_id IS NOT NULL",
    f"CREATE VIEW flown_passes_utc AS SELECT {_UTC.format('aos')} AS aos_utc, "
    f"{_UTC.format('los')} AS los_utc, * FROM flown_passes",
)

# Ground-station control: every tracking update of a station's rotator and radio (what
# was commanded, what was read back, the node's true direction, the pointing error).
_V6 = _statements(
    """CREATE TABLE station_log (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,         -- the engine's clock, Unix seconds
        station TEXT NOT NULL,
        node TEXT NOT NULL,         -- '' when idle
        phase TEXT NOT NULL,        -- idle, prepositioning, tracking, parking
        node_az REAL,               -- where the node is (degrees)
        node_el REAL,
        target_az REAL,             -- the position commanded at this update (rotator axes)
        target_el REAL,
        actual_az REAL,             -- the position read back (rotator axes)
        actual_el REAL,
        error_deg REAL,             -- angle between the antenna and the node
        downlink_hz INTEGER,        -- the frequencies set at this update
        uplink_hz INTEGER,
        detail TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX station_log_station_time ON station_log(station, time)",
    f"CREATE VIEW station_log_utc AS SELECT {_UTC.format('time')} AS time_utc, * FROM station_log",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tle sets, tles, prediction runs, passes", _V1),
    Migration(2, "telemetry: frames, samples, events, alerts", _V2),
    Migration(3, "audit trail, append-only and hash-chained", _V3),
    Migration(4, "commands, stages, queue, counters; procedure runs and log", _V4),
    Migration(5, "flown passes, linked to their frames, events, alerts and commands", _V5),
    Migration(6, "station log: rotator and radio at every tracking update", _V6),
)
