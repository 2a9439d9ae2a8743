"""The Telemetry pane on the simulator: the values it shows are the ones the engine
archived, limit colours follow the samples' states when a fault heats the node, and a
parameter chosen with the keys is plotted from its archived history onwards.

The oracle is the archive file, read with sqlite3: a value shown with its packet time
must be the archived sample of that parameter at that time, with the same state. ODC-01
is always in contact (gate off). Conditions are polled with a timeout, never slept on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rich.text import Text
from testsupport import aio, rows, until
from ui_support import START, make_backend

from groundctl.ui.app import ConsoleApp
from groundctl.ui.panes.telemetry import (
    MAX_PLOTTED,
    STATE_STYLES,
    ParameterInfo,
    TelemetryPane,
    as_number,
    format_age,
    format_value,
    is_stale,
)
from groundctl.ui.state import Snapshot, Value

NODE = "ODC-01"
RUNAWAY = "ODC-01 THERMAL_RUNAWAY at 5 for 3000"
START_S = START.timestamp()


def archived(path: Path, parameter: str, time_s: float) -> tuple[Any, str] | None:
    """The archived (value, state) of ODC-01's `parameter` at packet time `time_s`."""
    found = rows(
        path,
        "SELECT value, state FROM samples WHERE node = ? AND parameter = ? AND time = ?",
        NODE,
        parameter,
        time_s,
    )
    return found[0] if found else None


def cell(pane: TelemetryPane, parameter: str, column: str) -> Text:
    value = pane.table.get_cell(f"{NODE}\x1f{parameter}", column)
    assert isinstance(value, Text)
    return value


def shown(pane: TelemetryPane) -> dict[str, tuple[Value, str, str, str]]:
    """Each row of the table: the Value behind it, and what its cells say (value, state,
    and the value's style), taken at one moment."""
    out = {}
    for key in pane.rows.values():
        value = pane.values.get(key)
        if value is not None:
            text = cell(pane, key[1], "value")
            out[key[1]] = (value, text.plain, cell(pane, key[1], "state").plain, str(text.style))
    return out


def console(backend: Any) -> ConsoleApp:
    """The console on `backend`. Its refresh is skipped once the app stops running: the
    app's refresh timer can still fire while Textual takes the screens down, and would
    then look for widgets already gone."""
    app = ConsoleApp(backend)
    refresh = app.refresh_panes

    def guarded() -> None:
        if app.is_running:
            refresh()

    app.refresh_panes = guarded  # type: ignore[method-assign]
    return app


async def started(pilot: Any, app: ConsoleApp) -> TelemetryPane:
    pane = app.main_screen.query_one(TelemetryPane)
    await until(pilot, lambda: pane.node == NODE and pane.rows, "ODC-01's telemetry")
    return pane


