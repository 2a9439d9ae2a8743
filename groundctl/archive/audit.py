"""The audit trail: an append-only, hash-chained table of who did what, and its check.

Every operator action that matters (a command issued, confirmed or refused, its
verification stages, an alert acknowledged or shelved, a procedure run) is one row of the
`audit` table (schema migration 3). Triggers refuse UPDATE and DELETE; on top of that
each row carries `prev_hash`, the `hash` of the row before it (64 zeros for row 1), and
its own `hash`, so that a row changed, removed or inserted by someone who dropped the
triggers is found by `verify_chain` (`groundctl db verify`).

The hash of a row is the lowercase hex SHA-256 of this UTF-8 text::

    json.dumps(
        [prev_hash, id, time, operator, role, action, node, command_id, detail],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")

with the columns exactly as stored: `prev_hash` the row's own `prev_hash` column (hex
text), `id` an integer, `time` a float (Unix seconds UTC, as the REAL column holds it;
`json.dumps` writes a float as Python's `repr`, e.g. `1779000000.25` or `1779000000.0`),
`operator`, `role`, `action` and `node` text, `command_id` an integer or `null`, and
`detail` the stored JSON text itself as a string (not re-parsed). Rows are numbered from 1
without gaps; row N's `prev_hash` is row N-1's `hash`. Reading the table with Python's
`sqlite3` gives these types as they are, so a few lines of Python re-check an archive
without groundctl (docs/audit.md has such a checker).

The chain has no secret key, so it shows where it breaks, not where it should end: rows
removed at the end, or the whole chain rewritten from some row on, leave an intact chain.
`verify_chain` reports the head (id and hash) for an operator to note elsewhere and
compare later.

`detail` is a JSON object written with sorted keys and no spaces. Callers never put key
material or other secrets in it: the audit trail is meant to be read by anyone reviewing
operations, and it cannot be edited afterwards.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
"""The `prev_hash` of row 1."""

_TRIGGERS = {
    "audit_no_update": "create trigger audit_no_update before update on audit begin "
    "select raise(abort, 'the audit table is append-only'); end",
    "audit_no_delete": "create trigger audit_no_delete before delete on audit begin "
    "select raise(abort, 'the audit table is append-only'); end",
}

COLUMNS = "id, time, operator, role, action, node, command_id, detail, prev_hash, hash"
"""The audit table's columns, in table order, as a SELECT list."""


