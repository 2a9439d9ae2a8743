"""The console in replay, driven with key presses over real replays.

Most tests replay the real cFS lab session (tests/fixtures/cfs) with its mission
database through the console's own Backend (engine thread, archive, commander); one
replays a pass the simulator flew into an archive (`groundctl sim`, once per module).
The oracles are the replay link's own account (frames delivered, recorded time, speed,
paused, finished, through `Backend.replay_status`), the recording itself, and what the
banner, the status bar and the panes show. Conditions are polled, never slept on; the
only waits are the short ones that check that nothing happens while paused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from testsupport import aio, rows, until
from textual.widgets import Input, Static
from ui_support import ROOT, demo_config

from groundctl.errors import CommandError
from groundctl.mdb.loader import load_mission
from groundctl.replay import SPEEDS, ReplaySource, resolve_source
from groundctl.session import REPLAY_DISABLED
from groundctl.ui.app import ConsoleApp, StatusBar
from groundctl.ui.backend import ALERTS_READ_ONLY, Backend, ReplayStatus, faster, slower
from groundctl.ui.fixed import drawn
from groundctl.ui.panes.alerts import AlertsPane, AlertTable
from groundctl.ui.panes.commanding import CommandPane
from groundctl.ui.panes.events import EventsPane
from groundctl.ui.panes.telemetry import TelemetryPane
from groundctl.ui.replay import ReplayBanner, SeekDialog, banner_text, parse_seek, recorded

SESSION = ROOT / "tests" / "fixtures" / "cfs" / "cfs-lab-session.jsonl"
CFS_LAB = ROOT / "data" / "missions" / "cfs-lab.toml"
RECORDS = [json.loads(line) for line in SESSION.read_text().splitlines() if line.strip()]
DOWN = [r["t"] for r in RECORDS if r["dir"] == "down"]  # downlink receive times
FIRST_S, LAST_S = RECORDS[0]["t"], RECORDS[-1]["t"]
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})?Z")


def first_at(time_s: float) -> int:
    """Index of the first downlink frame received at or after `time_s`."""
    return next(i for i, t in enumerate(DOWN) if t >= time_s)


@functools.cache
def cfs_lab() -> Any:
    return load_mission(CFS_LAB)


def cfs_source(tmp_path: Path) -> ReplaySource:
    return resolve_source(str(SESSION), archive_path=tmp_path / "none.db", node="cfs")


def cfs_backend(tmp_path: Path, source: ReplaySource | None = None, **options: Any) -> Backend:
    """The console's backend replaying the cFS session as node cfs (not started)."""
    return Backend(
        demo_config(tmp_path),
        tmp_path / "replay.db",
        replay=source or cfs_source(tmp_path),
        missions=({}, cfs_lab()),
        operator="alice",
        **options,
    )


class Console(ConsoleApp):
    """The console, with its refreshes stopped once a test is done with it."""

    done = False

    def refresh_panes(self) -> None:
        if not self.done:
            super().refresh_panes()


@contextlib.asynccontextmanager
async def console(
    backend: Backend, size: tuple[int, int] = (160, 45)
) -> AsyncIterator[tuple[Any, Console]]:
    """The console on `backend`, up and replaying; the backend is stopped after."""
    import asyncio

    app = Console(backend)
    try:
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.started, "the ground segment to start", 30)
            await until(pilot, lambda: status(app).running, "the replay to run")
            try:
                yield pilot, app
            finally:
                app.done = True
    finally:
        await asyncio.to_thread(backend.stop)


def status(app: ConsoleApp) -> ReplayStatus:
    return app.backend.replay_status


def banner(app: ConsoleApp) -> str:
    return app.main_screen.query_one(ReplayBanner).text


