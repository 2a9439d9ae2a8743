"""The Alerts pane: every alert operators should see, red first, acknowledged or shelved
from here.

The table holds the visible alerts (`Alert.visible` at the snapshot's clock): active ones,
and cleared ones nobody has acknowledged yet; shelved alerts are hidden until their shelf
expires (`h` shows them too). Rows are keyed by alert id and updated in place; the table
is rebuilt (keeping the cursor on its alert) only when alerts come, go or change places.
Acknowledging and shelving go to the engine thread through the backend (audited there);
a refusal, such as a viewer acknowledging, comes back as an error notification. In replay
neither is offered (the replay's archive is scratch): the keys say why instead.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.events import Resize
from textual.message import Message
from textual.widgets import DataTable

from groundctl.errors import GroundctlError
from groundctl.ui.backend import ALERTS_READ_ONLY, BackendError
from groundctl.ui.dialogs import (
    SEVERITY_STYLE,
    AcknowledgeDialog,
    ShelveDialog,
    hhmmss,
    utc,
)
from groundctl.ui.panes.base import Pane

if TYPE_CHECKING:
    from groundctl.telemetry.alerts import Alert
    from groundctl.ui.backend import Backend
    from groundctl.ui.state import Snapshot

RANK = {"red": 0, "yellow": 1, "stale": 1}
COLUMNS = (
    ("sev", "Sev"),
    ("node", "Node"),
    ("parameter", "Parameter"),
    ("value", "Value"),
    ("raised", "Raised"),
    ("count", "#"),
    ("state", "State"),
)
SEVERITY_LABEL = {"red": "RED", "yellow": "YEL", "stale": "STALE"}
VALUE_WIDTH = 12
GAP = " "  # between columns (the table's own padding would take two cells a column)
FULL_NAMES_WIDTH = 72  # a narrower table names parameters without their packet


def order(alert: Alert) -> tuple[int, float, int]:
    """Red first, then the most recently raised first (as the engine's AlertBook)."""
    return (RANK.get(alert.severity, 1), -alert.raised_s, alert.id)


def shelved(alert: Alert, now_s: float) -> bool:
    return alert.shelved_until_s is not None and now_s < alert.shelved_until_s


def state_text(alert: Alert, now_s: float) -> Text:
    """ACTIVE, CLEARED-unacked, ACKED by whom, or SHELVED until when."""
    if shelved(alert, now_s):
        assert alert.shelved_until_s is not None
        return Text(f"SHELVED {hhmmss(alert.shelved_until_s)}", "dim")
    if alert.acked_s is not None:
        return Text(f"ACKED {alert.acked_by or ''}".rstrip(), "green")
    if not alert.active:
        return Text("CLEARED-unacked", "cyan")
    return Text("ACTIVE", "bold")


def value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        shown = f"{value:.6g}"
    elif isinstance(value, bytes):
        shown = value.hex()
    else:
        shown = str(value)
    return shown if len(shown) <= VALUE_WIDTH else shown[: VALUE_WIDTH - 1] + "…"


def cells(alert: Alert, now_s: float, *, short: bool = False) -> tuple[Text, ...]:
    """The row of an alert, in COLUMNS order, each cell after a one-space gap; `short`
    names the parameter without its packet (`BATT_VOLTAGE` for `POWER_HK.BATT_VOLTAGE`)."""
    style = SEVERITY_STYLE.get(alert.severity, "")
    parameter = alert.parameter.split(".", 1)[-1] if short else alert.parameter
    row = (
        Text(SEVERITY_LABEL.get(alert.severity, alert.severity.upper()), style),
        Text(alert.node),
        Text(parameter),
        Text(value_text(alert.value)),
        Text(hhmmss(alert.raised_s)),
        Text(str(alert.count)),
        state_text(alert, now_s),
    )
    return tuple(Text.assemble(GAP, cell) for cell in row)


class AlertTable(DataTable[Any]):
    """The table of alerts; its keys ask the pane to acknowledge or shelve the alert
    under the cursor."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,k", "acknowledge", "Acknowledge"),
        Binding("s", "shelve", "Shelve"),
        Binding("h", "toggle_shelved", "Shelved"),
    ]

    class Requested(Message):
        """The operator asked for `action` ("acknowledge", "shelve") on an alert."""

        def __init__(self, action: str, alert_id: int | None) -> None:
            super().__init__()
            self.action = action
            self.alert_id = alert_id

    class ToggleShelved(Message):
        """Show or hide the shelved alerts."""

    def selected_id(self) -> int | None:
        """The id of the alert under the cursor (None when the table is empty)."""
        if not self.row_count:
            return None
        row = min(max(self.cursor_row, 0), self.row_count - 1)
        key = self.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value
        return int(key) if key is not None else None

    def action_acknowledge(self) -> None:
        self.post_message(self.Requested("acknowledge", self.selected_id()))

    def action_shelve(self) -> None:
        self.post_message(self.Requested("shelve", self.selected_id()))

    def action_toggle_shelved(self) -> None:
        self.post_message(self.ToggleShelved())


class AlertsPane(Pane):
    """Visible alerts, red first; `enter`/`k` acknowledges, `s` shelves, `h` shows the
    shelved ones too. The border subtitle counts the alerts per severity."""

    TITLE = "Alerts"
    KEY = "a"
    DEFAULT_CSS = """
    AlertsPane > AlertTable {
        height: 1fr;
        background: transparent;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, backend: Backend, *, id: str | None = None) -> None:
        super().__init__(backend, id=id)
        self.alerts: dict[int, Alert] = {}  # every alert that may still be shown
        self.clock_s = 0.0
        self.show_shelved = False
        self._rows: list[int] = []  # alert ids, in table order
        self._short = False  # parameters named without their packet (a narrow table)
        self._shown: dict[int, Alert] = {}  # the alert of each row
        self._cells: dict[int, tuple[Text, ...]] = {}  # what each row shows
        self._next_change_s = math.inf  # when a shelf expires (the table changes by itself)
        self.table = AlertTable(
            cursor_type="row", zebra_stripes=True, cell_padding=0, id="alerts-table"
        )
        self._subtitle = ""

    def compose(self) -> ComposeResult:
        for key, label in COLUMNS:
            self.table.add_column(Text(GAP + label), key=key)
        yield self.table

    # --- from the app ---------------------------------------------------------------------------
    def first_update(self, snapshot: Snapshot) -> None:
        self.update_from(snapshot)
        if self.is_attached:
            self.refresh_table()  # the subtitle too, alerts or not

    def update_from(self, snapshot: Snapshot) -> None:
        self.clock_s = snapshot.clock_s
        for alert_id, alert in snapshot.alerts.items():
            if not alert.active and alert.acked_s is not None:
                self.alerts.pop(alert_id, None)  # cleared and acknowledged: done with
            else:
                self.alerts[alert_id] = alert
        if not self.is_attached:  # the app is closing
            return
        if snapshot.alerts or self.clock_s >= self._next_change_s:
            self.refresh_table()

    def shown(self) -> list[Alert]:
        """The alerts the table shows now, in order."""
        now = self.clock_s
        return sorted(
            (
                a
                for a in self.alerts.values()
                if a.visible(now) or (self.show_shelved and shelved(a, now))
            ),
            key=order,
        )

    def refresh_table(self) -> None:
        """Bring the table up to date: cells in place, or rebuilt when rows change."""
        now = self.clock_s
        alerts = self.shown()
        table = self.table
        short = 0 < table.size.width < FULL_NAMES_WIDTH
        rows = {a.id: cells(a, now, short=short) for a in alerts}
        ids = list(rows)
        if ids != self._rows or short != self._short:
            self._short = short
            selected, cursor = table.selected_id(), table.cursor_row
            table.clear(columns=True)  # columns fit what the rows show now
            for key, label in COLUMNS:
                table.add_column(Text(GAP + label), key=key)
            for alert_id, row in rows.items():
                table.add_row(*row, key=str(alert_id))
            self._rows = ids
            if ids:
                at = ids.index(selected) if selected in ids else min(max(cursor, 0), len(ids) - 1)
                table.move_cursor(row=at, animate=False)
        else:
            for alert_id, row in rows.items():
                before = self._cells.get(alert_id, ())
                for index, (key, _) in enumerate(COLUMNS):
                    if index >= len(before) or row[index] != before[index]:
                        table.update_cell(str(alert_id), key, row[index], update_width=True)
        self._cells = rows
        self._shown = {a.id: a for a in alerts}
        self._next_change_s = min(
            (
                a.shelved_until_s
                for a in self.alerts.values()
                if a.shelved_until_s is not None and a.shelved_until_s > now
            ),
            default=math.inf,
        )
        self._update_subtitle(alerts)

    def on_resize(self, event: Resize) -> None:
        """Full or short parameter names, as the new width allows."""
        self._rows = []
        if self.is_attached:
            self.refresh_table()

    def _update_subtitle(self, alerts: list[Alert]) -> None:
        counts = Counter(a.severity for a in alerts if not shelved(a, self.clock_s))
        parts = [f"{counts[s]} {s}" for s in ("red", "yellow", "stale") if counts[s]]
        hidden = sum(1 for a in self.alerts.values() if shelved(a, self.clock_s))
        if hidden:
            parts.append(f"{hidden} shelved")
        subtitle = " · ".join(parts) if parts else "no alerts"
        if self.backend.replaying:
            subtitle += " · replay: read-only"
        if subtitle != self._subtitle:
            self._subtitle = subtitle
            self.border_subtitle = Text(subtitle)

    # --- the operator's requests ----------------------------------------------------------------
    def selected(self) -> Alert | None:
        """The alert under the cursor."""
        alert_id = self.table.selected_id()
        return self._shown.get(alert_id) if alert_id is not None else None

    def on_alert_table_requested(self, message: AlertTable.Requested) -> None:
        message.stop()
        alert = self._shown.get(message.alert_id) if message.alert_id is not None else None
        if self.backend.replaying:
            self.notify(ALERTS_READ_ONLY, title="Replay", severity="warning", markup=False)
        elif alert is None:
            self.notify("No alert selected", severity="warning", markup=False)
        elif message.action == "acknowledge":
            self.acknowledge(alert)
        elif message.action == "shelve":
            self.shelve(alert)

    def on_alert_table_toggle_shelved(self, message: AlertTable.ToggleShelved) -> None:
        message.stop()
        self.show_shelved = not self.show_shelved
        self.refresh_table()

    @work(exclusive=True, group="alert-dialog")
    async def acknowledge(self, alert: Alert) -> None:
        """Ask for a comment, then acknowledge through the engine."""
        comment = await self.app.push_screen_wait(AcknowledgeDialog(alert))
        if comment is None:
            return
        if await self._ask("acknowledge", alert, self.backend.acknowledge(alert.id, comment)):
            self.notify(f"Alert {alert.id} acknowledged", markup=False)

    @work(exclusive=True, group="alert-dialog")
    async def shelve(self, alert: Alert) -> None:
        """Ask for how long, then shelve through the engine."""
        duration_s = await self.app.push_screen_wait(ShelveDialog(alert))
        if duration_s is None:
            return
        until_s = self.clock_s + duration_s
        if await self._ask("shelve", alert, self.backend.shelve(alert.id, until_s)):
            self.notify(f"Alert {alert.id} shelved until {utc(until_s)}", markup=False)

    async def _ask(self, verb: str, alert: Alert, request: Awaitable[None]) -> bool:
        """Await the backend's answer; a refusal becomes an error notification."""
        try:
            await request
        except GroundctlError as error:
            self.notify(error.message, title=error.title, severity="error", markup=False)
            return False
        except KeyError:
            self.notify(f"No alert {alert.id} to {verb}", severity="error", markup=False)
            return False
        except BackendError as error:
            self.notify(str(error), title=f"Cannot {verb}", severity="error", markup=False)
            return False
        return True
