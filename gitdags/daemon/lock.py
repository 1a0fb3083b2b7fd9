"""The daemon's lock: one daemon per database, an exclusive lock on `<database>.lock`."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from gitdags.errors import GitdagsError


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