def banner_time(app: ConsoleApp) -> float:
    """The recorded time the banner shows."""
    shown = TIME.search(banner(app))
    assert shown, banner(app)
    return datetime.strptime(shown.group(), "%Y-%m-%d %H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def status_bar(app: ConsoleApp) -> str:
    return str(app.main_screen.query_one(StatusBar).content)


async def held(pilot: Any, app: ConsoleApp, seconds: float = 0.5) -> ReplayStatus:
    """The status after `seconds` of the app running, which must not have moved on."""
    before = status(app)
    await pilot.pause(seconds)
    after = status(app)
    assert (after.frames, after.time_s) == (before.frames, before.time_s)
    return after


# --- pure parts ------------------------------------------------------------------------------
def test_speeds_step_along_the_ladder_to_max_and_back():
    assert faster(1.0, SPEEDS) == 2.0
    assert slower(1.0, SPEEDS) == 0.5
    assert faster(3.0, SPEEDS) == 5.0  # a speed off the ladder: the next one on it
    assert slower(3.0, SPEEDS) == 2.0
    assert faster(1000.0, SPEEDS) == 0.0  # past the top: as fast as possible
    assert faster(0.0, SPEEDS) == 0.0
    assert slower(0.0, SPEEDS) == 1000.0
    assert slower(0.1, SPEEDS) == 0.1  # the bottom stays


def test_seek_takes_utc_times_and_relative_seconds():
    now = datetime(2026, 11, 24, 3, 24, 30, tzinfo=UTC).timestamp()
    assert parse_seek("2026-11-24T03:25:00Z", now) == now + 30
    assert parse_seek(" 2026-11-24T03:25:00 ", now) == now + 30  # no zone: UTC
    assert parse_seek("2026-11-24T04:25:00+01:00", now) == now + 30
    assert parse_seek("2026-11-24 03:24:00.5Z", now) == now - 29.5
    assert parse_seek("+30", now) == now + 30
    assert parse_seek("-1.5", now) == now - 1.5
    assert parse_seek("+5m", now) == now + 300
    assert parse_seek("- 1h", now) == now - 3600
    for bad in ("yesterday", "", "+", "30", "+30x", "2026-13-01T00:00Z"):
        with pytest.raises(ValueError, match="is not a time: give an ISO 8601 UTC time"):
            parse_seek(bad, now)


def test_banner_text_says_where_the_replay_is():
    at = datetime(2026, 11, 24, 3, 24, 13, 437000, tzinfo=UTC).timestamp()
    running = ReplayStatus("pass 1: ODC-07", at, 10.0, False, False, 42, running=True)
    assert banner_text(running).plain == (
        " REPLAY   2026-11-24 03:24:13.437Z  x10  frames 42  pass 1: ODC-07"
    )
    paused = dataclasses.replace(running, paused=True, speed=0.25)
    assert "x0.25   PAUSED   frames 42" in banner_text(paused).plain
    ended = dataclasses.replace(running, paused=True, finished=True, speed=0.0)
    assert "max   ended   frames 42" in banner_text(ended).plain
    assert "PAUSED" not in banner_text(ended).plain
    starting = ReplayStatus("pass 1: ODC-07", float("nan"), 1.0, False, False, 0)
    assert banner_text(starting).plain == " REPLAY   starting  pass 1: ODC-07"
    assert recorded(at) == "2026-11-24 03:24:13.437Z"


# --- the console replaying the cFS session ---------------------------------------------------
@aio
async def test_banner_and_status_bar_show_the_recorded_time_not_the_wall_clock(tmp_path):
    backend = cfs_backend(tmp_path)
    async with console(backend) as (pilot, app):
        await until(pilot, lambda: status(app).frames >= 3, "frames replayed")
        await until(pilot, lambda: "frames" in banner(app), "the banner to show the replay")
        text = banner(app)
        assert text.startswith(" REPLAY ")
        assert f"recording {SESSION} as node cfs" in text
        assert "  x1  " in text and "PAUSED" not in text and "ended" not in text
        shown = banner_time(app)
        assert FIRST_S <= shown <= LAST_S  # the recording's minute, not today's time
        # the status bar's clock (and the panes') is the recorded time too
        clock = TIME.search(status_bar(app))
        assert clock, status_bar(app)
        clock_s = datetime.strptime(clock.group(), "%Y-%m-%d %H:%M:%SZ")
        assert int(FIRST_S) <= clock_s.replace(tzinfo=UTC).timestamp() <= LAST_S
        telemetry = app.main_screen.query_one(TelemetryPane)
        await until(pilot, lambda: telemetry.table.row_count, "decoded values of node cfs")
        assert telemetry.node == "cfs"
        # the footer lists the replay's keys
        footer = {key for key, b in app.active_bindings.items() if b.binding.show}
        assert {"space", "full_stop", "plus", "minus", "m", "g"} <= footer


@aio
async def test_commanding_and_alert_acknowledgement_are_disabled(tmp_path):
    backend = cfs_backend(tmp_path)
    notes: list[tuple[Any, ...]] = []
    async with console(backend) as (pilot, app):
        pane = app.main_screen.query_one(CommandPane)
        line = pane.command_input
        assert line.disabled
        await pilot.press("c")  # the command line cannot take the focus
        assert not line.has_focus
        await pilot.press(*"cfs")
        assert line.value == ""
        check = str(pane.query_one("#cmd-check", Static).content)
        assert check == REPLAY_DISABLED
        assert "disabled" in str(pane.border_subtitle)
        # the engine refuses too, whatever the console asks
        with pytest.raises(CommandError, match="commanding is disabled during replay"):
            await backend.issue("cfs ES_NOOP")
        # alerts: neither acknowledged nor shelved, with a notice and no dialog
        alerts = app.main_screen.query_one(AlertsPane)
        original = alerts.notify
        alerts.notify = lambda *a, **k: notes.append((a, k)) or original(*a, **k)  # type: ignore[method-assign]
        alerts.table.post_message(AlertTable.Requested("acknowledge", None))
        alerts.table.post_message(AlertTable.Requested("shelve", None))
        await until(pilot, lambda: len(notes) == 2, "two notices")
        assert all(args[0] == ALERTS_READ_ONLY for args, _ in notes)
        assert app.screen is app.main_screen
        with pytest.raises(CommandError, match="cannot be acknowledged or shelved"):
            await backend.acknowledge(1, "seen")
        assert "replay: read-only" in str(alerts.border_subtitle)
    assert rows(tmp_path / "replay.db", "SELECT count(*) FROM commands") == [(0,)]


@aio
async def test_space_pauses_and_resumes_and_full_stop_steps_one_frame(tmp_path):
    backend = cfs_backend(tmp_path)
    async with console(backend) as (pilot, app):
        await until(pilot, lambda: status(app).frames >= 3, "frames replayed")
        await pilot.press("space")
        await until(pilot, lambda: status(app).paused, "the replay to pause")
        paused = await held(pilot, app)  # no frame, and the recorded time stands
        assert "PAUSED" in banner(app)
        assert banner_time(app) == pytest.approx(paused.time_s, abs=0.001)

        await pilot.press("full_stop")
        await until(pilot, lambda: status(app).frames == paused.frames + 1, "one frame")
        stepped = await held(pilot, app, 0.4)
        assert stepped.paused and stepped.frames == paused.frames + 1
        assert stepped.time_s == DOWN[paused.frames]  # that frame's recorded time
        await pilot.press("full_stop", "full_stop")
        await until(pilot, lambda: status(app).frames == paused.frames + 3, "two frames")
        assert (await held(pilot, app, 0.4)).frames == paused.frames + 3

        await pilot.press("space")
        await until(pilot, lambda: not status(app).paused, "the replay to resume")
        await until(pilot, lambda: status(app).frames > paused.frames + 3, "frames again")
        assert "PAUSED" not in banner(app)


@aio
async def test_speed_keys_walk_the_ladder_and_m_toggles_max(tmp_path):
    backend = cfs_backend(tmp_path, replay_paused=True)
    async with console(backend) as (pilot, app):
        for key, speed, shown in [
            ("plus", 2.0, "x2"),
            ("equals_sign", 5.0, "x5"),
            ("minus", 2.0, "x2"),
            ("minus", 1.0, "x1"),
            ("minus", 0.5, "x0.5"),
            ("m", 0.0, "max"),
            ("minus", 1000.0, "x1000"),
            ("plus", 0.0, "max"),
            ("m", 0.5, "x0.5"),  # back to the speed before max
        ]:
            await pilot.press(key)
            await until(pilot, lambda s=speed: status(app).speed == s, f"speed {speed:g}")
            await until(pilot, lambda s=shown: f"  {s}  " in banner(app), f"{shown} shown")
        assert backend.replay_link is not None and backend.replay_link.speed == 0.5
        assert status(app).frames == 0  # paused throughout


@aio
async def test_g_seeks_to_a_utc_time_or_relative_seconds(tmp_path):
    backend = cfs_backend(tmp_path, replay_paused=True)
    async with console(backend) as (pilot, app):
        start = status(app).time_s
        assert FIRST_S <= start <= DOWN[0]

        async def seek(text: str) -> Input:
            await pilot.press("g")
            dialog = await until(
                pilot, lambda: isinstance(app.screen, SeekDialog) and app.screen, "the dialog"
            )
            field = dialog.query_one(Input)
            field.value = ""
            await pilot.press(*text, "enter")
            return field

        field = await seek("yesterday")  # one clear message, the dialog stays
        error = str(app.screen.query_one("#dialog-error", Static).content)
        assert error.startswith("'yesterday' is not a time: give an ISO 8601 UTC time")
        assert isinstance(app.screen, SeekDialog) and field.value == "yesterday"
        field.value = ""
        await pilot.press(*"+30", "enter")  # typed in the dialog: '+' does not speed up
        await until(pilot, lambda: app.screen is app.main_screen, "the dialog to close")
        await until(pilot, lambda: status(app).time_s == pytest.approx(start + 30), "+30 s")
        assert status(app).speed == 1.0 and status(app).paused
        await until(pilot, lambda: banner_time(app) == pytest.approx(start + 30, abs=1e-3), "")
        await pilot.press("full_stop")
        await until(pilot, lambda: status(app).frames == 1, "the frame after the seek")
        assert status(app).time_s == DOWN[first_at(start + 30)]

        back = FIRST_S + 5
        iso = datetime.fromtimestamp(back, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        await seek(iso)  # back, to a UTC time
        await until(pilot, lambda: app.screen is app.main_screen, "the dialog to close")
        await until(pilot, lambda: status(app).time_s == pytest.approx(back), "the time sought")
        await pilot.press("full_stop")
        await until(pilot, lambda: status(app).frames == 2, "the frame there")
        there = first_at(back)
        assert backend.replay_link is not None
        assert backend.replay_link.position_s == DOWN[there]
        # (after a seek back, the link's clock is that frame's time or the next one's)
        assert DOWN[there] <= status(app).time_s <= DOWN[there + 1]
        stood = status(app).time_s

        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, SeekDialog), "the dialog")
        await pilot.press(*"-3", "escape")  # Esc: no seek
        await until(pilot, lambda: app.screen is app.main_screen, "the dialog to close")
        assert (await held(pilot, app, 0.3)).time_s == stood


