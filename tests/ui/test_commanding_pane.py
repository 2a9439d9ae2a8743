"""The Commanding pane on the simulator, driven with key presses.

Completion with Tab, the check as the line is typed, sending with Enter, the confirmation
box of hazardous commands, the history as stages arrive, and the store-and-forward queue
with its next contact and `x` to cancel; other consoles' commands (shared operations, over
an in-process channel) under their ref (`ops-2#1`). The oracles are the archive file (its commands,
command_stages and audit tables, read with sqlite3) and what the node itself reports
(COMMS_HK.CMD_COUNT). ODC-01 is always in contact unless the test gates the simulator.
Conditions are polled with a timeout, never slept on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from testsupport import aio, rows
from textual import events
from textual.widgets import Static
from ui_support import START, demo_config, make_backend

from groundctl.commanding.syntax import parse, validate
from groundctl.errors import CommandError
from groundctl.fleet import load_fleet
from groundctl.operations import OperationsError, RemoteCommand, SharedOperations, decode, encode
from groundctl.orbits.passes import predict
from groundctl.orbits.plan import plan_contacts
from groundctl.ui.app import ConsoleApp
from groundctl.ui.backend import Backend
from groundctl.ui.confirm import ConfirmCommand
from groundctl.ui.panes.commanding import CommandPane, countdown, release_text
from groundctl.ui.state import CommandView

DIRECTOR = '[operators]\nalice = "flight-director"\n'


async def until(predicate: Callable[[], Any], what: str, timeout_s: float = 15.0) -> Any:
    end = time.monotonic() + timeout_s
    while not (result := predicate()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return result


@functools.cache
def first_contact_aos(tmp: str) -> datetime:
    """ODC-01's first planned contact after START (pass predictor and planner)."""
    config = demo_config(Path(tmp))
    sats = load_fleet(config, now=START).satellites(["ODC-01"])
    prediction = predict(
        sats, config.stations, START - timedelta(minutes=30), START + timedelta(hours=6)
    )
    plan = plan_contacts(prediction.passes, config.stations)
    return next(p.aos for p in plan if p.scheduled and p.aos > START)


class Console(ConsoleApp):
    """The console, with its refreshes stopped once a test is done with it: the app's
    refresh timer may still fire while Textual takes the panes down."""

    done = False

    def refresh_panes(self) -> None:
        if not self.done:
            super().refresh_panes()


@contextlib.asynccontextmanager
async def console(
    backend: Backend, size: tuple[int, int] = (160, 45)
) -> AsyncIterator[tuple[Any, CommandPane]]:
    """The console on `backend`, up, with the command line focused; stopped after."""
    app = Console(backend)
    try:
        async with app.run_test(size=size) as pilot:
            await until(lambda: app.started, "the ground segment to start", 30)
            app.action_pane("c")
            pane = app.main_screen.query_one(CommandPane)
            await until(lambda: pane.command_input.has_focus, "the command line to have focus")
            try:
                yield pilot, pane
            finally:
                app.done = True
    finally:
        await asyncio.to_thread(backend.stop)


def check_line(pane: CommandPane) -> str:
    return str(pane.query_one("#cmd-check", Static).content)


def hint_line(pane: CommandPane) -> str:
    return str(pane.query_one("#cmd-hint", Static).content)


def history_stage(pane: CommandPane, ref: int | str) -> str:
    """The history's stage of command `ref` (this console's id, or `ops-2#12`)."""
    table = pane.history
    key = str(ref)
    return table.get_cell(key, "stage").plain if key in table.rows else ""


async def type_line(pilot: Any, text: str) -> None:
    """Type `text` key by key."""
    await pilot.press(*text)


async def paste(pilot: Any, text: str) -> None:
    """Paste `text` into the focused widget (one event, not one per key)."""
    pilot.app.focused.post_message(events.Paste(text))
    await pilot.pause()


