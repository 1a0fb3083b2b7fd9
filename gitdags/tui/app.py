"""`gitdags tui`: the operator console over the same engine calls the CLI uses.

Engine calls run in thread workers (one SQLite connection, guarded by a lock) and report back
with messages. The console polls the database's change counter every second and reloads only
when it moved, so it stays live while the daemon runs in another process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.worker import Worker, WorkerState

from gitdags.engine import SyncEngine
from gitdags.errors import GitdagsError, problem
from gitdags.model import STATUSES, ActionResult, DagState
from gitdags.tui.common import APP_KEYS
from gitdags.tui.dagactions import ask_pause, ask_pin, ask_rollback
from gitdags.tui.mainscreen import MainScreen
from gitdags.tui.messages import ActionFailed, ActionFinished, DataChanged
from gitdags.tui.modals import ConfirmAction, ErrorModal, HelpScreen

Command = tuple[str, Callable[[], Any], str]  # name, what it calls, help
OPEN_HITS = 20  # the palette offers at most this many DAGs to open
CANDIDATES = 200  # of the DAGs SQLite finds for it, the fuzzy matcher scores this many


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

    def opens(self, query: str) -> list[Command]:
        """The DAGs to open for what was typed: SQLite finds the ids that hold its letters in
        order (the fuzzy matcher's own rule), those holding the words whole first; never every
        DAG (there may be 100,000)."""
        if self._main() is None:
            return []
        words = query.lower().split()
        if words and "open".startswith(words[0]):  # "open rep": the command's word, not the id
            words = words[1:]
        app = self.app
        assert isinstance(app, GitdagsApp)
        found = app.call_engine(app.engine.find_dags, "".join(words), " ".join(words), CANDIDATES)
        return [
            (f"Open {d.dag_id}", lambda d=d.dag_id: self.app.open_dag(d), f"{d.status}, {d.source}")
            for d in found
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
        # the DAGs to open: the best few of SQLite's candidates (a letter-set check first
        # spares the fuzzy matcher most of them)
        letters = set(query.lower().replace(" ", ""))
        if len(letters) < 2:
            return
        found = []
        for name, callback, text in self.opens(query):
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