@aio
async def test_replay_keys_do_not_fire_while_typing_in_an_input(tmp_path):
    backend = cfs_backend(tmp_path)
    async with console(backend) as (pilot, app):
        events = app.main_screen.query_one(EventsPane)
        await pilot.press("e", "slash")
        await until(pilot, lambda: events.filter_input.has_focus, "the filter line")
        typed = " .+=-mg"
        await pilot.press(*[{" ": "space"}.get(c, c) for c in typed])
        assert events.filter_input.value == typed
        assert app.screen is app.main_screen  # no seek dialog
        now = status(app)
        assert not now.paused and now.speed == 1.0
        await pilot.press("escape")  # the filter cleared, the log focused: keys work again
        await until(pilot, lambda: not events.filter_input.has_focus, "the log focused")
        await pilot.press("space")
        await until(pilot, lambda: status(app).paused, "the replay to pause")
        # in the Telemetry pane too (where space would plot): one key, one meaning
        await pilot.press("t", "space")
        await until(pilot, lambda: not status(app).paused, "the replay to resume")


@aio
async def test_the_end_of_the_recording_shows_ended_and_the_console_stays(tmp_path):
    backend = cfs_backend(tmp_path)
    async with console(backend) as (pilot, app):
        await pilot.press("m")  # as fast as possible
        await until(pilot, lambda: status(app).finished, "the end of the recording")
        await until(pilot, lambda: "ended" in banner(app), "ended shown")
        end = await held(pilot, app, 0.4)  # the recorded time stops at the last frame
        assert end.frames == len(DOWN) == 560
        assert end.time_s == DOWN[-1]
        assert banner_time(app) == pytest.approx(DOWN[-1], abs=1e-3)
        assert f"  max   ended   frames {len(DOWN)}" in banner(app)
        await until(pilot, lambda: recorded(DOWN[-1])[:19] in status_bar(app), "end clock")
        # the panes keep what they showed
        assert app.is_running and app.screen is app.main_screen
        assert app.main_screen.query_one(TelemetryPane).table.row_count
        # a seek after the end replays again from there
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, SeekDialog), "the dialog")
        await pilot.press(*"-10", "enter")
        again = len(DOWN) - first_at(DOWN[-1] - 10)
        await until(pilot, lambda: status(app).frames == len(DOWN) + again, "replayed again")
        await until(pilot, lambda: status(app).finished, "the end again")
        assert status(app).time_s == DOWN[-1]


