"""`gitdags daemon`: keeps every source synced, unattended, for months.

One worker thread per source, each with its own engine (its own SQLite connection): a slow or
failing source never holds up the others. A worker syncs at its interval, at once when its
trigger is set (the ref watch on a local repository, a webhook, `sync now`), and backs off
exponentially while it fails, serving its last good state meanwhile. A trigger during a sync
queues exactly one more sync. SIGTERM/SIGINT stop cleanly (exit 0), SIGHUP reloads the config.
Only one daemon may hold a database: an exclusive lock on `<database>.lock`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from gitdags.config import Settings, SourceConfig
from gitdags.daemon import sdnotify
from gitdags.daemon.consumers import ConsumerPoller
from gitdags.daemon.lock import DaemonLock
from gitdags.daemon.metrics import DaemonMetrics
from gitdags.daemon.refwatch import RefWatcher
from gitdags.daemon.worker import SourceWorker, backoff, say_slow_syncs
from gitdags.engine import SyncEngine, build_engine
from gitdags.errors import GitdagsError
from gitdags.history.store import HistoryStore
from gitdags.model import ConsumerStatus, SourceRecord, SyncResult
from gitdags.render import short

log = logging.getLogger(__name__)
T = TypeVar("T")


class Daemon:
    """The loop. `run()` blocks until `stop` is set (or every worker hit `max_rounds`)."""

    def __init__(
        self,
        load: Callable[[], Settings],
        *,
        stop: threading.Event | None = None,
        max_rounds: int | None = None,
    ) -> None:
        self.load = load
        self.settings = load()
        self.stop = stop or threading.Event()
        self.reload_requested = threading.Event()
        self.max_rounds = max_rounds
        self.workers: dict[str, SourceWorker] = {}
        self.lock = threading.Lock()
        self._attempted: set[str] = set()
        self._failing: set[str] = set()  # sources whose failure this process has logged
        self._succeeded: dict[str, float] = {}  # source -> time.time() of its last good sync
        self._added: set[str] = set()  # sources a reload added: not yet in readiness
        self._reader: HistoryStore | None = None
        self.metrics = DaemonMetrics(
            self.records,
            self.dag_counts,
            self.publishes,
            last_success=self.last_success,
            consumers=self.consumer_statuses,
        )
        self.attachments: list[Callable[[object], None]] = []
        self.started = time.time()
        self.watcher: RefWatcher | None = None
        self.poller: ConsumerPoller | None = None  # asks the consumers, when there are any

    # -- shared state --------------------------------------------------------------------------
    def _read(self, what: Callable[[HistoryStore], T], default: T) -> T:
        """Read the database over the daemon's one read-only connection (for /healthz and
        /metrics); the reconcile records the engines wrote are the one truth."""
        with self.lock:
            try:
                if self._reader is None:
                    self._reader = HistoryStore(self.settings.database, readonly=True)
                return what(self._reader)
            except GitdagsError as exc:
                log.warning("cannot read the database for /healthz or /metrics: %s", exc)
                return default

    def records(self) -> dict[str, SourceRecord]:
        return self._read(lambda store: store.source_records(), {})

    def dag_counts(self) -> dict[str, dict[str, int]]:
        return self._read(lambda store: store.dag_counts(), {})

    def publishes(self) -> dict[str, dict[str, object]]:
        return self._read(lambda store: store.publish_targets(), {})

    def last_success(self) -> dict[str, float]:
        """When each source last synced without an error in this process (time.time()), a
        poll that found nothing new included: the database records only syncs that changed
        something, to keep quiet polls from writing."""
        with self.lock:
            return dict(self._succeeded)

    def activity(self) -> dict[str, str]:
        """What each source's worker does now, or waits for (for /healthz and STATUS=)."""
        return {name: worker.activity() for name, worker in list(self.workers.items())}

    def attempted(self) -> set[str]:
        with self.lock:
            return set(self._attempted)

    def pending(self) -> set[str]:
        """Sources added by a reload whose first sync has not run yet: reported, but they do
        not make a ready daemon unready (its other sources are still served)."""
        with self.lock:
            return self._added - self._attempted

    def attach(self, engine: object) -> None:
        """Let listeners (publishing, the consumers' poller) subscribe to each worker's
        engine."""
        for hook in self.attachments:
            hook(engine)
        if self.poller is not None and isinstance(engine, SyncEngine):
            engine.listeners.append(self.poller.served_changed)

    def consumer_statuses(self) -> list[ConsumerStatus]:
        names = [c.name for c in self.settings.consumers]
        return self._read(lambda store: store.consumer_statuses(names), []) if names else []

    def record(
        self,
        config: SourceConfig,
        result: SyncResult,
        record: SourceRecord | None,
        *,
        before: SourceRecord | None = None,
    ) -> None:
        """Count and log a finished sync; `record` is the source's reconcile record after it,
        `before` the one before it."""
        with self.lock:
            first = config.name not in self._attempted
            self._attempted.add(config.name)
            # the first failure this process sees is said, whatever the count it inherited
            unsaid = result.error is not None and config.name not in self._failing
            if result.error:
                self._failing.add(config.name)
            else:
                self._failing.discard(config.name)
                self._succeeded[config.name] = time.time()
        outcome = "failure" if result.error else "noop" if result.nothing_new else "success"
        self.metrics.observe(config.name, outcome, result.duration_ms / 1000)
        failures = record.failures if record else 0
        if result.error:
            wait = backoff(self.settings.interval_of(config), failures, self.settings.max_backoff)
            if unsaid or failures in (1, 2, 4, 8, 16) or failures % 50 == 0:
                log.warning(
                    "sync failed",
                    extra={
                        "source": config.name,
                        "error": result.error,
                        "failures": failures,
                        "retry_in_s": round(wait, 1),
                    },
                )
            sdnotify.notify(
                f"STATUS={config.name} failing ({failures} in a row, retrying in {wait:.0f}s): "
                f"{result.error}"
            )
            return
        if before is not None and before.failures:
            log.info(
                "source %s recovered after %d failures: serving %s (the last error was: %s)",
                config.name,
                before.failures,
                short(result.to_commit),
                before.last_error,
                extra={
                    "source": config.name,
                    "failures": before.failures,
                    "commit": short(result.to_commit),
                    "failing_since": before.last_error_at,
                },
            )
        if result.changes or first:
            log.info(
                "synced",
                extra={
                    "source": config.name,
                    "commit": short(result.to_commit),
                    "added": result.added,
                    "changed": result.changed,
                    "deleted": result.deleted,
                    "invalid": result.invalid,
                    "unchanged": result.unchanged,
                    "forced": result.forced,
                    "duration_ms": round(result.duration_ms, 1),
                },
            )
            self._log_broken(config.name, result)
        else:
            log.debug(
                "up to date", extra={"source": config.name, "commit": short(result.to_commit)}
            )
        self._status_line()

    def progress(self, source: str, done: int, total: int) -> None:
        """A long sync's progress in the STATUS line (`systemctl status gitdags`)."""
        if total >= 1000:
            sdnotify.notify(f"STATUS={source}: checked {done:,}/{total:,} files")

    def _log_broken(self, source: str, result: SyncResult, limit: int = 20) -> None:
        """What a commit broke, one line per DAG (id, file, line, code), and a publish that
        failed: what an on-call reader of the journal needs without opening the console."""
        errors = {}
        for issue in result.issues:
            if issue.severity == "error":
                errors.setdefault(issue.file, issue)
        broken = [c for c in result.changes if c.change == "invalid"]
        for change in broken[:limit]:
            issue = errors.get(change.path)
            log.warning(
                "DAG invalid, its last good version stays served",
                extra={
                    "source": source,
                    "dag_id": change.dag_id,
                    "version": change.version,
                    "path": change.path,
                    "line": issue.line if issue else None,
                    "code": issue.code if issue else None,
                    "error": issue.message if issue else None,
                },
            )
        if len(broken) > limit:
            log.warning("and %d more invalid DAGs", len(broken) - limit, extra={"source": source})
        if result.publish_error:
            log.error("not published", extra={"source": source, "error": result.publish_error})

    def _status_line(self) -> None:
        records = self.records()
        parts = [
            f"{name}@{short(r.served_commit)[:7]}" if not r.last_error else f"{name} failing"
            for name, r in records.items()
            if name in self.attempted()
        ]
        sdnotify.notify("STATUS=synced " + ", ".join(parts))

    def hung(self) -> list[str]:
        """Sources whose sync has run well past its deadline (by the deadline again, at most
        a minute): the deadline bounds every git call, so this is a sync stuck elsewhere."""
        limit = self.settings.sync_timeout + min(60.0, self.settings.sync_timeout)
        now = time.monotonic()
        return [
            name
            for name, worker in self.workers.items()
            if worker.busy_since is not None and now - worker.busy_since > limit
        ]

    def trigger(self, source: str) -> bool:
        worker = self.workers.get(source)
        if worker is None:
            return False
        worker.trigger.set()
        return True

    def ready(self) -> bool:
        attempted = self.attempted()
        return all(s.name in attempted for s in self.settings.sources)

    # -- workers -------------------------------------------------------------------------------
    def _start(self, config: SourceConfig) -> None:
        worker = SourceWorker(self, config, self.max_rounds)
        self.workers[config.name] = worker
        worker.start()

    def _apply(self, settings: Settings) -> None:
        """Start, stop and restart workers so they match `settings`."""
        old = {s.name: s for s in self.settings.sources}
        new = {s.name: s for s in settings.sources}
        self.settings = settings
        for name, worker in list(self.workers.items()):
            if name not in new or new[name] != old.get(name):
                worker.stop()
                worker.join(timeout=30)
                del self.workers[name]
                if name not in new:
                    with self.lock:
                        self._attempted.discard(name)
                    self.metrics.forget(name)  # before the prune: its commit is what others see
                    self._prune(name)
        starting = [config for name, config in new.items() if name not in self.workers]
        # their records as they were before these workers ran (a new database has none)
        records = self.records() if starting and self.settings.database.exists() else {}
        for config in starting:
            name = config.name
            if name not in old:
                with self.lock:
                    self._added.add(name)
            self._start(config)
            log.info("source started", extra={"source": name, "url": config.safe_url})
            self._say_inherited_failures(records.get(name))

    def _say_inherited_failures(self, record: SourceRecord | None) -> None:
        """A source that was failing when the last daemon stopped (or was killed): said at
        start, so that a restarted daemon never waits on an old failure in silence."""
        if record is not None and record.failures:
            log.warning(
                "source was failing before this start; syncing it now",
                extra={
                    "source": record.name,
                    "failures": record.failures,
                    "failing_since": record.last_error_at,
                    "error": record.last_error,
                },
            )

    def _prune(self, name: str) -> None:
        """A source removed from the config (SIGHUP): its DAGs are retired, history kept, as
        Flux prunes what a removed Kustomization applied; adding it again brings them back."""
        engine = build_engine(self.settings)
        try:
            result = engine.prune_source(name, reason="removed from the config", actor="gitdags")
            log.warning(
                "source removed from the config: %s", result.message, extra={"source": name}
            )
        except GitdagsError as exc:
            log.warning("source removed from the config: %s", exc, extra={"source": name})
        finally:
            engine.close()

    def reload(self) -> None:
        try:
            settings = self.load()
        except GitdagsError as exc:
            log.error("config reload failed; keeping the running config: %s", exc)
            return
        if settings.database != self.settings.database:
            log.error("config reload cannot move the database; restart the daemon to do that")
            return
        self._apply(settings)
        if self.watcher is not None:
            self.watcher.update(settings.sources)
        self._poll_consumers(settings)
        log.info("config reloaded", extra={"sources": len(settings.sources)})

    def _poll_consumers(self, settings: Settings) -> None:
        """Start, update or stop the consumers' poller to match `settings`."""
        if settings.consumers and self.poller is None:
            self.poller = ConsumerPoller(settings)
            self.poller.start()
        elif settings.consumers and self.poller is not None:
            self.poller.update(settings)
        elif self.poller is not None:
            self.poller.stop()
            self.poller.join(timeout=30)
            self.poller = None

    def _publish_once(self) -> None:
        """Bring the deploy folder up to date at start (config may have changed meanwhile)."""
        if not self.settings.deploy_dir:
            return
        engine = build_engine(self.settings)
        try:
            engine.publish(force=False)
        except Exception:
            log.exception("cannot write the deploy folder %s", self.settings.deploy_dir)
        finally:
            engine.close()

    # -- the loop ------------------------------------------------------------------------------
    def _signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())

    def _refuse_a_damaged_database(self) -> None:
        """A damaged database is never written to: the daemon does not start on one."""
        from gitdags.doctor import quick_check

        if not self.settings.database.exists():
            return
        problem = quick_check(self.settings.database)
        if problem is not None:
            raise GitdagsError(
                f"The database {self.settings.database} is damaged ({problem}); the daemon "
                "will not write to it: restore it from a backup, or see `gitdags doctor`."
            )

    def run(self) -> None:
        from gitdags.daemon.http import Callbacks, Listener

        lock = DaemonLock(self.settings.database)
        lock.acquire()
        self._refuse_a_damaged_database()
        _warm_up()
        self._signals()
        listener = None
        try:
            if self.settings.listen:
                calls = Callbacks(
                    lambda: self.settings,
                    self.records,
                    self.attempted,
                    self.pending,
                    self.activity,
                    self.trigger,
                    self.metrics,
                    self.consumer_statuses,
                )
                listener = Listener.start(calls, self.settings.listen)
            self._publish_once()
            self.watcher = RefWatcher(self.trigger)
            self.watcher.update(self.settings.sources)
            self._poll_consumers(self.settings)
            self._apply(self.settings)
            if not self.settings.sources:
                log.warning("no sources configured; add [[sources]] and send SIGHUP")
            sdnotify.notify("READY=1")
            log.info(
                "daemon started",
                extra={
                    "pid": os.getpid(),
                    "sources": len(self.settings.sources),
                    "listen": self.settings.listen or "off",
                },
            )
            watchdog = sdnotify.watchdog_interval()
            next_ping = 0.0
            while not self.stop.is_set():
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    self.reload()
                if watchdog and time.monotonic() >= next_ping:
                    hung = self.hung()
                    if hung:  # no ping: systemd restarts a daemon whose sync hangs
                        log.error("sync hangs past [daemon] sync_timeout", extra={"sources": hung})
                    else:
                        sdnotify.notify("WATCHDOG=1")
                    next_ping = time.monotonic() + watchdog
                say_slow_syncs(self.workers)
                if self.max_rounds is not None and not any(
                    w.is_alive() for w in self.workers.values()
                ):
                    break
                self.stop.wait(0.2)
        finally:
            sdnotify.notify("STOPPING=1")
            log.info("daemon stopping")
            for worker in self.workers.values():
                worker.stop()
            for worker in self.workers.values():
                worker.join(timeout=10)
            if self.watcher is not None:
                self.watcher.close()
            if self.poller is not None:
                self.poller.stop()
                self.poller.join(timeout=30)
            if listener is not None:
                listener.close()
            if self._reader is not None:
                self._reader.close()
            lock.release()
            log.info("daemon stopped")


def _warm_up() -> None:
    """Import what the first sync needs now, so that it is as fast as the rest."""
    import croniter  # noqa: F401
    import networkx  # noqa: F401
    import yaml  # noqa: F401

    logging.getLogger("watchfiles").setLevel(logging.WARNING)
