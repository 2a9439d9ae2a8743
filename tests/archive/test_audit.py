"""The audit trail on real archive files: appends, the hash chain, triggers, tampering.

The oracles are outside groundctl.archive.audit: rows are read back with the plain
`sqlite3` module, hashes recomputed here with hashlib and json following the serialisation
documented in docs/audit.md, and the docs' own checker is run on the files.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from groundctl.archive import Archive, open_archive
from groundctl.archive.audit import GENESIS, append, quick_check, row_hash, verify_chain

DOCS = Path(__file__).parents[2] / "docs" / "audit.md"
T0 = 1779000000.25
ZEROS = "0" * 64
SELECT = "SELECT id, time, operator, role, action, node, command_id, detail, prev_hash, hash"


def expected_hash(prev_hash, id_, time_s, operator, role, action, node, command_id, detail):
    """The documented serialisation, written out independently of the code under test."""
    text = json.dumps(
        [prev_hash, id_, time_s, operator, role, action, node, command_id, detail],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rows_of(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"{SELECT} FROM audit ORDER BY id").fetchall()


def add(archive: Archive, i: int, **fields) -> int:
    """Append the i-th row of a varied trail in its own write transaction."""
    values = {
        "time_s": T0 + 1.5 * i,
        "operator": ("alice", "bob", "procedure:7")[i % 3],
        "role": ("operator", "flight-director")[i % 2],
        "action": ("command", "confirm", "acknowledged", "override")[i % 4],
        "node": ("ODC-07", "ODC-12", "")[i % 3],
        "command_id": None if i % 4 == 2 else 100 + i,
        "detail": {"text": f"ODC-07 SET_POWER_MODE mode=ECO #{i}", "note": "Zürich ✓"},
    }
    values.update(fields)
    with archive.transaction() as conn:
        return append(conn, **values)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


def trail(path: Path, n: int) -> Path:
    with open_archive(path) as archive:
        for i in range(n):
            add(archive, i)
    return path


class Tamper:
    """A plain sqlite3 connection that gets past the triggers, as an attacker would."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.triggers = self.conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit'"
        ).fetchall()
        assert len(self.triggers) == 2

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("DROP TRIGGER audit_no_update")
        self.conn.execute("DROP TRIGGER audit_no_delete")
        return self.conn

    def __exit__(self, *exc: object) -> None:
        # Put the triggers back, so only the chain can tell.
        for (sql,) in self.triggers:
            self.conn.execute(sql)
        self.conn.close()


def verify(path: Path):
    with open_archive(path) as archive:
        return archive.verify_audit()


# --- appending --------------------------------------------------------------------------


def test_the_first_two_rows_hash_as_documented(path):
    with open_archive(path) as archive:
        assert add(archive, 0, detail={"z": [1, 2], "a": "é", "m": None}) == 1
        assert add(archive, 1, command_id=None, node="") == 2
    (r1, r2) = rows_of(path)
    assert GENESIS == ZEROS
    assert r1[:8] == (
        1,
        T0,
        "alice",
        "operator",
        "command",
        "ODC-07",
        100,
        '{"a":"é","m":null,"z":[1,2]}',  # sorted keys, no spaces, non-ASCII kept
    )
    assert r1[8] == ZEROS
    assert r1[9] == expected_hash(ZEROS, *r1[:8])
    assert r2[2:8] == ("bob", "flight-director", "confirm", "", None, r2[7])
    assert r2[8] == r1[9]
    assert r2[9] == expected_hash(r1[9], *r2[:8])
    assert row_hash(r2[8], *r2[:8]) == r2[9]


def test_an_integer_time_hashes_as_the_float_the_real_column_returns(path):
    with open_archive(path) as archive:
        add(archive, 0, time_s=1779000000)
    (row,) = rows_of(path)
    assert row[1] == 1779000000.0 and isinstance(row[1], float)
    assert row[9] == expected_hash(ZEROS, *row[:8])
    assert '1779000000.0,"alice"' in json.dumps(list(row[:3]), separators=(",", ":"))


