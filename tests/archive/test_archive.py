"""The archive on real SQLite files: migrations, WAL, TLE sets, prediction runs, passes."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlite_utils

from groundctl.archive import open_archive
from groundctl.archive import schema as archive_schema
from groundctl.archive.schema import MIGRATIONS, Migration
from groundctl.errors import ArchiveError
from groundctl.orbits.model import Pass, Prediction, Station
from groundctl.orbits.tle import parse_tle_text

FIXTURE = Path(__file__).parent.parent / "fixtures" / "starlink-2026-05-13.tle"
TABLES = {
    "schema_migrations",
    "tle_sets",
    "tles",
    "prediction_runs",
    "passes",
    "frames",
    "samples",
    "events",
    "alerts",
    "alert_actions",
    "audit",
    "commands",
    "command_stages",
    "command_counters",
    "procedure_runs",
    "procedure_log",
    "flown_passes",
    "station_log",
}
T0 = datetime(2026, 5, 14, 3, 4, 5, 123456, tzinfo=UTC)


def fixture_text(lines: int = 30) -> str:
    with FIXTURE.open(encoding="utf-8") as f:
        return "".join(next(f) for _ in range(lines))


def make_pass(i: int, *, node: str = "ODC-01", station: str = "Svalbard") -> Pass:
    aos = T0 + timedelta(seconds=97 * i, microseconds=i % 1_000_000)
    return Pass(
        node=node,
        norad_id=44714 + i % 7,
        station=station,
        aos=aos,
        tca=aos + timedelta(seconds=241, microseconds=654321),
        los=aos + timedelta(seconds=483, microseconds=1),
        max_elevation_deg=12.345678901234567 + i % 70,
        aos_azimuth_deg=359.99999999,
        tca_azimuth_deg=0.1 + 0.2,
        los_azimuth_deg=180.0,
        tca_range_km=1234.5678,
        sunlit=i % 2 == 0,
        priority=i % 5 - 2,
        scheduled=(None, True, False)[i % 3],
        antenna=1 if i % 3 == 1 else None,
        reason="antennas busy" if i % 3 == 2 else "",
    )


STATIONS = (
    Station("Svalbard", 78.23, 15.39, 450.0, 5.0, ((0.0, 5.0), (180.0, 10.0)), 2, 30.0),
    Station("Punta Arenas", -53.16, -70.91),
)


def test_new_archive_is_created_migrated_and_versioned(tmp_path):
    path = tmp_path / "sub" / "dir" / "ops.db"
    with open_archive(path) as archive:
        assert archive.schema_version == MIGRATIONS[-1].version == len(MIGRATIONS)
        assert set(archive.stats()) == TABLES
        assert archive.stats()["schema_migrations"] == len(MIGRATIONS)
    assert path.is_file()
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT version, name, applied_at FROM schema_migrations").fetchall()
    assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]
    assert rows[0][2].endswith("Z")
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {
        "idx_tles_norad_id_epoch",
        "idx_tle_sets_source_fetched_at",
        "idx_passes_run_id_aos",
        "idx_passes_node_aos",
        "idx_passes_station_aos",
    } <= indexes
    conn.close()


def test_reopening_does_not_rerun_migrations(tmp_path):
    path = tmp_path / "ops.db"
    with open_archive(path) as archive:
        set_id = archive.store_tle_set("a.tle", "q", "3le", "raw", [], T0)
        first = archive.conn.execute("SELECT * FROM schema_migrations").fetchall()
    with open_archive(path) as archive:
        assert archive.conn.execute("SELECT * FROM schema_migrations").fetchall() == first
        assert archive.migrate() == []
        latest = archive.latest_tle_set("a.tle")
        assert latest is not None and latest.id == set_id


def test_wal_mode_synchronous_and_foreign_keys_are_on(tmp_path):
    path = tmp_path / "ops.db"
    with open_archive(path) as archive:
        assert archive.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert archive.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert archive.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(ArchiveError, match="FOREIGN KEY"), archive.transaction() as conn:
            conn.execute(
                "INSERT INTO tles (set_id, norad_id, name, epoch, line1, line2) "
                "VALUES (999, 1, 'x', 'e', 'l1', 'l2')"
            )
    # WAL is a property of the file: a plain connection sees it too.
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_a_file_that_is_not_sqlite_is_an_archive_error(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 50)
    with pytest.raises(ArchiveError) as caught:
        open_archive(path)
    assert str(path) in caught.value.message
    assert "not a SQLite database" in caught.value.message
    assert caught.value.hint
    assert path.read_text().startswith("these are my notes")  # left untouched


def test_a_folder_is_an_archive_error(tmp_path):
    with pytest.raises(ArchiveError, match="folder"):
        open_archive(tmp_path)


def test_a_newer_schema_version_is_an_archive_error(tmp_path):
    path = tmp_path / "ops.db"
    open_archive(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', '2030-01-01Z')")
    conn.commit()
    conn.close()
    with pytest.raises(ArchiveError) as caught:
        open_archive(path)
    assert str(path) in caught.value.message
    assert "99" in caught.value.message
    assert "upgrade groundctl" in caught.value.hint


def test_a_failing_migration_is_rolled_back_and_reported(tmp_path, monkeypatch):
    path = tmp_path / "ops.db"
    open_archive(path).close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x INTEGER)")
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    latest = MIGRATIONS[-1].version
    monkeypatch.setattr(
        "groundctl.archive.store.MIGRATIONS",
        (*MIGRATIONS, Migration(latest + 1, "broken", broken)),
    )
    with pytest.raises(ArchiveError, match=rf"migration {latest + 1} \(broken\) failed"):
        open_archive(path)
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half_done" not in tables
    assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == latest
    conn.close()
    assert archive_schema.MIGRATIONS == MIGRATIONS  # the real list is untouched


def test_tle_set_round_trip(tmp_path):
    text = fixture_text(30)
    tles, problems = parse_tle_text(text, source="https://example.test/gp.php?GROUP=x")
    assert len(tles) == 10 and not problems
    fetched = datetime(2026, 5, 13, 12, 0, 0, 1, tzinfo=UTC)
    with open_archive(tmp_path / "ops.db") as archive:
        set_id = archive.store_tle_set(tles[0].source, "group:x", "tle", text, tles, fetched)
        stored = archive.latest_tle_set(tles[0].source)
        assert stored is not None
        assert stored.id == set_id
        assert (stored.source, stored.query, stored.fmt) == (tles[0].source, "group:x", "tle")
        assert stored.fetched_at == fetched and stored.fetched_at.tzinfo is not None
        assert stored.raw == text
        assert stored.count == 10
        assert stored.tles == tuple(tles)  # names, lines, epochs, source and line numbers
        assert archive.latest_tle_set("https://example.test/other") is None
        summary = archive.latest_tle_set(tles[0].source, with_tles=False)
        assert summary is not None and summary.tles == () and summary.count == 10
        [listed] = archive.tle_sets()
        assert listed.id == set_id and listed.tles == () and listed.count == 10
    conn = sqlite3.connect(tmp_path / "ops.db")
    epoch, fetched_text = conn.execute(
        "SELECT tles.epoch, tle_sets.fetched_at FROM tles JOIN tle_sets ON tles.set_id = "
        "tle_sets.id ORDER BY tles.id LIMIT 1"
    ).fetchone()
    assert fetched_text == "2026-05-13T12:00:00.000001Z"
    assert epoch == tles[0].epoch.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    conn.close()


def test_duplicate_set_is_not_stored_twice_but_its_fetch_time_moves_on(tmp_path):
    text = fixture_text(9)
    tles, _ = parse_tle_text(text, source="s")
    with open_archive(tmp_path / "ops.db") as archive:
        first = archive.store_tle_set("s", "q", "tle", text, tles, T0)
        again = archive.store_tle_set("s", "q", "tle", text, tles, T0 + timedelta(hours=3))
        assert again == first
        assert archive.stats()["tle_sets"] == 1
        assert archive.stats()["tles"] == 3
        stored = archive.latest_tle_set("s")
        assert stored is not None and stored.fetched_at == T0 + timedelta(hours=3)
        # Same text from another source, or new text from the same source: new sets.
        other = archive.store_tle_set("t", "q", "tle", text, tles, T0)
        changed = archive.store_tle_set("s", "q", "tle", text + "\n", tles, T0 + timedelta(hours=4))
        assert len({first, other, changed}) == 3
        # Back to the old text: it is no longer the newest set of "s", so it is stored.
        back = archive.store_tle_set("s", "q", "tle", text, tles, T0 + timedelta(hours=5))
        assert back not in {first, changed}
        assert [s.id for s in archive.tle_sets()] == [back, changed, first, other]


def test_naive_times_are_refused_and_other_zones_stored_as_utc(tmp_path):
    with open_archive(tmp_path / "ops.db") as archive:
        with pytest.raises(ValueError, match="timezone-aware"):
            archive.store_tle_set("s", "q", "tle", "raw", [], datetime(2026, 5, 14))
        naive = dataclasses.replace(make_pass(1), tca=datetime(2026, 5, 14, 3, 8))
        with pytest.raises(ValueError, match="timezone-aware"):
            archive.store_prediction(Prediction(passes=(naive,)), STATIONS, {}, "")
        assert archive.stats()["prediction_runs"] == 0
        cest = timezone(timedelta(hours=2))
        local = dataclasses.replace(make_pass(1), aos=datetime(2026, 5, 14, 5, 4, 5, 7, cest))
        run_id = archive.store_prediction(Prediction(passes=(local,)), STATIONS, {}, "")
        [back] = archive.passes(run_id)
        assert back.aos == local.aos and back.aos.utcoffset() == timedelta(0)
        row = archive.conn.execute("SELECT aos FROM passes").fetchone()
        assert row[0] == "2026-05-14T03:04:05.000007Z"


def test_prediction_with_passes_round_trips_exactly(tmp_path):
    passes = tuple(
        make_pass(i, node=f"ODC-{i % 4:02d}", station=STATIONS[i % 2].name) for i in range(40)
    )
    prediction = Prediction(passes=passes, start=T0, end=T0 + timedelta(hours=24))
    with open_archive(tmp_path / "ops.db") as archive:
        assert archive.passes() == []
        run_id = archive.store_prediction(prediction, STATIONS, {"hours": 24}, "ops.toml")
        assert archive.passes(run_id) == sorted(passes, key=lambda p: p.aos)
        assert archive.passes() == archive.passes(run_id)  # the latest run
        assert archive.passes(run_id, node="ODC-01") == [p for p in passes if p.node == "ODC-01"]
        only = archive.passes(station="Punta Arenas", node="ODC-01")
        assert only == [p for p in passes if p.station == "Punta Arenas" and p.node == "ODC-01"]
        assert archive.passes(run_id + 1) == []
        got = archive.passes(run_id)[5]
        assert got.aos.tzinfo is not None and got.aos.utcoffset() == timedelta(0)
        assert got.aos.microsecond == passes[5].aos.microsecond
        assert {type(p.scheduled) for p in archive.passes()} == {type(None), bool}
        second = archive.store_prediction(
            Prediction(passes=passes[:3]), STATIONS[:1], {"hours": 1}, "ops.toml"
        )
        assert archive.passes() == list(passes[:3])
        assert len(archive.passes(run_id)) == 40
    conn = sqlite3.connect(tmp_path / "ops.db")
    conn.row_factory = sqlite3.Row
    run = conn.execute("SELECT * FROM prediction_runs WHERE id = ?", (run_id,)).fetchone()
    assert run["start"] == "2026-05-14T03:04:05.123456Z"
    assert run["end"] == "2026-05-15T03:04:05.123456Z"
    assert run["pass_count"] == 40 and run["config"] == "ops.toml"
    assert '"horizon_mask": [[0.0, 5.0], [180.0, 10.0]]' in run["stations"]
    assert run["parameters"] == '{"hours": 24}'
    # Without start/end the window comes from the passes.
    run2 = conn.execute('SELECT start, "end" FROM prediction_runs WHERE id = ?', (second,))
    assert tuple(run2.fetchone()) == (
        passes[0].aos.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        max(p.los for p in passes[:3]).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )
    row = conn.execute("SELECT * FROM passes WHERE run_id = ? ORDER BY aos LIMIT 1", (run_id,))
    first = row.fetchone()
    assert first["aos"] == "2026-05-14T03:04:05.123456Z"
    assert first["duration_s"] == pytest.approx(passes[0].duration_s)
    conn.close()


def test_archive_opens_with_sqlite3_and_sqlite_utils(tmp_path):
    path = tmp_path / "ops.db"
    text = fixture_text(6)
    tles, _ = parse_tle_text(text, source="f.tle")
    with open_archive(path) as archive:
        archive.store_tle_set("f.tle", "fleet", "3le", text, tles, T0)
        archive.store_prediction(Prediction(passes=(make_pass(1),)), STATIONS, {}, "")
    conn = sqlite3.connect(path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names >= TABLES
    assert conn.execute("SELECT count(*) FROM tles").fetchone()[0] == 2
    conn.close()
    db = sqlite_utils.Database(path)
    assert set(db.table_names()) >= TABLES
    assert db["passes"].count == 1
    assert {c.name for c in db["passes"].columns} >= {"aos", "tca", "los", "max_elevation_deg"}
    assert [fk.other_table for fk in db["tles"].foreign_keys] == ["tle_sets"]
    [row] = db["passes"].rows
    assert row["node"] == "ODC-01" and row["los"].endswith("Z")
    db.close()


def test_stats_count_rows_per_table(tmp_path):
    with open_archive(tmp_path / "ops.db") as archive:
        archive.store_prediction(
            Prediction(passes=tuple(make_pass(i) for i in range(7))), STATIONS, {}, ""
        )
        assert archive.stats() == {
            "schema_migrations": len(MIGRATIONS),
            "frames": 0,
            "samples": 0,
            "events": 0,
            "alerts": 0,
            "alert_actions": 0,
            "tle_sets": 0,
            "tles": 0,
            "prediction_runs": 1,
            "passes": 7,
            "audit": 0,
            "commands": 0,
            "command_stages": 0,
            "command_counters": 0,
            "procedure_runs": 0,
            "procedure_log": 0,
            "flown_passes": 0,
            "station_log": 0,
        }


def test_two_hundred_thousand_passes_are_stored(tmp_path):
    template = make_pass(0)
    passes = tuple(
        dataclasses.replace(
            template,
            node=f"ODC-{i % 1000:04d}",
            station=("Svalbard", "Punta Arenas", "Awarua")[i % 3],
            aos=template.aos + timedelta(seconds=i),
            tca=template.tca + timedelta(seconds=i),
            los=template.los + timedelta(seconds=i),
        )
        for i in range(200_000)
    )
    with open_archive(tmp_path / "ops.db") as archive:
        run_id = archive.store_prediction(Prediction(passes=passes), STATIONS, {}, "")
        assert archive.stats()["passes"] == 200_000
        node_passes = archive.passes(run_id, node="ODC-0042")
        assert node_passes == [p for p in passes if p.node == "ODC-0042"]
        assert len(node_passes) == 200