def test_release_text_and_countdown():
    aos = START.timestamp() + 600
    waiting = CommandView(
        3, "ODC-01", "ODC-01 NOOP", "queued", "waiting for contact: next AOS x", 0.0, aos
    )
    assert release_text(waiting, None, START.timestamp()) == "next contact 00:10:00Z (in 10m 00s)"
    tagged = CommandView(4, "ODC-01", "ODC-01 NOOP", "queued", "", 0.0, aos)
    assert release_text(tagged, "time", aos + 5) == "time tag 00:10:00Z (due)"
    assert release_text(tagged, None, aos - 42).startswith("time tag")
    tag = CommandView(6, "ODC-01", "ODC-01 NOOP", "queued", "waiting for its time tag x", 0.0, aos)
    assert release_text(tag, None, aos - 42) == "time tag 00:10:00Z (in 42s)"
    behind = CommandView(7, "ODC-01", "ODC-01 NOOP", "queued", "waiting behind command 6", 0.0)
    assert release_text(behind, "aos", 0.0) == "after #6"
    now = CommandView(5, "ODC-01", "ODC-01 NOOP", "queued", "", 0.0)
    assert release_text(now, None, 0.0) == "now"
    down = CommandView(
        8, "ODC-01", "ODC-01 NOOP", "queued", "waiting for contact (link sim is down)", 0.0
    )
    assert release_text(down, None, 0.0) == "next contact unknown (link sim is down)"
    assert countdown(3 * 3600 + 5 * 60) == "in 3h 05m"


@aio
async def test_tab_completes_nodes_commands_and_enumeration_values(tmp_path):
    backend = make_backend(tmp_path, gate=False, speed=20, nodes="ODC-01", extra=DIRECTOR)
    async with console(backend) as (pilot, pane):
        line = pane.command_input
        # ODC-01 is simulated, ODC-07 configured: both are nodes the console knows
        await type_line(pilot, "ODC-0")
        await pilot.press("tab")
        assert line.value == "ODC-0"
        await until(lambda: "ODC-01  ODC-07" in hint_line(pane), "the node candidates")
        assert line.has_focus  # Tab completed; it did not move the focus
        await pilot.press("1", "tab")
        assert line.value == "ODC-01 "
        await type_line(pilot, "SET_PO")
        # the ghost text shows what Tab gives; Right would take it too
        await until(lambda: line._suggestion == "ODC-01 SET_POWER_MODE ", "the suggestion")
        await pilot.press("tab")
        assert line.value == "ODC-01 SET_POWER_MODE "
        await pilot.press("tab")
        assert line.value == "ODC-01 SET_POWER_MODE mode="
        await pilot.press("tab")  # four states: the list, the line unchanged
        assert line.value == "ODC-01 SET_POWER_MODE mode="
        await until(
            lambda: hint_line(pane) == "values: SAFE  ECO  NOMINAL  PERFORMANCE", "the values"
        )
        await pilot.press("N", "tab")
        assert line.value == "ODC-01 SET_POWER_MODE mode=NOMINAL "
        await until(lambda: check_line(pane).startswith("ok: SET_POWER_MODE"), "the green check")
        # Right takes the suggestion as well
        line.value = "ODC-01 NO"
        await until(lambda: line._suggestion == "ODC-01 NOOP ", "the NOOP suggestion")
        await pilot.press("right")
        assert line.value == "ODC-01 NOOP "


@aio
async def test_an_invalid_line_shows_the_precise_error_and_enter_sends_nothing(tmp_path):
    path = tmp_path / "groundctl.db"
    backend = make_backend(tmp_path, gate=False, speed=20, nodes="ODC-01", extra=DIRECTOR)
    async with console(backend) as (pilot, pane):
        text = "ODC-01 SET_POWER_MODE mode=TURBO"
        with pytest.raises(CommandError) as refused:
            validate(parse(text), backend.mission_of("ODC-01"))
        message = refused.value.message
        assert "TURBO" in message and "SAFE, ECO, NOMINAL, PERFORMANCE" in message
        await paste(pilot, text)
        await until(lambda: check_line(pane).startswith(message), "the error under the line")
        await pilot.press("enter")
        assert pane.command_input.value == text  # kept, to be corrected
        assert check_line(pane).startswith(message)
        # the next, valid, command is the first and only one the archive holds
        pane.command_input.value = ""
        await type_line(pilot, "ODC-01 NOOP")
        await pilot.press("enter")
        await until(lambda: rows(path, "SELECT text FROM commands"), "the NOOP archived")
        assert rows(path, "SELECT text FROM commands") == [("ODC-01 NOOP",)]
        assert not rows(path, "SELECT * FROM audit WHERE action = 'denied'")


