"""The console in replay: the REPLAY banner and the seek dialog.

    REPLAY  2026-11-24 14:04:31.846Z  x10  PAUSED  frames 123  recording ... as node cfs

The banner is a bar docked at the top, in the theme's warning colour, redrawn on the
app's timer from `Backend.replay_status`: the recorded time reached (UTC, milliseconds),
the speed (`max` for as fast as possible), PAUSED, `ended` once the recording is over,
the frames delivered, and the source's title (cut at the bar's width). The seek dialog
takes an ISO 8601 UTC time, or `+SECONDS` / `-SECONDS` from the recorded time reached.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from groundctl.ui.backend import ReplayStatus
from groundctl.ui.dialogs import DIALOG_CSS

_RELATIVE = re.compile(r"([+-])\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|m|h)?")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
SEEK_EXAMPLE = "2026-11-29T00:10:00Z, +90 or -30"


def recorded(time_s: float) -> str:
    """2026-11-24 14:04:31.846Z: a recorded time, to the millisecond."""
    moment = datetime.fromtimestamp(time_s, UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def speed_text(speed: float) -> str:
    """x10, x0.25, or max (0: as fast as possible)."""
    return "max" if speed == 0 else f"x{speed:g}"


def banner_text(status: ReplayStatus) -> Text:
    """The banner's line."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(" REPLAY ", "bold reverse")
    if not status.running or math.isnan(status.time_s):
        text.append("  starting", "bold")
    else:
        text.append(f"  {recorded(status.time_s)}", "bold")
        text.append(f"  {speed_text(status.speed)}", "bold")
        if status.finished:
            text.append("  ")
            text.append(" ended ", "bold reverse")
        elif status.paused:
            text.append("  ")
            text.append(" PAUSED ", "bold reverse")
        text.append(f"  frames {status.frames}")
    text.append(f"  {status.title}")
    return text


def parse_seek(text: str, now_s: float) -> float:
    """Unix seconds of `text`: an ISO 8601 time (UTC unless it names its zone), or
    `+SECONDS` / `-SECONDS` (also with m or h: `+5m`) from `now_s`. ValueError, with a
    message for the operator, when it is neither."""
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative:
        sign, amount, unit = relative.groups()
        seconds = float(amount) * _UNIT_S[unit or ""]
        return now_s + seconds if sign == "+" else now_s - seconds
    iso = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        shown = repr(value) if value else "nothing"
        raise ValueError(
            f"{shown} is not a time: give an ISO 8601 UTC time or +/- seconds, e.g. {SEEK_EXAMPLE}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class ReplayBanner(Static):
    """The REPLAY bar, above the status bar (both docked at the top in #top-bars)."""

    DEFAULT_CSS = """
    ReplayBanner {
        height: 1;
        background: $warning;
        color: auto;
    }
    """

    def __init__(self, *, id: str | None = "replay-banner") -> None:
        super().__init__(id=id)
        self.status: ReplayStatus | None = None

    def show(self, status: ReplayStatus) -> None:
        if status != self.status:
            self.status = status
            self.update(banner_text(status))

    @property
    def text(self) -> str:
        return banner_text(self.status).plain if self.status is not None else ""


class SeekDialog(ModalScreen[float | None]):
    """Seek the replay: dismisses with the Unix time to go to, or None (Esc)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="SeekDialog")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, now: Callable[[], float]) -> None:
        super().__init__()
        self.now = now  # the recorded time reached, when asked

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Seek the replay", id="dialog-title")
            now_s = self.now()
            at = recorded(now_s) if math.isfinite(now_s) else "not known yet"
            yield Static(Text(f"now at {at}"), id="dialog-now")
            yield Input(placeholder=SEEK_EXAMPLE, id="seek-time")
            yield Static("", id="dialog-error")
            yield Static(
                "An ISO 8601 UTC time, or +SECONDS / -SECONDS from now (+5m, -1h too). "
                "Enter seeks, Esc cancels",
                id="dialog-hint",
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        now_s = self.now()
        try:
            if not math.isfinite(now_s) and event.value.strip()[:1] in ("+", "-"):
                raise ValueError("the recorded time is not known yet: give a UTC time")
            time_s = parse_seek(event.value, now_s)
        except ValueError as error:
            self.query_one("#dialog-error", Static).update(Text(str(error)))
            return
        self.dismiss(time_s)

    def action_cancel(self) -> None:
        self.dismiss(None)
