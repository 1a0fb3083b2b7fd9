"""Modal screens: the confirmation of an action (with a reason), errors, and help."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
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


# the keys, by screen: (section, [(keys, what they do)])
HELP: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Everywhere",
        [
            ("?", "this help"),
            ("q", "quit"),
            ("escape", "back"),
            ("ctrl+p", "command palette: every action below by name, and open a DAG by id"),
            ("L", "sync log"),
            ("A", "audit log"),
            ("S", "sync now (every source; on a DAG's screen, its source)"),
        ],
    ),
    (
        "DAG table",
        [
            ("/", "filter by id, owner or tag (enter: to the table; escape: clear)"),
            ("enter", "open the selected DAG"),
            ("o", "cycle the sort column (or click a header)"),
            ("j / k", "down / up"),
            ("g / G", "first / last"),
            (
                "0-6",
                "quick filter: 0 all, 1 active, 2 invalid, 3 pinned, 4 paused, "
                "5 disabled, 6 deleted",
            ),
            (
                "narrow window",
                "long DAG ids give way first (cut in the middle: …), then owners, so that "
                "owner and updated fit; what still does not fit is left out from the right. "
                "The source column shows when there are two sources or more.",
            ),
        ],
    ),
    (
        "DAG screen (tabs: spec, graph, issues, history, diff)",
        [
            ("1-5", "a tab"),
            ("tab / right", "next tab"),
            ("shift+tab / left", "previous tab"),
            ("j / k", "history: move; other tabs: scroll"),
            ("space", "mark a version in the history"),
            ("d", "diff: the marked (or served) version against the selected one"),
            ("r", "roll back to the selected version (pins it)"),
            ("u", "roll back until the next change"),
            ("p", "pin / unpin"),
            ("z", "pause / resume"),
        ],
    ),
]


class HelpScreen(ModalScreen[None]):
    """The keys in two columns (a grid: a long line wraps in its own column), scrollable to
    its last line at any size."""

    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close"),
        Binding("j,down", "scroll(1)", "Down", show=False),
        Binding("k,up", "scroll(-1)", "Up", show=False),
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("home,g", "jump(0)", "Top", show=False),
        Binding("end,G", "jump(1)", "Bottom", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Label("gitdags console: keys (j/k, arrows, page keys scroll)", id="dialog-title")
            with VerticalScroll(id="help-scroll"):
                for i, (section, keys) in enumerate(HELP, 1):
                    yield Label(section, classes="help-section")
                    with Grid(classes="help-grid" + (" last" if i == len(HELP) else "")):
                        for key, what in keys:
                            yield Label(key, classes="help-key")
                            yield Label(what, classes="help-what")

    def on_mount(self) -> None:
        self.query_one("#help-scroll", VerticalScroll).focus()

    def on_resize(self, event: events.Resize) -> None:
        """The keys scroll inside the frame: a max-height of 100% would count the frame and
        the title too and hide the last lines under the border, as it used to."""
        chrome = 3  # the border (top and bottom) and the title
        scroll = self.query_one("#help-scroll", VerticalScroll)
        scroll.styles.max_height = max(event.size.height - chrome, 3)

    def action_scroll(self, lines: int) -> None:
        self.query_one("#help-scroll", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_page(self, direction: int) -> None:
        scroll = self.query_one("#help-scroll", VerticalScroll)
        scroll.scroll_relative(y=direction * max(scroll.size.height - 1, 1), animate=False)

    def action_jump(self, end: int) -> None:
        scroll = self.query_one("#help-scroll", VerticalScroll)
        scroll.scroll_to(y=scroll.max_scroll_y if end else 0, animate=False)

    def action_close(self) -> None:
        self.dismiss()