@aio
async def test_a_noop_sent_with_enter_goes_through_its_stages_to_completed(tmp_path):
    path = tmp_path / "groundctl.db"
    backend = make_backend(tmp_path, gate=False, speed=20, nodes="ODC-01", extra=DIRECTOR)
    async with console(backend) as (pilot, pane):
        await until(lambda: ("ODC-01", "COMMS_HK.CMD_COUNT") in backend.state.values, "COMMS_HK")
        before = backend.state.values[("ODC-01", "COMMS_HK.CMD_COUNT")].value
        await type_line(pilot, "ODC-01 NOOP")
        await until(lambda: check_line(pane).startswith("ok: NOOP"), "the green check")
        await pilot.press("enter")
        [(command_id,)] = await until(lambda: rows(path, "SELECT id FROM commands"), "archived")
        await until(lambda: pane.command_input.value == "", "the line cleared once sent")
        assert check_line(pane).startswith(f"#{command_id} ODC-01 NOOP")
        await until(lambda: history_stage(pane, command_id) == "completed", "completed", 20)
        detail = pane.history.get_cell(str(command_id), "detail").plain
        assert "NOOP received" in detail
        # the archive: completed, every stage in order; the node counted it
        await until(
            lambda: rows(path, "SELECT status FROM commands") == [("completed",)], "archived"
        )
        stages = [s for (s,) in rows(path, "SELECT stage FROM command_stages ORDER BY id")]
        assert stages[0] == "queued" and stages[-3:] == ["sent", "accepted", "completed"]
        await until(
            lambda: backend.state.values[("ODC-01", "COMMS_HK.CMD_COUNT")].value == before + 1,
            "CMD_COUNT to count the NOOP",
        )
        assert pane.queue.row_count == 0
        # Enter on the history row puts its line back in the input; Up recalls it too
        pane.history.focus()
        await pilot.press("enter")
        assert pane.command_input.value == "ODC-01 NOOP" and pane.command_input.has_focus
        pane.command_input.value = ""
        await pilot.press("up")
        assert pane.command_input.value == "ODC-01 NOOP"


@aio
async def test_a_hazardous_command_is_sent_only_once_its_name_is_typed(tmp_path):
    path = tmp_path / "groundctl.db"
    backend = make_backend(tmp_path, gate=False, speed=20, nodes="ODC-01", extra=DIRECTOR)
    async with console(backend) as (pilot, pane):
        app = pane.app
        await paste(pilot, "ODC-01 SAFE_MODE")
        await until(
            lambda: check_line(pane).startswith("hazardous: you will be asked to confirm"),
            "the hazard warning",
        )
        await pilot.press("enter")
        box = await until(
            lambda: app.screen if isinstance(app.screen, ConfirmCommand) else None, "the box"
        )
        assert "type SAFE_MODE to confirm" in str(box.query_one("#confirm-prompt", Static).content)
        assert "safe mode" in str(box.query_one("#confirm-description", Static).content)
        # the wrong name: the box stays, nothing is sent
        await paste(pilot, "SAFE")
        await pilot.press("enter")
        assert app.screen is box
        assert "is not SAFE_MODE" in str(box.query_one("#confirm-error", Static).content)
        # Esc: cancelled, nothing sent
        await pilot.press("escape")
        await until(lambda: not isinstance(app.screen, ConfirmCommand), "the box to close")
        assert "not sent" in check_line(pane)
        assert rows(path, "SELECT count(*) FROM commands") == [(0,)]
        # again, with the name typed: sent, confirmed, audited
        await pilot.press("enter")
        box = await until(
            lambda: app.screen if isinstance(app.screen, ConfirmCommand) else None, "the box"
        )
        await type_line(pilot, "SAFE_MODE")
        await pilot.press("enter")
        await until(lambda: not isinstance(app.screen, ConfirmCommand), "the box to close")
        [(command_id, text, hazardous, confirmed)] = await until(
            lambda: rows(path, "SELECT id, text, hazardous, confirmed FROM commands"), "archived"
        )
        assert (text, hazardous, confirmed) == ("ODC-01 SAFE_MODE", 1, 1)
        assert rows(
            path, "SELECT operator, role FROM audit WHERE action = 'confirm' AND command_id = ?",
            command_id,
        ) == [("alice", "flight-director")]  # fmt: skip
        await until(lambda: history_stage(pane, command_id), "the command in the history")


@aio
async def test_an_operator_may_not_send_a_hazardous_command(tmp_path):
    path = tmp_path / "groundctl.db"
    backend = make_backend(tmp_path, gate=False, speed=20, nodes="ODC-01", operator="bob")
    async with console(backend) as (pilot, pane):
        await paste(pilot, "ODC-01 REBOOT")
        await until(
            lambda: "bob (operator) may not send hazardous commands" in check_line(pane),
            "the role refusal",
        )
        await pilot.press("enter")  # no box: the commander refuses it, and audits that
        await until(
            lambda: rows(path, "SELECT operator FROM audit WHERE action = 'denied'"), "denied"
        )
        assert not isinstance(pane.app.screen, ConfirmCommand)
        assert rows(path, "SELECT count(*) FROM commands") == [(0,)]
        assert "may not send hazardous commands" in check_line(pane)


