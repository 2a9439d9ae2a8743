"""The console app: status bar, six panes, footer; a face of the engine.

The engine runs in its own thread (groundctl.ui.backend); this app starts it in a worker
thread, then takes a snapshot of what changed ten times a second and hands it to the
panes. On a wide terminal (160x45) every pane is visible; on a narrow one (80x24) one pane
at a time, chosen with the tabs or the pane keys, and `z` zooms the focused pane anywhere.

In replay (the backend replays a recording), the REPLAY banner sits on top and the
replay's keys (space, `.`, `+`, `-`, `m`, `g`) pause, step, change the speed and seek.
They are priority bindings, so that they mean the same in every pane, but they stand
aside while an input has the focus (typing a filter) and on a dialog.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.events import Resize
from textual.screen import Screen
from textual.theme import Theme
from textual.timer import Timer
from textual.widgets import Footer, Input, Static, Tab, Tabs

from groundctl.ui.backend import Backend
from groundctl.ui.palette import NodesAndParameters
from groundctl.ui.panes.alerts import AlertsPane
from groundctl.ui.panes.base import Pane
from groundctl.ui.panes.commanding import CommandPane
from groundctl.ui.panes.events import EventsPane
from groundctl.ui.panes.fleet import FleetPane
from groundctl.ui.panes.passes import PassesPane
from groundctl.ui.panes.telemetry import TelemetryPane
from groundctl.ui.replay import ReplayBanner, SeekDialog, recorded
from groundctl.ui.state import Snapshot

REFRESH_S = 0.1  # at most ten redraws a second
NARROW_WIDTH = 120
NARROW_HEIGHT = 36
PANES: tuple[type[Pane], ...] = (
    PassesPane, TelemetryPane, AlertsPane, CommandPane, FleetPane, EventsPane,
)  # fmt: skip

HIGH_CONTRAST = Theme(
    name="groundctl-high-contrast",
    primary="#ffff00",
    secondary="#00ffff",
    accent="#ff00ff",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#000000",
    success="#00ff00",
    warning="#ffff00",
    error="#ff0000",
    dark=True,
)
THEMES = {"dark": "textual-dark", "light": "textual-light", "high-contrast": HIGH_CONTRAST.name}


class StatusBar(Static):
    """UTC clock (the recorded time in a replay), archive, operator and role, link
    states, and the SIM banner (a replay has its own, above: groundctl.ui.replay)."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(id="status")
        self.backend = backend
        self.flash_until = 0.0

    def show(self, snapshot: Snapshot | None, now_wall: float) -> None:
        b = self.backend
        clock = snapshot.clock_s if snapshot is not None else b.clock()
        text = Text()
        text.append(f" {datetime.fromtimestamp(clock, UTC):%Y-%m-%d %H:%M:%S}Z ", "bold")
        if b.simulated:
            speed = b.speed
            shown = "max" if speed == 0 else f"x{speed:g}"
            text.append(f" SIM {shown} ", "bold black on yellow")
            if snapshot is not None and snapshot.lag_s > 5:
                text.append(f" lag {snapshot.lag_s:.0f}s ", "black on red")
        text.append(f"  {b.archive_path.name}")
        actor = b.session.commander.actor if b.session and b.session.commander else None
        if actor is not None:
            text.append(f"  {actor.operator} ({actor.role})")
        links = snapshot.links if snapshot is not None else {}
        for name, state in sorted(links.items()):
            style = {"up": "green", "degraded": "yellow", "down": "red"}.get(state, "dim")
            text.append(f"  {name}:", "dim")
            text.append(state, style)
        if now_wall < self.flash_until:
            text.append("  RED ALERT ", "bold white on red")
        self.update(text)


