"""The Telemetry pane (being built: see the issue)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from groundctl.ui.panes.base import Pane


class TelemetryPane(Pane):
    TITLE = "Telemetry"
    KEY = "t"

    def compose(self) -> ComposeResult:
        yield Static("")
