"""The Telemetry pane: a node's parameters, their latest values, and a time plot.

Left, the node selector and the node's mission database as a tree (packets and their
fields, derived parameters, and the parameters marked for watching). Right, the values of
the packet under the tree's cursor (or of the watched parameters): value with unit,
limit state in its colour, "stale" (dimmed) when the value is older than three periods
of its packet or the engine says its packet's stream is stale, and its age on the
engine's clock. Under them, a time plot of up to four parameters: the last minutes from
the archive (read in a worker, through the engine's thread) joined to the values
arriving live. Enumerations are plotted by their raw values; text is not plotted.

Keys: enter or space on a parameter (tree leaf or table row) plots it or takes it off
the plot; w watches it; x clears the plot; [ and ] shorten or lengthen the plot window.
Only the table cells whose text changed are rewritten on each refresh.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import DataTable, Select, Static, Tree
from textual.widgets.tree import TreeNode

from groundctl.mdb.expr import compile_expression
from groundctl.mdb.model import Enumeration, Limits, Mission
from groundctl.ui.panes.base import Pane
from groundctl.ui.plot import STYLES, Series, TimePlot, draw_plot

if TYPE_CHECKING:
    from groundctl.ui.backend import Backend
    from groundctl.ui.state import Snapshot, Value

MAX_PLOTTED = 4
STALE_FACTOR = 3.0  # as the engine's staleness monitor: three periods without a packet
STALE_SUFFIX = " (stale)"  # the engine's stale alerts are on "PACKET (stale)"
WINDOWS_S = (300.0, 900.0, 3600.0)
DEFAULT_WINDOW_S = 900.0
HISTORY_LIMIT = 20_000
HISTORY_ATTEMPTS = 4
DERIVED = "Derived"
WATCHED = "Watched"
STATE_STYLES = {
    "nominal": "green",
    "yellow": "bold yellow",
    "red": "bold red",
    "disabled": "dim italic",
}
_UNKNOWN_STATE = re.compile(r"UNKNOWN\((-?\d+)\)")

Key = tuple[str, str]  # (node, parameter)


@dataclass(frozen=True)
class ParameterInfo:
    """What the mission database says of a parameter, as the pane uses it."""

    name: str  # PACKET.FIELD, or a derived parameter's name
    short: str  # FIELD
    group: str  # the packet's name, or DERIVED
    unit: str = ""
    description: str = ""
    period_s: float | None = None  # how often it should arrive
    states: dict[str, int] | None = None  # an enumeration: state name -> raw
    numeric: bool = True
    limits: Limits | None = None


@dataclass(frozen=True)
class Entry:
    """What a tree node stands for: a view of the table (packet, DERIVED or WATCHED) and,
    for a leaf, a parameter of a node."""

    view: str
    node: str = ""
    parameter: str = ""


@dataclass
class Trace:
    """A plotted parameter: its points (time, number) over the window, history first."""

    key: Key
    style: str
    info: ParameterInfo | None
    points: list[tuple[float, float]] = field(default_factory=list)
    loading: bool = True


def catalogue(mission: Mission) -> tuple[dict[str, ParameterInfo], list[tuple[str, list[str]]]]:
    """Every parameter of `mission` by name, and the tree's groups (packets in id order,
    then the derived parameters) with their parameters in order."""
    infos: dict[str, ParameterInfo] = {}
    groups: list[tuple[str, list[str]]] = []
    periods: dict[str, float] = {}
    for packet in sorted(mission.packets.values(), key=lambda p: p.id):
        names = []
        if packet.period_s:
            periods[packet.name] = packet.period_s
        for f in packet.fields:
            name = f"{packet.name}.{f.name}"
            states = None
            if isinstance(f.calibration, Enumeration):
                states = {text: raw for raw, text in f.calibration.states.items()}
            infos[name] = ParameterInfo(
                name,
                f.name,
                packet.name,
                f.unit,
                f.description,
                packet.period_s,
                states,
                f.kind not in ("str", "bytes"),
                f.limits,
            )
            names.append(name)
        groups.append((packet.name, names))
    derived = []
    for d in mission.derived:
        try:
            inputs = compile_expression(d.expression).names
        except Exception:
            inputs = frozenset()
        used = [periods[n.split(".")[0]] for n in inputs if n.split(".")[0] in periods]
        period = min(used, default=None)
        infos[d.name] = ParameterInfo(
            d.name, d.name, DERIVED, d.unit, d.description, period, limits=d.limits
        )
        derived.append(d.name)
    if derived:
        groups.append((DERIVED, derived))
    return infos, groups


def format_age(age_s: float) -> str:
    """2s, 1m05s, 2h03m."""
    seconds = max(0, int(age_s))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def format_value(value: Any, unit: str = "") -> str:
    """A value as the table shows it: numbers to 6 significant digits, with the unit."""
    if value is None:
        text = "-"
    elif isinstance(value, bool | int | str):
        text = str(value)
    elif isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, bytes | bytearray):
        text = value.hex()
    else:
        text = str(value)
    return f"{text} {unit}" if unit and text != "-" else text


def is_stale(
    value: Value, info: ParameterInfo | None, clock_s: float, slack_s: float = 0.0
) -> bool:
    """Older than STALE_FACTOR periods of its packet (plus `slack_s`: the engine time
    that passes while a value waits to be shown, long at a high simulation speed)."""
    period = info.period_s if info is not None else None
    if not period:
        return False
    return clock_s - value.received_s > STALE_FACTOR * period + slack_s


def as_number(info: ParameterInfo | None, value: Any, raw: Any = None) -> float | None:
    """The number plotted for a value: the value itself, or an enumeration's raw value
    (from `raw`, or its state name); None for what is not a number."""
    if info is not None and info.states is not None:
        if isinstance(raw, int | float):
            return float(raw)
        if isinstance(value, str):
            if value in info.states:
                return float(info.states[value])
            match = _UNKNOWN_STATE.fullmatch(value)
            return float(match.group(1)) if match else None
        return float(value) if isinstance(value, int | float) else None
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


class ParameterTree(Tree[Entry]):
    """The mission database: space on a parameter plots it, as enter does."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "plot_or_toggle", "Plot", show=False),
    ]

    def action_plot_or_toggle(self) -> None:
        node = self.cursor_node
        if node is not None and node.data is not None and node.data.parameter:
            self.action_select_cursor()
        else:
            self.action_toggle_node()