def test_append_needs_a_transaction_and_a_finite_time_and_json_detail(path):
    with open_archive(path) as archive:
        with pytest.raises(RuntimeError, match="BEGIN IMMEDIATE"):
            append(archive.conn, time_s=T0, operator="alice", role="operator", action="x")
        for bad in (math.nan, math.inf):
            with pytest.raises(ValueError, match="finite"), archive.transaction() as conn:
                append(conn, time_s=bad, operator="alice", role="operator", action="x")
        with pytest.raises(ValueError), archive.transaction() as conn:
            append(conn, time_s=T0, operator="a", role="r", action="x", detail={"v": math.nan})
        with pytest.raises(TypeError), archive.transaction() as conn:
            append(conn, time_s=T0, operator="a", role="r", action="x", detail={"k": b"\x01"})
    assert rows_of(path) == []


def test_a_row_commits_or_rolls_back_with_the_callers_transaction(path):
    with open_archive(path) as archive:
        with pytest.raises(KeyError), archive.transaction() as conn:
            append(conn, time_s=T0, operator="alice", role="operator", action="command")
            raise KeyError("the command it records failed")
        assert rows_of(path) == []
        with archive.transaction() as conn:
            first = append(conn, time_s=T0, operator="alice", role="operator", action="command")
            second = append(conn, time_s=T0, operator="alice", role="operator", action="confirm")
    assert (first, second) == (1, 2)
    assert [r[0] for r in rows_of(path)] == [1, 2]
    assert verify(path).ok


def test_update_and_delete_are_refused_by_the_triggers(path):
    trail(path, 3)
    before = rows_of(path)
    with sqlite3.connect(path) as conn:
        for sql in (
            "UPDATE audit SET operator = 'mallory' WHERE id = 2",
            "UPDATE audit SET hash = hash",
            "DELETE FROM audit WHERE id = 2",
            "DELETE FROM audit",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="the audit table is append-only"):
                conn.execute(sql)
    assert rows_of(path) == before


REPLACE_ROW_2 = (
    "INSERT OR REPLACE INTO audit VALUES (2, 1.0, 'mallory', 'operator', 'command', '', "
    f"NULL, '{{}}', '{ZEROS}', '{ZEROS}')"
)


def test_replace_is_refused_on_groundctls_connections(path):
    trail(path, 3)
    before = rows_of(path)
    # sqlite-utils turns recursive triggers on, so REPLACE fires the DELETE trigger.
    with (
        open_archive(path) as archive,
        pytest.raises(sqlite3.IntegrityError, match="the audit table is append-only"),
    ):
        archive.conn.execute(REPLACE_ROW_2)
    assert rows_of(path) == before


def test_replace_from_a_plain_connection_passes_the_triggers_but_not_verify(path):
    # SQLite fires no DELETE trigger for the row REPLACE removes unless recursive
    # triggers are on, and they are off by default: only the chain catches it.
    trail(path, 3)
    with sqlite3.connect(path) as conn:
        conn.execute(REPLACE_ROW_2)
    assert [r[2] for r in rows_of(path)] == ["alice", "mallory", "procedure:7"]
    report = verify(path)
    assert report.first_bad_id == 2
    assert report.problem.startswith("row 2: prev_hash does not match row 1's hash")


def test_audit_rows_lists_newest_first_by_node_and_limit(path):
    trail(path, 10)
    with open_archive(path) as archive:
        everything = archive.audit_rows()
        assert [r["id"] for r in everything] == list(range(10, 0, -1))
        assert [r["id"] for r in archive.audit_rows(limit=3)] == [10, 9, 8]
        odc12 = archive.audit_rows(node="ODC-12")
        assert [r["id"] for r in odc12] == [8, 5, 2]  # i = 1, 4, 7
        assert [r["id"] for r in archive.audit_rows(limit=2, node="ODC-12")] == [8, 5]
        assert archive.audit_rows(node="nope") == []
    raw = rows_of(path)[9]
    assert tuple(everything[0].values()) == raw
    assert list(everything[0]) == [
        "id",
        "time",
        "operator",
        "role",
        "action",
        "node",
        "command_id",
        "detail",
        "prev_hash",
        "hash",
    ]


# --- verifying --------------------------------------------------------------------------


def test_an_empty_trail_verifies(path):
    report = verify(trail(path, 0))
    assert report.ok and report.problem == ""
    assert (report.rows, report.head_id, report.head_hash, report.first_bad_id) == (
        0,
        0,
        ZEROS,
        None,
    )


