"""The DAG screen (spec, graph, issues, history, diff, actions) and the two log screens."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import yaml
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from gitdags.model import DagDetail, DagState, Version
from gitdags.render import SYNC_COLUMNS, landing, short, sync_row, when
from gitdags.tui.dagactions import ask_pause, ask_pin, ask_rollback
from gitdags.tui.graph import LANDING_STYLE, STATUS_STYLE
from gitdags.tui.graph import render as render_graph
from gitdags.tui.messages import DagLoaded, DiffLoaded, LogLoaded

if TYPE_CHECKING:
    from gitdags.tui.common import ConsoleApp

TABS = ("tab-spec", "tab-graph", "tab-issues", "tab-history", "tab-diff")


class DagScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("d", "diff", "Diff"),
        Binding("r", "rollback", "Rollback"),
        Binding("u", "rollback_until_change", "Until change", show=False),  # in help, palette
        Binding("p", "pin", "Pin/unpin"),
        Binding("z", "pause", "Pause/resume"),
        Binding("question_mark", "app.help", "Help"),
        Binding("space", "mark", "Mark", show=False),
        *(Binding(str(i), f"tab({i})", show=False) for i in range(1, 6)),
        Binding("tab,right", "next_tab(1)", "Next tab", show=False, priority=True),
        Binding("shift+tab,left", "next_tab(-1)", "Previous tab", show=False, priority=True),
        Binding("j", "move(1)", "Down", show=False),
        Binding("k", "move(-1)", "Up", show=False),
    ]

    def __init__(self, dag_id: str) -> None:
        super().__init__()
        self.dag_id = dag_id
        self.detail: DagDetail | None = None
        self.versions: list[Version] = []
        self.marked: int | None = None
        self.cursor_version: int | None = None
        self.diff_shown: Any = None

    @property
    def state(self) -> DagState | None:
        return self.detail.state if self.detail else None

    @property
    def gitdags(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="dag-header")
        with TabbedContent(id="tabs"):
            with TabPane("1 Spec", id="tab-spec"), VerticalScroll(classes="pane-scroll"):
                yield Static(id="spec")
            with TabPane("2 Graph", id="tab-graph"), VerticalScroll(classes="pane-scroll"):
                yield Static(id="graph")  # scrolls sideways: the drawing stays aligned
                yield Static(id="graph-note")  # wraps: the cycle, in words
            with TabPane("3 Issues", id="tab-issues"), VerticalScroll(classes="pane-scroll"):
                yield Static(id="issues")
            with TabPane("4 History", id="tab-history"):
                yield DataTable(id="history", cursor_type="row")
            with TabPane("5 Diff", id="tab-diff"), VerticalScroll(classes="pane-scroll"):
                yield Static("Pick a version in History and press d.", id="diff")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#history", DataTable)
        for key in ("version", "valid", "served", "commit", "author", "committed", "message"):
            table.add_column(key, key=key)
        self.reload()

    def action_next_tab(self, step: int) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        at = TABS.index(tabs.active) if tabs.active in TABS else 0
        self.action_tab((at + step) % len(TABS) + 1)

    def action_move(self, lines: int) -> None:
        """j/k: the history's cursor on the History tab, else scroll the tab."""
        tabs = self.query_one("#tabs", TabbedContent)
        if tabs.active == "tab-history":
            table = self.query_one("#history", DataTable)
            table.action_cursor_down() if lines > 0 else table.action_cursor_up()
            return
        pane = self.query_one(f"#{tabs.active} .pane-scroll", VerticalScroll)
        pane.scroll_relative(y=lines, animate=False)

    # -- data ----------------------------------------------------------------------------------
    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="dag-load", exit_on_error=False)
    def _load(self) -> None:
        app = self.gitdags
        try:
            shown = app.call_engine(app.engine.show, self.dag_id)
            history = app.call_engine(app.engine.history, self.dag_id)
        except Exception as exc:  # e.g. the database moved under us: say so, stay up
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        self.post_message(DagLoaded(shown, history))

    def on_dag_loaded(self, message: DagLoaded) -> None:
        self.detail, self.versions = message.detail, message.history
        self._render_history()
        self._render_version()

    def selected_version(self) -> Version | None:
        number = self.cursor_version
        found = [v for v in self.versions if v.version == number]
        return found[0] if found else (self.versions[0] if self.versions else None)

    def _render_header(self, version: Version | None) -> None:
        s = self.state
        if s is None:
            return
        out = Text()
        out.append(f" {self.dag_id} ", style="bold reverse")
        out.append(" ")
        out.append(s.status, style=STATUS_STYLE.get(s.status, ""))
        out.append(f"  serving v{s.served_version or '-'} ({short(s.served_commit)})")
        out.append(f"  newest v{s.newest_version or '-'}  {s.source}:{s.path}")
        if s.pin_until_change:
            out.append("  pinned until change", style="magenta")
        for name, there in sorted(s.consumers.items()):
            out.append(f"\n in {name}: ")
            out.append(landing(there), style=LANDING_STYLE.get(str(there.get("state")), ""))
            if there.get("version") is not None:
                out.append(f" v{there['version']}")
            if there.get("parsed_at"):
                out.append(f", parsed {when(there['parsed_at'])}")
            if there.get("error"):
                out.append(f": {there['error']}", style="red")
        if version is not None:
            state = "valid" if version.valid else "INVALID"
            out.append(
                f"\n showing v{version.version} ({state}, {short(version.commit)} by "
                f"{version.author}: {version.message.splitlines()[0] if version.message else ''})"
            )
        self.query_one("#dag-header", Static).update(out)

    def _render_version(self) -> None:
        version = self.selected_version()
        self._render_header(version)
        if version is None:
            return
        if version.spec is not None:
            text = yaml.safe_dump(version.spec, sort_keys=False, allow_unicode=True)
            self.query_one("#spec", Static).update(Syntax(text, "yaml", theme="ansi_dark"))
        else:
            self.query_one("#spec", Static).update(Text(version.content or "(empty)"))
        cycles = [i.message for i in version.issues if i.code == "GD204"]
        self.query_one("#graph", Static).update(render_graph(version.spec))
        note = Text("\n".join(f"⟲ {message}" for message in cycles), style="bold red")
        self.query_one("#graph-note", Static).update(note)
        issues: list[RenderableType] = []
        for issue in version.issues:  # the message wraps under itself, indented
            style = "red" if issue.severity == "error" else "yellow"
            where = f"line {issue.line}" if issue.line else "line -"
            head = Text(f"{issue.severity:<8}{issue.code}  ", style=style)
            head.append(f"{issue.location or '(file)'} · {where}", style="bold")
            issues += [head, Padding(Text(issue.message), (0, 0, 0, 8))]
        if not version.issues:
            issues.append(Text(f"v{version.version} has no issues.", style="green"))
        self.query_one("#issues", Static).update(Group(*issues))

    def _render_history(self) -> None:
        table = self.query_one("#history", DataTable)
        keep = self.cursor_version
        table.clear()
        for v in self.versions:
            mark = "● " if v.version == self.marked else "  "
            table.add_row(
                f"{mark}v{v.version}",
                Text("yes", style="green") if v.valid else Text("NO", style="bold red"),
                "*" if v.served else "",
                short(v.commit),
                v.author,
                when(v.committed_at),
                v.message.splitlines()[0] if v.message else "",
                key=str(v.version),
            )
        numbers = [v.version for v in self.versions]
        if keep in numbers:
            table.move_cursor(row=numbers.index(keep), animate=False)
        elif numbers:
            self.cursor_version = numbers[0]

    @on(DataTable.RowHighlighted, "#history")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.cursor_version = int(event.row_key.value)
            self._render_version()

    # -- actions -------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.app.pop_screen()

    def action_tab(self, number: int) -> None:
        self.query_one("#tabs", TabbedContent).active = TABS[number - 1]
        if number == 4:
            self.query_one("#history", DataTable).focus()

    def action_mark(self) -> None:
        version = self.selected_version()
        if version is not None:
            self.marked = None if self.marked == version.version else version.version
            self._render_history()

    def action_diff(self) -> None:
        version = self.selected_version()
        if version is None:
            return
        base = self.marked or (self.state and self.state.served_version) or version.version
        self._diff(base, version.version)

    @work(thread=True, exclusive=True, group="dag-diff", exit_on_error=False)
    def _diff(self, a: int, b: int) -> None:
        app = self.gitdags
        self.post_message(DiffLoaded(app.call_engine(app.engine.diff, self.dag_id, a, b)))

    def on_diff_loaded(self, message: DiffLoaded) -> None:
        found = self.diff_shown = message.diff
        widget = self.query_one("#diff", Static)
        if found.text:
            widget.update(Syntax(found.text, "diff", theme="ansi_dark"))
        else:
            widget.update(f"v{found.from_version} and v{found.to_version} are identical.")
        self.query_one("#tabs", TabbedContent).active = "tab-diff"

    def action_rollback(self, until_change: bool = False) -> None:
        version, state = self.selected_version(), self.state
        if version is not None and state is not None:
            ask_rollback(self.gitdags, state, version.version, until_change=until_change)

    def action_rollback_until_change(self) -> None:
        self.action_rollback(until_change=True)

    def action_pin(self) -> None:
        if self.state is not None:
            ask_pin(self.gitdags, self.state)

    def action_pause(self) -> None:
        if self.state is not None:
            ask_pause(self.gitdags, self.state)

    def action_sync_now(self) -> None:
        app, state = self.gitdags, self.state
        if state is None:
            return
        source = state.source
        what = f"Fetch source {source} now and record what its new commits changed."
        app.confirm("Sync now", what, app.engine.sync_now, source)


