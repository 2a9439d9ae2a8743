"""`groundctl db verify` and `groundctl db audit` on real archive files in tmp_path.

Rows are appended with groundctl.archive.audit.append; the plain `sqlite3` module reads
them back (the oracle) and tampers with the file as someone past the triggers would.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundctl.archive import open_archive
from groundctl.archive.audit import append
from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401  (registers subcommands)

T0 = 1779000000.25  # 2026-05-17T06:40:00.250Z


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ops.db"


@pytest.fixture
def run(tmp_path, db_path, monkeypatch):
    """Run the CLI in an empty folder (so the demo config is used) with its own archive,
    on a terminal wide enough for the tables."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GROUNDCTL_CONFIG", raising=False)
    monkeypatch.delenv("GROUNDCTL_ARCHIVE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["--archive", str(db_path), *args], obj={})

    return invoke


def make_trail(path: Path, n: int) -> None:
    with open_archive(path) as archive:
        for i in range(n):
            with archive.transaction() as conn:
                append(
                    conn,
                    time_s=T0 + 60 * i,
                    operator=("alice", "bob")[i % 2],
                    role="operator",
                    action=("command", "confirm", "acknowledged")[i % 3],
                    node=("ODC-07", "ODC-12")[i % 2],
                    command_id=None if i % 3 == 2 else 40 + i,
                    detail={"text": f"NOOP #{i}"},
                )


def oracle(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def tamper(path: Path, *sql: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("DROP TRIGGER audit_no_delete")
        for statement in sql:
            conn.execute(statement)
        conn.execute(
            "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
            "BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END"
        )
        conn.execute(
            "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
            "BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END"
        )


def no_traceback(result) -> None:
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit | type(None)), result.exception


# --- verify -----------------------------------------------------------------------------


def test_verify_an_intact_archive_exits_0_with_its_head(run, db_path):
    make_trail(db_path, 25)
    result = run("db", "verify")
    assert result.exit_code == 0, result.output
    (head,) = oracle(db_path, "SELECT hash FROM audit WHERE id = 25")
    assert "quick_check ok" in result.stdout
    assert "25 rows checked" in result.stdout
    assert f"head row 25, hash {head[0]}" in result.stdout
    assert "audit chain intact" in result.stdout


def test_verify_json_reports_both_checks(run, db_path):
    make_trail(db_path, 4)
    result = run("db", "verify", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (head,) = oracle(db_path, "SELECT hash FROM audit ORDER BY id DESC LIMIT 1")
    assert report["ok"] is True and report["quick_check"] == ["ok"]
    assert report["audit"] == {
        "rows": 4,
        "head_id": 4,
        "head_hash": head[0],
        "first_bad_id": None,
        "problem": "",
        "ok": True,
    }


def test_verify_an_archive_without_audit_rows(run, db_path):
    open_archive(db_path).close()
    result = run("db", "verify")
    assert result.exit_code == 0, result.output
    assert "no audit rows yet" in result.stdout
    assert "broken" not in result.stdout


def test_verify_without_an_archive_is_a_usage_error(run, db_path):
    result = run("db", "verify")
    assert result.exit_code == 2
    assert f"no archive at {db_path}" in result.stderr
    assert not db_path.exists()
    no_traceback(result)


def test_verify_a_changed_row_exits_1_naming_the_row(run, db_path):
    make_trail(db_path, 12)
    tamper(db_path, "UPDATE audit SET operator = 'mallory' WHERE id = 7")
    result = run("db", "verify")
    assert result.exit_code == 1, result.output
    assert "row 7: hash does not match its contents (changed?)" in result.stdout
    assert "intact" not in result.stdout
    no_traceback(result)
    json_result = run("db", "verify", "--json")
    assert json_result.exit_code == 1
    report = json.loads(json_result.stdout)
    assert report["ok"] is False and report["audit"]["first_bad_id"] == 7


def test_verify_a_removed_row_exits_1(run, db_path):
    make_trail(db_path, 12)
    tamper(db_path, "DELETE FROM audit WHERE id = 7")
    result = run("db", "verify")
    assert result.exit_code == 1, result.output
    assert "rows jump from 6 to 8 (row 7 removed)" in result.stdout


def test_verify_dropped_triggers_exit_1(run, db_path):
    make_trail(db_path, 3)
    with sqlite3.connect(db_path) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("DROP TRIGGER audit_no_delete")
    result = run("db", "verify")
    assert result.exit_code == 1, result.output
    assert "the append-only triggers are missing (dropped?)" in result.stdout


def test_verify_a_damaged_file_exits_1_with_quick_checks_problems(run, db_path):
    make_trail(db_path, 1500)
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    with db_path.open("r+b") as f:
        f.seek(page_size * (pages // 2) + 64)
        f.write(b"\xff" * 512)
    result = run("db", "verify")
    assert result.exit_code == 1, result.output
    assert "quick_check found problems" in result.stdout
    no_traceback(result)


# --- audit ------------------------------------------------------------------------------


def test_audit_lists_newest_first(run, db_path):
    make_trail(db_path, 5)
    result = run("db", "audit")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "NOOP #" in line]
    assert [line.split()[0] for line in lines] == ["5", "4", "3", "2", "1"]
    first = lines[-1].split()
    assert first[1:7] == [
        "2026-05-17T06:40:00.250Z",
        "alice",
        "operator",
        "command",
        "ODC-07",
        "40",
    ]
    assert '{"text":"NOOP #0"}' in lines[-1]
    third = lines[2].split()  # row 3: no command id
    assert third[4:6] == ["acknowledged", "ODC-07"] and third[6].startswith("{")


def test_audit_filters_by_node_and_limits(run, db_path):
    make_trail(db_path, 9)
    result = run("db", "audit", "--node", "ODC-12", "--limit", "2")
    assert result.exit_code == 0, result.output
    ids = [line.split()[0] for line in result.stdout.splitlines() if "NOOP #" in line]
    assert ids == ["8", "6"]
    assert "older rows after these 2" in result.stdout
    assert "node ODC-12" in result.stdout


def test_audit_json_lists_every_row_with_its_hashes(run, db_path):
    make_trail(db_path, 150)  # more than the table's default of 100
    result = run("db", "audit", "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    raw = oracle(db_path, "SELECT id, time, detail, prev_hash, hash FROM audit ORDER BY id DESC")
    assert [r["id"] for r in records] == [r[0] for r in raw] == list(range(150, 0, -1))
    last = records[-1]
    assert last == {
        "id": 1,
        "time": "2026-05-17T06:40:00.250Z",
        "operator": "alice",
        "role": "operator",
        "action": "command",
        "node": "ODC-07",
        "command_id": 40,
        "detail": {"text": "NOOP #0"},
        "prev_hash": "0" * 64,
        "hash": raw[-1][4],
    }
    for record, (_, time_s, detail, prev_hash, digest) in zip(records, raw, strict=True):
        expected = datetime.fromtimestamp(time_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        assert record["time"] == expected + "Z"
        assert record["detail"] == json.loads(detail)
        assert (record["prev_hash"], record["hash"]) == (prev_hash, digest)
    limited = json.loads(run("db", "audit", "--json", "--node", "ODC-07", "--limit", "3").stdout)
    assert [r["id"] for r in limited] == [149, 147, 145]


def test_audit_of_an_empty_trail(run, db_path):
    open_archive(db_path).close()
    result = run("db", "audit")
    assert result.exit_code == 0, result.output
    assert "no audit rows" in result.stdout
    assert json.loads(run("db", "audit", "--json").stdout) == []
    node = run("db", "audit", "--node", "ODC-07")
    assert "no audit rows for node ODC-07" in node.stdout
