"""Reading a TOML file with errors that name the file, the line and the key.

Shared by the config and the mission database loaders: a `TomlReader` walks the parsed
document with typed getters; each problem becomes one error (of the class given) that
names `file:line: dotted.key: what is wrong`, with a hint.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from groundctl.errors import GroundctlError

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")

Keys = tuple[str | int, ...]


def parse_toml(text: str, path: Path, error: type[GroundctlError], hint: str) -> dict[str, Any]:
    """tomllib.loads with a syntax error turned into `error` naming the file and line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as problem:
        raise error(f"{path}: invalid TOML: {problem}", hint=hint) from None


def read_text(path: Path, error: type[GroundctlError], what: str) -> str:
    """A UTF-8 file's text, or `error` saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as problem:
        raise error(
            f"cannot read {what} {path}: {problem.strerror or problem}",
            hint="check the path and its permissions",
        ) from None
    except UnicodeDecodeError as problem:
        raise error(
            f"{path}: not UTF-8 text (byte {problem.start})", hint="save the file as UTF-8"
        ) from None


class TomlReader:
    """Typed access to a parsed TOML document, locating keys in its text for errors."""

    error_class: type[GroundctlError] = GroundctlError

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.base = path.parent

    # --- locating keys in the text, so that errors can name a line --------------------
    def _headers(self) -> list[tuple[int, tuple[str, ...]]]:
        """(0-based line, dotted path) of every [table] and [[array]] header."""
        headers = []
        for n, line in enumerate(self.lines):
            match = _HEADER.match(line)
            if match:
                path = tuple(p.strip().strip("\"'") for p in match.group(1).split("."))
                headers.append((n, path))
        return headers

    def line_of(self, keys: Keys) -> int | None:
        """Best-effort 1-based line of a key path such as ("packets", 2, "fields", 0, "type").

        Finds the longest [table] / [[array]] header matching a prefix of the path, then
        walks the rest inside that table: `key =` lines, elements of multi-line inline
        arrays (one per line), and keys inside an inline table on its line.
        """
        headers = self._headers()
        region_start, region_end = 0, len(self.lines)
        path: tuple[str, ...] = ()
        found: int | None = None
        consumed = 0
        i = 0
        while i < len(keys):
            key = keys[i]
            if not isinstance(key, str):
                break
            candidate = (*path, key)
            following = keys[i + 1] if i + 1 < len(keys) else None
            inside = [(n, h) for n, h in headers if region_start <= n < region_end]
            hits = [n for n, h in inside if h == candidate]
            if not hits:
                if any(h[: len(candidate)] == candidate for _, h in inside):
                    path, i = candidate, i + 1  # a dotted header such as [nodes.NAME]
                    continue
                break
            n = following if isinstance(following, int) else 0
            if n >= len(hits):
                break
            region_start = hits[n]
            # The element ends at the next header that is not one of its sub-tables.
            region_end = next(
                (
                    m
                    for m, h in inside
                    if m > region_start
                    and not (len(h) > len(candidate) and h[: len(candidate)] == candidate)
                ),
                region_end,
            )
            found = region_start + 1
            path = candidate
            i += 2 if isinstance(following, int) else 1
            consumed = i
        if found is None:
            start = 0
            end = headers[0][0] if headers else len(self.lines)
        else:
            start = region_start + 1
            end = next((m for m, _ in headers if m > region_start), region_end)
        for key in keys[consumed:]:
            if isinstance(key, int):
                elements = [
                    m for m in range(start, end) if self.lines[m].lstrip().startswith(("{", "["))
                ]
                if key >= len(elements):
                    return found
                start, end = elements[key], elements[key] + 1
                found = start + 1
                continue
            pattern = re.compile(rf"(^|[{{,])\s*[\"']?{re.escape(key)}[\"']?\s*=")
            hit = next((m for m in range(start, end) if pattern.search(self.lines[m])), None)
            if hit is None:
                return found
            found = hit + 1
            if self.lines[hit].rstrip().endswith("["):
                close = next(
                    (m for m in range(hit + 1, end) if self.lines[m].strip().startswith("]")),
                    end,
                )
                start, end = hit + 1, close
            else:
                start, end = hit, hit + 1
        return found

    def error(self, keys: Keys, message: str, hint: str = "") -> GroundctlError:
        line = self.line_of(keys)
        where = f"{self.path}:{line}" if line else str(self.path)
        dotted = ".".join(f"[{k}]" if isinstance(k, int) else k for k in keys).replace(".[", "[")
        return self.error_class(f"{where}: {dotted}: {message}", hint=hint)

    # --- typed getters ----------------------------------------------------------------
    def table(self, value: Any, keys: Keys) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(keys, f"expected a table, found {kind_of(value)}")
        return value

    def check_keys(self, table: Mapping[str, Any], allowed: set[str], keys: Keys) -> None:
        for key in table:
            if key not in allowed:
                raise self.error(
                    (*keys, key),
                    f"unknown key {key!r}",
                    hint="allowed here: " + ", ".join(sorted(allowed)),
                )

    def number(
        self,
        table: Mapping[str, Any],
        key: str,
        keys: Keys,
        *,
        default: float | None = None,
        low: float | None = None,
        high: float | None = None,
        unit: str = "",
    ) -> float:
        if key not in table:
            if default is None:
                raise self.error((*keys, key), "missing", hint=f"add {key} = <number{unit}>")
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            expected = f"a number in{unit}" if unit else "a number"
            raise self.error((*keys, key), f"expected {expected}, found {kind_of(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.error(
                (*keys, key), f"{value} is out of range: expected {low} to {high}{unit}"
            )
        return float(value)

    def integer(
        self,
        table: Mapping[str, Any],
        key: str,
        keys: Keys,
        *,
        default: int | None = None,
        low: int | None = None,
        high: int | None = None,
    ) -> int:
        if key not in table:
            if default is None:
                raise self.error((*keys, key), "missing", hint=f"add {key} = <whole number>")
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error((*keys, key), f"expected a whole number, found {kind_of(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"{low} to {high}"
            raise self.error((*keys, key), f"{value} is out of range: expected {bounds}")
        return value

    def string(
        self,
        table: Mapping[str, Any],
        key: str,
        keys: Keys,
        *,
        default: str | None = None,
    ) -> str:
        if key not in table:
            if default is None:
                raise self.error((*keys, key), "missing", hint=f'add {key} = "..."')
            return default
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            raise self.error((*keys, key), f"expected a non-empty string, found {kind_of(value)}")
        return value

    def file(self, table: Mapping[str, Any], key: str, keys: Keys) -> Path:
        path = Path(self.string(table, key, keys)).expanduser()
        if not path.is_absolute():
            path = self.base / path
        if not path.is_file():
            raise self.error(
                (*keys, key),
                f"file {path} does not exist",
                hint="relative paths are resolved against the config file's folder",
            )
        return path


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__
