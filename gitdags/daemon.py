"""`gitdags daemon`: keeps every source synced, unattended, for months.

One worker thread per source, each with its own engine (its own SQLite connection): a slow or
failing source never holds up the others. A worker syncs at its interval, at once when its
trigger is set (the ref watch on a local repository, a webhook, `sync now`), and backs off
exponentially while it fails, serving its last good state meanwhile. A trigger during a sync
queues exactly one more sync. SIGTERM/SIGINT stop cleanly (exit 0), SIGHUP reloads the config.
Only one daemon may hold a database: an exclusive lock on `<database>.lock`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from gitdags import sdnotify
from gitdags.config import Settings, SourceConfig
from gitdags.engine import build_engine
from gitdags.errors import GitdagsError
from gitdags.model import SyncResult
from gitdags.refwatch import RefWatcher
from gitdags.render import short

log = logging.getLogger(__name__)
MAINTENANCE_EVERY = 3600.0  # seconds between `git gc --auto` of a source's mirror
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class DaemonLock:
    """An exclusive lock file next to the database that names the holder's PID."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held for the daemon's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise GitdagsError(
                f"Another gitdags daemon (PID {holder}) holds {self.path.with_suffix('')}; "
                "stop it first or point this one at another database."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


@dataclass
class SourceState:
    """What the daemon knows of one source in this process (for /healthz and /metrics)."""

    name: str
    attempted: bool = False
    served_commit: str | None = None
    last_success: float | None = None
    failures: int = 0
    last_error: str | None = None
    syncs: dict[str, int] = field(default_factory=lambda: {"success": 0, "failure": 0, "noop": 0})
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    duration_sum: float = 0.0
    duration_count: int = 0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1
        self.duration_sum += seconds
        self.duration_count += 1


def backoff(interval: float, failures: int, cap: float) -> float:
    """Seconds to wait after `failures` failures in a row: doubling from the interval, capped."""
    if failures <= 0:
        return interval
    return min(cap, interval * 2 ** (failures - 1))


class SourceWorker(threading.Thread):
    def __init__(self, daemon: Daemon, config: SourceConfig, max_rounds: int | None) -> None:
        super().__init__(name=f"source-{config.name}", daemon=True)
        self.owner = daemon
        self.config = config
        self.trigger = threading.Event()
        self.halt = threading.Event()
        self.max_rounds = max_rounds
        self.trigger.set()  # the first sync runs at once

    def stop(self) -> None:
        self.halt.set()
        self.trigger.set()

    def run(self) -> None:
        settings = self.owner.settings
        engine = build_engine(settings)
        self.owner.attach(engine)
        state = self.owner.state_of(self.config.name)
        rounds = 0
        maintained = time.monotonic()
        try:
            while not self.halt.is_set():
                interval = settings.interval_of(self.config)
                wait = backoff(interval, state.failures, settings.max_backoff)
                self.trigger.wait(wait)
                if self.halt.is_set():
                    break
                self.trigger.clear()
                result = engine.sync_source(self.config)
                self.owner.record(self.config, result)
                if not result.error and time.monotonic() - maintained > MAINTENANCE_EVERY:
                    maintained = time.monotonic()
                    try:
                        engine.git(self.config).maintain()
                    except GitdagsError as exc:
                        log.warning("mirror maintenance failed: %s", exc)
                rounds += 1
                if self.max_rounds is not None and rounds >= self.max_rounds:
                    break
        finally:
            engine.close()


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
        self.states: dict[str, SourceState] = {}
        self.lock = threading.Lock()
        self.attachments: list[Callable[[object], None]] = []
        self.started = time.time()
        self.watcher: RefWatcher | None = None

    # -- shared state --------------------------------------------------------------------------
    def state_of(self, name: str) -> SourceState:
        with self.lock:
            return self.states.setdefault(name, SourceState(name))

    def attach(self, engine: object) -> None:
        """Let consumers (publishing) subscribe to each worker's engine."""
        for hook in self.attachments:
            hook(engine)

    def record(self, config: SourceConfig, result: SyncResult) -> None:
        state = self.state_of(config.name)
        with self.lock:
            state.attempted = True
            state.observe(result.duration_ms / 1000)
            if result.error:
                state.failures += 1
                state.syncs["failure"] += 1
                changed = state.last_error != result.error
                state.last_error = result.error
            else:
                changed = state.last_error is not None or bool(result.changes)
                state.failures = 0
                state.last_error = None
                state.last_success = time.time()
                state.served_commit = result.to_commit
                state.syncs["noop" if result.nothing_new else "success"] += 1
        if result.error:
            if changed or state.failures in (1, 2, 4, 8, 16) or state.failures % 50 == 0:
                wait = backoff(
                    self.settings.interval_of(config), state.failures, self.settings.max_backoff
                )
                log.warning(
                    "sync failed",
                    extra={
                        "source": config.name,
                        "error": result.error,
                        "failures": state.failures,
                        "retry_in_s": round(wait, 1),
                    },
                )
            sdnotify.notify(f"STATUS={config.name} failing: {result.error}")
            return
        if changed:
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
        else:
            log.debug(
                "up to date", extra={"source": config.name, "commit": short(result.to_commit)}
            )
        self._status_line()

    def _status_line(self) -> None:
        with self.lock:
            parts = [
                f"{s.name}@{short(s.served_commit)[:7]}"
                if not s.last_error
                else f"{s.name} failing"
                for s in self.states.values()
                if s.attempted
            ]
        sdnotify.notify("STATUS=synced " + ", ".join(parts))

    def trigger(self, source: str) -> bool:
        worker = self.workers.get(source)
        if worker is None:
            return False
        worker.trigger.set()
        return True

    def ready(self) -> bool:
        with self.lock:
            names = [s.name for s in self.settings.sources]
            return all(self.states.get(n) and self.states[n].attempted for n in names)

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
                        self.states.pop(name, None)
                    log.info("source removed", extra={"source": name})
        for name, config in new.items():
            if name not in self.workers:
                self._start(config)
                log.info("source started", extra={"source": name, "url": config.safe_url})

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
        log.info("config reloaded", extra={"sources": len(settings.sources)})

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

    def run(self) -> None:
        from gitdags.httpapi import Listener

        lock = DaemonLock(self.settings.database)
        lock.acquire()
        _warm_up()
        self._signals()
        listener = None
        try:
            if self.settings.listen:
                listener = Listener.start(self, self.settings.listen)
            self._publish_once()
            self.watcher = RefWatcher(self)
            self.watcher.update(self.settings.sources)
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
                    sdnotify.notify("WATCHDOG=1")
                    next_ping = time.monotonic() + watchdog
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
            if listener is not None:
                listener.close()
            lock.release()
            log.info("daemon stopped")


def _warm_up() -> None:
    """Import what the first sync needs now, so that it is as fast as the rest."""
    import croniter  # noqa: F401
    import networkx  # noqa: F401
    import yaml  # noqa: F401

    logging.getLogger("watchfiles").setLevel(logging.WARNING)
