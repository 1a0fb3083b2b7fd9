"""Modal screens: the confirmation of an action (with a reason), errors, and help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmAction(ModalScreen[str | None]):
    """Says exactly what will happen; returns the reason, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, what: str) -> None:
        super().__init__()
        self.title_text = title
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.what, id="dialog-what")
            yield Input(placeholder="Reason (recorded in the audit log)", id="reason")
            with Horizontal(id="dialog-buttons"):
                yield Button("Confirm", variant="primary", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def on_input_submitted(self) -> None:
        self.dismiss(self.query_one("#reason", Input).value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self.dismiss(self.query_one("#reason", Input).value)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ErrorModal(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter", "close", "Close")]

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="error"):
            yield Label("Refused", id="dialog-title")
            yield Static(self.message, id="dialog-what")
            yield Button("OK", variant="error", id="ok")

    def on_button_pressed(self) -> None:
        self.dismiss()

    def action_close(self) -> None:
        self.dismiss()


HELP = """\
[b]Everywhere[/b]
  ?      this help            q       quit
  escape back                 ctrl+p  command palette
  L      sync log             A       audit log
  S      sync now (all sources, or the DAG's source)

[b]DAG table[/b]
  /      filter by id, owner or tag (enter, escape: back)
  enter  open the DAG         o       cycle the sort column
  j/k    down/up              g/G     first/last
  0-6    quick filter: 0 all, 1 active, 2 invalid,
         3 pinned, 4 paused, 5 disabled, 6 deleted

[b]DAG screen[/b] (tabs: spec, graph, issues, history, diff)
  1-5    a tab                tab/right, shift+tab/left: next/back
  j/k    history: move; other tabs: scroll
  space  mark a version in the history
  d      diff: marked (or served) version against the selected
  r      roll back to the selected version (pins)
  u      roll back until the next change
  p      pin / unpin          z       pause / resume
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close"),
        Binding("j", "scroll(1)", "Down", show=False),
        Binding("k", "scroll(-1)", "Up", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("gitdags console: keys (j/k or arrows scroll)", id="dialog-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(HELP, id="help-text")

    def on_mount(self) -> None:
        self.query_one("#help-scroll", VerticalScroll).focus()

    def action_scroll(self, lines: int) -> None:
        self.query_one("#help-scroll", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_close(self) -> None:
        self.dismiss()
