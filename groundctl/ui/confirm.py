"""The confirmation box of a hazardous command: the operator types the command's name.

The box shows the command line, what the command does and the name to type. Enter
confirms only when the typed text is the name (the commander checks it again: the text
goes with the command as its confirmation); Esc cancels. The screen's result is the text
typed, or None when cancelled.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class ConfirmCommand(ModalScreen[str | None]):
    """Confirm the hazardous command `text` (command `name`) by typing `name`."""

    DEFAULT_CSS = """
    ConfirmCommand {
        align: center middle;
    }
    ConfirmCommand #confirm-box {
        width: 76;
        max-width: 95%;
        height: auto;
        padding: 0 1;
        border: thick $error;
        border-title-color: $error;
        border-title-style: bold;
        background: $surface;
    }
    ConfirmCommand .confirm-line {
        height: auto;
        margin-bottom: 1;
    }
    ConfirmCommand #confirm-input {
        margin-bottom: 1;
    }
    ConfirmCommand #confirm-error {
        height: auto;
        color: $error;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, text: str, name: str, description: str = "") -> None:
        super().__init__()
        self.text = text
        self.command_name = name
        self.description = description

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box") as box:
            box.border_title = "Hazardous command"
            yield Static(Text(self.text, style="bold"), id="confirm-text", classes="confirm-line")
            if self.description:
                yield Static(
                    Text(self.description), id="confirm-description", classes="confirm-line"
                )
            prompt = Text.assemble(
                "type ", (self.command_name, "bold"), " to confirm, Enter sends, Esc cancels"
            )
            yield Static(prompt, id="confirm-prompt")
            yield Input(placeholder=self.command_name, id="confirm-input")
            yield Static("", id="confirm-error")

    def on_mount(self) -> None:
        self.query_one("#confirm-input", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#confirm-error", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        typed = event.value.strip()
        if typed == self.command_name:
            self.dismiss(typed)
            return
        shown = repr(typed) if typed else "nothing"
        self.query_one("#confirm-error", Static).update(
            Text(f"{shown} is not {self.command_name}: not sent (type it exactly, or Esc)")
        )

    def action_cancel(self) -> None:
        self.dismiss(None)
