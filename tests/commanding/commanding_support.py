"""Helpers of the commanding tests: configs written to disk, sessions on the simulator.

The simulator runs as a subprocess-free in-process link, but everything else is real:
the archive file, the engine, the commander, the node's flight-software-style command
checks. Times come from the contact plan, computed here with the pass predictor.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from testsupport import aio, rows  # noqa: F401  (re-exported for the tests here)

from groundctl.config import Config, demo_config_path, load_config
from groundctl.fleet import load_fleet
from groundctl.links.base import LinkContext
from groundctl.links.sim import SimLink
from groundctl.orbits.passes import predict
from groundctl.orbits.plan import plan_contacts
from groundctl.session import Session

ROOT = Path(__file__).parents[2]
START = datetime(2026, 11, 29, tzinfo=UTC)
KEY_HEX = "6a" * 16 + "5c" * 16  # 32 bytes


def write_config(tmp_path: Path, extra: str = "", name: str = "groundctl.toml") -> Config:
    """The demo config with absolute mission paths, plus `extra` TOML, loaded."""
    text = demo_config_path().read_text()
    text = text.replace('path = "../missions/', f'path = "{ROOT}/data/missions/')
    text = text.replace('path = "groundctl.db"', f'path = "{tmp_path / "groundctl.db"}"')
    path = tmp_path / name
    path.write_text(text + "\n" + extra)
    return load_config(path)


@functools.cache
def first_contact(node: str) -> Any:
    """The node's first scheduled contact after START (a Pass), from the pass predictor
    and the planner."""
    config = load_config(demo_config_path())
    sats = load_fleet(config, now=START).satellites([node])
    prediction = predict(
        sats, config.stations, START - timedelta(minutes=30), START + timedelta(hours=6)
    )
    plan = plan_contacts(prediction.passes, config.stations)
    return next(p for p in plan if p.scheduled and p.aos > START)


def sim_link(config: Config, *, start: datetime, speed: float, **options: Any) -> SimLink:
    link = SimLink(
        "sim",
        "fleet",
        {"speed": speed, "start": start.isoformat(), "seed": 7, **options},
    )
    link.bind(LinkContext(config=config))
    return link


async def session_for(
    config: Config, path: Path, link: SimLink, *, operator: str = "alice", role: str | None = None
) -> Session:
    session = Session(config, path, links=[link], operator=operator, role=role)
    await session.start()
    return session


async def until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Wait (wall clock) until `predicate()` holds, checking as the loop runs."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
