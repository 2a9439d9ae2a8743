"""The Events pane on the simulator: the node's events and the command stages in the log,
the filter, and a narrow terminal where the pane is shown only when asked for.

The oracle is the events table of the archive file (read with sqlite3): every event
archived for the node is a line of the log. ODC-01 is always in contact (gate off); its
battery fails at t=5 s for 20 s, which the node reports in events SIM 90 and SIM 92.
Conditions are polled with a timeout, never slept on.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from rich.text import Text
from testsupport import aio, rows, until
from ui_support import make_backend

from groundctl.telemetry.model import Event
from groundctl.ui.app import ConsoleApp
from groundctl.ui.panes.events import MAX_LINES, EventsPane, event_line, stage_line
from groundctl.ui.state import CommandView

FAULTS = "ODC-01 BATTERY_UNDERVOLTAGE at 5 for 20"
ENDED = "fault BATTERY_UNDERVOLTAGE ended"


def has(pane: EventsPane, text: str) -> bool:
    return any(text in line for line in pane.shown_lines())


def hhmmss(time_s: float) -> str:
    return f"{datetime.fromtimestamp(time_s, UTC):%H:%M:%S}"


def test_a_line_reads_time_node_source_severity_text():
    event = Event(1795910405.0, "ODC-01", "SIM", "node-event", "WARNING", "fault X", 90)
    line = event_line(event)
    assert line.text.plain.split() == ["00:00:05", "ODC-01", "SIM", "90", "WARNING", "fault", "X"]
    assert isinstance(line.text, Text) and line.text.spans  # coloured
    ground = Event(1795910406.0, "ODC-01", "ground", "link-state", "INFO", "link sim: up")
    assert event_line(ground).text.plain.split()[2] == "link-state"
    view = CommandView(12, "ODC-07", "ODC-07 NOOP", "completed", "event CMD 1", 0.0)
    assert stage_line(view, "completed", 0.0, "event CMD 1").text.plain.endswith(
        "CMD 12 ODC-07 NOOP: completed (event CMD 1)"
    )


@aio
async def test_the_log_shows_the_archived_events_and_filters_them(tmp_path):
    db = tmp_path / "groundctl.db"
    backend = make_backend(tmp_path, gate=False, speed=20, nodes="ODC-01", faults=FAULTS)
    app = ConsoleApp(backend)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            pane = app.main_screen.query_one(EventsPane)
            await until(pilot, lambda: has(pane, ENDED), "the end of the fault")
            outcome = await backend.issue("ODC-01 NOOP")
            done = f"CMD {outcome.command_id} ODC-01 NOOP: completed"
            await until(pilot, lambda: has(pane, done), "the NOOP's completion")
            archived = "SELECT time, source, event_id, severity, text FROM events WHERE node = ?"
            events = await until(
                pilot,
                lambda: (
                    [e for e in rows(db, archived, "ODC-01") if e[4] == ENDED]
                    and rows(db, archived, "ODC-01")
                ),
                "the events in the archive",
            )
            lines = pane.shown_lines()
            for time_s, source, event_id, severity, text in events:
                label = f"{source} {event_id}" if event_id is not None else source
                assert any(
                    line.startswith(hhmmss(time_s))
                    and "ODC-01" in line
                    and label in line
                    and severity in line
                    and line.endswith(text)
                    for line in lines
                ), text
            assert any(line.endswith("NOOP received, ODC-01 ok") for line in lines)
            assert lines.index(next(x for x in lines if ENDED in x)) < len(lines) - 1

            # the filter: `/`, type, and only matching lines remain; Esc shows them all
            await pilot.press("e")
            assert app.focused is pane.log_widget
            await pilot.press("slash", "n", "o", "o", "p")
            await until(pilot, lambda: pane.filter == "noop", "the filter")
            narrowed = pane.shown_lines()
            assert 2 <= len(narrowed) < len(lines)
            assert all("noop" in line.lower() for line in narrowed)
            assert "filter 'noop'" in str(pane.border_subtitle)
            await pilot.press("enter")  # back to the log, the filter kept
            assert app.focused is pane.log_widget and pane.filter == "noop"
            await pilot.press("escape")
            assert pane.filter == "" and not pane.border_subtitle
            assert len(pane.shown_lines()) >= len(lines)
            log = pane.log_widget
            assert log.is_vertical_scroll_end and log.scroll_offset.y > 0

            # scrolled up, the log stays where the operator put it; at the end, it follows
            await pilot.press("home")
            assert log.scroll_offset.y == 0
            second = await backend.issue("ODC-01 NOOP")
            done = f"CMD {second.command_id} ODC-01 NOOP: completed"
            await until(pilot, lambda: has(pane, done), "the second NOOP's completion")
            await pilot.pause(0.2)
            assert log.scroll_offset.y == 0
            await pilot.press("end")
            third = await backend.issue("ODC-01 NOOP")
            done = f"CMD {third.command_id} ODC-01 NOOP: completed"
            await until(pilot, lambda: has(pane, done), "the third NOOP's completion")
            await until(pilot, lambda: log.is_vertical_scroll_end, "the log to follow")
            assert log.scroll_offset.y > 0
    finally:
        await asyncio.to_thread(backend.stop)


@aio
async def test_narrow_the_hidden_log_fills_when_shown(tmp_path):
    backend = make_backend(tmp_path, gate=False, speed=20, nodes="ODC-01", faults=FAULTS)
    app = ConsoleApp(backend)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.main_screen.query_one(EventsPane)
            await until(
                pilot, lambda: any(ENDED.lower() in x.search for x in pane.lines), "the events"
            )
            assert not pane.display or not pane.size.width
            assert pane.log_widget.lines == []  # nothing rendered while hidden
            await pilot.press("e")
            await until(pilot, lambda: has(pane, ENDED), "the log once shown")
            assert len(pane.shown_lines()) == len(pane.lines) <= MAX_LINES
    finally:
        await asyncio.to_thread(backend.stop)
