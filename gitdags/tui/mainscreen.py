"""The console's main screen: every DAG in a filterable, sortable table under the sources
(read a window at a time: SQLite filters, sorts and counts)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from gitdags.errors import problem
from gitdags.model import DAG_SORTS, STATUSES, DagPage, DagQuery, DagState, SourceStatus
from gitdags.render import landing, short, when
from gitdags.tui.common import APP_KEYS, ConsoleApp
from gitdags.tui.dagtable import Cell, Column, DagTable
from gitdags.tui.graph import LANDING_STYLE, STATUS_STYLE
from gitdags.tui.messages import MainLoaded

# on a narrow window the DAG id gives way first, then the owner (see DagTable._fit)
COLUMNS = [
    Column("dag_id", "DAG", 12, shrink_to=16, middle=True),
    Column("status", "status", 7),
    Column("served", "served"),
    Column("newest", "newest"),
    Column("source", "source"),
    Column("owner", "owner", shrink_to=10),
    Column("updated_at", "updated"),
    Column("landed", "landed"),  # what the orchestrators run ([[consumers]]), when any
]

# the quick filters, in the order the help and the README give them
QUICK_ORDER = ("active", "invalid", "pinned", "paused", "disabled", "deleted")
QUICK = {"0": None, **{str(i): s for i, s in enumerate(QUICK_ORDER, 1)}}
assert set(QUICK_ORDER) == set(STATUSES)
SORTS = ("dag_id", "status", "updated_at", "source", "owner")


def landed_cell(dag: DagState) -> tuple[str, str]:
    """What the consumers run of a DAG: `landed`, `pending 12s`, `broken`; with several
    consumers, each named."""
    there = dag.consumers
    if not there:
        return ("", "")
    worst = next(
        (
            s
            for s in ("broken", "missing", "drift", "pending")
            if any(c.get("state") == s for c in there.values())
        ),
        "landed",
    )
    if len(there) == 1:
        return (landing(next(iter(there.values()))), LANDING_STYLE.get(worst, ""))
    text = " ".join(f"{name}:{landing(c)}" for name, c in sorted(there.items()))
    return (text, LANDING_STYLE.get(worst, ""))


def cells(d: DagState) -> list[Cell]:
    """A DAG's row in the table, in the order of COLUMNS."""
    return [
        (d.dag_id, ""),
        (d.status, STATUS_STYLE.get(d.status, "")),
        (f"v{d.served_version} {short(d.served_commit)[:7]}", "")
        if d.served_version and d.status != "deleted"
        else ("-", ""),
        (
            f"v{d.newest_version}"
            if d.newest_version != d.served_version or d.status == "deleted"
            else "",
            "",
        ),
        (d.source, ""),
        (d.owner or "", ""),
        (when(d.updated_at)[5:16], ""),
        landed_cell(d),
    ]


class FilterInput(Input):
    """The quick filter; its footer says how to leave it (the table's keys type here)."""

    BINDINGS = [
        Binding("enter", "submit", "To the table"),
        Binding("escape", "screen.clear", "Clear filter"),
    ]


