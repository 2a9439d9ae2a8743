"""The Commanding pane: type a command, see it checked as you type, send it, follow it.

    [ODC-01 SET_POWER_MODE mode=ECO              ]   Tab completes, Enter sends
    values: SAFE ECO NOMINAL PERFORMANCE              the candidates, or what to type
    ok: SET_POWER_MODE mode=<one of ...> - change...  the check: red, green or hazardous
    id  time       command                stage      detail      the history, newest first
    Queue: 1 waiting - x cancels
    id  command                release                detail     the store-and-forward queue

The line is parsed and validated against the node's mission database on every keystroke
(`Commander.check`, pure and fast), with the operator's role. Enter sends it through the
commander (`backend.issue`, awaited off the UI's loop); a hazardous command first opens
the confirmation box (groundctl.ui.confirm), and its typed confirmation goes with it. The
commander audits every refusal, so a command the role may not send is still handed to it
to refuse; a line that does not validate is not.

The history is the session's commands, as their stages arrive (`Snapshot.commands`), plus
the archive's newest commands and every queued one, read once when the ground segment is
up. A queued row says when it goes: the node's next contact, or its time tag; `x` (or
Delete) on it cancels it.

With shared operations (groundctl.operations), the other consoles' commands are shown too,
named by their console (`ops-2#12`: their ids are their console's own, and may collide with
this one's). The queue also lists the other consoles' queued commands known when the
archive is read; `x` on one asks its console to cancel it (which checks the role).

In replay commanding is disabled (a replay has no node to command): the command line is
disabled and says so; the history and the queue still show the replay archive's.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import DataTable, Input, Static

from groundctl.commanding.roles import check_role
from groundctl.commanding.syntax import usage
from groundctl.errors import CommandError, GroundctlError
from groundctl.operations import command_ref, parse_ref
from groundctl.session import REPLAY_DISABLED
from groundctl.ui.backend import BackendError
from groundctl.ui.completion import MissionOf, candidates, suggestion, tab_complete
from groundctl.ui.confirm import ConfirmCommand
from groundctl.ui.panes.base import Pane
from groundctl.ui.state import CommandView

if TYPE_CHECKING:
    from groundctl.archive.commands import CommandRecord
    from groundctl.commanding.syntax import ValidCommand
    from groundctl.operations import RemoteCommand
    from groundctl.ui.backend import Backend
    from groundctl.ui.state import Snapshot

STAGE_STYLES = {
    "completed": "bold green",
    "failed": "bold red",
    "timeout": "bold red",
    "queued": "yellow",
    "edited": "yellow",
    "released": "yellow",
    "sent": "yellow",
    "accepted": "yellow",
    "cancelled": "dim",
}
IN_QUEUE = ("queued", "edited")  # stages of a command still in the store-and-forward queue
HISTORY_FROM_ARCHIVE = 100  # the archive's newest commands shown when the console starts
MAX_HISTORY = 500  # rows kept in the history table (older ones leave it, not the archive)
COMMAND_WIDTH = 36  # command text in the tables, cut with an ellipsis beyond
SYNTAX = "NODE COMMAND [ARGUMENT=VALUE ...]"
HISTORY_COLUMNS = ("id", "time", "command", "stage", "detail")
QUEUE_COLUMNS = ("id", "command", "release", "detail")


def utc_time(time_s: float) -> str:
    """12:34:56Z, a Unix time as the console shows it (UTC)."""
    return f"{datetime.fromtimestamp(time_s, UTC):%H:%M:%S}Z"


def countdown(seconds: float) -> str:
    """How long until then: `in 42s`, `in 23m 10s`, `in 2h 05m`, `due`."""
    if seconds <= 0:
        return "due"
    whole = int(seconds)
    if whole < 60:
        return f"in {whole}s"
    if whole < 3600:
        return f"in {whole // 60}m {whole % 60:02d}s"
    return f"in {whole // 3600}h {whole % 3600 // 60:02d}m"


def release_text(view: CommandView, kind: str | None, clock_s: float) -> str:
    """When a queued command goes: its node's next contact, its time tag, after the
    command ahead of it, or now.

    `kind` is the archive's release (now, aos, time) when known; the commander says the
    rest in the stage's detail (`waiting for contact: next AOS ...`, `waiting for its
    time tag ...`, `waiting behind command 12`)."""
    detail = view.detail
    at = view.release_at
    if detail.startswith("in contact"):
        return "in contact: releasing"
    behind = re.match(r"waiting behind command (\d+)", detail)
    if behind:  # a command of the same console
        ahead = int(behind.group(1))
        return f"after {command_ref(view.origin, ahead)}" if view.origin else f"after #{ahead}"
    if at is not None and (kind == "time" or "time tag" in detail or (kind is None and not detail)):
        return f"time tag {utc_time(at)} ({countdown(at - clock_s)})"
    if at is not None:
        return f"next contact {utc_time(at)} ({countdown(at - clock_s)})"
    if "no link" in detail:
        return "no link serves this node"
    if detail.startswith("waiting for contact"):
        return "next contact unknown" + detail.removeprefix("waiting for contact")
    return "now"


def _cut(text: str, width: int = COMMAND_WIDTH) -> Text:
    shown = Text(text, no_wrap=True)
    shown.truncate(width, overflow="ellipsis")
    return shown


class CommandSuggester(Suggester):
    """The ghost text of the command line: what Tab would complete it to."""

    def __init__(self, nodes: Callable[[], Sequence[str]], mission_of: MissionOf) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.nodes = nodes
        self.mission_of = mission_of

    async def get_suggestion(self, value: str) -> str | None:
        return suggestion(value, self.nodes(), self.mission_of)


class CommandInput(Input):
    """The command line: Tab completes, Right accepts the ghost text, Up/Down recall the
    lines sent before."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "complete", "Complete", show=False),
        Binding("up", "recall(-1)", "Previous command", show=False),
        Binding("down", "recall(1)", "Next command", show=False),
    ]

    def __init__(
        self,
        nodes: Callable[[], Sequence[str]],
        mission_of: MissionOf,
        *,
        id: str | None = None,
        placeholder: str = "",
    ) -> None:
        super().__init__(
            placeholder=placeholder, id=id, suggester=CommandSuggester(nodes, mission_of)
        )
        self.nodes = nodes
        self.mission_of = mission_of
        self.sent: list[str] = []
        self._recalled = 0

    def action_complete(self) -> None:
        """Complete the last word: the one candidate, or the candidates' common prefix.
        With nothing typed and nothing to complete, Tab moves the focus on."""
        completed, choices = tab_complete(self.value, self.nodes(), self.mission_of)
        if completed == self.value and not choices:
            if not self.value:
                raise SkipAction()
            self.app.bell()
            return
        if completed != self.value:
            self.value = completed
        self.cursor_position = len(self.value)

    def remember(self, text: str) -> None:
        if not self.sent or self.sent[-1] != text:
            self.sent.append(text)
        self._recalled = len(self.sent)

    def action_recall(self, step: int) -> None:
        if not self.sent:
            return
        self._recalled = max(0, min(len(self.sent), self._recalled + step))
        self.value = self.sent[self._recalled] if self._recalled < len(self.sent) else ""
        self.cursor_position = len(self.value)


class QueueTable(DataTable[Text]):
    """The store-and-forward queue; `x` or Delete cancels the command under the cursor."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x,delete", "cancel_command", "Cancel queued"),
    ]

    class CancelRequested(Message):
        """Cancel the command named `ref`: `12` (this console's), or `ops-2#12`."""

        def __init__(self, ref: str) -> None:
            super().__init__()
            self.ref = ref

    def action_cancel_command(self) -> None:
        if not self.row_count:
            return
        row_key, _column = self.coordinate_to_cell_key(self.cursor_coordinate)
        if row_key.value is not None:
            self.post_message(self.CancelRequested(row_key.value))


