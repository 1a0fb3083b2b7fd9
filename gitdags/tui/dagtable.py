"""A table that stays instant with 100,000 rows: it holds and draws only a window of them.

Textual's DataTable builds every row when it is filled, which takes seconds for 10,000 DAGs
and again on each filter keystroke. This widget renders line by line (Textual's Line API)
and holds only the rows on screen and a margin around them: its owner gives it the number of
rows and a window, and a `fetch` that reads another window (from SQLite) when the cursor or
the scroll leaves the one it holds.
"""

from __future__ import annotations

from collections.abc import Callable
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
Fetch = Callable[[int, int], tuple[list[str], list[list[Cell]]]]  # offset, limit -> rows
MARGIN = 100  # rows held above and below the screen


@dataclass(frozen=True)
class Column:
    """A column; one with `shrink_to` gives way (down to that width, with an ellipsis) so
    that more columns fit, the leftmost first; `middle` cuts in the middle, which keeps the
    ends that tell ids like partner_export_acme and partner_export_globex apart."""

    key: str
    label: str
    min_width: int = 4
    shrink_to: int | None = None
    middle: bool = False


def cut(text: str, width: int, middle: bool) -> str:
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    if not middle:
        return text[: width - 1] + "…"
    head = width // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


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
        self.total = 0  # the rows there are; the table holds those from `start`
        self.start = 0
        self.keys: list[str] = []  # the rows held: their keys and cells
        self.rows: list[list[Cell]] = []
        self.fetch: Fetch | None = None  # reads another window (set by the table's owner)
        self.widths = [max(c.min_width, len(c.label)) for c in columns]
        self.shown = list(range(len(columns)))  # the columns that fit, whole (see _fit)
        self.fitted = dict(enumerate(self.widths))  # the widths on screen (see _fit)
        self.hide: frozenset[str] = frozenset()  # the columns not shown (by their key)
        self.empty = ""  # the line shown in place of the rows when there are none

    # -- data ----------------------------------------------------------------------------------
    @property
    def window(self) -> int:
        """How many rows a window holds: the screen's and a margin on each side."""
        return max(self.size.height, 24) + 2 * MARGIN

    def set_page(
        self,
        total: int,
        offset: int,
        keys: list[str],
        rows: list[list[Cell]],
        cursor: int | None = None,
        *,
        empty: str = "",
        hide: frozenset[str] = frozenset(),
    ) -> None:
        """`total` rows, of which these from `offset`; the cursor on row `cursor` (None: where
        it was, within the rows); `empty` is the line that says why there is no row, when
        there is none; `hide` names the columns not to show."""
        self.total, self.empty, self.hide = total, empty, hide
        self._hold(offset, keys, rows)
        at = cursor if cursor is not None else self.cursor
        self.cursor = min(max(at, 0), max(total - 1, 0))
        self.refresh()

    def _hold(self, offset: int, keys: list[str], rows: list[list[Cell]]) -> None:
        """Hold this window; the columns as wide as its rows need."""
        self.start, self.keys, self.rows = offset, keys, rows
        widths = [max(c.min_width, len(c.label)) for c in self.columns]
        for row in rows:
            for i, (text, _style) in enumerate(row):
                if len(text) > widths[i]:
                    widths[i] = len(text)
        self.widths = widths
        self._fit()

    def _hold_rows(self, first: int, last: int) -> None:
        """Hold rows `first` to `last` (the screen's, the cursor's), reading a window around
        them when they are not held."""
        first, last = max(first, 0), min(last, self.total - 1)
        if first > last or (self.start <= first and last < self.start + len(self.rows)):
            return
        if self.fetch is None:
            return
        offset = max(0, min(first - MARGIN, self.total - self.window))
        keys, rows = self.fetch(offset, self.window)
        self._hold(offset, keys, rows)
        self.refresh()

    def row(self, index: int) -> list[Cell] | None:
        """The cells of row `index`, when held."""
        at = index - self.start
        return self.rows[at] if 0 <= at < len(self.rows) else None

    def _fit(self) -> None:
        """The columns that fit the width: the columns that can give way shrink first (the
        DAG id before the owner), then the rightmost (least needed) columns are left out;
        the first column always shows. No horizontal scrolling."""
        room = self.size.width or 10_000
        if self.total + 1 > self.size.height:  # the vertical scrollbar takes its share
            room -= self.styles.scrollbar_size_vertical
        natural = {i: w for i, w in enumerate(self.widths) if self.columns[i].key not in self.hide}
        least = {
            i: min(w, max(c.shrink_to, len(c.label))) if (c := self.columns[i]).shrink_to else w
            for i, w in natural.items()
        }
        shown, total = [], 0
        for i in natural:
            if shown and total + least[i] + 2 > room:
                break
            shown.append(i)
            total += least[i] + 2
        fitted = {i: natural[i] for i in shown}
        excess = sum(w + 2 for w in fitted.values()) - room
        for i in shown:  # give way, leftmost first
            if excess <= 0:
                break
            give = min(excess, fitted[i] - least[i])
            fitted[i] -= give
            excess -= give
        if excess > 0 and shown:  # the first column alone is wider than the window
            fitted[shown[0]] = max(fitted[shown[0]] - excess, 1)
        self.shown, self.fitted = shown, fitted
        self.virtual_size = Size(sum(w + 2 for w in fitted.values()), self.total + 1)

    def on_resize(self, _event: events.Resize) -> None:
        self._fit()
        self._hold_rows(self.scroll_offset.y, self.scroll_offset.y + self.size.height)
        self.refresh()

    @property
    def current(self) -> str | None:
        at = self.cursor - self.start
        return self.keys[at] if 0 <= at < len(self.keys) and self.cursor < self.total else None

    # -- drawing -------------------------------------------------------------------------------
    def _line(self, cells: list[Cell], base: Style, *, plain: bool = False) -> list[Segment]:
        """One row; `plain` (the cursor row) keeps the row's own colours off its cells, so
        that no status colour sits on the cursor's background."""
        segments = []
        for i in self.shown:
            text, style = cells[i]
            width = self.fitted[i]
            text = cut(text, width, self.columns[i].middle)
            styled = base + Style.parse(style) if style and not plain else base
            segments.append(Segment(" " + text.ljust(width) + " ", styled))
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
            if index == 0 and not self.total and self.empty:
                line = Segment(" " + self.empty, self.rich_style + Style(italic=True))
                return Strip([line]).crop(0, width).extend_cell_length(width, self.rich_style)
            cells = self.row(index)
            if cells is None:  # beyond the last row (or, for a moment, not read yet)
                return Strip.blank(width, self.rich_style)
            if index == self.cursor and self.has_focus:
                base = self.get_component_rich_style("dagtable--cursor")
            elif index == self.cursor:
                base = self.get_component_rich_style("dagtable--cursor") + Style(dim=True)
            elif index % 2:
                base = self.get_component_rich_style("dagtable--odd")
            else:
                base = self.rich_style
            segments = self._line(cells, base, plain=index == self.cursor)
        total = sum(self.fitted[i] + 2 for i in self.shown)
        strip = Strip(segments, total).crop(scroll_x, scroll_x + width)
        return strip.extend_cell_length(width, self.rich_style)

    # -- moving --------------------------------------------------------------------------------
    def watch_cursor(self, cursor: int) -> None:
        visible = max(self.size.height - 1, 1)
        self._hold_rows(cursor, cursor)
        if cursor < self.scroll_offset.y:
            self.scroll_to(y=cursor, animate=False)
        elif cursor >= self.scroll_offset.y + visible:
            self.scroll_to(y=cursor - visible + 1, animate=False)
        self.refresh()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        self._hold_rows(round(new_value), round(new_value) + self.size.height)
        super().watch_scroll_y(old_value, new_value)

    def action_move(self, delta: int) -> None:
        if self.total:
            self.cursor = max(0, min(self.total - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_move(direction * max(self.size.height - 2, 1))

    def action_jump(self, where: int) -> None:
        if self.total:
            self.cursor = 0 if where == 0 else self.total - 1

    def action_select(self) -> None:
        if self.current is not None:
            self.post_message(self.Selected(self.current))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = event.x + self.scroll_offset.x
            for i in self.shown:
                if x < self.fitted[i] + 2:
                    self.post_message(self.HeaderClicked(self.columns[i].key))
                    return
                x -= self.fitted[i] + 2
            return
        index = self.scroll_offset.y + event.y - 1
        if 0 <= index < self.total:
            if index == self.cursor and event.chain > 1:
                self.action_select()
            self.cursor = index

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
