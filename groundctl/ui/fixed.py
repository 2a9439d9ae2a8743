"""A console over a finished simulation: the same picture on every run and machine.

For the screenshots (screenshots/generate.py) and the snapshot tests: the simulator of
two demo nodes runs from a fixed start with a fixed seed as fast as it can for a fixed
simulated time, then stops; each value's receive time is set to its packet time (the
engine stamps when it handed a value over, which depends on the machine), so the ages
and the clock the panes show are fixed.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from groundctl.config import Config
from groundctl.ui.backend import Backend

if TYPE_CHECKING:
    from textual.pilot import Pilot

    from groundctl.ui.app import ConsoleApp

START = datetime(2026, 11, 29, 0, 2, tzinfo=UTC)  # ODC-07 in a pass, ODC-01 about to be
SIMULATED_S = 600


def finished_backend(
    config: Config,
    archive: Path,
    *,
    operator: str = "alice",
    start: datetime = START,
    simulated_s: float = SIMULATED_S,
    timeout_s: float = 120.0,
) -> Backend:
    """A started Backend whose simulation (ODC-01 and ODC-07) has run and ended."""
    backend = Backend(
        config,
        archive,
        sim=True,
        sim_options={
            "speed": 0,
            "seed": 7,
            "nodes": "ODC-01,ODC-07",
            "start": start.isoformat(),
            "duration": simulated_s,
        },
        operator=operator,
    )
    backend.start()
    session = backend.session
    assert session is not None and session.engine is not None
    state = backend.state
    deadline = time.monotonic() + timeout_s

    def ended() -> bool:  # the link's last state, the last thing it publishes, is shown
        with state._lock:
            return any(
                e.kind == "link-state" and e.text.endswith("-> down") for _, e in state.events
            )

    while not (all(t.done() for t in session.engine._pumps.values()) and ended()):
        if time.monotonic() > deadline:
            backend.stop()
            raise TimeoutError("the simulation did not end")
        time.sleep(0.05)
    with state._lock:
        for key, value in state.values.items():
            state.values[key] = dataclasses.replace(value, received_s=value.time_s)
        state.clock_s = start.timestamp() + simulated_s
        state.lag_s = 0.0
    return backend


async def drawn(app: ConsoleApp, pilot: Pilot[None], timeout_s: float = 60.0) -> None:
    """Wait (polled, bounded) until every pane has drawn the fixed state; then put the
    events log at its first line and stop the inputs' cursors blinking, whose phase would
    depend on the moment."""
    from groundctl.ui.panes.commanding import CommandPane
    from groundctl.ui.panes.events import EventsPane
    from groundctl.ui.panes.fleet import FleetPane
    from groundctl.ui.panes.passes import PassesPane
    from groundctl.ui.panes.telemetry import TelemetryPane

    deadline = time.monotonic() + timeout_s
    screen = app.main_screen
    while not (
        app.started
        and screen.query_one(PassesPane).plan
        and screen.query_one(TelemetryPane).table.row_count
        and screen.query_one(CommandPane).loaded
        and (app.backend.replaying or screen.query_one(FleetPane).table.row_count)
    ):
        if time.monotonic() > deadline:
            raise TimeoutError("the console did not settle")
        await pilot.pause(0.1)
    await pilot.pause(0.5)  # a few refreshes: nothing left to change
    events = screen.query_one(EventsPane)
    events.rewrite()
    await pilot.pause(0.2)
    events.log_widget.scroll_home(animate=False, immediate=True)
    await still(pilot)


async def still(pilot: Pilot[None]) -> None:
    """No blinking cursors on the current screen."""
    from textual.widgets import Input

    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.pause(0.3)


async def confirm_dialog(app: ConsoleApp, pilot: Pilot[None], command: str) -> None:
    """Type a hazardous command in the commanding pane and open its confirmation."""
    from groundctl.ui.confirm import ConfirmCommand
    from groundctl.ui.panes.commanding import CommandPane

    await pilot.press("c")
    pane = app.main_screen.query_one(CommandPane)
    pane.query_one("Input").value = command
    await pilot.pause(0.3)  # checked as typed
    await pilot.press("enter")
    deadline = time.monotonic() + 30
    while not isinstance(app.screen, ConfirmCommand):
        if time.monotonic() > deadline:
            raise TimeoutError("no confirmation dialog")
        await pilot.pause(0.1)
    await still(pilot)