class CommandPane(Pane):
    """Commanding: the command line, its check, the history and the queue."""

    TITLE = "Commanding"
    KEY = "c"

    DEFAULT_CSS = """
    CommandPane {
        layout: vertical;
    }
    CommandPane #cmd-input {
        height: 1;
        border: none;
        padding: 0 1;
        background: $boost;
    }
    CommandPane #cmd-input:focus {
        background: $primary 20%;
    }
    CommandPane #cmd-hint {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    CommandPane #cmd-check {
        height: auto;
        max-height: 2;
        padding: 0 1;
    }
    CommandPane #cmd-history {
        height: 1fr;
        min-height: 3;
    }
    CommandPane #cmd-queue-title {
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    CommandPane #cmd-queue {
        height: auto;
        max-height: 5;
    }
    """

    def __init__(self, backend: Backend, *, id: str | None = None) -> None:
        super().__init__(backend, id=id)
        self._node_names: list[str] = []
        # by ref (`12`, or `ops-2#12`: CommandView.ref), which is also their rows' key
        self._views: dict[str, CommandView] = {}
        self._release_kind: dict[str, str] = {}  # from the archive: now, aos, time
        self._queued: set[str] = set()
        self._clock_s = 0.0
        self._countdown_at = 0.0  # wall clock (monotonic) of the last countdown redraw
        self._nodes_at = 0.0  # and of the last look at the node names
        self._sending = False
        self.loaded = False  # the archive's history is shown
        self._keep_check = False  # the line was just sent: keep saying so until typing

    # --- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        line = CommandInput(
            self.node_names,
            self.backend.mission_of,
            id="cmd-input",
            placeholder=f"{SYNTAX}   Tab completes, Enter sends",
        )
        if self.backend.replaying:
            line.placeholder = "replay: commanding is disabled"
            line.disabled = True
        yield line
        yield Static(id="cmd-hint")
        yield Static(id="cmd-check")
        history = DataTable[Text](id="cmd-history", cursor_type="row", zebra_stripes=True)
        for column in HISTORY_COLUMNS:
            history.add_column(column, key=column)
        yield history
        yield Static(id="cmd-queue-title")
        queue = QueueTable(id="cmd-queue", cursor_type="row")
        for column in QUEUE_COLUMNS:
            queue.add_column(column, key=column)
        yield queue

    def on_mount(self) -> None:
        self._show_hint("")
        self._show_check("")
        self._show_queue_title()
        if self.backend.replaying:
            self._show_replay()

    def _show_replay(self) -> None:
        self.query_one("#cmd-hint", Static).update("")
        self._show_check_text(Text(REPLAY_DISABLED, "bold yellow"))

    @property
    def command_input(self) -> CommandInput:
        return self.query_one("#cmd-input", CommandInput)

    @property
    def history(self) -> DataTable[Text]:
        return self.query_one("#cmd-history", DataTable)

    @property
    def queue(self) -> QueueTable:
        return self.query_one("#cmd-queue", QueueTable)

    def node_names(self) -> list[str]:
        return self._node_names

    # --- from the app ----------------------------------------------------------------------------
    def first_update(self, snapshot: Snapshot) -> None:
        self._refresh_nodes()
        try:
            actor = self.backend.commander.actor
        except BackendError:
            self._show_check_text(Text("commanding is off: this console only watches", "dim"))
            return
        self.border_subtitle = f"{actor.operator} ({actor.role})"
        self.update_from(snapshot)
        if self.backend.replaying:
            self.border_subtitle = "replay: commanding disabled"
            self._show_replay()
        else:
            self._show_check(self.command_input.value)
        self.run_worker(self._load_archive(), group="cmd-archive", exclusive=True)

    def update_from(self, snapshot: Snapshot) -> None:
        self._clock_s = snapshot.clock_s
        self._refresh_nodes()
        if snapshot.commands:
            added = False
            for view in sorted(snapshot.commands.values(), key=_order):
                added |= self._show(view)
            self._tidy(added)
        now = time.monotonic()
        if self._queued and now - self._countdown_at >= 1.0:  # countdowns: once a second
            self._countdown_at = now
            for ref in self._queued:
                self._update_release(ref)

    def _refresh_nodes(self) -> None:
        """The nodes to complete, looked at about once a second."""
        now = time.monotonic()
        if self._node_names and now - self._nodes_at < 1.0:
            return
        self._nodes_at = now
        with contextlib.suppress(RuntimeError):  # a node added while we looked: next time
            self._node_names = self.backend.nodes()

    async def _load_archive(self) -> None:
        """The archive's newest commands and every queued one (older runs' too), then the
        other consoles' queued commands (shared operations)."""
        try:
            store = self.backend.commander.store
            recent: list[CommandRecord] = await self.backend.call(
                store.call(store.recent, HISTORY_FROM_ARCHIVE)
            )
            queued: list[CommandRecord] = await self.backend.queued()
        except Exception as error:
            if self.is_attached:
                self._show_check_text(
                    Text(f"history: the archive could not be read: {error}", "red")
                )
            return
        if not self.is_attached:  # the console closed meanwhile
            return
        try:
            remote = self.backend.remote_queued()
        except Exception as error:  # a bug: say so, and show the archive's commands still
            remote = []
            self._show_check_text(
                Text(f"the other consoles' queued commands cannot be shown: {error!r}", "red")
            )
        with contextlib.suppress(NoMatches):  # the console is closing: its tables are gone
            self._show_archive(recent, queued, remote)

    def _show_archive(
        self,
        recent: list[CommandRecord],
        queued: list[CommandRecord],
        remote: Sequence[RemoteCommand] = (),
    ) -> None:
        added = False
        for record in [*reversed(recent), *queued]:
            self._release_kind.setdefault(str(record.id), record.release)
            view = CommandView(
                record.id,
                record.node,
                record.text,
                record.status,
                record.detail,
                record.updated,
                record.release_at,
            )
            added |= self._show_unless_known(view)
        for command in remote:
            view = CommandView(
                command.command_id,
                command.node,
                command.text,
                command.stage,
                command.detail,
                command.time_s,
                command.release_at,
                origin=command.console,
            )
            added |= self._show_unless_known(view)
        self._tidy(added)
        self.loaded = True

    def _show_unless_known(self, view: CommandView) -> bool:
        """Show `view` read at start, unless the session's own (newer) view is shown; that
        one gets its text if it lacks it. True if a new row."""
        known = self._views.get(view.ref)
        if known is None:
            return self._show(view)
        if not known.text and view.text:
            known.text = view.text
            self._show(known)
        return False

    # --- the tables ------------------------------------------------------------------------------
    def _show(self, view: CommandView) -> bool:
        """Show `view` in the history (and the queue while queued); True if a new row."""
        view = replace(view, stages=list(view.stages))  # the pane's own copy
        key = view.ref
        known = self._views.get(key)
        if not view.text and known is not None:
            view.text = known.text  # stages of an earlier run's command come without it
        self._views[key] = view
        history = self.history
        stage = Text(view.stage, STAGE_STYLES.get(view.stage, ""))
        cells = {
            "time": Text(utc_time(view.time_s)),
            "command": _cut(view.text),
            "stage": stage,
            "detail": Text(view.detail, no_wrap=True),
        }
        added = key not in history.rows
        if added:
            history.add_row(
                Text(key, justify="right"),
                *(cells[c] for c in HISTORY_COLUMNS[1:]),
                key=key,
            )
        else:
            for column, value in cells.items():
                history.update_cell(key, column, value, update_width=True)
        queue = self.queue
        if view.stage in IN_QUEUE:
            if key not in self._queued:
                self._queued.add(key)
                queue.add_row(
                    Text(key, justify="right"),
                    _cut(view.text),
                    Text(""),
                    Text(view.detail, no_wrap=True),
                    key=key,
                )
            else:
                queue.update_cell(key, "command", _cut(view.text))
                queue.update_cell(key, "detail", Text(view.detail, no_wrap=True))
            self._update_release(key)
        elif key in self._queued:
            self._queued.discard(key)
            queue.remove_row(key)
        return added

    def _update_release(self, ref: str) -> None:
        view = self._views.get(ref)
        if view is None or ref not in self._queued:
            return
        text = release_text(view, self._release_kind.get(ref), self._clock_s)
        self.queue.update_cell(ref, "release", Text(text), update_width=True)

    def _tidy(self, added: bool) -> None:
        """Newest first; at most MAX_HISTORY rows; the queue's title and visibility."""
        history = self.history
        if added:
            while history.row_count > MAX_HISTORY:
                oldest = _oldest(v for r, v in self._views.items() if r not in self._queued)
                history.remove_row(oldest.ref)
                del self._views[oldest.ref]
            history.sort("id", key=_newest_first)
            self.queue.sort("id", key=_ref_order)
        self._show_queue_title()

    def _show_queue_title(self) -> None:
        waiting = len(self._queued)
        title = self.query_one("#cmd-queue-title", Static)
        if waiting:
            title.update(
                Text.assemble(
                    ("Queue: ", "bold"),
                    f"{waiting} waiting for release  ",
                    ("x cancels the selected command", "dim"),
                )
            )
        else:
            title.update(Text.assemble(("Queue: ", "bold"), ("empty", "dim")))
        self.queue.display = waiting > 0

    # --- the command line ----------------------------------------------------------------------
    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "cmd-input":
            return
        event.stop()
        self._show_hint(event.value)
        if self._keep_check and not event.value:
            return
        self._keep_check = False
        self._show_check(event.value)

    def _show_hint(self, value: str) -> None:
        """The candidates for the word being typed, or what the argument takes."""
        found = candidates(value, self._node_names, self.backend.mission_of)
        kinds = {"node": "nodes", "command": "commands", "argument": "arguments"}
        hint = Text(no_wrap=True, overflow="ellipsis")
        if len(found.options) > 1 or (found.options and found.word != found.options[0].rstrip()):
            hint.append(f"{kinds.get(found.kind, 'values')}: ", "dim")
            hint.append("  ".join(found.labels))
        elif found.help:
            hint.append(found.help, "dim")
        elif not value:
            hint.append("Tab completes, Right takes the suggestion, Up/Down recall", "dim")
        self.query_one("#cmd-hint", Static).update(hint)

    def _check(self, text: str) -> ValidCommand:
        """`text` validated against its node's database, and the role that may send it
        (CommandError says why not)."""
        commander = self.backend.commander
        valid = commander.check(text)
        actor = commander.actor
        check_role(actor.role, actor.operator, valid.text, valid.hazardous)
        return valid

    def _show_check(self, value: str) -> None:
        text = value.strip()
        if not text:
            self._show_check_text(Text(f"{SYNTAX}, e.g. ODC-01 NOOP", "dim"))
            return
        if not self.backend.running:
            self._show_check_text(Text("the ground segment is not running yet", "dim"))
            return
        try:
            valid = self._check(text)
        except BackendError as error:
            self._show_check_text(Text(str(error), "dim"))
            return
        except GroundctlError as error:
            self._show_check_text(_refusal(error))
            return
        except Exception as error:  # a bug: say so here rather than end the console
            self._show_check_text(Text(f"cannot check this line: {error!r}", "red"))
            return
        line = Text()
        if valid.hazardous:
            line.append("hazardous: you will be asked to confirm", "bold yellow")
            line.append(f"  {usage(valid.command)}", "yellow")
        else:
            line.append(f"ok: {usage(valid.command)}", "green")
        if valid.command.description:
            line.append(f" - {valid.command.description}", "dim")
        self._show_check_text(line)

    def _show_check_text(self, text: Text) -> None:
        text.no_wrap = False
        text.overflow = "ellipsis"
        self.query_one("#cmd-check", Static).update(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "cmd-input":
            return
        event.stop()
        text = event.value.strip()
        if not text:
            return
        if self.backend.replaying:
            self._show_replay()
            return
        if self._sending:
            self._show_check_text(Text("still sending the previous command", "yellow"))
            return
        try:
            valid = self.backend.commander.check(text)
        except BackendError as error:
            self._show_check_text(Text(f"not sent: {error}", "red"))
            return
        except GroundctlError as error:
            self._show_check_text(_refusal(error))
            return
        if valid.hazardous and self._may_send(valid):
            description = valid.command.description

            def confirmed(typed: str | None) -> None:
                if typed is None:
                    self._show_check_text(Text(f"{valid.text}: not sent (not confirmed)", "yellow"))
                    return
                self._send(text, typed)

            self.app.push_screen(ConfirmCommand(valid.text, valid.name, description), confirmed)
            return
        # not hazardous; or hazardous for a role that may not send it, which the commander
        # then refuses (and audits the refusal)
        self._send(text, False)

    def _may_send(self, valid: ValidCommand) -> bool:
        actor = self.backend.commander.actor
        try:
            check_role(actor.role, actor.operator, valid.text, valid.hazardous)
        except CommandError:
            return False
        return True

    def _send(self, text: str, confirm: bool | str) -> None:
        self._sending = True
        self.run_worker(self._issue(text, confirm), group="cmd-issue")

    async def _issue(self, text: str, confirm: bool | str) -> None:
        line = self.command_input
        try:
            outcome = await self.backend.issue(text, confirm)
        except GroundctlError as error:
            self._show_check_text(_refusal(error))
            return
        except Exception as error:
            self._show_check_text(Text(f"not sent: {error}", "red"))
            return
        finally:
            self._sending = False
        line.remember(text)
        self._keep_check = True
        line.value = ""
        self._show_check_text(
            Text.assemble(
                (f"#{outcome.command_id} ", "bold"),
                (outcome.text, "green"),
                f": {outcome.stage}",
            )
        )

    # --- the tables' keys ----------------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a history row: its command line in the input, to edit or send again
        (a line being typed there goes to the recall list: Up brings it back)."""
        if event.data_table.id != "cmd-history" or event.row_key.value is None:
            return
        event.stop()
        if self.backend.replaying:
            return  # the command line is disabled
        view = self._views.get(event.row_key.value)
        if view is not None and view.text:
            line = self.command_input
            if line.value.strip() and line.value.strip() != view.text:
                line.remember(line.value.strip())  # what was typed: Up brings it back
            line.value = view.text
            line.cursor_position = len(view.text)
            line.focus()

    def on_queue_table_cancel_requested(self, event: QueueTable.CancelRequested) -> None:
        event.stop()
        if self.backend.replaying:
            self._show_replay()
            return
        self.run_worker(self._cancel(event.ref), group="cmd-cancel")

    async def _cancel(self, ref: str) -> None:
        """Cancel a command of this console; ask another console to cancel one of its own
        (the outcome arrives as the command's next stage)."""
        origin, command_id = parse_ref(ref)
        name = f"#{command_id}" if not origin else ref
        try:
            if origin:
                await self.backend.cancel_remote(origin, command_id, "cancelled from the console")
            else:
                await self.backend.cancel(command_id, "cancelled from the console")
        except GroundctlError as error:
            self._show_check_text(_refusal(error))
        except (KeyError, ValueError) as error:
            reason = error.args[0] if error.args else error
            self._show_check_text(Text(f"{name} not cancelled: {reason}", "red"))
        except Exception as error:
            self._show_check_text(Text(f"{name} not cancelled: {error}", "red"))
        else:
            done = f"{ref}: cancel requested" if origin else f"{name} cancelled"
            self._show_check_text(Text(done, "yellow"))


def _order(view: CommandView) -> tuple[str, int]:
    """This console's commands first, by id; then each other console's, by id."""
    return (view.origin, view.command_id)


def _oldest(views: Iterable[CommandView]) -> CommandView:
    """The oldest of `views`: each console's lowest id is its oldest; the ids of different
    consoles do not compare, so of those, the one whose last stage came first."""
    first: dict[str, CommandView] = {}
    for view in views:
        known = first.get(view.origin)
        if known is None or view.command_id < known.command_id:
            first[view.origin] = view
    return min(first.values(), key=lambda v: (v.time_s, v.origin, v.command_id))


def _ref_order(cell: Text) -> tuple[str, int]:
    """A table's `#` cell (`12`, `ops-2#12`) in `_order`: the queue's order."""
    return parse_ref(cell.plain)


def _newest_first(cell: Text) -> tuple[str, int]:
    """The history's order: this console's commands newest first, then each other
    console's, newest first."""
    origin, command_id = parse_ref(cell.plain)
    return (origin, -command_id)


def _refusal(error: GroundctlError) -> Text:
    line = Text(error.message, "red")
    if error.hint:
        line.append(f" (hint: {error.hint})", "dim")
    return line
