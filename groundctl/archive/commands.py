"""Commands, their stages, the store-and-forward queue and procedure runs, in the archive.

`CommandStore` owns one connection used from one worker thread: every method is
synchronous and short; the commander calls them through `asyncio.to_thread`-like
hand-off to that thread (`CommandStore.call`), so the event loop never waits on SQLite.
Every change is written together with its audit row (groundctl.archive.audit) in one
transaction.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from groundctl.archive import audit
from groundctl.archive.store import Archive, open_archive

T = TypeVar("T")

_COLUMNS = (
    "id, created, operator, role, node, mission, command, arguments, text, hazardous, "
    "confirmed, source, release, release_at, status, detail, link, counter, raw, updated"
)


@dataclass(frozen=True)
class CommandRecord:
    """A command as archived: what, for whom, by whom, and where it has got to."""

    id: int
    created: float
    operator: str
    role: str
    node: str
    mission: str
    command: str
    arguments: Mapping[str, Any]
    text: str
    hazardous: bool
    confirmed: bool
    source: str
    release: str  # now (as soon as in contact), time (time tag)
    release_at: float | None
    status: str
    detail: str
    link: str
    counter: int | None
    raw: bytes | None
    updated: float

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> CommandRecord:
        values = list(row)
        values[7] = json.loads(values[7])
        values[9] = bool(values[9])
        values[10] = bool(values[10])
        return cls(*values)


@dataclass(frozen=True)
class Actor:
    """Who does something: login name (or procedure:<run>) and role."""

    operator: str
    role: str


class CommandStore:
    """The archive's command tables, from one worker thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commands")
        self._archive: Archive | None = None

    # --- lifecycle -------------------------------------------------------------------------
    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` on the store's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def open(self) -> None:
        if self._archive is None:
            self._archive = open_archive(self.path)

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None

    async def aopen(self) -> None:
        await self.call(self.open)

    async def aclose(self) -> None:
        await self.call(self.close)
        self._executor.shutdown(wait=True)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._archive is None:
            self.open()
        assert self._archive is not None
        return self._archive.conn

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    # --- commands ----------------------------------------------------------------------------
    def create(
        self,
        *,
        time_s: float,
        actor: Actor,
        node: str,
        mission: str,
        command: str,
        arguments: Mapping[str, Any],
        text: str,
        hazardous: bool,
        confirmed: bool,
        source: str,
        release: str,
        release_at: float | None,
    ) -> CommandRecord:
        """Archive a new command, queued, with its audit rows (and its confirmation)."""

        def write(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO commands (created, operator, role, node, mission, command, "
                "arguments, text, hazardous, confirmed, source, release, release_at, status, "
                "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
                (
                    time_s,
                    actor.operator,
                    actor.role,
                    node,
                    mission,
                    command,
                    json.dumps(dict(arguments), default=str),
                    text,
                    int(hazardous),
                    int(confirmed),
                    source,
                    release,
                    release_at,
                    time_s,
                ),
            )
            command_id = int(cursor.lastrowid or 0)
            conn.execute(
                "INSERT INTO command_stages (command_id, time, stage, detail) "
                "VALUES (?, ?, 'queued', ?)",
                (command_id, time_s, _release_text(release, release_at)),
            )
            detail: dict[str, Any] = {"text": text, "source": source, "release": release}
            if release_at is not None:
                detail["release_at"] = release_at
            audit.append(
                conn,
                time_s=time_s,
                operator=actor.operator,
                role=actor.role,
                action="command",
                node=node,
                command_id=command_id,
                detail=detail,
            )
            if hazardous and confirmed:
                audit.append(
                    conn,
                    time_s=time_s,
                    operator=actor.operator,
                    role=actor.role,
                    action="confirm",
                    node=node,
                    command_id=command_id,
                    detail={"text": text, "hazardous": True},
                )
            return command_id

        return self.get(self._write(write))

    def stage(
        self,
        command_id: int,
        stage: str,
        time_s: float,
        detail: str = "",
        *,
        actor: Actor,
        link: str | None = None,
        raw: bytes | None = None,
        counter: int | None = None,
        status: str | None = None,
        pass_id: int | None = None,
    ) -> None:
        """Record a stage (and the command's new status, `stage` unless given);
        `pass_id`: the flown pass the command was sent in."""

        def write(conn: sqlite3.Connection) -> None:
            sets = ["status = ?", "detail = ?", "updated = ?"]
            values: list[Any] = [status or stage, detail, time_s]
            if link is not None:
                sets.append("link = ?")
                values.append(link)
            if raw is not None:
                sets.append("raw = ?")
                values.append(raw)
            if counter is not None:
                sets.append("counter = ?")
                values.append(counter)
            if pass_id is not None:
                sets.append("pass_id = ?")
                values.append(pass_id)
            conn.execute(
                f"UPDATE commands SET {', '.join(sets)} WHERE id = ?", (*values, command_id)
            )
            _add_stage(conn, command_id, time_s, stage, detail, actor)

        self._write(write)

    def release(
        self,
        command_id: int,
        time_s: float,
        detail: str,
        *,
        actor: Actor,
        link: str,
        counter: int | None,
    ) -> bool:
        """Mark a queued command released; False (nothing written) when it is no longer
        queued (cancelled meanwhile), so it must not be sent."""

        def write(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE commands SET status = 'released', detail = ?, updated = ?, link = ?, "
                "counter = coalesce(?, counter) WHERE id = ? AND status = 'queued'",
                (detail, time_s, link, counter, command_id),
            )
            if cursor.rowcount != 1:
                return False
            _add_stage(conn, command_id, time_s, "released", detail, actor)
            return True

        return self._write(write)

    def set_release_at(self, command_id: int, release_at: float | None) -> None:
        """The expected AOS of a command waiting for its contact (no audit: a forecast)."""
        self._write(
            lambda conn: conn.execute(
                "UPDATE commands SET release_at = ? WHERE id = ? AND status = 'queued'",
                (release_at, command_id),
            )
        )

    def edit(
        self,
        command_id: int,
        time_s: float,
        actor: Actor,
        *,
        arguments: Mapping[str, Any] | None = None,
        text: str | None = None,
        release: str | None = None,
        release_at: float | None = None,
    ) -> CommandRecord:
        """Change a queued command's arguments or release; KeyError/ValueError when it is
        not there or no longer queued."""

        def write(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT status, text, release, release_at FROM commands WHERE id = ?",
                (command_id,),
            ).fetchone()
            if row is None:
                raise KeyError(command_id)
            if row[0] != "queued":
                raise ValueError(f"command {command_id} is {row[0]}, no longer queued")
            changes: dict[str, Any] = {}
            if arguments is not None and text is not None:
                changes["arguments"] = json.dumps(dict(arguments), default=str)
                changes["text"] = text
            if release is not None:
                changes["release"] = release
                changes["release_at"] = release_at
            if not changes:
                return
            sets = ", ".join(f"{k} = ?" for k in changes)
            conn.execute(
                f"UPDATE commands SET {sets}, updated = ? WHERE id = ?",
                (*changes.values(), time_s, command_id),
            )
            what = []
            if "text" in changes:
                what.append(f"{row[1]} -> {text}")
            if "release" in changes:
                old = _release_text(row[2], row[3])
                what.append(f"{old} -> {_release_text(release or '', release_at)}")
            detail = "; ".join(what)
            _add_stage(conn, command_id, time_s, "edited", detail, actor, {"change": detail})

        self._write(write)
        return self.get(command_id)

    def cancel(self, command_id: int, time_s: float, actor: Actor, reason: str = "") -> None:
        """Cancel a queued command; KeyError/ValueError when not there or not queued."""
        record = self.get(command_id)
        if record.status != "queued":
            raise ValueError(f"command {command_id} is {record.status}, no longer queued")
        self.stage(command_id, "cancelled", time_s, reason or "cancelled", actor=actor)

    def note(
        self,
        action: str,
        time_s: float,
        actor: Actor,
        *,
        node: str = "",
        command_id: int | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """An audit row for an operator action with no other record (a refused command,
        an alert acknowledged or shelved)."""
        self._write(
            lambda conn: audit.append(
                conn,
                time_s=time_s,
                operator=actor.operator,
                role=actor.role,
                action=action,
                node=node,
                command_id=command_id,
                detail=detail or {},
            )
        )

    def next_counter(self, node: str) -> int:
        """The next authentication counter for `node`: one more than the last, and at
        least the wall clock in milliseconds (so a fresh archive does not start again
        below what the node has seen); stored before it is used, so a crash never reuses
        one."""

        def write(conn: sqlite3.Connection) -> int:
            # At least the wall clock in milliseconds: a node keeps accepting commands
            # from a new archive (whose stored counter would start again at 1).
            floor = int(time.time() * 1000)
            conn.execute(
                "INSERT INTO command_counters (node, counter) VALUES (?, ?) "
                "ON CONFLICT(node) DO UPDATE SET counter = max(counter + 1, excluded.counter)",
                (node, floor),
            )
            row = conn.execute(
                "SELECT counter FROM command_counters WHERE node = ?", (node,)
            ).fetchone()
            return int(row[0])

        return self._write(write)

    def interrupted(self, time_s: float, actor: Actor) -> list[int]:
        """Commands left released/sent/accepted by a previous run that stopped before
        their verification ended: marked failed (their outcome is unknown)."""
        rows = self.conn.execute(
            "SELECT id, status FROM commands WHERE status IN ('released', 'sent', 'accepted')"
        ).fetchall()
        for command_id, status in rows:
            self.stage(
                command_id,
                "failed",
                time_s,
                f"verification interrupted while {status}: groundctl stopped; check telemetry",
                actor=actor,
            )
        return [r[0] for r in rows]

    # --- queries -----------------------------------------------------------------------------
    def get(self, command_id: int) -> CommandRecord:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM commands WHERE id = ?", (command_id,)
        ).fetchone()
        if row is None:
            raise KeyError(command_id)
        return CommandRecord.from_row(row)

    def queued(self, node: str | None = None) -> list[CommandRecord]:
        """Queued commands in release order (by id), for one node or all."""
        sql = f"SELECT {_COLUMNS} FROM commands WHERE status = 'queued'"
        args: tuple[Any, ...] = ()
        if node is not None:
            sql += " AND node = ?"
            args = (node,)
        return [CommandRecord.from_row(r) for r in self.conn.execute(sql + " ORDER BY id", args)]

    def recent(
        self, limit: int = 50, node: str | None = None, status: str | None = None
    ) -> list[CommandRecord]:
        """The newest commands first."""
        where, args = [], []
        if node:
            where.append("node = ?")
            args.append(node)
        if status:
            where.append("status = ?")
            args.append(status)
        sql = f"SELECT {_COLUMNS} FROM commands"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        return [CommandRecord.from_row(r) for r in self.conn.execute(sql, (*args, limit))]

    def stages(self, command_id: int) -> list[tuple[float, str, str]]:
        return [
            (r[0], r[1], r[2])
            for r in self.conn.execute(
                "SELECT time, stage, detail FROM command_stages WHERE command_id = ? ORDER BY id",
                (command_id,),
            )
        ]

    def latest_value(self, node: str, parameter: str) -> Any:
        """The newest archived engineering value of `node`'s `parameter` (None if none)."""
        self.open()
        assert self._archive is not None
        found = self._archive.latest_samples(parameter, node=node)
        return found[0].value if found else None

    # --- procedure runs ------------------------------------------------------------------------
    def start_run(
        self,
        *,
        name: str,
        path: str,
        sha256: str,
        arguments: Mapping[str, Any],
        actor: Actor,
        dry_run: bool,
        time_s: float,
    ) -> int:
        def write(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO procedure_runs (name, path, sha256, arguments, operator, dry_run, "
                "started, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'running')",
                (
                    name,
                    path,
                    sha256,
                    json.dumps(dict(arguments), default=str),
                    actor.operator,
                    int(dry_run),
                    time_s,
                ),
            )
            run_id = int(cursor.lastrowid or 0)
            audit.append(
                conn,
                time_s=time_s,
                operator=actor.operator,
                role=actor.role,
                action="procedure-start",
                detail={"run": run_id, "name": name, "sha256": sha256, "dry_run": dry_run},
            )
            return run_id

        return self._write(write)

    def log(self, run_id: int, time_s: float, kind: str, text: str, ok: bool | None = None) -> None:
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO procedure_log (run_id, time, kind, text, ok) VALUES (?, ?, ?, ?, ?)",
                (run_id, time_s, kind, text, None if ok is None else int(ok)),
            )
        )

    def end_run(self, run_id: int, time_s: float, status: str, message: str, actor: Actor) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE procedure_runs SET ended = ?, status = ?, message = ? WHERE id = ?",
                (time_s, status, message, run_id),
            )
            audit.append(
                conn,
                time_s=time_s,
                operator=actor.operator,
                role=actor.role,
                action="procedure-end",
                detail={"run": run_id, "status": status, "message": message},
            )

        self._write(write)


def _add_stage(
    conn: sqlite3.Connection,
    command_id: int,
    time_s: float,
    stage: str,
    detail: str,
    actor: Actor,
    audit_detail: Mapping[str, Any] | None = None,
) -> None:
    """A row in command_stages and its audit row (action = the stage), in the caller's
    transaction."""
    conn.execute(
        "INSERT INTO command_stages (command_id, time, stage, detail) VALUES (?, ?, ?, ?)",
        (command_id, time_s, stage, detail),
    )
    node = conn.execute("SELECT node FROM commands WHERE id = ?", (command_id,)).fetchone()
    audit.append(
        conn,
        time_s=time_s,
        operator=actor.operator,
        role=actor.role,
        action=stage,
        node=node[0] if node else "",
        command_id=command_id,
        detail=audit_detail if audit_detail is not None else ({"detail": detail} if detail else {}),
    )


def _release_text(release: str, release_at: float | None) -> str:
    from datetime import UTC, datetime

    when = (
        datetime.fromtimestamp(release_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        if release_at is not None
        else None
    )
    if release == "time":
        return f"time tag {when or 'unknown'}"
    return "release at the next contact" + (f" (AOS {when})" if when else "")