def test_an_intact_chain_of_1000_rows_passes_and_reports_its_head(path):
    trail(path, 1000)
    report = verify(path)
    last = rows_of(path)[-1]
    assert report.ok, report.problem
    assert report.rows == 1000 and report.head_id == 1000
    assert report.head_hash == last[9] == expected_hash(last[8], *last[:8])
    assert report.first_bad_id is None and report.problem == ""


def test_verify_reads_one_snapshot_and_leaves_no_transaction_open(path):
    trail(path, 5)
    with open_archive(path) as archive:
        assert verify_chain(archive.conn).ok
        assert not archive.conn.in_transaction
        with archive.transaction() as conn:  # inside the caller's transaction too
            add_id = append(conn, time_s=T0, operator="a", role="r", action="x")
            report = verify_chain(conn)
            assert conn.in_transaction
        assert add_id == 6 and report.rows == 6 and report.ok


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("time", T0 + 60),
        ("operator", "mallory"),
        ("role", "flight-director"),
        ("action", "denied"),
        ("node", "ODC-99"),
        ("command_id", None),
        ("detail", '{"text":"ODC-07 NOOP"}'),
        ("prev_hash", "f" * 64),
        ("hash", "e" * 64),
    ],
)
def test_a_changed_field_is_found_at_its_row(path, column, value):
    trail(path, 12)
    with Tamper(path) as conn:
        conn.execute(f"UPDATE audit SET {column} = ? WHERE id = 5", (value,))
    report = verify(path)
    assert not report.ok and report.first_bad_id == 5
    if column == "prev_hash":
        assert report.problem.startswith("row 5: prev_hash does not match row 4's hash")
    else:
        assert report.problem == "row 5: hash does not match its contents (changed?)"
    assert report.rows == 12 and report.head_id == 12


def test_a_changed_and_rehashed_row_is_found_at_the_next_row(path):
    trail(path, 12)
    row = rows_of(path)[4]
    forged = (row[0], row[1], "mallory", *row[3:8])
    with Tamper(path) as conn:
        conn.execute(
            "UPDATE audit SET operator = 'mallory', hash = ? WHERE id = 5",
            (expected_hash(row[8], *forged),),
        )
    report = verify(path)
    assert report.first_bad_id == 6
    assert report.problem.startswith("row 6: prev_hash does not match row 5's hash")


@pytest.mark.parametrize(
    ("removed", "first_bad", "problem"),
    [
        ([13], 13, "rows jump from 12 to 14 (row 13 removed)"),
        ([3, 4, 5], 3, "rows jump from 2 to 6 (rows 3 to 5 removed)"),
        ([1], 1, "rows start at 2, not 1 (row 1 removed)"),
        ([1, 2, 3], 1, "rows start at 4, not 1 (rows 1 to 3 removed)"),
    ],
)
def test_a_removed_row_is_found(path, removed, first_bad, problem):
    trail(path, 20)
    with Tamper(path) as conn:
        conn.executemany("DELETE FROM audit WHERE id = ?", [(i,) for i in removed])
    report = verify(path)
    assert (report.first_bad_id, report.problem) == (first_bad, problem)
    assert report.rows == 20 - len(removed) and report.head_id == 20


def renumber_from(conn: sqlite3.Connection, first: int, step: int) -> None:
    """Shift the ids from `first` on by `step` (through negatives: ids are unique)."""
    conn.execute("UPDATE audit SET id = -id WHERE id >= ?", (first,))
    conn.execute("UPDATE audit SET id = -id + ? WHERE id < 0", (step,))


def test_a_removed_row_with_the_ids_renumbered_is_found(path):
    trail(path, 20)
    with Tamper(path) as conn:
        conn.execute("DELETE FROM audit WHERE id = 13")
        renumber_from(conn, 14, -1)
    report = verify(path)
    assert report.first_bad_id == 13
    assert report.problem.startswith("row 13: prev_hash does not match row 12's hash")
    assert report.rows == 19 and report.head_id == 19


