"""Helpers shared by the test folders (importable as `testsupport` via tests/conftest.py)."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
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
