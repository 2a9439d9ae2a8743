"""The Passes pane (being built: see the issue)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from groundctl.ui.panes.base import Pane


class PassesPane(Pane):
    TITLE = "Passes"
    KEY = "p"

    def compose(self) -> ComposeResult:
        yield Static("")
