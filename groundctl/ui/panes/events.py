"""The Events pane: a scrolling log of what happened, newest at the bottom.

Node events, link state changes, AOS/LOS, procedure alerts and operator actions (every
`Event` of the snapshots), and one line per new stage of each command. A line reads
`HH:MM:SS  NODE  SOURCE  SEVERITY  text`, coloured by severity. The pane keeps the last
MAX_LINES lines itself, so a filter (`/`, then type; Esc clears it) can show them again;
the log follows new lines unless the operator has scrolled up.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.widgets import Input, RichLog

from groundctl.ui.dialogs import hhmmss
from groundctl.ui.panes.base import Pane

if TYPE_CHECKING:
    from groundctl.telemetry.model import Event
    from groundctl.ui.backend import Backend
    from groundctl.ui.state import CommandView, Snapshot

MAX_LINES = 2000
SEVERITY_STYLE = {
    "DEBUG": "dim",
    "INFO": "",
    "WARNING": "yellow",
    "ERROR": "bold red",
    "CRITICAL": "bold white on red",
}
TEXT_STYLE = {"DEBUG": "dim", "WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold red"}
STAGE_SEVERITY = {"failed": "ERROR", "timeout": "ERROR", "cancelled": "WARNING"}


class LogLine(NamedTuple):
    """A line of the log: when (for ordering), its text, and that text in lower case
    (what the filter searches)."""

    time_s: float
    text: Text
    search: str


def make_line(time_s: float, node: str, source: str, severity: str, message: str) -> LogLine:
    text = Text(no_wrap=True)
    text.append(hhmmss(time_s), "dim")
    text.append(f"  {node:<8} ")
    text.append(f" {source:<14} ", "cyan")
    text.append(f" {severity:<8}", SEVERITY_STYLE.get(severity, ""))
    text.append(f"  {message}", TEXT_STYLE.get(severity, ""))
    return LogLine(time_s, text, text.plain.lower())


def event_line(event: Event) -> LogLine:
    """A node's event shows its app and event id (`POWER 10`); the ground's, its kind
    (`link-state`, `aos`, `procedure-alert`...)."""
    if event.source == "ground":
        source = event.kind
    elif event.event_id is not None:
        source = f"{event.source} {event.event_id}"
    else:
        source = f"{event.source}/{event.kind}"
    return make_line(event.time_s, event.node, source, event.severity.upper(), event.text)


def stage_line(view: CommandView, stage: str, time_s: float, detail: str) -> LogLine:
    """`CMD 12 ODC-07 NOOP: completed (detail)`; another console's: `CMD ops-2#12 ...`."""
    message = f"CMD {view.ref} {view.text}: {stage}"
    if detail:
        message += f" ({detail})"
    return make_line(time_s, view.node, "command", STAGE_SEVERITY.get(stage, "INFO"), message)


class EventLog(RichLog):
    """The log widget; tells its pane when it first gets a size (a pane hidden on a
    narrow terminal writes nothing until it is shown)."""

    def on_resize(self, event: Resize) -> None:
        if event.size.width and isinstance(self.parent, EventsPane):
            self.parent.log_resized()


