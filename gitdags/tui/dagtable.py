"""A table that stays instant with 10,000 rows: it draws only the lines on screen.

Textual's DataTable builds every row when it is filled, which takes seconds for 10,000 DAGs
and again on each filter keystroke. This widget keeps the rows as a plain list and renders
line by line (Textual's Line API), so a refill is a list assignment and a refresh.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = tuple[str, str]  # text, rich style


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    min_width: int = 4


class DagTable(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    DagTable { height: 1fr; }
    DagTable > .dagtable--header { text-style: bold; background: $panel; }
    DagTable > .dagtable--cursor { background: $accent; color: $text; text-style: bold; }
    DagTable > .dagtable--odd { background: $surface-lighten-1 5%; }
    """
    COMPONENT_CLASSES = {"dagtable--header", "dagtable--cursor", "dagtable--odd"}
    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False),
        Binding("pagedown,ctrl+f", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "First", show=False),
        Binding("end,G", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Open", show=False),
    ]
    cursor: reactive[int] = reactive(0, always_update=True)

    class Selected(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    class HeaderClicked(Message):
        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, columns: list[Column], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns = columns
        self.keys: list[str] = []
        self.rows: list[list[Cell]] = []
        self.widths = [max(c.min_width, len(c.label)) for c in columns]
        self.shown = list(range(len(columns)))  # the columns that fit, whole (see _fit)

    # -- data ----------------------------------------------------------------------------------
    def set_rows(self, keys: list[str], rows: list[list[Cell]], keep: str | None = None) -> None:
        """Replace every row; the cursor stays on `keep` when it is still there."""
        self.keys, self.rows = keys, rows
        widths = [max(c.min_width, len(c.label)) for c in self.columns]
        for row in rows:
            for i, (text, _style) in enumerate(row):
                if len(text) > widths[i]:
                    widths[i] = len(text)
        self.widths = widths
        self._fit()
        position = {k: i for i, k in enumerate(keys)} if keep is not None else {}
        self.cursor = position.get(keep, min(self.cursor, max(len(rows) - 1, 0)))
        self.refresh()

    def _fit(self) -> None:
        """The columns that fit the width, whole: the rightmost (least needed) ones are left
        out first, never cut in the middle; the first column always shows."""
        room = self.size.width or 10_000
        shown, used = [], 0
        for i, width in enumerate(self.widths):
            if i and used + width + 2 > room:
                break
            shown.append(i)
            used += width + 2
        self.shown = shown
        self.virtual_size = Size(used, len(self.rows) + 1)

    def on_resize(self, _event: events.Resize) -> None:
        self._fit()
        self.refresh()

    @property
    def current(self) -> str | None:
        return self.keys[self.cursor] if 0 <= self.cursor < len(self.keys) else None

    # -- drawing -------------------------------------------------------------------------------
    def _line(self, cells: list[Cell], base: Style, *, plain: bool = False) -> list[Segment]:
        """One row; `plain` (the cursor row) keeps the row's own colours off its cells, so
        that no status colour sits on the cursor's background."""
        segments = []
        for i in self.shown:
            text, style = cells[i]
            styled = base + Style.parse(style) if style and not plain else base
            segments.append(Segment(" " + text.ljust(self.widths[i]) + " ", styled))
        return segments

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            header = [(c.label, "") for c in self.columns]
            base = self.get_component_rich_style("dagtable--header")
            segments = self._line(header, base)
        else:
            index = scroll_y + y - 1
            if index >= len(self.rows):
                return Strip.blank(width, self.rich_style)
            if index == self.cursor and self.has_focus:
                base = self.get_component_rich_style("dagtable--cursor")
            elif index == self.cursor:
                base = self.get_component_rich_style("dagtable--cursor") + Style(dim=True)
            elif index % 2:
                base = self.get_component_rich_style("dagtable--odd")
            else:
                base = self.rich_style
            segments = self._line(self.rows[index], base, plain=index == self.cursor)
        total = sum(self.widths[i] + 2 for i in self.shown)
        strip = Strip(segments, total).crop(scroll_x, scroll_x + width)
        return strip.extend_cell_length(width, self.rich_style)

    # -- moving --------------------------------------------------------------------------------
    def watch_cursor(self, cursor: int) -> None:
        visible = max(self.size.height - 1, 1)
        if cursor < self.scroll_offset.y:
            self.scroll_to(y=cursor, animate=False)
        elif cursor >= self.scroll_offset.y + visible:
            self.scroll_to(y=cursor - visible + 1, animate=False)
        self.refresh()

    def action_move(self, delta: int) -> None:
        if self.rows:
            self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_move(direction * max(self.size.height - 2, 1))

    def action_jump(self, where: int) -> None:
        if self.rows:
            self.cursor = 0 if where == 0 else len(self.rows) - 1

    def action_select(self) -> None:
        if self.current is not None:
            self.post_message(self.Selected(self.current))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = event.x + self.scroll_offset.x
            for i in self.shown:
                if x < self.widths[i] + 2:
                    self.post_message(self.HeaderClicked(self.columns[i].key))
                    return
                x -= self.widths[i] + 2
            return
        index = self.scroll_offset.y + event.y - 1
        if 0 <= index < len(self.rows):
            if index == self.cursor and event.chain > 1:
                self.action_select()
            self.cursor = index

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