def test_a_forged_row_inserted_in_the_middle_is_found(path):
    trail(path, 20)
    rows = rows_of(path)
    fields = (13, T0 + 17.5, "mallory", "operator", "override", "ODC-07", None, "{}")
    # A careful forger links the row to row 12 and hashes it correctly ...
    forged = (*fields, rows[11][9], expected_hash(rows[11][9], *fields))
    with Tamper(path) as conn:
        renumber_from(conn, 13, 1)
        conn.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", forged)
    assert [r[0] for r in rows_of(path)] == list(range(1, 22))
    report = verify(path)
    # ... but the old row 13, now 14, still points at row 12.
    assert report.first_bad_id == 14
    assert report.problem.startswith("row 14: prev_hash does not match row 13's hash")


def test_a_forged_row_with_a_made_up_hash_is_found_at_itself(path):
    trail(path, 20)
    rows = rows_of(path)
    with Tamper(path) as conn:
        renumber_from(conn, 13, 1)
        conn.execute(
            "INSERT INTO audit VALUES (13, ?, 'mallory', 'operator', 'override', '', NULL, "
            "'{}', ?, ?)",
            (T0, rows[11][9], "a" * 64),
        )
    report = verify(path)
    assert (report.first_bad_id, report.problem) == (
        13,
        "row 13: hash does not match its contents (changed?)",
    )


def test_a_row_before_row_1_is_found(path):
    trail(path, 3)
    with Tamper(path) as conn:
        conn.execute(
            "INSERT INTO audit VALUES (0, ?, 'mallory', 'operator', 'override', '', NULL, "
            "'{}', ?, ?)",
            (T0, ZEROS, ZEROS),
        )
    report = verify(path)
    assert report.first_bad_id == 0
    assert report.problem == "row 0: ids start at 1 (a row inserted before row 1?)"


def test_two_rows_with_their_details_swapped_are_found_at_the_first(path):
    trail(path, 12)
    rows = rows_of(path)
    with Tamper(path) as conn:
        conn.execute("UPDATE audit SET detail = ? WHERE id = 4", (rows[8][7],))
        conn.execute("UPDATE audit SET detail = ? WHERE id = 9", (rows[3][7],))
    report = verify(path)
    assert (report.first_bad_id, report.problem) == (
        4,
        "row 4: hash does not match its contents (changed?)",
    )


def test_dropped_triggers_are_found_even_with_an_intact_chain(path):
    trail(path, 8)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("DROP TRIGGER audit_no_delete")
    report = verify(path)
    assert not report.ok and report.first_bad_id is None
    assert report.problem == "the append-only triggers are missing (dropped?)"
    assert report.rows == 8 and report.head_hash == rows_of(path)[-1][9]


def test_one_dropped_or_altered_trigger_is_named(path):
    trail(path, 2)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER audit_no_delete")
    assert verify(path).problem == "the append-only trigger audit_no_delete is missing (dropped?)"
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute(
            "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit WHEN 0 "
            "BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END"
        )
        conn.execute(
            "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
            "BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END"
        )
    report = verify(path)
    assert report.first_bad_id is None
    assert report.problem.startswith("the append-only trigger audit_no_update has been altered")


def test_a_changed_row_and_dropped_triggers_are_both_reported(path):
    trail(path, 6)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("DROP TRIGGER audit_no_delete")
        conn.execute("UPDATE audit SET action = 'nothing' WHERE id = 2")
    report = verify(path)
    assert report.first_bad_id == 2
    assert report.problem == (
        "row 2: hash does not match its contents (changed?); "
        "the append-only triggers are missing (dropped?)"
    )


def test_a_dropped_audit_table_is_reported(path):
    trail(path, 2)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP VIEW audit_utc")
        conn.execute("DROP TABLE audit")
    report = verify(path)
    assert report.problem == "the audit table is missing (dropped?)"
    assert not report.ok


def test_what_the_file_alone_cannot_tell_shows_against_a_noted_head(path):
    trail(path, 20)
    noted = verify(path)
    assert noted.ok
    # Rows removed at the end: the rest is still an intact chain.
    with Tamper(path) as conn:
        conn.execute("DELETE FROM audit WHERE id > 17")
    cut = verify(path)
    assert cut.ok and cut.head_id == 17
    assert (cut.head_id, cut.head_hash) != (noted.head_id, noted.head_hash)
    # The chain rewritten from row 10 on with fresh hashes, back to 20 rows.
    rows = rows_of(path)
    prev = rows[8][9]
    with Tamper(path) as conn:
        conn.execute("DELETE FROM audit WHERE id >= 10")
        for i in range(10, 21):
            fields = (i, T0 + i, "mallory", "operator", "command", "ODC-07", None, "{}")
            digest = expected_hash(prev, *fields)
            conn.execute(
                "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*fields, prev, digest)
            )
            prev = digest
    rewritten = verify(path)
    assert rewritten.ok and rewritten.head_id == noted.head_id == 20
    assert rewritten.head_hash != noted.head_hash