class MainScreen(Screen[None]):
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("o", "sort", "Sort"),
        *APP_KEYS,  # shown in this footer only: the DAG screen's has no room for them
        Binding("escape", "clear", "Clear filter", show=False),
        *(Binding(k, f"quick('{k}')", f"{s or 'all'}", show=False) for k, s in QUICK.items()),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.page: DagPage | None = None  # the last window read, with its counts
        self.held: dict[str, DagState] = {}  # the DAGs the table holds, by id
        self.sources: list[SourceStatus] = []
        self.status_filter: str | None = None
        self.sort_key = "dag_id"
        self.shown: list[str] = []  # the ids of the rows the table holds, in order
        self.applied = 0  # how many times the table was filled (for tests and benchmarks)
        self.asked = 0  # how many loads were asked for: the answer to the last one is shown
        self.loaded = DagQuery()  # the query the table shows (its scrolling reads more of it)
        self.asking = DagQuery()  # the query of the last load asked for
        self._filter_timer: Any = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="sources")
        yield FilterInput(placeholder="/ filter by id, owner or tag", id="filter")
        yield DagTable(COLUMNS, id="dags")
        yield Static(id="summary")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#dags", DagTable)
        table.fetch = self._fetch
        table.focus()
        self.reload()

    # -- data ----------------------------------------------------------------------------------
    def dag_query(self) -> DagQuery:
        """The filter, quick filter and sort the screen shows now."""
        needle = self.query_one("#filter", Input).value.strip()  # SQLite folds ASCII's case
        return DagQuery(needle, self.status_filter, self.sort_key)

    def reload(self) -> None:
        """Read the sources and the table's window again (the data changed)."""
        self._ask(sources=True)

    def apply(self) -> None:
        """Fill the table for the filter and sort now, keeping the selected DAG when the
        filter still finds it (read from SQLite in a worker)."""
        self._ask(sources=False)

    def _ask(self, *, sources: bool) -> None:
        table = self.query_one("#dags", DagTable)
        self.asked += 1
        self.asking = self.dag_query()
        self._load(self.asking, table.current, table.cursor, table.window, sources, self.asked)

    @work(thread=True, exclusive=True, group="main-load", exit_on_error=False)
    def _load(
        self, query: DagQuery, keep: str | None, at: int, rows: int, sources: bool, asked: int
    ) -> None:
        app: ConsoleApp = self.app  # type: ignore[assignment]
        page = app.call_engine(app.engine.dag_page, query, rows, around=keep, at=at)
        found = app.call_engine(app.engine.status) if sources else None
        self.post_message(MainLoaded(page, found, asked))

    def _fetch(self, offset: int, limit: int) -> tuple[list[str], list[list[Cell]]]:
        """Another window of the query shown (the table scrolled out of the one it holds)."""
        app: ConsoleApp = self.app  # type: ignore[assignment]
        try:
            total = self.page.total if self.page is not None else None
            dags = app.call_engine(app.engine.dag_rows, self.loaded, offset, limit, total=total)
        except Exception as exc:  # a damaged database: one sentence, never a crash
            app.notify(problem(app.engine.settings.database, exc), severity="error")
            dags = []
        self.held = {d.dag_id: d for d in dags}
        self.shown = [d.dag_id for d in dags]
        return self.shown, [cells(d) for d in dags]

    def on_main_loaded(self, message: MainLoaded) -> None:
        if message.sources is not None:
            self.sources = message.sources
            self._render_sources()
        if message.asked != self.asked:
            return  # a later keystroke's load is coming
        self.page = page = message.page
        self.loaded = self.asking
        self.held = {d.dag_id: d for d in page.rows}
        table = self.query_one("#dags", DagTable)
        table.set_page(
            page.total,
            page.offset,
            [d.dag_id for d in page.rows],
            [cells(d) for d in page.rows],
            page.position,
            empty=self._why_empty(),
            # one source: the header line names it, the column would repeat it on every row
            hide=frozenset(
                (() if len(self.sources) > 1 else ("source",))
                + (() if self.app.engine.settings.consumers else ("landed",))
            ),
        )
        self.shown = list(table.keys)
        self.applied += 1
        label = f"{page.total} of {page.every} DAGs"
        label += "".join(
            f" · {n} {s} (key {k})"
            for k, s in QUICK.items()
            if s in ("invalid", "pinned", "paused") and (n := page.counts.get(s))
        )
        if self.status_filter:
            label += f" · only {self.status_filter}"
        label += f" · sorted by {self.sort_key}"
        self.query_one("#summary", Static).update(label)

    def _render_sources(self) -> None:
        out = Text()
        for i, s in enumerate(self.sources):
            if i:
                out.append("\n")
            out.append(f" {s.source} ", style="bold reverse")
            out.append(f" served {short(s.served_commit)}  newest {short(s.newest_commit)}")
            out.append(f"  synced {when(s.last_sync_at)}")
            if s.pinned_commit:
                out.append(f"  PINNED at {short(s.pinned_commit)}", style="bold magenta")
            if s.sandbox == "none":
                out.append("  parses UNSANDBOXED", style="bold yellow")
            if s.last_error:
                out.append(
                    f"  ERROR since {when(s.last_error_at)}: {s.last_error}", style="bold red"
                )
        targets = self.sources[0].publish if self.sources else {}
        if targets:  # where the served set went: the deploy folder, a served branch, S3
            out.append("\n published ")
            for name, t in sorted(targets.items()):
                if t.get("error"):
                    out.append(f" {name}: FAILING ({t['error']})", style="bold red")
                else:
                    out.append(f" {name}: {t.get('generation') or '-'}")
        if not self.sources:
            out.append(" no sources configured", style="italic")
        self.query_one("#sources", Static).update(out)

    def _why_empty(self) -> str:
        """The line the table shows when no DAG is shown."""
        needle = self.query_one("#filter", Input).value.strip()
        only = f"{self.status_filter} " if self.status_filter else ""
        if self.page is None or not self.page.every:
            return "No DAGs yet: a sync records them (S syncs now)."
        if needle:
            return f"No {only}DAG matches '{needle}' (escape clears the filter)."
        return f"No DAG is {self.status_filter} (0 shows every DAG)."

    def selected(self) -> str | None:
        return self.query_one("#dags", DagTable).current

    def selected_state(self) -> DagState | None:
        key = self.selected()
        return self.held.get(key) if key is not None else None

    # -- events --------------------------------------------------------------------------------
    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(0.05, self.apply)

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self.apply()
        self.query_one("#dags", DagTable).focus()

    @on(DagTable.Selected)
    def _open(self, event: DagTable.Selected) -> None:
        app: ConsoleApp = self.app  # type: ignore[assignment]
        app.open_dag(event.key)

    @on(DagTable.HeaderClicked)
    def _sort_by_header(self, event: DagTable.HeaderClicked) -> None:
        key = {"served": "served_version", "newest": "newest_version"}.get(
            event.column, event.column
        )
        if key not in DAG_SORTS:  # what the consumers run: read per page, not sortable
            self.notify(f"The {event.column} column cannot be sorted; o sorts by the others.")
            return
        self.sort_key = key
        self.apply()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.status_filter = None
        self.query_one("#dags", DagTable).focus()
        self.apply()

    def action_sort(self) -> None:
        """The next sort column; not the source when there is one (its column is hidden)."""
        sorts = SORTS if len(self.sources) > 1 else tuple(k for k in SORTS if k != "source")
        index = sorts.index(self.sort_key) if self.sort_key in sorts else -1
        self.sort_key = sorts[(index + 1) % len(sorts)]
        self.apply()

    def action_quick(self, key: str) -> None:
        self.status_filter = QUICK[key]
        self.apply()

    def action_sync_now(self) -> None:
        app: ConsoleApp = self.app  # type: ignore[assignment]
        app.confirm(
            "Sync now",
            "Fetch every source now and record what its new commits changed.",
            app.engine.sync_now,
        )
