"""The Alerts pane on the simulator: alerts raised by a fault and by a command, red first;
acknowledged and shelved with the keys and dialogs, as an operator does; refused for a
viewer.

The oracle is the archive file (the alerts table and the audit trail, read with sqlite3)
and the alert messages themselves. ODC-01 is always in contact (gate off); its battery
fails at t=5 s (a yellow battery voltage alert) and a commanded SAFE power mode raises a
red one (a THERMAL_RUNAWAY fault would not do: an idle node barely warms, and the node's
thermal protection holds GPU_TEMP below its red limit). Conditions are polled with a
timeout, never slept on.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest
from testsupport import aio, rows, until
from ui_support import make_backend

from groundctl.telemetry.alerts import Alert
from groundctl.ui.app import ConsoleApp
from groundctl.ui.dialogs import AcknowledgeDialog, ShelveDialog, parse_duration
from groundctl.ui.panes.alerts import AlertsPane, cells, order

FAULTS = "ODC-01 BATTERY_UNDERVOLTAGE at 5 for 600"
VOLTAGE = "POWER_HK.BATT_VOLTAGE"
MODE = "POWER_HK.POWER_MODE"
VIEWER = '[operators]\nalice = "viewer"\n'


def table(pane: AlertsPane) -> list[tuple[int, list[str]]]:
    """The table as shown: (alert id, cell texts) per row, in order."""
    t = pane.table
    return [
        (int(str(row.key.value)), [c.plain.strip() for c in t.get_row(row.key)])
        for row in t.ordered_rows
    ]


def row_of(pane: AlertsPane, parameter: str) -> list[str] | None:
    """The cells of the row of the alert of `parameter` (None if not in the table)."""
    return next((cells for i, cells in table(pane) if pane.alerts[i].parameter == parameter), None)


def alert_id(pane: AlertsPane, parameter: str) -> int:
    return next(i for i, _ in table(pane) if pane.alerts[i].parameter == parameter)


async def select(pilot: Any, pane: AlertsPane, parameter: str) -> int:
    """Focus the pane and move the cursor onto the alert of `parameter`, with keys."""
    await pilot.press("a")
    assert pilot.app.focused is pane.table
    wanted = alert_id(pane, parameter)
    await pilot.press("ctrl+home")
    for _ in range([i for i, _ in table(pane)].index(wanted)):
        await pilot.press("down")
    assert pane.table.selected_id() == wanted
    return wanted


def keys(text: str) -> list[str]:
    return ["space" if c == " " else c for c in text]


def observe(app: ConsoleApp, name: str) -> list[tuple[Any, ...]]:
    """Record the calls of app.`name` (still calling it)."""
    calls: list[tuple[Any, ...]] = []
    original = getattr(app, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    setattr(app, name, wrapper)
    return calls


def test_durations_of_the_shelve_dialog():
    assert parse_duration("15m") == 900
    assert parse_duration(" 1h ") == 3600
    assert parse_duration("4H") == 4 * 3600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90
    assert parse_duration("2d") == 2 * 86400
    for bad in ("", "1", "h", "1x", "1h x", "0m", "8d"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_rows_order_and_states():
    t = 1795910400.0
    old_red = Alert(1, "ODC-01", "POWER_HK.POWER_MODE", "red", t, "SAFE")
    new_yellow = Alert(2, "ODC-07", "POWER_HK.BATT_VOLTAGE", "yellow", t + 60, 88.891234)
    new_red = Alert(3, "ODC-07", "THERMAL_HK.GPU_TEMP", "red", t + 30, 91.0, count=3)
    assert sorted([new_yellow, old_red, new_red], key=order) == [new_red, old_red, new_yellow]

    def row(alert, now=t + 100, short=False):
        return [c.plain.strip() for c in cells(alert, now, short=short)]

    assert row(new_red) == [
        "RED", "ODC-07", "THERMAL_HK.GPU_TEMP", "91", "00:00:30", "3", "ACTIVE"
    ]  # fmt: skip
    assert row(new_yellow, short=True)[2:4] == ["BATT_VOLTAGE", "88.8912"]
    cleared = replace(new_yellow, cleared_s=t + 90)
    assert row(cleared)[6] == "CLEARED-unacked"
    assert row(replace(old_red, acked_by="bob", acked_s=t + 5))[6] == "ACKED bob"
    on_shelf = replace(old_red, shelved_until_s=t + 3600)
    assert not on_shelf.visible(t + 100)
    assert row(on_shelf)[6] == "SHELVED 01:00:00"
    assert row(on_shelf, now=t + 3600)[6] == "ACTIVE"  # the shelf expired


@aio
async def test_acknowledge_and_shelve_are_archived_and_audited(tmp_path):
    db = tmp_path / "groundctl.db"
    backend = make_backend(tmp_path, gate=False, speed=20, nodes="ODC-01", faults=FAULTS)
    app = ConsoleApp(backend)
    bells = observe(app, "bell")
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            pane = app.main_screen.query_one(AlertsPane)
            await until(pilot, lambda: row_of(pane, VOLTAGE), "the battery voltage alert")
            assert row_of(pane, VOLTAGE)[:2] == ["YEL", "ODC-01"]
            assert not bells

            # a red alert, from a command as the Command pane sends it: red comes first
            await backend.issue("ODC-01 SET_POWER_MODE mode=SAFE")
            await until(pilot, lambda: row_of(pane, MODE), "the power mode alert")
            first = table(pane)[0][1]
            # 64 cells wide: the parameter without its packet
            assert first == ["RED", "ODC-01", "POWER_MODE", "SAFE", first[4], "1", "ACTIVE"]
            assert [r[0] for _, r in table(pane)].count("RED") == 1
            assert "1 red" in str(pane.border_subtitle)
            await until(pilot, lambda: bells, "the bell of a new red alert")

            # Esc cancels: nothing is asked of the engine
            red = await select(pilot, pane, MODE)
            await pilot.press("k")
            await until(pilot, lambda: isinstance(app.screen, AcknowledgeDialog), "the dialog")
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is app.main_screen, "the dialog to close")

            # acknowledge the red alert with a comment
            assert pane.table.selected_id() == red
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, AcknowledgeDialog), "the dialog")
            await pilot.press(*keys("in plan"), "enter")
            archived = "SELECT acked_by, ack_comment FROM alerts WHERE id = ?"
            await until(
                pilot,
                lambda: rows(db, archived, red) == [("alice", "in plan")],
                "the acknowledgement in the archive",
            )
            [(detail,)] = await until(
                pilot,
                lambda: rows(db, "SELECT detail FROM audit WHERE action = 'acknowledged'"),
                "the audit row",
            )
            assert json.loads(detail) == {
                "alert": red,
                "parameter": MODE,
                "comment": "in plan",
            }
            # still active: it stays, acknowledged, updated in place
            await until(pilot, lambda: row_of(pane, MODE)[6] == "ACKED alice", "the ACKED state")

            # shelve the battery alert for 4 hours: it leaves the table
            yellow = await select(pilot, pane, VOLTAGE)
            await pilot.press("s")
            await until(pilot, lambda: isinstance(app.screen, ShelveDialog), "the dialog")
            await pilot.press("4", "h", "enter")
            await until(pilot, lambda: row_of(pane, VOLTAGE) is None, "the shelved alert to go")
            clock = pane.clock_s
            [(detail,)] = await until(
                pilot,
                lambda: rows(db, "SELECT detail FROM audit WHERE action = 'shelved'"),
                "the audit row",
            )
            shelf = json.loads(detail)
            assert (shelf["alert"], shelf["parameter"]) == (yellow, VOLTAGE)
            assert abs(shelf["until"] - (clock + 4 * 3600)) < 120  # simulated seconds
            assert "1 shelved" in str(pane.border_subtitle)

            # `h` shows the shelved alerts too
            await pilot.press("h")
            assert row_of(pane, VOLTAGE)[6].startswith("SHELVED ")
            await pilot.press("h")
            assert row_of(pane, VOLTAGE) is None
    finally:
        await asyncio.to_thread(backend.stop)
    [(until_s,)] = rows(db, "SELECT shelved_until FROM alerts WHERE id = ?", yellow)
    assert until_s == shelf["until"]
    actions = "SELECT action FROM audit WHERE action IN ('acknowledged', 'shelved') ORDER BY id"
    assert rows(db, actions) == [("acknowledged",), ("shelved",)]  # none for the Esc


@aio
async def test_a_viewer_is_told_no(tmp_path):
    db = tmp_path / "groundctl.db"
    backend = make_backend(
        tmp_path, extra=VIEWER, gate=False, speed=20, nodes="ODC-01", faults=FAULTS
    )
    app = ConsoleApp(backend)
    notes = observe(app, "notify")
    errors = lambda: [n for n in notes if n[1].get("severity") == "error"]  # noqa: E731
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            pane = app.main_screen.query_one(AlertsPane)
            await until(pilot, lambda: row_of(pane, VOLTAGE), "the battery voltage alert")
            await select(pilot, pane, VOLTAGE)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, AcknowledgeDialog), "the dialog")
            await pilot.press(*keys("seen"), "enter")
            [(args, _)] = await until(pilot, errors, "an error notification")
            assert "viewer" in args[0]

            await pilot.press("s")
            await until(pilot, lambda: isinstance(app.screen, ShelveDialog), "the dialog")
            await pilot.press("enter")  # the default shelf
            await until(pilot, lambda: len(errors()) == 2, "a second error notification")
            assert "viewer" in errors()[1][0][0]
            assert row_of(pane, VOLTAGE)[6] == "ACTIVE"
    finally:
        await asyncio.to_thread(backend.stop)
    assert rows(db, "SELECT action FROM audit WHERE action IN ('acknowledged', 'shelved')") == []
    assert rows(db, "SELECT acked_by, shelved_until FROM alerts WHERE parameter = ?", VOLTAGE) == [
        (None, None)
    ]