@aio
async def test_out_of_contact_a_command_waits_in_the_queue_and_x_cancels_it(tmp_path):
    path = tmp_path / "groundctl.db"
    aos = first_contact_aos(str(tmp_path))
    backend = make_backend(
        tmp_path,
        gate=True,
        start=aos - timedelta(minutes=25),
        speed=20,
        nodes="ODC-01",
        extra=DIRECTOR,
    )
    async with console(backend) as (pilot, pane):
        await type_line(pilot, "ODC-01 NOOP")
        await pilot.press("enter")
        [(command_id,)] = await until(lambda: rows(path, "SELECT id FROM commands"), "archived")
        queue = pane.queue

        def release() -> str:
            key = str(command_id)
            return queue.get_cell(key, "release").plain if key in queue.rows else ""

        shown = await until(lambda: re.search(r"next contact (\d\d:\d\d:\d\d)Z", release()), "AOS")
        expected = aos.replace(microsecond=0)
        at = datetime.combine(aos.date(), datetime.strptime(shown.group(1), "%H:%M:%S").time(), UTC)
        assert abs((at - expected).total_seconds()) <= 2, release()
        assert queue.display and "1 waiting" in str(
            pane.query_one("#cmd-queue-title", Static).content
        )
        assert history_stage(pane, command_id) == "queued"
        # x on the queued row: cancelled in the archive, gone from the queue
        queue.focus()
        await pilot.press("x")
        await until(
            lambda: rows(path, "SELECT status FROM commands") == [("cancelled",)], "cancelled"
        )
        await until(lambda: queue.row_count == 0, "the queue to empty")
        await until(lambda: history_stage(pane, command_id) == "cancelled", "the history")
        assert not queue.display
        assert rows(path, "SELECT count(*) FROM frames WHERE direction = 'up'") == [(0,)]


@aio
async def test_commands_of_earlier_runs_are_loaded_from_the_archive(tmp_path):
    path = tmp_path / "groundctl.db"
    aos = first_contact_aos(str(tmp_path))
    start = aos - timedelta(minutes=25)
    # an earlier run, without the console: a command queued for the next contact
    earlier = make_backend(tmp_path, gate=True, start=start, speed=20, nodes="ODC-01")
    await asyncio.to_thread(earlier.start)
    try:
        await earlier.issue("ODC-01 SET_THROTTLE level=LOW")
        await until(
            lambda: rows(path, "SELECT release_at FROM commands")[0][0] is not None, "its AOS"
        )
    finally:
        await asyncio.to_thread(earlier.stop)
    backend = make_backend(tmp_path, gate=True, start=start, speed=20, nodes="ODC-01")
    async with console(backend, size=(80, 24)) as (pilot, pane):
        assert pane.display and pane.has_class("-current")  # narrow: the pane alone
        await until(lambda: history_stage(pane, 1) == "queued", "the earlier command")
        assert pane.history.get_cell("1", "command").plain == "ODC-01 SET_THROTTLE level=LOW"
        await until(lambda: pane.queue.row_count == 1, "the queue")
        assert pane.queue.get_cell("1", "release").plain.startswith("next contact")
        pane.queue.focus()
        await pilot.press("delete")
        await until(
            lambda: rows(path, "SELECT status FROM commands") == [("cancelled",)], "cancelled"
        )
        await until(lambda: history_stage(pane, 1) == "cancelled", "the history")


class Channel:
    """The shared-operations channel of one console, in-process: what it sends is kept
    (decoded); the test delivers the other consoles' documents itself."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []  # kind, to, document

    async def open(self, console: str, deliver: Callable[[str, str, bytes], None]) -> None:
        pass

    def send(self, kind: str, payload: bytes, to: str = "") -> None:
        self.sent.append((kind, to, decode(payload)))

    async def close(self) -> None:
        pass


async def share(backend: Backend, channel: Channel) -> SharedOperations:
    """Shared operations as console ops-1 on the running `backend` (stopped with it)."""

    async def run() -> SharedOperations:
        session = backend.session
        assert session is not None and session.engine is not None and session.commander
        shared = SharedOperations(session.engine, session.commander, "ops-1", channel)
        await shared.start()
        session.operations = shared
        return shared

    return await backend.call(run())


async def from_console(
    backend: Backend, shared: SharedOperations, kind: str, console: str, body: dict[str, Any]
) -> None:
    """A document from another console, delivered on the engine's loop (as a channel does)."""

    async def run() -> None:
        shared.deliver(kind, console, encode(kind, console, body))

    await backend.call(run())