class ValuesTable(DataTable[Text]):
    """The latest values; enter or space on a row plots its parameter."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "select_cursor", "Plot", show=False),
    ]


class PlotView(Widget):
    """The time plot, drawn at the widget's size whenever it is refreshed."""

    DEFAULT_CSS = """
    PlotView {
        height: 1fr;
        min-height: 4;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.series: list[Series] = []
        self.start_s = 0.0
        self.end_s = 1.0
        self.hint = "enter or space on a parameter plots it (up to 4)"
        self.plot: TimePlot | None = None

    def show(self, series: list[Series], start_s: float, end_s: float) -> None:
        self.series, self.start_s, self.end_s = series, start_s, end_s
        self.refresh()

    def render(self) -> RenderResult:
        width, height = self.content_size
        if not self.series or width < 4 or height < 1:
            self.plot = None
            return Text(self.hint, style="dim")
        self.plot = draw_plot(self.series, width, height, self.start_s, self.end_s)
        return self.plot.canvas.render()


class TelemetryPane(Pane):
    TITLE = "Telemetry"
    KEY = "t"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "watch", "Watch"),
        Binding("x", "clear_plot", "Clear plot"),
        Binding("left_square_bracket", "window(-1)", "Shorter plot", show=False),
        Binding("right_square_bracket", "window(1)", "Longer plot", show=False),
    ]

    DEFAULT_CSS = """
    TelemetryPane #tm-body {
        height: 1fr;
    }
    TelemetryPane #tm-left {
        width: 28;
        height: 1fr;
    }
    TelemetryPane.-narrow #tm-left {
        width: 22;
    }
    TelemetryPane #tm-node {
        width: 1fr;
        margin-bottom: 0;
    }
    TelemetryPane #tm-tree {
        height: 1fr;
        padding: 0;
        scrollbar-size-vertical: 1;
    }
    TelemetryPane #tm-right {
        width: 1fr;
        height: 1fr;
        padding-left: 1;
    }
    TelemetryPane #tm-values {
        height: 1fr;
        min-height: 3;
        scrollbar-size-vertical: 1;
    }
    TelemetryPane #tm-info {
        height: 1;
        color: $text-muted;
    }
    TelemetryPane #tm-plot {
        height: 1fr;
        min-height: 4;
    }
    """

    def __init__(self, backend: Backend, *, id: str | None = None) -> None:
        super().__init__(backend, id=id)
        self.values: dict[Key, Value] = {}
        self.clock_s = 0.0
        self.slack_s = 0.0
        self.stale_streams: set[tuple[str, str]] = set()  # (node, packet) the engine says
        self.node: str | None = None
        self.known_nodes: set[str] = set()  # heard from
        self.listed: list[str] = []  # in the selector
        self.mission: Mission | None = None
        self.infos: dict[str, ParameterInfo] = {}
        self.groups: list[tuple[str, list[str]]] = []
        self._catalogues: dict[int, tuple[dict[str, ParameterInfo], list[tuple[str, list[str]]]]]
        self._catalogues = {}
        self._node_infos: dict[str, dict[str, ParameterInfo]] = {}
        self.view = ""
        self.rows: dict[str, Key] = {}  # table row key -> (node, parameter)
        self.shown: dict[str, tuple[str, ...]] = {}  # row key -> what its cells say now
        self.watched: list[Key] = []
        self.traces: dict[Key, Trace] = {}
        self.window_s = DEFAULT_WINDOW_S
        self._plot_dirty = False
        self._plot_drawn_s = -math.inf
        self._history_queue: list[Trace] = []
        self._history_running = False
        # The widgets, made here so that they are there to update whenever a snapshot
        # comes (even while the app takes its screens down).
        self.selector: Select[str] = Select([], prompt="node", id="tm-node", compact=True)
        self.param_tree = ParameterTree("parameters", id="tm-tree")
        self.param_tree.show_root = False
        self.param_tree.guide_depth = 2
        self.table = ValuesTable(id="tm-values", cursor_type="row")
        self.table.add_column("parameter", width=18, key="name")
        self.table.add_column("value", width=14, key="value")
        self.table.add_column("state", width=8, key="state")
        self.table.add_column("age", width=6, key="age")
        self.info_line = Static("", id="tm-info")
        self.plot_view = PlotView(id="tm-plot")
        self._watched_node: TreeNode[Entry] | None = None
        self._leaves: dict[str, TreeNode[Entry]] = {}

    # --- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="tm-body"):
            with Vertical(id="tm-left"):
                yield self.selector
                yield self.param_tree
            with Vertical(id="tm-right"):
                yield self.table
                yield self.info_line
                yield self.plot_view

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width < 90, "-narrow")

    def focus_pane(self) -> None:
        self.param_tree.focus()

    # --- snapshots -----------------------------------------------------------------------------
    def update_from(self, snapshot: Snapshot) -> None:
        # A value waits up to two looks (the engine's coalescing, then the app's) before
        # it is shown: that much engine time is not staleness.
        step = max(0.0, snapshot.clock_s - self.clock_s) if self.clock_s else 0.0
        self.slack_s = max(2.0 * step, 0.9 * self.slack_s)
        self.clock_s = snapshot.clock_s
        for alert in snapshot.alerts.values():
            if alert.severity == "stale" and alert.parameter.endswith(STALE_SUFFIX):
                stream = (alert.node, alert.parameter.removesuffix(STALE_SUFFIX))
                if alert.active:
                    self.stale_streams.add(stream)
                else:
                    self.stale_streams.discard(stream)
        values = snapshot.values
        if values:
            self.values.update(values)
            heard = {node for node, _ in values}
            if not heard <= self.known_nodes:
                self._refresh_nodes(heard)
            for key, value in values.items():
                trace = self.traces.get(key)
                if trace is not None:
                    self._add_point(trace, value)
        self._refresh_table()
        self._refresh_plot()

    def _refresh_nodes(self, heard: set[str]) -> None:
        """New nodes were heard: the selector lists them; the first heard is shown."""
        self.known_nodes |= heard
        try:
            listed = set(self.backend.nodes())
        except RuntimeError:  # the engine's thread changed its node set meanwhile
            listed = set()
        self.listed = sorted(listed | self.known_nodes)
        select = self.selector
        with select.prevent(Select.Changed):
            select.set_options([(name, name) for name in self.listed])
            if self.node is not None:
                select.value = self.node
        if self.node is None:
            self.show_node(sorted(heard)[0])

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str) and event.value != self.node:
            self.show_node(event.value)

    # --- the node and its mission database -----------------------------------------------------
    def show_node(self, node: str) -> None:
        """Show `node`: its mission database in the tree, its values in the table."""
        self.node = node
        select = self.selector
        if select.value != node:
            with select.prevent(Select.Changed):
                if node not in self.listed:
                    self.listed = sorted({*self.listed, node})
                    select.set_options([(name, name) for name in self.listed])
                select.value = node
        mission = self.backend.mission_of(node)
        self.infos = self._infos_of(node)
        self.groups = self._catalogues[id(mission)][1] if mission is not None else []
        self.mission = mission
        self._subtitle()
        self._build_tree()
        first = self.groups[0][0] if self.groups else WATCHED
        self.show_view(first)

    def _build_tree(self) -> None:
        tree = self.param_tree
        tree.clear()
        tree.root.set_label(self.node or "")
        self._leaves = {}
        assert self.node is not None
        for group, names in self.groups:
            branch = tree.root.add(group, Entry(group))
            for name in names:
                info = self.infos[name]
                self._leaves[name] = branch.add_leaf(
                    self._leaf_label(self.node, name, info.short), Entry(group, self.node, name)
                )
        self._watched_node = tree.root.add(WATCHED, Entry(WATCHED))
        self._fill_watched()
        if self.mission is None:
            self.info(f"{self.node}: no mission database")
        tree.cursor_line = 0

    def _fill_watched(self) -> None:
        branch = self._watched_node
        if branch is None:
            return
        branch.remove_children()
        branch.set_label(f"{WATCHED} ({len(self.watched)})")
        for node, name in self.watched:
            short = name if node == self.node else f"{node} {name}"
            branch.add_leaf(self._leaf_label(node, name, short), Entry(WATCHED, node, name))

    def _leaf_label(self, node: str, parameter: str, text: str) -> Text:
        label = Text()
        trace = self.traces.get((node, parameter))
        if trace is not None:
            label.append("● ", trace.style)
        if (node, parameter) in self.watched:
            label.append("★ ", "yellow")
        label.append(text)
        return label

    def _relabel(self, key: Key) -> None:
        """A parameter was plotted, unplotted, watched or unwatched: its marks change."""
        node, name = key
        leaf = self._leaves.get(name)
        if leaf is not None and node == self.node:
            info = self.infos.get(name)
            leaf.set_label(self._leaf_label(node, name, info.short if info else name))
        for row_key, row in self.rows.items():
            if row == key:
                self.table.update_cell(row_key, "name", self._name_cell(key))
        if self._watched_node is not None:
            for child in self._watched_node.children:
                if child.data is not None and (child.data.node, child.data.parameter) == key:
                    short = name if node == self.node else f"{node} {name}"
                    child.set_label(self._leaf_label(node, name, short))

    # --- the values table ----------------------------------------------------------------------
    def show_view(self, view: str) -> None:
        """Fill the table with a packet's parameters, the derived ones, or the watched."""
        self.view = view
        if view == WATCHED:
            keys = list(self.watched)
        else:
            names = next((n for g, n in self.groups if g == view), [])
            keys = [(self.node or "", name) for name in names]
        table = self.table
        table.clear()
        self.rows, self.shown = {}, {}
        for key in keys:
            row_key = f"{key[0]}\x1f{key[1]}"
            cells = self._row_cells(key)
            self.rows[row_key] = key
            self.shown[row_key] = tuple(cell.plain + str(cell.style) for cell in cells)
            table.add_row(self._name_cell(key), *cells, key=row_key)

    def _name_cell(self, key: Key) -> Text:
        node, name = key
        info = self.infos.get(name) if node == self.node else None
        text = info.short if info is not None and self.view != WATCHED else name
        if node != self.node:
            text = f"{node} {name}"
        return self._leaf_label(node, name, text)

    def _infos_of(self, node: str) -> dict[str, ParameterInfo]:
        """The parameters of a node's mission database (looked up once per node)."""
        infos = self._node_infos.get(node)
        if infos is None:
            mission = self.backend.mission_of(node)
            if mission is None:
                infos = {}
            else:
                cached = self._catalogues.get(id(mission))
                if cached is None:
                    cached = self._catalogues[id(mission)] = catalogue(mission)
                infos = cached[0]
            self._node_infos[node] = infos
        return infos

    def _info_of(self, key: Key) -> ParameterInfo | None:
        return self._infos_of(key[0]).get(key[1])

    def _row_cells(self, key: Key) -> tuple[Text, Text, Text]:
        """The value, state and age cells of a row, as they should read now."""
        value = self.values.get(key)
        if value is None:
            return Text("-", "dim"), Text(""), Text("")
        info = self._info_of(key)
        stale = is_stale(value, info, self.clock_s, self.slack_s) or (
            info is not None and (key[0], info.group) in self.stale_streams
        )
        style = STATE_STYLES.get(value.state, "")
        if stale:
            style = f"dim {style}".strip()
        shown = format_value(value.value, info.unit if info is not None else "")
        state = "stale" if stale else value.state
        age = format_age(self.clock_s - value.received_s)
        return Text(shown, style), Text(state, style), Text(age, "dim" if stale else "")

    def _refresh_table(self) -> None:
        """Rewrite the cells whose text or colour changed (values, states, ages)."""
        table = self.table
        for row_key, key in self.rows.items():
            cells = self._row_cells(key)
            signature = tuple(cell.plain + str(cell.style) for cell in cells)
            before = self.shown.get(row_key)
            if signature == before:
                continue
            for column, cell, old, new in zip(
                ("value", "state", "age"), cells, before or ("",) * 3, signature, strict=True
            ):
                if old != new:
                    table.update_cell(row_key, column, cell)
            self.shown[row_key] = signature

    # --- events of the tree and the table ------------------------------------------------------
    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Entry]) -> None:
        event.stop()
        entry = event.node.data
        if entry is None:
            return
        if entry.view != self.view:
            self.show_view(entry.view)
        if entry.parameter:
            self._describe((entry.node, entry.parameter))
            row_key = f"{entry.node}\x1f{entry.parameter}"
            if row_key in self.rows:
                self.table.move_cursor(row=self.table.get_row_index(row_key), scroll=True)
        elif entry.view in self.infos or any(g == entry.view for g, _ in self.groups):
            packet = None
            if self.mission is not None and entry.view not in (DERIVED, WATCHED):
                packet = next(
                    (p for p in self.mission.packets.values() if p.name == entry.view), None
                )
            text = packet.description if packet is not None else ""
            if packet is not None and packet.period_s:
                text = f"every {packet.period_s:g} s: {text}"
            self.info(text)
        else:
            self.info("w on a parameter watches it" if not self.watched else "")

    def on_tree_node_selected(self, event: Tree.NodeSelected[Entry]) -> None:
        event.stop()
        entry = event.node.data
        if entry is not None and entry.parameter:
            self.toggle_plot((entry.node, entry.parameter))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        key = self.rows.get(str(event.row_key.value))
        if key is not None and self.table.has_focus:
            self._describe(key)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = self.rows.get(str(event.row_key.value))
        if key is not None:
            self.toggle_plot(key)

    def _describe(self, key: Key) -> None:
        info = self._info_of(key)
        if info is None:
            self.info(key[1])
            return
        text = info.description
        limits = info.limits
        if limits is not None:
            bands = []
            if limits.yellow_low is not None or limits.yellow_high is not None:
                bands.append(f"yellow {_band(limits.yellow_low, limits.yellow_high)}")
            if limits.red_low is not None or limits.red_high is not None:
                bands.append(f"red {_band(limits.red_low, limits.red_high)}")
            if limits.yellow_states:
                bands.append("yellow " + "/".join(limits.yellow_states))
            if limits.red_states:
                bands.append("red " + "/".join(limits.red_states))
            if bands:
                text += f" [{', '.join(bands)}]"
        self.info(text)

    def _subtitle(self) -> None:
        self.border_subtitle = f"{self.node or '-'}  plot {self.window_s / 60:g} min"

    def info(self, text: str) -> None:
        """One line under the table: what the cursor is on, or what was refused."""
        self.info_line.update(Text(text, overflow="ellipsis", no_wrap=True))

    def _focused_key(self) -> Key | None:
        focused = self.app.focused
        if focused is self.table:
            table = self.table
            if table.row_count:
                row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
                return self.rows.get(str(row_key.value))
            return None
        node = self.param_tree.cursor_node
        if node is not None and node.data is not None and node.data.parameter:
            return (node.data.node, node.data.parameter)
        return None

    # --- actions -------------------------------------------------------------------------------
    def action_watch(self) -> None:
        """Watch the parameter under the cursor, or stop watching it."""
        key = self._focused_key()
        if key is None:
            self.info("w: put the cursor on a parameter to watch it")
            return
        if key in self.watched:
            self.watched.remove(key)
        else:
            self.watched.append(key)
        self._fill_watched()
        self._relabel(key)
        if self.view == WATCHED and self.app.focused is not self.table:
            self.show_view(WATCHED)

    def action_clear_plot(self) -> None:
        for key in list(self.traces):
            self.toggle_plot(key)

    def action_window(self, step: int) -> None:
        """Shorten or lengthen the plot window (history is read again)."""
        index = WINDOWS_S.index(self.window_s) if self.window_s in WINDOWS_S else 1
        index = min(max(index + step, 0), len(WINDOWS_S) - 1)
        self.window_s = WINDOWS_S[index]
        self.info(f"plot window: {self.window_s / 60:g} min")
        self._subtitle()
        for trace in self.traces.values():
            trace.loading = True
            self._load_history(trace)
        self._plot_dirty = True

    # --- the plot ------------------------------------------------------------------------------
    def toggle_plot(self, key: Key) -> None:
        """Plot the parameter (history from the archive, then live), or take it off."""
        if key in self.traces:
            del self.traces[key]
            self._relabel(key)
            self._plot_dirty = True
            self._refresh_plot()
            return
        name = key[1]
        info = self._info_of(key)
        latest = self.values.get(key)
        if info is not None and not info.numeric:
            self.info(f"{name} is text: it cannot be plotted")
            return
        if info is None and latest is not None and as_number(None, latest.value) is None:
            self.info(f"{name} is not a number: it cannot be plotted")
            return
        if len(self.traces) >= MAX_PLOTTED:
            self.info(f"at most {MAX_PLOTTED} plotted: enter on a plotted one takes it off")
            return
        used = {t.style for t in self.traces.values()}
        style = next(s for s in STYLES if s not in used)
        trace = Trace(key, style, info)
        if latest is not None:
            self._add_point(trace, latest)
        self.traces[key] = trace
        self._relabel(key)
        if info is not None and info.states is not None:
            self.info(f"{name}: its raw value is plotted (" + _states(info.states) + ")")
        self._load_history(trace)
        self._plot_dirty = True
        self._refresh_plot()

    def _add_point(self, trace: Trace, value: Value) -> None:
        number = as_number(trace.info, value.value, value.raw)
        if number is None:
            return
        points = trace.points
        if not points or value.time_s > points[-1][0]:
            points.append((value.time_s, number))
            self._plot_dirty = True

    def _load_history(self, trace: Trace) -> None:
        """Queue a read of the window's history from the archive: a worker reads one
        parameter at a time and joins its history to the live points (on the UI's loop)."""
        if trace not in self._history_queue:
            self._history_queue.append(trace)
        if not self._history_running:
            self._history_running = True
            self.run_worker(self._read_histories(), group="history", exit_on_error=False)

    async def _read_histories(self) -> None:
        try:
            while self._history_queue:
                trace = self._history_queue.pop(0)
                if self.traces.get(trace.key) is trace:
                    await self._read_history(trace)
        finally:
            self._history_running = False

    async def _read_history(self, trace: Trace) -> None:
        node, name = trace.key
        end = self.clock_s or self.backend.clock()
        start = end - self.window_s
        rows: list[tuple[float, Any]] | None = None
        problem = ""
        for attempt in range(HISTORY_ATTEMPTS):
            try:
                rows = await self.backend.history(node, name, start, end + 3600.0, HISTORY_LIMIT)
                break
            except Exception as error:  # the archive is the engine's: say it, go on live
                problem = str(error) or type(error).__name__
                await asyncio.sleep(0.1 * (attempt + 1))
        if self.traces.get(trace.key) is not trace:
            return  # taken off the plot meanwhile
        if rows is None:
            self.info(f"{name}: no history, the archive could not be read: {problem}")
            rows = []
        points = []
        for t, v in rows:
            number = as_number(trace.info, v)
            if number is not None:
                points.append((t, number))
        last = points[-1][0] if points else -math.inf
        trace.points = points + [p for p in trace.points if p[0] > last]
        trace.loading = False
        self._plot_dirty = True
        self._refresh_plot()

    def _refresh_plot(self) -> None:
        """Redraw when a plotted value changed or the clock moved a dot's worth of time."""
        view = self.plot_view
        end = self.clock_s
        start = end - self.window_s
        moved = end - self._plot_drawn_s > self.window_s / max(1, 2 * view.size.width)
        if not self.traces:
            if self._plot_dirty:
                view.show([], start, end)
                self._plot_dirty = False
            return
        if not (self._plot_dirty or moved):
            return
        nodes = {node for node, _ in self.traces}
        series = []
        for trace in self.traces.values():
            node, name = trace.key
            cut = bisect.bisect_left(trace.points, (start - 60.0,))
            if cut > 0:
                del trace.points[:cut]
            label = name.split(".")[-1] if name.count(".") == 1 else name
            if len(nodes) > 1:
                label = f"{node} {label}"
            if trace.info is not None and trace.info.states is not None:
                label += " (raw)"
            elif trace.loading:
                label += " …"
            unit = trace.info.unit if trace.info is not None else ""
            series.append(Series(label, list(trace.points), trace.style, unit))
        view.show(series, start, end)
        self._plot_dirty = False
        self._plot_drawn_s = end


def _band(low: float | None, high: float | None) -> str:
    lo = "" if low is None or low == -math.inf else f"{low:g}"
    hi = "" if high is None or high == math.inf else f"{high:g}"
    return f"{lo}..{hi}"


def _states(states: dict[str, int]) -> str:
    return ", ".join(f"{raw} {name}" for name, raw in sorted(states.items(), key=lambda s: s[1]))
