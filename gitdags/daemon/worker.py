"""A source's worker: a thread that syncs one source at its interval or trigger, backing off."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Protocol

from gitdags.config import Settings, SourceConfig
from gitdags.engine import SyncEngine, build_engine
from gitdags.errors import GitdagsError
from gitdags.model import SourceRecord, SyncResult

log = logging.getLogger(__name__)
MAINTENANCE_EVERY = 3600.0  # seconds between `git gc --auto` of a source's mirror
SLOW_SYNC = 30.0  # seconds after which a running sync is logged with where it waits


def backoff(interval: float, failures: int, cap: float) -> float:
    """Seconds to wait after `failures` failures in a row: doubling from the interval, capped."""
    if failures <= 0:
        return interval
    return min(cap, interval * 2 ** (failures - 1))


class Owner(Protocol):
    """What a worker asks of the daemon that runs it (the worker never imports the daemon)."""

    settings: Settings

    def attach(self, engine: object) -> None: ...

    def progress(self, source: str, done: int, total: int) -> None: ...

    def record(
        self,
        config: SourceConfig,
        result: SyncResult,
        record: SourceRecord | None,
        *,
        before: SourceRecord | None = None,
    ) -> None: ...


class SourceWorker(threading.Thread):
    def __init__(self, daemon: Owner, config: SourceConfig, max_rounds: int | None) -> None:
        super().__init__(name=f"source-{config.name}", daemon=True)
        self.owner = daemon
        self.config = config
        self.trigger = threading.Event()
        self.halt = threading.Event()
        self.max_rounds = max_rounds
        self.busy_since: float | None = None  # time.monotonic() when the running sync began
        self.next_sync: float | None = None  # time.monotonic() of the next sync, when waiting
        self.failures = 0  # failed syncs in a row, as the wait began
        self.said_slow = False  # the running sync was logged as slow
        self.problem: str | None = None  # what keeps it from syncing at all (not a failed sync)
        self.trigger.set()  # the first sync runs at once

    def activity(self) -> str:
        """What the worker does now, in words: syncing (since), or what it waits for."""
        now = time.monotonic()
        busy = self.busy_since
        if busy is not None:
            return f"syncing for {now - busy:.0f}s"
        if not self.is_alive():
            return "stopped"
        left = max(0.0, (self.next_sync or now) - now)
        if self.problem:
            return f"retrying in {left:.0f}s: {self.problem}"
        if self.next_sync is None or self.trigger.is_set():
            return "starting a sync"
        if self.failures:
            return f"retrying in {left:.0f}s after {self.failures} failed syncs in a row"
        return f"next sync in {left:.0f}s"

    def stop(self) -> None:
        self.halt.set()
        self.trigger.set()

    def run(self) -> None:
        settings = self.owner.settings
        interval = settings.interval_of(self.config)
        engine: SyncEngine | None = None
        rounds = faults = 0
        maintained = time.monotonic()
        try:
            while not self.halt.is_set():
                try:
                    if engine is None:
                        engine = build_engine(settings)
                        self.owner.attach(engine)
                    synced = self._round(engine, interval, maintained)
                    faults, self.problem = 0, None
                except Exception as exc:  # outside a sync: opening the database, reading it
                    faults += 1
                    wait = backoff(interval, faults, settings.max_backoff)
                    self.problem = str(exc).rstrip(".") or type(exc).__name__
                    log.error(
                        "cannot sync this source; retrying",
                        extra={
                            "source": self.config.name,
                            "error": self.problem,
                            "retry_in_s": round(wait, 1),
                        },
                        exc_info=not isinstance(exc, GitdagsError),
                    )
                    if engine is not None:
                        with contextlib.suppress(Exception):
                            engine.close()
                        engine = None
                    self.next_sync, self.failures = time.monotonic() + wait, faults
                    self.halt.wait(wait)
                    continue
                if synced is None:  # halted while waiting
                    break
                if synced:
                    maintained = time.monotonic()
                rounds += 1
                if self.max_rounds is not None and rounds >= self.max_rounds:
                    break
        finally:
            if engine is not None:
                engine.close()

    def _round(self, engine: SyncEngine, interval: float, maintained: float) -> bool | None:
        """Wait for the next sync (the interval, a trigger, or the backoff), then sync once;
        whether the mirror was maintained, or None when halted while waiting."""
        settings = self.owner.settings
        record = engine.source_record(self.config.name)
        failures = record.failures if record else 0
        wait = backoff(interval, failures, settings.max_backoff)
        self.next_sync = time.monotonic() + wait
        self.failures = failures
        self.trigger.wait(wait)
        if self.halt.is_set():
            return None
        self.trigger.clear()
        self.said_slow = False
        self.busy_since = time.monotonic()
        try:
            result = engine.sync_source(self.config, progress=self.owner.progress)
        finally:
            self.busy_since = None
        after = engine.source_record(self.config.name)
        self.owner.record(self.config, result, after, before=record)
        if not result.error and time.monotonic() - maintained > MAINTENANCE_EVERY:
            try:
                engine.git(self.config).maintain()
            except GitdagsError as exc:
                log.warning("mirror maintenance failed: %s", exc)
            return True
        return False


def say_slow_syncs(workers: dict[str, SourceWorker]) -> None:
    """Once per sync: a sync that runs past SLOW_SYNC seconds, and where it is (the
    function it waits in), so that a daemon that seems idle says what it waits for."""
    for name, worker in list(workers.items()):
        busy = worker.busy_since
        if busy is None or worker.said_slow or time.monotonic() - busy < SLOW_SYNC:
            continue
        worker.said_slow = True
        log.warning(
            "sync still running",
            extra={
                "source": name,
                "seconds": round(time.monotonic() - busy),
                "waiting_in": where(worker),
            },
        )


def where(thread: threading.Thread) -> str:
    """The innermost gitdags function a thread is in, and the call it waits on."""
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None:
        return "unknown"
    stack = traceback.extract_stack(frame)
    ours = [f for f in stack if f"{os.sep}gitdags{os.sep}" in f.filename]
    parts = []
    if ours:
        f = ours[-1]
        parts.append(f"{Path(f.filename).name}:{f.lineno} {f.name}")
    if stack and (not ours or stack[-1] is not ours[-1]):
        parts.append(f"in {stack[-1].name}")
    return " ".join(parts) or "unknown"
