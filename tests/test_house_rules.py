"""The house rules of ARCHITECTURE.md, checked on the source: who may import what."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "groundctl"
PURE = ("orbits", "mdb", "telemetry")
NETWORK = {"socket", "httpx", "asyncio.streams", "urllib.request", "http.client"}


def imports(path: Path) -> set[str]:
    """Modules imported at run time (imports under `if TYPE_CHECKING:` are left out)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules(folder: str = "") -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_import_no_io(package):
    for path in modules(package):
        bad = {
            name
            for name in imports(path)
            if name.split(".")[0] in {"sqlite3", "sqlite_utils", "textual", "socket", "httpx"}
            or name.startswith(("groundctl.archive", "groundctl.links", "groundctl.cli"))
        }
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_only_archive_touches_sqlite_and_only_links_and_station_open_network_clients():
    for path in modules():
        part = path.relative_to(PACKAGE).parts[0]
        names = {n.split(".")[0] for n in imports(path)} | imports(path)
        if part != "archive":
            assert not names & {"sqlite3", "sqlite_utils"}, path
        if part not in ("links", "station"):  # the nodes' links; the stations' Hamlib daemons
            assert not names & NETWORK, path
        if part != "station" and path.name != "session.py":
            assert "groundctl.station.hamlib" not in imports(path), path
