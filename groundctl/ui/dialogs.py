"""Modal dialogs of the console: acknowledge an alert (with an optional comment), shelve
an alert (for a duration such as 15m, 1h or 4h). Each dismisses with its answer, or
with None when the operator presses Esc or Cancel; neither talks to the engine itself.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from groundctl.telemetry.alerts import Alert

DEFAULT_SHELVE = "1h"
MAX_SHELVE_S = 7 * 86400.0
SHELVE_PRESETS = ("15m", "1h", "4h")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhd])")
SEVERITY_STYLE = {"red": "bold red", "yellow": "yellow", "stale": "magenta"}

DIALOG_CSS = """
{name} {{
    align: center middle;
}}
{name} > #dialog {{
    width: 64;
    max-width: 100%;
    height: auto;
    border: thick $accent;
    background: $surface;
    padding: 0 1;
}}
{name} #dialog-title {{
    text-style: bold;
    width: 1fr;
}}
{name} #dialog-hint {{
    color: $text-muted;
}}
{name} #dialog-error {{
    color: $error;
    height: auto;
}}
{name} #dialog-buttons {{
    height: auto;
    align-horizontal: right;
}}
{name} #dialog-buttons Button {{
    margin-left: 1;
    min-width: 8;
}}
"""


def parse_duration(text: str) -> float:
    """Seconds in `15m`, `1h`, `4h`, `90s`, `1h30m`, `2d` (ValueError, with a message
    for the operator, when it is not such a duration or is over seven days)."""
    cleaned = text.strip().lower()
    position = 0
    total = 0.0
    for match in _PART.finditer(cleaned):
        if cleaned[position : match.start()].strip():
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        position = match.end()
    if not cleaned or position == 0 or cleaned[position:].strip():
        raise ValueError(f"{text.strip() or 'nothing'}: expected a duration such as 15m, 1h, 4h")
    if total <= 0:
        raise ValueError(f"{text.strip()}: the duration must be more than zero")
    if total > MAX_SHELVE_S:
        raise ValueError(f"{text.strip()}: at most 7 days")
    return total


def hhmmss(time_s: float) -> str:
    """UTC time of day, HH:MM:SS."""
    return f"{datetime.fromtimestamp(time_s, UTC):%H:%M:%S}"


def utc(time_s: float) -> str:
    """Date and time, UTC: 2026-11-29 04:05:06Z."""
    return f"{datetime.fromtimestamp(time_s, UTC):%Y-%m-%d %H:%M:%S}Z"


def describe(alert: Alert) -> Text:
    """One line about an alert: severity, node, parameter, value, when it was raised."""
    text = Text()
    text.append(alert.severity.upper(), SEVERITY_STYLE.get(alert.severity, ""))
    text.append(f"  {alert.node}  {alert.parameter}")
    if alert.value is not None:
        text.append(f" = {alert.value}")
    text.append(f"\nraised {hhmmss(alert.raised_s)}Z", "dim")
    if alert.count > 1:
        text.append(f", {alert.count} times", "dim")
    if alert.cleared_s is not None:
        text.append(f", cleared {hhmmss(alert.cleared_s)}Z", "dim")
    return text


class AcknowledgeDialog(ModalScreen[str | None]):
    """Acknowledge `alert`: dismisses with the comment ("" for none), or None."""

    DEFAULT_CSS = DIALOG_CSS.format(name="AcknowledgeDialog")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, alert: Alert) -> None:
        super().__init__()
        self.alert = alert

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Acknowledge alert {self.alert.id}", id="dialog-title")
            yield Static(describe(self.alert), id="dialog-alert")
            yield Input(placeholder="comment (optional)", id="comment")
            yield Static("Enter acknowledges, Esc cancels", id="dialog-hint")
            with Horizontal(id="dialog-buttons"):
                yield Button("Acknowledge", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.dismiss(self.query_one("#comment", Input).value.strip())
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ShelveDialog(ModalScreen[float | None]):
    """Shelve `alert`: dismisses with the duration in seconds, or None."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ShelveDialog")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, alert: Alert) -> None:
        super().__init__()
        self.alert = alert

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Shelve alert {self.alert.id}", id="dialog-title")
            yield Static(describe(self.alert), id="dialog-alert")
            yield Input(
                placeholder=f"for how long: 15m, 1h, 4h... ({DEFAULT_SHELVE})", id="duration"
            )
            yield Static("", id="dialog-error")
            yield Static(
                f"Hidden until the shelf expires. Enter shelves (empty: {DEFAULT_SHELVE}), "
                "Esc cancels",
                id="dialog-hint",
            )
            with Horizontal(id="dialog-buttons"):
                for preset in SHELVE_PRESETS:
                    yield Button(preset, id=f"preset-{preset}")
                yield Button("Cancel", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._answer(event.value or DEFAULT_SHELVE)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button = event.button.id or ""
        if button.startswith("preset-"):
            self._answer(button.removeprefix("preset-"))
        else:
            self.dismiss(None)

    def _answer(self, text: str) -> None:
        try:
            seconds = parse_duration(text)
        except ValueError as error:
            self.query_one("#dialog-error", Static).update(Text(str(error)))
            return
        self.dismiss(seconds)

    def action_cancel(self) -> None:
        self.dismiss(None)
