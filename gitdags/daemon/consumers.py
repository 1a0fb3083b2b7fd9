"""The daemon's poller of the consumers (`[[consumers]]`): after each change to what is served,
and on each consumer's interval otherwise, it asks what they have of each served DAG. After a
change it asks once the orchestrator has had a moment to parse (1.5 s: Airflow takes 0.1-2 s), and
while a DAG is pending again soon (doubling up to the interval): a landing is seen within a
second or two, for about one request per change."""

from __future__ import annotations

import logging
import threading

from gitdags.config import Settings
from gitdags.engine import SyncEngine, build_engine

log = logging.getLogger(__name__)
FIRST = 1.5  # seconds from a change to the first ask (asking at once never finds it parsed)


class ConsumerPoller(threading.Thread):
    def __init__(self, settings: Settings) -> None:
        super().__init__(name="gitdags-consumers", daemon=True)
        self.settings = settings
        self.changed = threading.Event()  # what is served changed: ask now
        self.halt = threading.Event()
        self.polls = 0

    def served_changed(self, *_args: object) -> None:
        """A listener of every engine: what is served changed."""
        self.changed.set()

    def update(self, settings: Settings) -> None:
        self.settings = settings  # the next poll builds its engine anew
        self.changed.set()

    def stop(self) -> None:
        self.halt.set()
        self.changed.set()

    def run(self) -> None:
        engine: SyncEngine | None = None
        settings = None
        soon = FIRST
        try:
            while not self.halt.is_set():
                if engine is None or settings is not self.settings:
                    if engine is not None:
                        engine.close()
                    settings = self.settings
                    engine = build_engine(settings)
                interval = min((c.interval for c in settings.consumers), default=30.0)
                self.changed.clear()
                pending = False
                try:
                    if engine.consumers is not None:
                        engine.consumers.poll()
                        pending = engine.consumers.pending()
                    self.polls += 1
                except Exception:  # never the end of the poller: said, then asked again
                    log.exception("cannot ask the consumers")
                wait = soon if pending else interval
                soon = min(soon * 2, interval) if pending else FIRST
                if self.changed.wait(wait):  # a change: asked after a moment, not at once
                    soon = FIRST * 2
                    self.halt.wait(FIRST)
        finally:
            if engine is not None:
                engine.close()