def row_hash(
    prev_hash: str,
    id: int,
    time: float,
    operator: str,
    role: str,
    action: str,
    node: str,
    command_id: int | None,
    detail: str,
) -> str:
    """The hex SHA-256 of one audit row (see the module docstring for the exact text).

    `time` is hashed as a float (an int is converted first, as the REAL column would);
    `detail` is the JSON text as stored. Raises TypeError for a value JSON cannot hold.
    """
    text = json.dumps(
        [prev_hash, id, float(time), operator, role, action, node, command_id, detail],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def append(
    conn: sqlite3.Connection,
    *,
    time_s: float,
    operator: str,
    role: str,
    action: str,
    node: str = "",
    command_id: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """Append one row to the audit trail; return its id.

    The caller must hold a write transaction (`BEGIN IMMEDIATE`, e.g.
    `Archive.transaction()`), so that reading the last row and inserting the next one is
    atomic: two processes appending to one archive then take turns and never fork the
    chain. The row commits (or rolls back) with the caller's transaction, together with
    whatever it records.

    `time_s` is Unix seconds UTC; `detail` a JSON object (stored with sorted keys, no
    spaces, non-ASCII kept). Never put key material or other secrets in `detail`.

    Raises RuntimeError outside a transaction, ValueError for a time that is not finite
    or a detail with NaN or infinity, TypeError for a detail JSON cannot hold, and
    sqlite3.Error when SQLite fails.
    """
    if not conn.in_transaction:
        raise RuntimeError("audit.append must run inside a write transaction (BEGIN IMMEDIATE)")
    time_s = float(time_s) + 0.0  # -0.0 is stored by SQLite as 0.0: hash what is stored
    if not math.isfinite(time_s):
        raise ValueError(f"audit time must be finite Unix seconds, got {time_s!r}")
    detail_text = json.dumps(
        dict(detail or {}),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )
    last = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    prev_id, prev_hash = (0, GENESIS) if last is None else (int(last[0]), str(last[1]))
    new_id = prev_id + 1
    digest = row_hash(
        prev_hash, new_id, time_s, operator, role, action, node, command_id, detail_text
    )
    conn.execute(
        f"INSERT INTO audit ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new_id,
            time_s,
            operator,
            role,
            action,
            node,
            command_id,
            detail_text,
            prev_hash,
            digest,
        ),
    )
    return new_id


@dataclass(frozen=True)
class ChainReport:
    """What `verify_chain` found.

    `rows` is the number of audit rows read; `head_id` and `head_hash` are the id and
    stored hash of the last row (0 and `GENESIS` when there is none): note them somewhere
    else (the shift log) to detect later a truncated or rewritten tail. `first_bad_id` is
    the id where the chain first breaks (every row before it is intact), None when no row
    is at fault; `problem` says in words what is wrong ("" when nothing is), several
    problems separated by "; ".
    """

    rows: int
    head_id: int
    head_hash: str
    first_bad_id: int | None
    problem: str

    @property
    def ok(self) -> bool:
        """True when the chain is intact and the append-only triggers are in place."""
        return not self.problem


def verify_chain(conn: sqlite3.Connection) -> ChainReport:
    """Check the audit trail: ids, hash links, each row's hash, and the triggers.

    Rows are read in id order through one cursor, so millions of rows take constant
    memory; it reads all of them (for the count and head) but reports the first break:
    an id that is not the previous one plus 1 (rows removed; row 1 first), a `prev_hash`
    other than the previous row's `hash` (a row removed or inserted with the ids
    renumbered, or the previous row re-hashed after a change), or a `hash` that does not
    match the row's contents (a field changed). It also checks that the two triggers
    refusing UPDATE and DELETE exist unchanged. Everything is read in one read
    transaction (one snapshot) unless the caller already holds one.

    What the file alone cannot tell: rows removed at the end (the chain before them is
    still intact), or the whole chain rewritten from some row on with fresh hashes. To
    catch those, compare `head_id`/`head_hash` with values noted earlier elsewhere: a
    row noted as id N with hash H must still be there with that hash.
    """
    own_transaction = not conn.in_transaction
    if own_transaction:
        conn.execute("BEGIN")
    try:
        return _verify(conn)
    finally:
        if own_transaction and conn.in_transaction:
            conn.execute("ROLLBACK")


def _verify(conn: sqlite3.Connection) -> ChainReport:
    try:
        schema = _audit_schema(conn)
    except sqlite3.DatabaseError as error:
        return ChainReport(0, 0, GENESIS, None, f"cannot read the archive's schema: {error}")
    if "audit" not in schema:
        return ChainReport(0, 0, GENESIS, None, "the audit table is missing (dropped?)")
    rows = 0
    head_id, head_hash = 0, GENESIS
    first_bad: int | None = None
    problems: list[str] = []
    try:
        for row in conn.execute(f"SELECT {COLUMNS} FROM audit ORDER BY id"):
            rows += 1
            if first_bad is None:
                found = _row_problem(row, head_id, head_hash)
                if found is not None:
                    first_bad = found[0]
                    problems.append(found[1])
            head_id, head_hash = int(row[0]), str(row[9])
    except sqlite3.DatabaseError as error:
        # A damaged file: the rows after the last one read cannot be checked.
        if first_bad is None:
            first_bad = head_id + 1
            problems.append(f"cannot read the audit rows after row {head_id}: {error}")
    problems += _trigger_problems(schema)
    return ChainReport(rows, head_id, head_hash, first_bad, "; ".join(problems))


def _row_problem(row: tuple[Any, ...], prev_id: int, prev_hash: str) -> tuple[int, str] | None:
    """The first id at fault and what is wrong, when `row` does not follow the row
    (prev_id, prev_hash); None when it does."""
    row_id = row[0]
    missing = prev_id + 1
    if row_id < missing:  # only possible for an id below 1, read before row 1
        return row_id, f"row {row_id}: ids start at 1 (a row inserted before row 1?)"
    if row_id > missing:
        gone = f"row {missing}" if row_id == missing + 1 else f"rows {missing} to {row_id - 1}"
        if prev_id == 0:
            return missing, f"rows start at {row_id}, not 1 ({gone} removed)"
        return missing, f"rows jump from {prev_id} to {row_id} ({gone} removed)"
    if row[8] != prev_hash:
        if prev_id == 0:
            return row_id, (
                f"row {row_id}: prev_hash is not the genesis value of 64 zeros "
                "(a row removed or inserted before it?)"
            )
        return row_id, (
            f"row {row_id}: prev_hash does not match row {prev_id}'s hash (a row removed "
            f"or inserted before it, or row {prev_id} changed and re-hashed?)"
        )
    try:
        expected = row_hash(row[8], *row[:8])
    except (TypeError, ValueError):
        expected = None  # a value of a type the schema does not allow
    if row[9] != expected:
        return row_id, f"row {row_id}: hash does not match its contents (changed?)"
    return None


def _audit_schema(conn: sqlite3.Connection) -> dict[str, str]:
    """The audit table and its triggers as sqlite_master records them: name -> SQL with
    whitespace collapsed, lowercase."""
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name = 'audit' "
        "OR type = 'trigger' AND tbl_name = 'audit'"
    )
    return {str(name): " ".join(str(sql or "").split()).lower() for name, sql in rows}


def _trigger_problems(schema: Mapping[str, str]) -> list[str]:
    missing = [name for name in _TRIGGERS if name not in schema]
    if len(missing) == len(_TRIGGERS):
        return ["the append-only triggers are missing (dropped?)"]
    problems = [f"the append-only trigger {name} is missing (dropped?)" for name in missing]
    problems += [
        f"the append-only trigger {name} has been altered (it may no longer refuse changes)"
        for name, sql in _TRIGGERS.items()
        if name in schema and schema[name] != sql
    ]
    return problems


def quick_check(conn: sqlite3.Connection, max_problems: int = 10) -> list[str]:
    """SQLite's `PRAGMA quick_check`: the first `max_problems` problems, [] when "ok".

    Checks the file's structure (pages, b-trees, NOT NULL) without the slower index
    content comparison of `integrity_check`. A file too damaged to check is one problem
    with SQLite's message.
    """
    try:
        rows = conn.execute(f"PRAGMA quick_check({int(max_problems)})").fetchall()
    except sqlite3.DatabaseError as error:
        return [str(error)]
    messages = [str(row[0]) for row in rows]
    return [] if messages == ["ok"] else messages
