"""Helpers shared by the test folders (importable as `testsupport` via tests/conftest.py)."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def aio(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run an async test function with asyncio.run (the suite has no async plugin)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return run


def rows(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """The rows of a query on the SQLite file at `path` (a connection of its own)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def until(
    pilot: Any, predicate: Callable[[], Any], what: str, timeout_s: float = 15.0
) -> Any:
    """Poll `predicate` as the app runs (Pilot pauses) until it is true; its value is
    returned. AssertionError naming `what` after `timeout_s` seconds."""
    end = time.monotonic() + timeout_s
    while not (result := predicate()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)
    return result