@aio
async def test_values_are_the_archived_samples(tmp_path):
    db = tmp_path / "groundctl.db"
    backend = make_backend(tmp_path, gate=False, speed=20, nodes=NODE)
    app = console(backend)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            pane = await started(pilot, app)
            # the first node heard is selected, the others known are listed
            assert pane.selector.value == NODE
            assert set(backend.nodes()) <= set(pane.listed)
            # the first packet's fields, in the mission database's order
            mission = backend.mission_of(NODE)
            assert mission is not None
            power = mission.packet_named("POWER_HK")
            assert [k[1] for k in pane.rows.values()] == [
                f"POWER_HK.{f.name}" for f in power.fields
            ]
            await until(pilot, lambda: pane.clock_s > START_S + 20, "20 s of data")
            table = shown(pane)  # one moment: no await while reading the table
            assert len(table) == len(power.fields)
            for parameter, (value, text, state, style) in table.items():
                field = power.field(parameter.split(".")[1])
                got = await until(
                    pilot,
                    lambda p=parameter, v=value: archived(db, p, v.time_s),
                    f"the archived sample of {parameter}",
                )
                archived_value, archived_state = got
                shown_value = text.removesuffix(f" {field.unit}") if field.unit else text
                if isinstance(archived_value, str):
                    assert shown_value == archived_value, parameter
                else:
                    assert abs(float(shown_value) - archived_value) <= 1e-5 * max(
                        1.0, abs(archived_value)
                    ), (parameter, text, archived_value)
                if field.unit:
                    assert text.endswith(f" {field.unit}")
                assert state == archived_state, parameter
                assert style == STATE_STYLES.get(archived_state, ""), parameter
            # the enumeration is shown by its state name
            assert table["POWER_HK.POWER_MODE"][1] == "NOMINAL"
            # ages are the engine clock's seconds since the value came
            value = pane.values[(NODE, "POWER_HK.BUS_VOLTAGE")]
            assert cell(pane, "POWER_HK.BUS_VOLTAGE", "age").plain == format_age(
                pane.clock_s - value.received_s
            )
            assert "stale" not in {state for _, _, state, _ in table.values()}

            # Nothing for a while (snapshots as the app would hand over in a silence):
            # every value is stale, dimmed, and its age says how old it is. Read at once,
            # before the next real snapshot makes them fresh again.
            # (the clock goes on as at x20: 2 s a look)
            clock = pane.clock_s
            for step in range(1, 34):
                pane.update_from(Snapshot(clock + 2 * step, {}, [], {}, [], {}, {}, 0, 0.0))
            for parameter, (value, _, state, style) in shown(pane).items():
                assert state == "stale", parameter
                assert style.startswith("dim"), parameter
                age = cell(pane, parameter, "age")
                assert age.plain == format_age(pane.clock_s - value.received_s)
                assert age.plain.startswith("1m0")
    finally:
        await asyncio.to_thread(backend.stop)


@aio
async def test_limit_colours_follow_the_states_as_a_fault_heats_the_node(tmp_path):
    db = tmp_path / "groundctl.db"
    # a radiator that rejects a fifth of its heat, with the GPUs busy: the radiator and
    # the CPU go red, the GPUs yellow, thermal protection suspends compute (red)
    backend = make_backend(tmp_path, gate=False, speed=60, nodes=NODE, faults=RUNAWAY)
    app = console(backend)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            pane = await started(pilot, app)
            for job in range(1, 9):
                await backend.issue(f"{NODE} SUBMIT_JOB job_id={job} gpu_seconds=86400")
            # THERMAL_HK, with the keys: the tree's second packet
            await pilot.press("t", "down")
            assert app.focused is pane.param_tree
            await until(pilot, lambda: pane.view == "THERMAL_HK", "the THERMAL_HK values")
            radiator, gpu = "THERMAL_HK.RADIATOR_TEMP", "THERMAL_HK.GPU_TEMP"
            await until(
                pilot, lambda: cell(pane, radiator, "state").plain == "red", "a red radiator"
            )
            assert cell(pane, radiator, "value").style == STATE_STYLES["red"]
            await until(pilot, lambda: cell(pane, gpu, "state").plain == "yellow", "a yellow GPU")
            assert cell(pane, gpu, "value").style == STATE_STYLES["yellow"]
            await until(
                pilot,
                lambda: cell(pane, "THERMAL_HK.THROTTLE_LEVEL", "value").plain == "SUSPENDED",
                "thermal protection",
            )
            # every row as shown is the archived sample: value state, and its colour
            table = shown(pane)
            for parameter, (value, _, state, style) in table.items():
                got = await until(
                    pilot, lambda p=parameter, v=value: archived(db, p, v.time_s), parameter
                )
                assert state == got[1] and style == STATE_STYLES.get(got[1], ""), parameter
            assert table["THERMAL_HK.THROTTLE_LEVEL"][2:] == ("red", STATE_STYLES["red"])
            assert "red" in {s for _, _, s, _ in table.values()}
            assert "yellow" in {s for _, _, s, _ in table.values()}
    finally:
        await asyncio.to_thread(backend.stop)