class _LogScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("question_mark", "app.help", "Help"),
        Binding("q", "app.quit", "Quit"),
    ]
    TITLE = ""
    EMPTY = ""  # the line that says why the log is empty
    COLUMNS: tuple[str, ...] = ()
    fetch: Callable[[], list[Any]]  # the rows, newest first (in a worker thread)
    row: Callable[[Any], tuple[Any, ...]]  # one row's cells

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.TITLE, id="summary")
        yield DataTable(id="log", cursor_type="row", zebra_stripes=True)
        # the last column (a note, a reason) of the selected row in full: at 80 columns the
        # table cuts it
        yield Static(id="log-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#log", DataTable)
        table.add_columns(*self.COLUMNS)
        table.focus()
        self.reload()

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="log-load", exit_on_error=False)
    def _load(self) -> None:
        self.post_message(LogLoaded(self.fetch()))

    def on_log_loaded(self, message: LogLoaded) -> None:
        table = self.query_one("#log", DataTable)
        row = table.cursor_row
        table.clear()
        table.add_rows(self.row(item) for item in message.rows)
        if message.rows:
            row = min(row, len(message.rows) - 1)
            table.move_cursor(row=row, animate=False)
            self._detail(table, row)  # the cursor may not move: no highlight event then
        else:
            self.query_one("#log-detail", Static).update(self.EMPTY)

    @on(DataTable.RowHighlighted, "#log")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.data_table, event.cursor_row)

    def _detail(self, table: DataTable, row: int) -> None:
        last = table.get_row_at(row)[-1]
        label = self.COLUMNS[-1]
        detail = Text(f"{label}: ", style="bold") + (
            last if isinstance(last, Text) else Text(str(last))
        )
        self.query_one("#log-detail", Static).update(detail if last else "")

    def action_back(self) -> None:
        self.app.pop_screen()


class SyncLogScreen(_LogScreen):
    TITLE = "Sync log, newest first"
    EMPTY = "No sync yet: S syncs now."
    COLUMNS = SYNC_COLUMNS

    def fetch(self) -> list[Any]:
        app: ConsoleApp = self.app  # type: ignore[assignment]
        return list(app.call_engine(app.engine.syncs, limit=500))

    def row(self, r: Any) -> tuple[Any, ...]:
        *cells, note = sync_row(r)
        return (*cells, Text(note, style="red") if r.error else note)


class AuditScreen(_LogScreen):
    TITLE = "Audit log: operator actions, newest first"
    EMPTY = "No operator action yet: rollbacks, pins, pauses and syncs now are recorded here."
    COLUMNS = ("when", "actor", "action", "DAG", "source", "reason")

    def fetch(self) -> list[Any]:
        app: ConsoleApp = self.app  # type: ignore[assignment]
        return list(app.call_engine(app.engine.audit, limit=500))

    def row(self, e: Any) -> tuple[Any, ...]:
        return (when(e.at), e.actor, e.action, e.dag_id or "-", e.source or "-", e.reason)