@aio
async def test_the_clock_stops_at_the_end_of_the_recording(tmp_path):
    """In real time past the end, the recorded time (the engine's clock too, which
    checks staleness) stays at the last frame: no stale alerts the recording never had."""
    near_end = DOWN[-1] - 1.0
    backend = cfs_backend(tmp_path, replay_seek_s=near_end)
    async with console(backend) as (pilot, app):
        await until(pilot, lambda: status(app).finished, "the end of the recording")
        end = await held(pilot, app, 1.0)
        assert end.time_s == DOWN[-1] and end.speed == 1.0
        assert end.frames == len(DOWN) - first_at(near_end)
        assert backend.session is not None and backend.session.engine is not None
        assert backend.session.engine.clock() == DOWN[-1]
        assert f"  x1   ended   frames {end.frames}" in banner(app)


# --- a pass the simulator flew ---------------------------------------------------------------
@pytest.fixture(scope="module")
def flown_archive(tmp_path_factory) -> Path:
    """An archive with an hour of ODC-07 simulated, as `groundctl sim` records it."""
    folder = tmp_path_factory.mktemp("flown")
    archive = folder / "flown.db"
    subprocess.run(
        [
            sys.executable, "-m", "groundctl", "--archive", str(archive), "sim",
            "--speed", "0", "--duration", "3600", "--start", "2026-11-29T00:00:00Z",
            "--nodes", "ODC-07",
        ],
        cwd=folder, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return archive


@aio
async def test_a_flown_pass_replays_from_its_aos_to_its_end(tmp_path, flown_archive):
    source = resolve_source("1", archive_path=flown_archive)
    flown = source.flown
    assert flown is not None and flown["node"] == "ODC-07"
    [(frames,)] = rows(flown_archive, "SELECT count(*) FROM frames WHERE pass_id = 1")
    backend = Backend(demo_config(tmp_path), tmp_path / "replay.db", replay=source, replay_speed=10)
    async with console(backend) as (pilot, app):
        await until(pilot, lambda: status(app).frames > 0, "frames replayed")
        assert "pass 1: ODC-07 at Weilheim" in banner(app)
        assert flown["aos"] <= banner_time(app) <= flown["los"]
        assert "ODC-07" in backend.nodes() and "archive" not in backend.nodes()
        await pilot.press("m")
        await until(pilot, lambda: status(app).finished, "the end of the pass", 60)
        assert status(app).frames == frames
        assert flown["aos"] <= status(app).time_s <= flown["los"]
        await until(pilot, lambda: "ended" in banner(app), "ended shown")


# --- the banner, drawn ------------------------------------------------------------------------
STEPS = 40  # frames stepped through, paused, before the picture


def stepped_backend(tmp_path: Path) -> Backend:
    """The cFS replay paused after its first STEPS frames, each value's age fixed."""
    source = ReplaySource(
        "recording cfs-lab-session.jsonl as node cfs", {"file": str(SESSION)}, "cfs", "file"
    )
    backend = cfs_backend(tmp_path, source, replay_paused=True)
    backend.start()

    async def step() -> None:
        for _ in range(STEPS):
            await backend.replay_step()

    backend.submit(step()).result(30)
    state = backend.state
    deadline = time.monotonic() + 30

    def settled() -> bool:
        with state._lock:
            return backend.replay_status.frames == STEPS and state.clock_s == DOWN[STEPS - 1]

    while not settled():
        if time.monotonic() > deadline:
            backend.stop()
            raise TimeoutError("the replay did not step")
        time.sleep(0.05)
    time.sleep(0.3)  # the coalesced samples' last look
    with state._lock:  # ages from the recorded time reached, whenever each was applied
        for key, value in state.values.items():
            state.values[key] = dataclasses.replace(value, received_s=DOWN[STEPS - 1])
    return backend


@pytest.fixture
def stepped(tmp_path):
    backend = stepped_backend(tmp_path)
    yield backend
    backend.stop()


def test_replay_banner_160x45(snap_compare, stepped):
    app = ConsoleApp(stepped)
    assert snap_compare(app, terminal_size=(160, 45), run_before=lambda p: drawn(app, p))
