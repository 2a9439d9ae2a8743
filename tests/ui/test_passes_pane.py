"""The Passes pane on the simulator: the plan in the table, countdowns, the live pass, and
the sky plot of the selected contact.

The oracle of the plan is the pass predictor and the planner run here, for the same
nodes and the same window as the simulator's own plan. Conditions are polled with a
timeout (simulated time runs at x10), never slept on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from testsupport import until
from ui_support import START, make_backend

from groundctl.config import demo_config_path, load_config
from groundctl.fleet import load_fleet
from groundctl.orbits.geometry import mask_elevation
from groundctl.orbits.model import Pass
from groundctl.orbits.passes import predict
from groundctl.orbits.plan import plan_contacts
from groundctl.orbits.track import look_angles_at
from groundctl.ui import app as app_module
from groundctl.ui.app import ConsoleApp
from groundctl.ui.panes.passes import PassesPane, pass_key, sky_canvas

NODES = ("ODC-01", "ODC-07")
CONFIG = load_config(demo_config_path())
STATIONS = {s.name: s for s in CONFIG.stations}


@functools.cache
def oracle_plan(start: datetime) -> list[Pass]:
    """The scheduled contacts the simulator plans when it starts at `start`: the same
    prediction window (30 min before the start to a day after it) and planner."""
    sats = load_fleet(CONFIG, now=start).satellites(list(NODES))
    begin = start - timedelta(minutes=30)
    prediction = predict(sats, CONFIG.stations, begin, begin + timedelta(hours=24.5), workers=1)
    planned = plan_contacts(prediction.passes, CONFIG.stations)
    return sorted((p for p in planned if p.scheduled), key=lambda p: p.aos)


def first_contact(node: str) -> Pass:
    return next(p for p in oracle_plan(START) if p.node == node and p.aos > START)


def lines_of(node: str) -> tuple[str, str]:
    sat = load_fleet(CONFIG, now=START).satellites([node])[0]
    return sat.line1, sat.line2


class Console(ConsoleApp):
    """The console, whose refreshes stop when a test is done with it: the app's refresh
    timer outlives the panes' widgets while the app shuts down (the panes are not under
    test then)."""

    CSS_PATH = str(Path(app_module.__file__).with_name("console.tcss"))
    done = False

    def refresh_panes(self) -> None:
        if not self.done:
            super().refresh_panes()


def run(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run an async test body with asyncio.run (the suite has no async plugin)."""

    @functools.wraps(fn)
    def sync(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return sync


@contextlib.asynccontextmanager
async def console(tmp_path, **sim_options: Any) -> AsyncIterator[tuple[Console, Any, PassesPane]]:
    """The console on the simulator at 160x45: (app, pilot, the Passes pane)."""
    backend = make_backend(tmp_path, **sim_options)
    app = Console(backend)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            try:
                yield app, pilot, app.main_screen.query_one(PassesPane)
            finally:
                app.done = True
    finally:
        await asyncio.to_thread(backend.stop)


def cells(pane: PassesPane, key: str) -> list[str]:
    return [str(c) for c in pane.table.get_row(key)]


def column(pane: PassesPane, name: str) -> int:
    return [c.key.value for c in pane.table.ordered_columns].index(name)


def braille_dots(lines: list[str]) -> set[tuple[int, int]]:
    """Lit dots (x, y) of braille text (other characters, the labels, are skipped)."""
    bits = {0x01: (0, 0), 0x02: (0, 1), 0x04: (0, 2), 0x40: (0, 3)}
    bits |= {0x08: (1, 0), 0x10: (1, 1), 0x20: (1, 2), 0x80: (1, 3)}
    dots = set()
    for row, line in enumerate(lines):
        for col, ch in enumerate(line):
            code = ord(ch) - 0x2800
            if not 0 <= code <= 0xFF:
                continue
            dots |= {(2 * col + dx, 4 * row + dy) for bit, (dx, dy) in bits.items() if code & bit}
    return dots


def near(dots: set[tuple[int, int]], point: tuple[int, int], within: float = 1.5) -> bool:
    return any(math.hypot(x - point[0], y - point[1]) <= within for x, y in dots)


def threshold(p: Pass, az: float) -> float:
    station = STATIONS[p.station]
    return max(station.min_elevation_deg, float(mask_elevation(az, station.horizon_mask)))


@run
async def test_table_lists_the_contacts_of_the_plan(tmp_path):
    async with console(tmp_path, start=START, speed=10) as (app, pilot, pane):
        await until(pilot, lambda: pane.plan, "the contact plan")
        clock = pane.clock_s
        expected = [p for p in oracle_plan(START) if p.los.timestamp() > clock]
        assert len(expected) > 20
        keys = [str(k.value) for k in pane.table.rows]
        assert keys == [pass_key(p) for p in expected]
        when, aos_col = column(pane, "when"), column(pane, "aos")
        in_view = pane.table.size.height - 1  # below the header, not scrolled
        assert in_view >= 8
        for i, p in enumerate(expected):
            row = cells(pane, pass_key(p))
            assert row[column(pane, "node")] == p.node
            assert row[column(pane, "station")] == p.station
            assert row[aos_col] == f"{p.aos:%H:%M:%S}"
            assert row[column(pane, "max")] == f"{p.max_elevation_deg:.0f}°"
            assert row[column(pane, "sun")] == ("yes" if p.sunlit else "no")
            if i >= in_view:  # countdowns are kept up to date for the rows in view
                continue
            if p.aos.timestamp() > clock:
                h, m, s = map(int, row[when].removeprefix("T-").split(":"))
                assert abs(h * 3600 + m * 60 + s - (p.aos.timestamp() - clock)) <= 1.0
            else:
                assert row[when].startswith("IN PASS")
        upcoming = next(p for p in expected if p.aos.timestamp() > clock)
        assert pane.next_text.startswith(f"next AOS {upcoming.node} at {upcoming.station} in ")
        # The default selection is the current or next contact, drawn in the sky plot.
        assert pane.selected == pass_key(expected[0])
        await until(pilot, lambda: pane.sky.pass_key == pane.selected and pane.sky.track, "plot")
        # A row scrolled into view shows the current countdown too.
        last = expected[-1]
        pane.table.move_cursor(row=len(expected) - 1)

        def last_is_current() -> bool:
            h, m, s = map(int, cells(pane, pass_key(last))[when].removeprefix("T-").split(":"))
            return abs(h * 3600 + m * 60 + s - (last.aos.timestamp() - pane.clock_s)) <= 1.0

        await until(pilot, lambda: pane.clock_s > clock + 5 and last_is_current(), "last row")

        # Usable at 80x24: one pane at a time, this one full width.
        await pilot.resize_terminal(80, 24)
        app.action_pane("p")
        await until(pilot, lambda: pane.size.width >= 78, "the pane full width")
        assert pane.table.size.height >= 5 and pane.sky.content_size.height >= 8
        assert pane.sky.lines and pane.next_text.startswith("next AOS")


@run
async def test_countdown_reaches_aos_and_the_live_pass_is_above_the_mask(tmp_path):
    contact = first_contact("ODC-01")
    start = contact.aos - timedelta(seconds=20)
    key = pass_key(contact)
    async with console(tmp_path, start=start.replace(microsecond=0), speed=10) as (_, pilot, pane):
        await until(pilot, lambda: key in pane._by_key, "the contact in the plan")
        when = column(pane, "when")
        before = cells(pane, key)[when]
        assert before.startswith("T-00:00:"), before
        assert pane.next_text.startswith(f"next AOS ODC-01 at {contact.station} in 00:00:")
        await until(pilot, lambda: cells(pane, key)[when].startswith("IN PASS"), "IN PASS")
        assert pane.clock_s >= contact.aos.timestamp()
        live = await until(pilot, lambda: pane.live.get(key), "the live look angles")
        az, el, rng = live
        station = STATIONS[contact.station]
        assert el >= station.min_elevation_deg
        assert el >= threshold(contact, az) - 0.01
        # The live point is the node's true position at the pane's clock.
        clock = pane.clock_s
        true_az, true_el, true_rng = look_angles_at(*lines_of("ODC-01"), station, np.array([clock]))
        assert abs(el - true_el[0]) < 0.2 and abs(rng - true_rng[0]) < 5.0
        assert abs((az - true_az[0] + 180) % 360 - 180) < 1.0
        assert "IN PASS" in cells(pane, key)[when]
        # The live line and the sky plot's marker follow the pass.
        await until(pilot, lambda: "az " in pane._live_text, "the live line")
        live_lines = pane._live_text.splitlines()
        assert any(line.startswith(f"ODC-01 {contact.station}  az ") for line in live_lines)
        # Selected (the default is the earliest contact not over: maybe another node's),
        # its sky plot marks where the node is.
        pane.table.move_cursor(row=pane.table.get_row_index(key))
        await until(pilot, lambda: pane.sky.pass_key == key and pane.sky.track, "its plot")
        await until(pilot, lambda: pane.sky.marker_dot is not None, "the node's marker")


@run
async def test_selecting_a_row_redraws_the_sky_plot_for_that_pass(tmp_path):
    async with console(tmp_path, start=START, speed=10) as (app, pilot, pane):
        await until(pilot, lambda: len(pane.plan) > 3, "the contact plan")
        first = pane.selected
        await until(pilot, lambda: pane.sky.pass_key == first and pane.sky.track, "plot 1")
        first_lines = list(pane.sky.lines)

        app.action_pane("p")
        await pilot.press("down", "down")
        chosen = pane.plan[2]
        key = pass_key(chosen)
        await until(pilot, lambda: pane.selected == key, "the selection")
        await until(pilot, lambda: pane.sky.pass_key == key and pane.sky.track, "plot 2")
        lines = pane.sky.lines
        assert lines != first_lines
        frame = pane.sky.frame
        background = braille_dots(sky_canvas(frame.width, frame.height).lines())
        track = braille_dots(lines) - background
        assert track
        # The track starts at the AOS azimuth on the station's threshold, ends at LOS.
        aos_el = threshold(chosen, chosen.aos_azimuth_deg)
        los_el = threshold(chosen, chosen.los_azimuth_deg)
        assert near(track, frame.dot(chosen.aos_azimuth_deg, aos_el))
        assert near(track, frame.dot(chosen.los_azimuth_deg, los_el))
        assert near(track, frame.dot(chosen.tca_azimuth_deg, chosen.max_elevation_deg))
        # No track dot is outside the circle of the pass's lowest elevation.
        radius = frame.radius * (90 - min(aos_el, los_el) + 1) / 90
        assert all(math.hypot(x - frame.cx, y - frame.cy) <= radius + 1 for x, y in track)
        caption = pane.query_one("#passes-caption")
        assert str(caption.render()).startswith(f"{chosen.node} {chosen.station}")
        # Not in the pass yet: no marker, and nothing to redraw while the clock runs.
        assert chosen.aos.timestamp() > pane.clock_s and pane.sky.marker is None
        draws, clock = pane.sky.draws, pane.clock_s
        await until(pilot, lambda: pane.clock_s > clock + 3, "a few refreshes")
        assert pane.sky.draws == draws

        # Back up: the first contact again.
        await pilot.press("up", "up")
        await until(pilot, lambda: pane.sky.pass_key == first, "plot 1 again")
        assert datetime.fromtimestamp(pane.clock_s, UTC) < START + timedelta(hours=1)
