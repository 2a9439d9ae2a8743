"""Helpers of the console tests: a real ground segment (the simulator) behind the app.

Each test runs the real Backend (engine thread, archive file, commander) on the in-process
simulator of a few demo nodes, from a fixed start, so what the console shows comes from
the same pipeline as in operations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from groundctl.config import Config, demo_config_path, load_config
from groundctl.ui.backend import Backend

ROOT = Path(__file__).parents[2]
START = datetime(2026, 11, 29, tzinfo=UTC)


def demo_config(tmp_path: Path, extra: str = "") -> Config:
    """The demo config (absolute mission paths, archive in tmp_path) plus `extra` TOML."""
    text = demo_config_path().read_text()
    text = text.replace('path = "../missions/', f'path = "{ROOT}/data/missions/')
    text = text.replace('path = "groundctl.db"', f'path = "{tmp_path / "groundctl.db"}"')
    path = tmp_path / "groundctl.toml"
    path.write_text(text + "\n" + extra)
    return load_config(path)


def make_backend(
    tmp_path: Path,
    *,
    extra: str = "",
    operator: str = "alice",
    start: datetime = START,
    **sim_options: Any,
) -> Backend:
    """A Backend on the simulator (not started: the app starts it, or call start())."""
    options = {"speed": 10, "seed": 7, "nodes": "ODC-01,ODC-07", "start": start.isoformat()}
    options.update(sim_options)
    return Backend(
        demo_config(tmp_path, extra),
        tmp_path / "groundctl.db",
        sim=True,
        sim_options=options,
        operator=operator,
    )