class MainScreen(Screen[None]):
    """Every pane in a grid (wide) or one at a time under tabs (narrow)."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend

    def compose(self) -> ComposeResult:
        if self.backend.replaying:
            with Vertical(id="top-bars"):
                yield ReplayBanner()
                yield StatusBar(self.backend)
        else:
            yield StatusBar(self.backend)
        yield Tabs(
            *(Tab(Text(f"{p.TITLE} [{p.KEY}]"), id=f"tab-{p.KEY}") for p in PANES), id="tabs"
        )
        with Grid(id="panes"):
            for pane in PANES:
                yield pane(self.backend, id=f"pane-{pane.TITLE.lower()}")
        replaying = self.backend.replaying  # room for the replay's keys (ctrl+p still works)
        yield Footer(compact=replaying, show_command_palette=not replaying)

    def on_resize(self, event: Resize) -> None:
        narrow = event.size.width < NARROW_WIDTH or event.size.height < NARROW_HEIGHT
        self.set_class(narrow, "narrow")
        if narrow and not self.query(".pane.-current"):
            self.show_pane(self.query(Pane).first())

    def show_pane(self, pane: Pane) -> None:
        for other in self.query(Pane):
            other.set_class(other is pane, "-current")
        self.query_one(Tabs).active = f"tab-{pane.KEY}"

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        key = (event.tab.id or "").removeprefix("tab-")
        for pane in self.query(Pane):
            pane.set_class(key == pane.KEY, "-current")


class ConsoleApp(App[None]):
    """groundctl's console. `backend` may be started already (tests) or not (the CLI
    starts it here, in a worker thread, showing progress meanwhile)."""

    CSS_PATH = str(Path(__file__).with_name("console.tcss"))
    COMMANDS = App.COMMANDS | {NodesAndParameters}
    TITLE = "groundctl"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("p", "pane('p')", "Passes", show=False),
        Binding("t", "pane('t')", "Telemetry", show=False),
        Binding("a", "pane('a')", "Alerts", show=False),
        Binding("c,colon", "pane('c')", "Command"),
        Binding("e", "pane('e')", "Events", show=False),
        Binding("f", "pane('f')", "Fleet", show=False),
        Binding("z", "zoom", "Zoom"),
        # replay: shown and active only in replay (check_action)
        Binding("space", "replay('pause')", "Pause", priority=True),
        Binding("full_stop", "replay('step')", "Step", priority=True),
        Binding("plus,equals_sign", "replay('faster')", "Faster", priority=True),
        Binding("minus", "replay('slower')", "Slower", priority=True),
        Binding("m", "replay('max')", "Max", priority=True),
        Binding("g", "seek", "Seek", priority=True),
    ]
    REPLAY_ACTIONS = frozenset({"replay", "seek"})

    def __init__(
        self, backend: Backend, *, theme: str = "dark", refresh_s: float = REFRESH_S
    ) -> None:
        super().__init__()
        # The archive writer is a spawned process; multiprocessing starts its resource
        # tracker with the terminal's stderr, which a running Textual app has captured:
        # start the tracker now, before the app runs.
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
        self.backend = backend
        self.refresh_s = refresh_s
        self.register_theme(HIGH_CONTRAST)
        self.theme = THEMES.get(theme, theme)
        self.started = False
        self.stopping = False
        self._refresh_timer: Timer | None = None
        self.start_error = ""
        self.main_screen = MainScreen(backend)

    async def on_mount(self) -> None:
        await self.push_screen(self.main_screen)
        self.main_screen.query_one(StatusBar).update(" starting the ground segment...")
        if self.backend.running:
            self._started()
        else:
            self.start_backend()

    @work(thread=True, exclusive=True, group="backend")
    def start_backend(self) -> None:
        try:
            self.backend.start()
        except Exception as error:
            message = getattr(error, "message", str(error))
            self.call_from_thread(self._failed, message)
            return
        self.call_from_thread(self._started)

    def _failed(self, message: str) -> None:
        self.start_error = message
        self.exit(message=f"groundctl console: {message}")

    def _started(self) -> None:
        self.started = True
        snapshot = self.backend.state.everything()
        self.backend.state.take()  # what it held is shown now
        for pane in self.main_screen.query(Pane):
            pane.first_update(snapshot)
        self.main_screen.query_one(StatusBar).show(snapshot, 0.0)
        self._show_replay()
        self.refresh_bindings()  # the replay's keys are on now
        self._refresh_timer = self.set_interval(self.refresh_s, self.refresh_panes)

    def refresh_panes(self) -> None:
        """Hand what changed to the panes; ring and flash on a new red alert."""
        import time

        if self.stopping or not self.is_running or not self.main_screen.is_attached:
            return
        snapshot = self.backend.state.take()
        for pane in self.main_screen.query(Pane):
            pane.update_from(snapshot)
        status = self.main_screen.query_one(StatusBar)
        now = time.monotonic()
        if snapshot.new_red:
            self.bell()
            status.flash_until = now + 3.0
        status.show(snapshot, now)
        self._show_replay()

    def _show_replay(self) -> None:
        if self.backend.replaying:
            self.main_screen.query_one(ReplayBanner).show(self.backend.replay_status)

    # --- actions ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The replay's keys: only in replay, on the main screen, and not while an input
        has the focus (the key is then typed)."""
        if action in self.REPLAY_ACTIONS:
            return (
                self.backend.replaying
                and self.started
                and not self.stopping
                and self.screen is self.main_screen
                and not isinstance(self.focused, Input)
            )
        return True

    async def action_replay(self, control: str) -> None:
        """Pause or resume, step, faster, slower, as fast as possible (or back)."""
        backend = self.backend
        request = {
            "pause": backend.replay_pause,
            "step": backend.replay_step,
            "faster": backend.replay_faster,
            "slower": backend.replay_slower,
            "max": backend.replay_max,
        }[control]
        try:
            status = await request()
        except Exception as error:  # the ground segment stopped meanwhile
            message = getattr(error, "message", str(error))
            self.notify(message, title="Replay", severity="error", markup=False)
            return
        self.main_screen.query_one(ReplayBanner).show(status)

    def action_seek(self) -> None:
        """Ask where to go (a UTC time, or +/- seconds), then seek there."""

        def now() -> float:
            return self.backend.replay_status.time_s

        def chosen(time_s: float | None) -> None:
            if time_s is not None:
                self.run_worker(self._seek(time_s), group="replay-seek", exclusive=True)

        self.push_screen(SeekDialog(now), chosen)

    async def _seek(self, time_s: float) -> None:
        try:
            status = await self.backend.replay_seek(time_s)
        except Exception as error:
            message = getattr(error, "message", str(error))
            self.notify(message, title="Seek", severity="error", markup=False)
            return
        self.main_screen.query_one(ReplayBanner).show(status)
        self.notify(f"Replay: to {recorded(time_s)}", markup=False)

    def action_pane(self, key: str) -> None:
        """Focus (and, on a narrow terminal, show) the pane with this key."""
        for pane in self.main_screen.query(Pane):
            if key == pane.KEY:
                if self.main_screen.has_class("narrow"):
                    self.main_screen.show_pane(pane)
                pane.focus_pane()
                return

    def show_node(self, node: str) -> None:
        """Show `node` in the Telemetry pane (from the command palette)."""
        pane = self.main_screen.query_one(TelemetryPane)
        pane.show_node(node)
        self.action_pane(TelemetryPane.KEY)

    def plot_parameter(self, node: str, parameter: str) -> None:
        """Show `node` in the Telemetry pane and plot `parameter` (from the palette)."""
        pane = self.main_screen.query_one(TelemetryPane)
        if pane.node != node:
            pane.show_node(node)
        if (node, parameter) not in pane.traces:
            pane.toggle_plot((node, parameter))
        self.action_pane(TelemetryPane.KEY)

    def action_zoom(self) -> None:
        """Zoom the focused pane to the whole screen, or back."""
        screen = self.main_screen
        if screen.maximized is not None:
            screen.minimize()
            return
        focused = self.focused
        node = focused
        while node is not None and not isinstance(node, Pane):
            node = node.parent  # type: ignore[assignment]
        if isinstance(node, Pane):
            screen.maximize(node, container=False)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for pane in PANES:
            yield SystemCommand(
                f"Go to {pane.TITLE}",
                f"Focus the {pane.TITLE} pane",
                lambda k=pane.KEY: self.action_pane(k),
            )
        for name, theme in THEMES.items():
            yield SystemCommand(
                f"Theme: {name}",
                f"Switch to the {name} theme",
                lambda t=theme: setattr(self, "theme", t),
            )

    async def action_quit(self) -> None:
        """Stop the ground segment (every frame archived), then exit."""
        self.stopping = True
        if self._refresh_timer is not None:
            self._refresh_timer.stop()
        self.main_screen.query_one(StatusBar).update(" stopping: archiving everything received...")
        await self._stop_backend()
        self.exit()

    async def _stop_backend(self) -> None:
        import asyncio

        await asyncio.to_thread(self.backend.stop)
