"""The console's main screen: every DAG in a filterable, sortable table under the sources."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from gitdags.model import STATUSES, DagState, SourceStatus
from gitdags.render import landing, short, when
from gitdags.tui.common import APP_KEYS, ConsoleApp
from gitdags.tui.dagtable import Column, DagTable
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


def matches(dag: DagState, needle: str) -> bool:
    if not needle:
        return True
    return (
        needle in dag.dag_id.lower()
        or needle in (dag.owner or "").lower()
        or any(needle in tag.lower() for tag in dag.tags)
    )


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
        self.dags: list[DagState] = []
        self.sources: list[SourceStatus] = []
        self.status_filter: str | None = None
        self.sort_key = "dag_id"
        self.shown: list[str] = []
        self.applied = 0  # how many times the table was filled (for tests and benchmarks)
        self._filter_timer: Any = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="sources")
        yield FilterInput(placeholder="/ filter by id, owner or tag", id="filter")
        yield DagTable(COLUMNS, id="dags")
        yield Static(id="summary")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#dags", DagTable).focus()
        self.reload()

    # -- data ----------------------------------------------------------------------------------
    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="main-load", exit_on_error=False)
    def _load(self) -> None:
        app: ConsoleApp = self.app  # type: ignore[assignment]
        dags = app.call_engine(app.engine.list_dags)
        sources = app.call_engine(app.engine.status)
        self.post_message(MainLoaded(dags, sources))

    def on_main_loaded(self, message: MainLoaded) -> None:
        self.dags, self.sources = message.dags, message.sources
        self._render_sources()
        self.apply()

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

    def visible(self) -> list[DagState]:
        needle = self.query_one("#filter", Input).value.strip().lower()
        rows = [
            d
            for d in self.dags
            if (self.status_filter is None or d.status == self.status_filter) and matches(d, needle)
        ]
        rows.sort(key=lambda d: str(getattr(d, self.sort_key) or ""))
        return rows

    def apply(self) -> None:
        """Fill the table, keeping the selected DAG (the table keeps the scroll position)."""
        table = self.query_one("#dags", DagTable)
        rows = self.visible()
        table.set_rows(
            [d.dag_id for d in rows],
            [
                [
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
                for d in rows
            ],
            keep=table.current,
            empty=self._why_empty(),
            # one source: the header line names it, the column would repeat it on every row
            hide=frozenset(
                (() if len(self.sources) > 1 else ("source",))
                + (() if self.app.engine.settings.consumers else ("landed",))
            ),
        )
        self.shown = table.keys
        self.applied += 1
        label = f"{len(rows)} of {len(self.dags)} DAGs"
        counts = {s: 0 for s in ("invalid", "pinned", "paused")}
        for d in self.dags:
            if d.status in counts:
                counts[d.status] += 1
        label += "".join(f" · {n} {s} (key {k})" for k, s in QUICK.items() if (n := counts.get(s)))
        if self.status_filter:
            label += f" · only {self.status_filter}"
        label += f" · sorted by {self.sort_key}"
        self.query_one("#summary", Static).update(label)

    def _why_empty(self) -> str:
        """The line the table shows when no DAG is shown."""
        needle = self.query_one("#filter", Input).value.strip()
        only = f"{self.status_filter} " if self.status_filter else ""
        if not self.dags:
            return "No DAGs yet: a sync records them (S syncs now)."
        if needle:
            return f"No {only}DAG matches '{needle}' (escape clears the filter)."
        return f"No DAG is {self.status_filter} (0 shows every DAG)."

    def selected(self) -> str | None:
        return self.query_one("#dags", DagTable).current

    def selected_state(self) -> DagState | None:
        key = self.selected()
        return next((d for d in self.dags if d.dag_id == key), None)

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
        key = event.column
        self.sort_key = {"served": "served_version", "newest": "newest_version"}.get(key, key)
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