@aio
async def test_another_consoles_queued_command_is_queued_under_its_ref_until_sent(tmp_path):
    backend = make_backend(tmp_path, gate=False, speed=20, nodes="ODC-01", extra=DIRECTOR)
    await asyncio.to_thread(backend.start)
    try:
        # without shared operations: no remote commands, and a cancel says why not
        assert backend.remote_queued() == []
        with pytest.raises(OperationsError, match=r"ops-2#1 not cancelled.*not configured"):
            await backend.cancel_remote("ops-2", 1, "test")
        channel = Channel()
        shared = await share(backend, channel)
        local = await backend.issue("ODC-01 NOOP")
        assert local.command_id == 1  # this console's #1; ops-2 has a #1 of its own
        now = backend.clock()
        await from_console(backend, shared, "queue", "ops-2", {
            "commands": [{
                "id": 1, "node": "ODC-07", "text": "ODC-07 SET_THROTTLE level=LOW",
                "time": now, "detail": "waiting for contact: next AOS", "release_at": now + 600,
            }],
            "time": now,
        })  # fmt: skip
        assert [c.ref for c in backend.remote_queued()] == ["ops-2#1"]
    except BaseException:
        await asyncio.to_thread(backend.stop)
        raise
    # one the console heard of only through the operations' list (not as a stage)
    listed = backend.remote_queued
    ops3 = RemoteCommand("ops-3", 7, "ODC-07", "ODC-07 NOOP", "queued", now, "", now + 900)
    backend.remote_queued = lambda: [*listed(), ops3]  # type: ignore[method-assign]
    async with console(backend) as (pilot, pane):
        queue = pane.queue
        await until(lambda: {"ops-2#1", "ops-3#7"} <= {k.value for k in queue.rows}, "the queue")
        assert queue.row_count == 2
        assert queue.get_cell("ops-2#1", "id").plain == "ops-2#1"
        assert queue.get_cell("ops-2#1", "command").plain == "ODC-07 SET_THROTTLE level=LOW"
        assert queue.get_cell("ops-2#1", "release").plain.startswith("next contact")
        assert queue.get_cell("ops-3#7", "release").plain.startswith("time tag")
        assert "2 waiting" in str(pane.query_one("#cmd-queue-title", Static).content)
        # the two #1 are two rows of the history
        await until(lambda: history_stage(pane, 1) == "completed", "the local NOOP", 20)
        assert pane.history.get_cell("1", "command").plain == "ODC-01 NOOP"
        assert history_stage(pane, "ops-2#1") == "queued"
        assert pane.history.get_cell("ops-2#1", "id").plain == "ops-2#1"
        # x on ops-2's command: a cancel request to ops-2, naming its own id
        queue.focus()
        queue.move_cursor(row=queue.get_row_index("ops-2#1"))
        await pilot.press("x")
        await until(lambda: check_line(pane) == "ops-2#1: cancel requested", "the request")
        [(to, request)] = [(to, doc) for kind, to, doc in channel.sent if kind == "request"]
        assert to == "ops-2" and (request["action"], request["id"]) == ("cancel", 1)
        # ops-3's is not known to the operations (only listed): the refusal is shown
        queue.move_cursor(row=queue.get_row_index("ops-3#7"))
        await pilot.press("x")
        await until(lambda: "ops-3#7 is not queued" in check_line(pane), "the refusal")
        # ops-2 sent its command after all: it leaves the queue, the history says sent
        await from_console(backend, shared, "command", "ops-2", {
            "id": 1, "node": "ODC-07", "text": "ODC-07 SET_THROTTLE level=LOW", "stage": "sent",
            "time": backend.clock(),
        })  # fmt: skip
        await until(lambda: "ops-2#1" not in queue.rows, "ops-2#1 to leave the queue")
        assert history_stage(pane, "ops-2#1") == "sent"
        assert [k.value for k in queue.rows] == ["ops-3#7"]
        assert history_stage(pane, 1) == "completed"  # this console's #1 is untouched
        # Enter on the remote command's history row: its line in the input
        pane.history.focus()
        pane.history.move_cursor(row=pane.history.get_row_index("ops-2#1"))
        await pilot.press("enter")
        assert pane.command_input.value == "ODC-07 SET_THROTTLE level=LOW"