# --- two writers ------------------------------------------------------------------------


def test_two_connections_appending_alternately_keep_one_chain(path):
    with open_archive(path) as first, open_archive(path) as second:
        for i in range(100):
            add((first, second)[i % 2], i, operator=("first", "second")[i % 2])
    rows = rows_of(path)
    assert [r[0] for r in rows] == list(range(1, 101))
    assert [r[2] for r in rows] == ["first", "second"] * 50
    prev = ZEROS
    for row in rows:
        assert row[8] == prev and row[9] == expected_hash(prev, *row[:8])
        prev = row[9]
    assert verify(path).ok


def test_two_threads_appending_at_once_keep_one_chain(path):
    open_archive(path).close()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            with open_archive(path) as archive:
                start.wait()
                for i in range(150):
                    add(archive, i, operator=name)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = rows_of(path)
    assert [r[0] for r in rows] == list(range(1, 301))
    assert sorted(r[2] for r in rows) == ["one"] * 150 + ["two"] * 150
    assert all(b[8] == a[9] for a, b in itertools.pairwise(rows))
    assert verify(path).ok


# --- round trip through SQLite, the docs' checker, quick_check ---------------------------

TEXT = st.text(max_size=20)
JSON_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    time_s=st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False),
    operator=TEXT,
    role=TEXT,
    action=TEXT,
    node=TEXT,
    command_id=st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    detail=st.dictionaries(TEXT, JSON_VALUE, max_size=4),
)
def test_any_row_hashes_the_same_after_the_round_trip_through_sqlite(
    tmp_path_factory, time_s, operator, role, action, node, command_id, detail
):
    path = tmp_path_factory.mktemp("roundtrip") / "a.db"
    with open_archive(path) as archive:
        for _ in range(2):
            with archive.transaction() as conn:
                append(
                    conn,
                    time_s=time_s,
                    operator=operator,
                    role=role,
                    action=action,
                    node=node,
                    command_id=command_id,
                    detail=detail,
                )
        assert archive.verify_audit().ok
    prev = ZEROS
    for row in rows_of(path):
        assert row[1:7] == (time_s, operator, role, action, node, command_id)
        assert json.loads(row[7]) == detail
        assert row[9] == expected_hash(prev, *row[:8])
        prev = row[9]


def docs_checker() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    (checker,) = [b for b in blocks if "sqlite3.connect" in b]
    return checker


def test_the_checker_in_the_docs_agrees(path, tmp_path):
    trail(path, 50)
    script = tmp_path / "check_audit.py"
    script.write_text(docs_checker())
    ok = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"50 rows intact, head hash {verify(path).head_hash}"
    with Tamper(path) as conn:
        conn.execute("UPDATE audit SET node = 'ODC-99' WHERE id = 31")
    broken = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=60
    )
    assert broken.returncode == 1
    assert broken.stderr.strip() == "audit chain broken at row 31"
    assert verify(path).first_bad_id == 31


def test_quick_check_is_empty_for_a_sound_file_and_lists_damage(path):
    trail(path, 2000)
    with open_archive(path) as archive:
        assert quick_check(archive.conn) == []
        archive.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = archive.conn.execute("PRAGMA page_count").fetchone()[0]
        page_size = archive.conn.execute("PRAGMA page_size").fetchone()[0]
    assert pages > 20
    with path.open("r+b") as f:  # scribble over the middle of a page of audit rows
        f.seek(page_size * (pages // 2) + 64)
        f.write(b"\xff" * 512)
    with open_archive(path) as archive:
        problems = quick_check(archive.conn)
        report = archive.verify_audit()
    assert problems and problems != ["ok"]
    assert not report.ok and report.first_bad_id is not None
