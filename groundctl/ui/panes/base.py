"""What every pane is: a bordered container the app feeds with snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.containers import Vertical

if TYPE_CHECKING:
    from groundctl.ui.backend import Backend
    from groundctl.ui.state import Snapshot


class Pane(Vertical, can_focus=False):
    """A pane of the main screen.

    The app calls `update_from(snapshot)` about ten times a second with what changed
    since the last call (and the current clock); a pane redraws only what changed.
    `first_update(snapshot)` is called once with everything current, when the ground
    segment is up. `TITLE` is its border title; `KEY` the key that focuses or shows it.
    """

    TITLE: ClassVar[str] = ""
    KEY: ClassVar[str] = ""
    ALLOW_MAXIMIZE = True  # `z` zooms it

    def __init__(self, backend: Backend, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.backend = backend
        # Text, not markup: "[p]" would be read as a style
        self.border_title = Text(f"{self.TITLE} [{self.KEY}]" if self.KEY else self.TITLE)

    def first_update(self, snapshot: Snapshot) -> None:
        """Everything current, once the ground segment is up (default: `update_from`)."""
        self.update_from(snapshot)

    def update_from(self, snapshot: Snapshot) -> None:
        """What changed since the last call."""

    def focus_pane(self) -> None:
        """Focus the pane's main widget (the first focusable one)."""
        for widget in self.query("*"):
            if widget.focusable:
                widget.focus()
                return