@aio
async def test_a_parameter_chosen_with_the_keys_is_plotted_from_the_archive(tmp_path):
    db = tmp_path / "groundctl.db"
    backend = make_backend(tmp_path, gate=False, speed=20, nodes=NODE)
    app = console(backend)
    voltage, current = "POWER_HK.BATT_VOLTAGE", "POWER_HK.BATT_CURRENT"
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            pane = await started(pilot, app)
            view = pane.plot_view
            assert view.plot is None  # nothing plotted: the hint
            await until(pilot, lambda: pane.clock_s > START_S + 60, "a minute")
            chosen_s = pane.clock_s
            # t: the tree; enter opens POWER_HK; its fourth field is BATT_VOLTAGE; enter
            await pilot.press("t", "enter", "down", "down", "down", "down")
            assert pane.param_tree.cursor_node.data.parameter == voltage
            await pilot.press("enter")
            trace = pane.traces[(NODE, voltage)]
            await until(pilot, lambda: not trace.loading, "the history")
            await until(pilot, lambda: view.plot and "…" not in view.series[0].label, "a redraw")

            # what came before the choice came from the archive: every sample of the window
            history = rows(
                db,
                "SELECT time, value FROM samples WHERE node = ? AND parameter = ? "
                "AND time >= ? AND time < ? ORDER BY time",
                NODE,
                voltage,
                chosen_s - pane.window_s,
                chosen_s,
            )
            assert len(history) > 40
            before = [p for p in trace.points if p[0] < chosen_s]
            assert before == [(t, float(v)) for t, v in history]

            # ...and is drawn: its label, and a lit dot at each archived sample
            plot = view.plot
            lines = plot.canvas.lines()
            assert "BATT_VOLTAGE" in lines[0]
            area = plot.area
            for t, v in history:
                if t < plot.start_s:
                    continue
                x, y = plot.dot(0, t, v)
                row, col = round(y) // 4, round(x) // 2
                assert area.row <= row < area.row + area.rows
                assert lines[row][col] != "\u2800", (t, v)

            # live values join it: the plot grows after the choice
            await until(pilot, lambda: trace.points[-1][0] > chosen_s + 5, "live points")

            # space on a row of the table plots another, in its own style
            await pilot.press("tab")
            assert app.focused is pane.table
            await pilot.press("down", "space")
            assert list(pane.traces) == [(NODE, voltage), (NODE, current)]
            styles = [t.style for t in pane.traces.values()]
            assert len(set(styles)) == 2
            await until(pilot, lambda: len(view.series) == 2, "two series")
            assert "BATT_CURRENT" in "".join(view.plot.canvas.lines()[:2])
            # enter on it again takes it off
            await pilot.press("enter")
            assert list(pane.traces) == [(NODE, voltage)]

            # ] lengthens the window to an hour: the history is read again, all of it
            await pilot.press("right_square_bracket")
            assert pane.window_s == 3600 and "plot 60 min" in pane.border_subtitle
            await until(pilot, lambda: not trace.loading, "the longer history")
            everything = rows(
                db,
                "SELECT time, value FROM samples WHERE node = ? AND parameter = ? "
                "AND time < ? ORDER BY time",
                NODE,
                voltage,
                chosen_s,
            )
            assert [p for p in trace.points if p[0] < chosen_s] == [
                (t, float(v)) for t, v in everything
            ]

            # text cannot be plotted; at most four are
            pane.toggle_plot((NODE, "EVENT.TEXT"))
            assert (NODE, "EVENT.TEXT") not in pane.traces
            assert "cannot be plotted" in str(pane.info_line.render())
            for name in ("BATT_SOC", "BUS_VOLTAGE", "LOAD_POWER", "SA_POWER"):
                pane.toggle_plot((NODE, f"POWER_HK.{name}"))
            assert len(pane.traces) == MAX_PLOTTED
            assert (NODE, "POWER_HK.SA_POWER") not in pane.traces
            # x clears the plot
            await pilot.press("x")
            assert not pane.traces
            await until(pilot, lambda: view.plot is None, "the empty plot")
    finally:
        await asyncio.to_thread(backend.stop)


