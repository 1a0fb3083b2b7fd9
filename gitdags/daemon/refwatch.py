"""Sync at once when a local repository's branch moves: watchfiles on its refs.

A push to a local repository (bare or not) rewrites `refs/heads/<branch>` or `packed-refs`;
the watcher sets the trigger of every source that follows that repository's branch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from gitdags.config import SourceConfig

log = logging.getLogger(__name__)

# watchfiles yields the changes once `step` ms pass without another: a push's ref update is
# seen 1-2 steps after it lands. 20 ms cost the commit-to-served path 20-40 ms of its 50 ms
# target; 10 ms wakes the idle watch 100 times a second (a few microseconds each).
STEP_MS = 10


def git_dir(config: SourceConfig) -> Path | None:
    """The git directory of a local source, or None (remote, or not a repository yet)."""
    if not config.is_local:
        return None
    repo = Path(config.url)
    if (repo / ".git").is_dir():
        return repo / ".git"
    if (repo / "HEAD").is_file() and (repo / "refs").is_dir():
        return repo
    return None


class RefWatcher:
    def __init__(self, trigger: Callable[[str], bool]) -> None:
        self.trigger = trigger  # sync a source now (the daemon's; the watch never holds it)
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.watched: dict[Path, list[SourceConfig]] = {}

    def update(self, sources: Iterable[SourceConfig]) -> None:
        watched: dict[Path, list[SourceConfig]] = {}
        for config in sources:
            found = git_dir(config)
            if found is not None:
                watched.setdefault(found.resolve(), []).append(config)
        if watched.keys() == self.watched.keys():
            self.watched = watched
            return
        self.close()
        self.watched = watched
        if watched:
            self.stop = threading.Event()
            self.thread = threading.Thread(target=self._run, name="ref-watch", daemon=True)
            self.thread.start()

    def _matches(self, change_path: str, gitdir: Path, config: SourceConfig) -> bool:
        rel = Path(change_path).resolve().as_posix()
        base = gitdir.as_posix()
        return rel in (
            f"{base}/refs/heads/{config.branch}",
            f"{base}/packed-refs",
        ) or rel.startswith(f"{base}/refs/heads/{config.branch}.lock")

    def _run(self) -> None:
        import watchfiles

        def wanted(_change: object, path: str) -> bool:
            return "/refs/heads/" in path or path.endswith("packed-refs")

        try:
            for changes in watchfiles.watch(
                *self.watched,
                watch_filter=wanted,
                debounce=300,
                step=STEP_MS,
                stop_event=self.stop,
                raise_interrupt=False,
            ):
                for _kind, path in changes:
                    for gitdir, configs in self.watched.items():
                        for config in configs:
                            if self._matches(path, gitdir, config):
                                log.debug("ref moved", extra={"source": config.name})
                                self.trigger(config.name)
        except Exception:  # the interval still syncs; the watch is an accelerator
            log.exception("the ref watch stopped; syncing at intervals only")

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
            self.thread = None
