"""The mirror's lock (one writer at a time, across processes) and git's stale lock files."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitdags.errors import SourceError

log = logging.getLogger(__name__)

LOCK_PATIENCE = 1.0  # seconds of waiting for a mirror's lock before the wait is logged
# git's words for a lock file that is in its way
_LOCK_IN_THE_WAY = re.compile(r"Unable to create '([^']+\.lock)': File exists")


@contextmanager
def mirror_lock(mirror: Path, source: str, deadline: float | None) -> Iterator[None]:
    """Hold the mirror's lock (one writer of a mirror at a time, across processes): wait
    for it until the sync's deadline, saying who holds it, then fail in one sentence."""
    mirror.parent.mkdir(parents=True, exist_ok=True)
    path = Path(f"{mirror}.lock")
    with open(path, "a+") as lock:
        said = False
        waited = time.monotonic()
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            if not said and time.monotonic() - waited >= LOCK_PATIENCE:
                log.warning(
                    "waiting for the mirror lock",
                    extra={"source": source, "lock": str(path), "holder": holder},
                )
                said = True
            if deadline is not None and time.monotonic() >= deadline:
                raise SourceError(
                    f"Source {source!r}: the mirror lock {path} is held by "
                    f"process {holder} (another gitdags sync of this mirror) past the "
                    "sync's deadline; stop that process or raise [daemon] sync_timeout."
                )
            time.sleep(0.05)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield


def clear_stale_locks(mirror: Path, source: str, stderr: str) -> bool:
    """Remove the lock files git names as in the way ("Unable to create '...lock': File
    exists") when no process works in the mirror: a git killed with SIGKILL (by a
    service manager stopping the daemon's group, or by the sync's own deadline) leaves
    them, and every later fetch would fail until someone deletes them. True if any went."""
    root = mirror.resolve()
    stale = []
    for named in _LOCK_IN_THE_WAY.findall(stderr):
        path = Path(named)
        path = path if path.is_absolute() else root / path
        if path.name.endswith(".lock") and path.resolve().is_relative_to(root):
            stale.append(path)
    if not stale or working_in(root):
        return False
    for path in stale:
        log.warning(
            "removing a stale git lock (left by a killed git)",
            extra={"source": source, "lock": str(path)},
        )
        path.unlink(missing_ok=True)
    return True


def working_in(folder: Path) -> bool:
    """Whether a process of this machine has its working directory in `folder` (every git
    command working on a mirror has: `git -C`); without /proc, assume one has."""
    proc = Path("/proc")
    if not (proc / "self" / "cwd").exists():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # gone, or not ours to read
            continue
        if cwd == folder or cwd.is_relative_to(folder):
            return True
    return False