@aio
async def test_usable_on_a_narrow_terminal(tmp_path):
    backend = make_backend(tmp_path, gate=False, speed=20, nodes=NODE)
    app = console(backend)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.main_screen.query_one(TelemetryPane)
            await pilot.press("t")
            pane = await started(pilot, app)
            assert pane.display and pane.size.width >= 76
            for widget in (pane.param_tree, pane.table, pane.plot_view):
                assert widget.size.width > 10 and widget.size.height >= 4, widget
            # the table's columns fit: no sideways scrolling to read a value
            assert pane.table.virtual_size.width <= pane.table.size.width
            await pilot.press("enter", "down", "enter")
            await until(pilot, lambda: pane.plot_view.plot is not None, "the plot")
            assert "SA_VOLTAGE" in "".join(pane.plot_view.plot.canvas.lines()[:2])
    finally:
        await asyncio.to_thread(backend.stop)


@aio
async def test_another_node_and_the_watched_parameters(tmp_path):
    backend = make_backend(tmp_path, gate=False, speed=20, nodes="ODC-01,ODC-07")
    app = console(backend)
    voltage = "POWER_HK.SA_VOLTAGE"
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            pane = app.main_screen.query_one(TelemetryPane)
            await until(pilot, lambda: pane.node and pane.rows, "telemetry")
            first = pane.node
            other = next(n for n in ("ODC-01", "ODC-07") if n != first)
            await until(pilot, lambda: other in pane.listed, "the other node listed")
            assert pane.selector.value == first
            # w on a parameter of the tree watches it
            await pilot.press("t", "enter", "down", "w")
            assert pane.watched == [(first, voltage)]
            assert str(pane.param_tree.root.children[-1].label) == "Watched (1)"
            # another node: its own values, the watched list kept
            pane.selector.value = other
            await until(pilot, lambda: pane.node == other, "the other node")
            assert all(node == other for node, _ in pane.rows.values())
            assert pane.border_subtitle.startswith(other)
            await until(pilot, lambda: (other, voltage) in pane.values, "the other's values")
            # the watched view (the tree's last line) shows the first node's parameter
            await pilot.press("end")
            await until(pilot, lambda: pane.view == "Watched", "the watched view")
            assert list(pane.rows.values()) == [(first, voltage)]
            row_key = f"{first}\x1f{voltage}"
            assert pane.table.get_cell(row_key, "name").plain == f"★ {first} {voltage}"
            await until(
                pilot,
                lambda: (
                    pane.table.get_cell(row_key, "value").plain
                    == format_value(pane.values[(first, voltage)].value, "V")
                ),
                "the watched value",
            )
            # w again stops watching it
            await pilot.press("tab", "w")
            assert pane.watched == []
    finally:
        await asyncio.to_thread(backend.stop)


def test_staleness_ages_and_numbers():
    info = ParameterInfo("P.X", "X", "P", period_s=2.0)
    fresh = Value(1.0, 1, "nominal", 100.0, 100.0)
    assert not is_stale(fresh, info, 106.0)  # three periods: not yet
    assert is_stale(fresh, info, 106.5)
    assert not is_stale(fresh, info, 110.0, slack_s=6.0)  # the time it takes to be shown
    assert not is_stale(fresh, ParameterInfo("E.T", "T", "E"), 10_000.0)  # no period
    assert [format_age(s) for s in (0, 2.7, 59, 60, 65, 3599, 3600, 7384)] == [
        "0s",
        "2s",
        "59s",
        "1m00s",
        "1m05s",
        "59m59s",
        "1h00m",
        "2h03m",
    ]
    mode = ParameterInfo("P.M", "M", "P", states={"SAFE": 0, "NOMINAL": 2})
    assert as_number(mode, "NOMINAL", 2) == 2.0
    assert as_number(mode, "NOMINAL") == 2.0  # from the archive: the state name
    assert as_number(mode, "UNKNOWN(7)") == 7.0
    assert as_number(info, "text") is None
    assert as_number(info, float("nan")) is None
    assert as_number(info, 3) == 3.0
