"""The Alerts pane (being built: see the issue)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from groundctl.ui.panes.base import Pane


class AlertsPane(Pane):
    TITLE = "Alerts"
    KEY = "a"

    def compose(self) -> ComposeResult:
        yield Static("")
