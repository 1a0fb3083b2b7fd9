"""`gitdags tui`: the operator console over the same engine calls the CLI uses.

Engine calls run in thread workers (one SQLite connection, guarded by a lock) and report back
with messages. The console polls the database's change counter every second and reloads only
when it moved, so it stays live while the daemon runs in another process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static
from textual.worker import Worker, WorkerState

from gitdags.engine import SyncEngine
from gitdags.errors import GitdagsError, problem
from gitdags.model import STATUSES, ActionResult, DagState, SourceStatus
from gitdags.render import short, when
from gitdags.tui.dagactions import ask_pause, ask_pin, ask_rollback
from gitdags.tui.dagtable import Column, DagTable
from gitdags.tui.graph import STATUS_STYLE
from gitdags.tui.messages import ActionFailed, ActionFinished, DataChanged, MainLoaded
from gitdags.tui.modals import ConfirmAction, ErrorModal, HelpScreen

# on a narrow window the DAG id gives way first, then the owner (see DagTable._fit)
COLUMNS = [
    Column("dag_id", "DAG", 12, shrink_to=16, middle=True),
    Column("status", "status", 7),
    Column("served", "served"),
    Column("newest", "newest"),
    Column("source", "source"),
    Column("owner", "owner", shrink_to=10),
    Column("updated_at", "updated"),
]
# the quick filters, in the order the help and the README give them
QUICK_ORDER = ("active", "invalid", "pinned", "paused", "disabled", "deleted")
QUICK = {"0": None, **{str(i): s for i, s in enumerate(QUICK_ORDER, 1)}}
assert set(QUICK_ORDER) == set(STATUSES)
SORTS = ("dag_id", "status", "updated_at", "source", "owner")
# the app-wide keys, as the main screen's footer shows them
APP_KEYS = [
    Binding("q", "app.quit", "Quit"),
    Binding("question_mark", "app.help", "Help"),
    Binding("L", "app.sync_log", "Sync log"),
    Binding("A", "app.audit_log", "Audit"),
    Binding("S", "app.sync_now", "Sync now"),
]


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
        app: GitdagsApp = self.app  # type: ignore[assignment]
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
                ]
                for d in rows
            ],
            keep=table.current,
            empty=self._why_empty(),
            # one source: the header line names it, the column would repeat it on every row
            hide=frozenset() if len(self.sources) > 1 else frozenset({"source"}),
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
        app: GitdagsApp = self.app  # type: ignore[assignment]
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
        app: GitdagsApp = self.app  # type: ignore[assignment]
        app.confirm(
            "Sync now",
            "Fetch every source now and record what its new commits changed.",
            app.engine.sync_now,
        )


Command = tuple[str, Callable[[], Any], str]  # name, what it calls, help
OPEN_HITS = 20  # the palette offers at most this many DAGs to open


class GitdagsCommands(Provider):
    """The command palette: the console's actions by name, on the DAG the palette was opened
    over (the DAG screen's, or the one selected in the table), and any DAG by id to open."""

    def _main(self) -> MainScreen | None:
        return next((s for s in self.app.screen_stack if isinstance(s, MainScreen)), None)

    def commands(self) -> list[Command]:
        """The actions that make sense on the screen the palette was opened over."""
        from gitdags.tui.screens import DagScreen

        app = self.app
        assert isinstance(app, GitdagsApp)
        screen = self.screen
        where = (
            f"source {screen.state.source}"
            if isinstance(screen, DagScreen) and screen.state
            else "every source"
        )
        commands: list[Command] = [
            ("Sync now", app.action_sync_now, f"fetch {where} now"),
        ]
        state: DagState | None = None
        to: int | None = None  # the version to roll back to; None: the one before the served
        if isinstance(screen, DagScreen):
            state, version = screen.state, screen.selected_version()
            if state and version and version.valid and version.version != state.served_version:
                to = version.version  # the selected version, as r does
        elif isinstance(screen, MainScreen):
            state = screen.selected_state()
        if state is not None:
            dag = state.dag_id
            try:  # the version it would serve, by the CLI's rules (a read, as r does)
                target = app.call_engine(
                    app.engine.rollback_target, dag, None if to is None else str(to)
                )
                name, why = f"Roll back {dag} to v{target.version}", ""
            except GitdagsError as exc:
                name, why = f"Roll back {dag}", f"refused: {exc}"
            commands += [
                (
                    name,
                    lambda: ask_rollback(app, state, to),
                    why or "and pin it: new commits are recorded, not served",
                ),
                (
                    f"{name} until it changes",
                    lambda: ask_rollback(app, state, to, until_change=True),
                    why or "pinned until a newer valid commit changes the DAG",
                ),
                (
                    f"{'Unpin' if state.pinned else 'Pin'} {dag}",
                    lambda: ask_pin(app, state),
                    "serve the newest valid version again"
                    if state.pinned
                    else "hold the served version",
                ),
                (
                    f"{'Resume' if state.paused else 'Pause'} {dag}",
                    lambda: ask_pause(app, state),
                    "serve it again" if state.paused else "stop serving it, keep versioning it",
                ),
            ]
        if isinstance(screen, MainScreen):
            commands.append(("Filter DAGs", screen.action_filter, "by id, owner or tag"))
            commands += [
                (f"Show only {status} DAGs", lambda s=status: app.quick_filter(s), "quick filter")
                for status in STATUSES
            ]
            commands.append(("Show every DAG", screen.action_clear, "clear the filters"))
        commands += [
            ("Sync log", app.action_sync_log, "every sync, newest first"),
            ("Audit log", app.action_audit_log, "who did what, when and why"),
            ("Help", app.action_help, "the keys"),
        ]
        return commands

    def opens(self) -> list[Command]:
        """Open any DAG by id (searched, never listed: there may be thousands)."""
        main = self._main()
        if main is None:
            return []
        return [
            (f"Open {d.dag_id}", lambda d=d.dag_id: self.app.open_dag(d), f"{d.status}, {d.source}")
            for d in main.dags
        ]

    async def discover(self) -> Hits:
        """The palette as it opens: gitdags' actions, above Textual's own (a score of 1 sorts
        them first; Textual's discovery hits score 0)."""
        for name, callback, text in self.commands():
            yield Hit(1.0, name, callback, text=name, help=text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, text in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=text)
        # the DAGs to open: the best few only, there may be thousands (a letter-set check
        # first spares the fuzzy matcher most of them)
        letters = set(query.lower().replace(" ", ""))
        if len(letters) < 2:
            return
        found = []
        for name, callback, text in self.opens():
            if letters <= set(name.lower()) and (score := matcher.match(name)) > 0:
                found.append((score, name, callback, text))
        found.sort(key=lambda hit: -hit[0])
        for score, name, callback, text in found[:OPEN_HITS]:
            yield Hit(score, matcher.highlight(name), callback, help=text)


class GitdagsApp(App[None]):
    CSS_PATH = "gitdags.tcss"
    TITLE = "gitdags"
    COMMANDS = App.COMMANDS | {GitdagsCommands}
    # every screen's footer shows its own keys; these work everywhere (the help lists them)
    BINDINGS = [
        Binding(b.key, b.action.removeprefix("app."), b.description, show=False) for b in APP_KEYS
    ]

    def __init__(self, engine: SyncEngine, *, poll_interval: float = 1.0) -> None:
        super().__init__()
        self.engine = engine
        self.db_lock = threading.Lock()
        self.poll_interval = poll_interval
        self.generation = -1
        self.last_problem = ""

    def call_engine(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run an engine call from a worker thread; one at a time on the connection."""
        with self.db_lock:
            return fn(*args, **kwargs)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that failed (a damaged database, a bug) is one sentence on screen, never
        a crash: Textual's crash report would print local variables, secrets included."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            message = problem(self.engine.settings.database, event.worker.error)
            if message != self.last_problem:
                self.last_problem = message
                self.notify(message, title="gitdags", severity="error", timeout=10)

    def on_mount(self) -> None:
        self.sub_title = str(self.engine.settings.database)
        self.push_screen(MainScreen())
        self.set_interval(self.poll_interval, self.poll)

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll(self) -> None:
        generation = self.call_engine(self.engine.generation)
        if generation != self.generation:
            first = self.generation < 0
            self.generation = generation
            if not first:
                self.post_message(DataChanged(generation))

    def on_data_changed(self, message: DataChanged) -> None:
        for screen in self.screen_stack:
            reload = getattr(screen, "reload", None)
            if reload is not None:
                reload()

    # -- actions through a confirmation ------------------------------------------------------
    def confirm(
        self, title: str, what: str, fn: Callable[..., ActionResult], *args: Any, **kw: Any
    ) -> None:
        def done(reason: str | None) -> None:
            if reason is None:
                return
            if title == "Sync now":  # a fetch can take minutes: on a connection of its own
                self.notify("Fetching and checking; the table stays live.", title="Syncing")
                self._sync_apart(args[0] if args else None, reason)
            else:
                self._execute(fn, args, {**kw, "reason": reason})

        self.push_screen(ConfirmAction(title, what), done)

    @work(thread=True, group="sync-now", exit_on_error=False)
    def _sync_apart(self, source: str | None, reason: str) -> None:
        """Sync now with an engine (a database connection) of its own, so that the table,
        which shares the console's connection, never waits behind a fetch."""
        from gitdags.engine import build_engine

        engine = build_engine(self.engine.settings)
        try:
            result = engine.sync_now(source, reason=reason)
        except Exception as exc:
            self.post_message(ActionFailed(problem(self.engine.settings.database, exc)))
            return
        finally:
            engine.close()
        self.post_message(ActionFinished(result))

    @work(thread=True, group="actions", exit_on_error=False)
    def _execute(self, fn: Callable[..., ActionResult], args: tuple, kwargs: dict) -> None:
        try:
            result = self.call_engine(fn, *args, **kwargs)
        except GitdagsError as exc:
            self.post_message(ActionFailed(str(exc)))
        except Exception as exc:  # never a crash (its traceback would print secrets)
            self.post_message(ActionFailed(problem(self.engine.settings.database, exc)))
            return
        else:
            self.post_message(ActionFinished(result))

    def on_action_finished(self, message: ActionFinished) -> None:
        result = message.result
        entry = (
            f" Recorded in the audit log (#{result.audit_id}, A shows it)."
            if result.audit_id
            else ""
        )
        self.notify(result.message + entry, title=result.action)
        self.poll()

    def on_action_failed(self, message: ActionFailed) -> None:
        self.push_screen(ErrorModal(message.error))

    # -- app-wide keys -----------------------------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_sync_log(self) -> None:
        from gitdags.tui.screens import SyncLogScreen

        self.push_screen(SyncLogScreen())

    def action_audit_log(self) -> None:
        from gitdags.tui.screens import AuditScreen

        self.push_screen(AuditScreen())

    def action_sync_now(self) -> None:
        screen = self.screen
        handler = getattr(screen, "action_sync_now", None)
        if handler is not None and screen is not self:
            handler()
        else:
            self.confirm("Sync now", "Fetch every source now.", self.engine.sync_now)

    def open_dag(self, dag_id: str) -> None:
        from gitdags.tui.screens import DagScreen

        self.push_screen(DagScreen(dag_id))

    def quick_filter(self, status: str) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.status_filter = status
                screen.apply()


def run(engine: SyncEngine) -> None:
    GitdagsApp(engine).run()