class EventsPane(Pane):
    """The event log; `/` filters it, Esc clears the filter."""

    TITLE = "Events"
    KEY = "e"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter"),
    ]
    DEFAULT_CSS = """
    EventsPane > EventLog {
        height: 1fr;
        padding-left: 1;
        background: transparent;
        scrollbar-size-vertical: 1;
    }
    EventsPane > #events-filter {
        dock: bottom;
        height: 1;
        border: none;
        padding: 0 1;
        display: none;
    }
    EventsPane > #events-filter:focus {
        border: none;
    }
    EventsPane.-filtering > #events-filter {
        display: block;
    }
    """

    def __init__(self, backend: Backend, *, id: str | None = None) -> None:
        super().__init__(backend, id=id)
        self.lines: deque[LogLine] = deque(maxlen=MAX_LINES)
        self.filter = ""
        self._stages_seen: dict[str, int] = {}  # command ref -> stages logged
        self._unwritten = False  # lines kept while the log had no size
        self._followed_y = 0.0  # where the log was last scrolled to follow new lines
        self.log_widget = EventLog(
            max_lines=MAX_LINES,
            wrap=False,
            markup=False,
            highlight=False,
            auto_scroll=False,  # the pane scrolls it (see update_from)
            id="events-log",
        )
        self.filter_input = Input(
            placeholder="filter: show lines containing... (Esc clears)", id="events-filter"
        )

    def compose(self) -> ComposeResult:
        yield self.log_widget
        yield self.filter_input

    def shown_lines(self) -> list[str]:
        """The text of the lines the log shows now (filtered), oldest first."""
        return [strip.text.rstrip() for strip in self.log_widget.lines]

    # --- from the app ---------------------------------------------------------------------------
    def update_from(self, snapshot: Snapshot) -> None:
        new: list[LogLine] = []
        for ref, view in snapshot.commands.items():
            if view.origin:
                continue  # another console's: its stages come as remote-command events
            seen = self._stages_seen.get(ref, 0)
            for stage, time_s, detail in view.stages[seen:]:
                new.append(stage_line(view, stage, time_s, detail))
            self._stages_seen[ref] = len(view.stages)
        new.extend(event_line(event) for _, event in snapshot.events)
        if not new:
            return
        # In time order by the second (a node stamps its events with whole seconds), stable:
        # within a second, command stages come before events (a node's answer to them).
        new.sort(key=lambda line: math.floor(line.time_s))
        self.lines.extend(new)
        log = self.log_widget
        if not self.is_attached:  # the app is closing
            return
        if not log.size.width:
            self._unwritten = True  # hidden: written from self.lines once shown
            return
        # follow unless the operator moved the log up from where it was last put
        follow = log.is_vertical_scroll_end or log.scroll_offset.y >= self._followed_y
        for line in new:
            if self._matches(line):
                log.write(line.text, shrink=False, scroll_end=False)
        if follow:
            self._scroll_to_end()
        if self.filter:
            self._update_subtitle()

    def log_resized(self) -> None:
        if self._unwritten:
            self._unwritten = False
            self.rewrite()

    # --- the filter -----------------------------------------------------------------------------
    def _matches(self, line: LogLine) -> bool:
        return not self.filter or self.filter in line.search

    def rewrite(self) -> None:
        """Show the kept lines again, through the filter, ending at the newest."""
        log = self.log_widget
        log.clear()
        shown = [line for line in self.lines if self._matches(line)]
        for index, line in enumerate(shown, 1):
            # the last one scrolls to the end after the next refresh too, which is what
            # a log without a size yet (writes deferred) does
            log.write(line.text, shrink=False, scroll_end=index == len(shown))
        self._scroll_to_end()
        self._update_subtitle()

    def _scroll_to_end(self) -> None:
        log = self.log_widget
        log.scroll_end(animate=False, immediate=True, x_axis=False)
        self._followed_y = log.max_scroll_y

    def set_filter(self, text: str) -> None:
        """Show only the lines containing `text` (any case); "" shows every line."""
        text = text.strip().lower()
        if text != self.filter:
            self.filter = text
            self.rewrite()

    def _update_subtitle(self) -> None:
        if self.filter:
            count = sum(1 for line in self.lines if self._matches(line))
            self.border_subtitle = Text(f"filter {self.filter!r}: {count} of {len(self.lines)}")
        else:
            self.border_subtitle = ""

    def action_filter(self) -> None:
        self.add_class("-filtering")
        self.filter_input.focus()

    def action_clear_filter(self) -> None:
        self.filter_input.value = ""
        self.set_filter("")
        self.remove_class("-filtering")
        self.log_widget.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return bool(self.filter) or self.has_class("-filtering")
        return True

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.set_filter(event.value)
        self.refresh_bindings()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not self.filter:
            self.remove_class("-filtering")
        self.log_widget.focus()
