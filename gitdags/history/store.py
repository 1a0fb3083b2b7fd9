"""The history store: the connection, its transactions, migrations and change counter.

`HistoryStore` is composed of one mixin per aggregate, which hold the SQL and the mapping of
rows to models: `dags` (DAGs and versions), `sources` (sources and syncs), `audit` (audit log,
hooks and their outbox), `files`; `rows` holds what they share.

Tables: `sources` (one reconcile record per source), `files` (every counted file of a source
at its synced commit, with its file-level issues), `file_dags` (the DAG ids each file defines,
and whether it owns them), `dags` (each DAG's state), `versions` (every version ever seen),
`syncs`, `audit`, `hooks`, `meta` (the change counter), `consumers` and `consumer_dags` (what
each orchestrator's API has of each served DAG), `zdicts` (the dictionaries versions are
packed with: `gitdags.history.packing`).

Writes happen inside `HistoryStore.transaction()` (BEGIN IMMEDIATE ... COMMIT), so a sync or an
operator action is one transaction: a crash leaves the database as before or after, never
between, and two writers are serialized by SQLite, never lost. Readers in other processes see
whole transactions only (WAL).

Migrations (`gitdags.history.migrations`) are numbered by `PRAGMA user_version`, each run in the
transaction that records its number.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gitdags.errors import StoreError, damaged
from gitdags.history.audit import AuditTables
from gitdags.history.consumers import ConsumerTables
from gitdags.history.dagpages import DagPages
from gitdags.history.dags import DagTables
from gitdags.history.files import FileRow, FileTables
from gitdags.history.migrations import MIGRATIONS, PACKED
from gitdags.history.rows import dumps, loads, now
from gitdags.history.sources import SourceTables

BUSY_TIMEOUT_MS = 30_000

# what other modules import from here
__all__ = ["MIGRATIONS", "FileRow", "HistoryStore", "_read_only", "dumps", "loads", "now"]


def _read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection. In a folder this process cannot write (a read-only mount, a
    reader without write permission), SQLite cannot make the WAL's shared-memory file: the
    database is then opened as immutable, which needs none (a writer elsewhere would not be
    seen until the next command)."""
    conn = sqlite3.connect(
        f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        if os.access(path.parent, os.W_OK):
            raise
        conn.close()
    return sqlite3.connect(
        f"file:{path}?mode=ro&immutable=1", uri=True, isolation_level=None, check_same_thread=False
    )


class HistoryStore(DagTables, DagPages, SourceTables, FileTables, AuditTables, ConsumerTables):
    """The state database. One instance per thread of work; writes are serialized."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._lock = threading.RLock()
        self.dictionaries = {}
        try:
            if readonly:
                if not path.exists():
                    raise StoreError(
                        f"Database {path} does not exist; "
                        "run `gitdags sync` or `gitdags demo` first."
                    )
                conn = _read_only(path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not readonly:
                _wal(conn)
                conn.execute("PRAGMA synchronous = NORMAL")
            self.conn = conn
            if not readonly:
                self._migrate()
            elif self.schema_version() < len(MIGRATIONS):
                HistoryStore(path).close()  # written by an older gitdags: migrate it once
        except sqlite3.DatabaseError as exc:
            if not readonly and path.parent.exists() and not os.access(path.parent, os.W_OK):
                raise StoreError(
                    f"The database folder {path.parent} is read-only ({exc}); this command "
                    "writes: run it as the user that owns the database, or make the folder "
                    "writable."
                ) from exc
            if "malformed" in str(exc) or "not a database" in str(exc):
                raise self._damaged(exc) from exc
            raise StoreError(f"Cannot open database {path}: {exc}; check the path.") from exc

    def close(self) -> None:
        self.conn.close()

    def _migrate(self) -> None:
        if self.schema_version() == len(MIGRATIONS):
            return
        with self.transaction():  # under the write lock: two processes never migrate twice
            version = self.schema_version()
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"Database {self.path} was written by a newer gitdags (schema {version}); "
                    "upgrade gitdags."
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                if callable(script):
                    script(self.conn)
                else:
                    for statement in script.split(";"):
                        if statement.strip():
                            self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {number}")
        if 0 < version < PACKED:  # versions were packed: give the freed pages back to the disk
            with contextlib.suppress(sqlite3.OperationalError):
                self.conn.execute("VACUUM")

    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; nested calls join the outer one."""
        with self._lock:
            if self.conn.in_transaction:
                yield
                return
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"The database {self.path} is busy or read-only: {exc}.") from exc
            try:
                yield
                self.conn.execute("COMMIT")
            except BaseException as exc:
                self._rollback()
                if type(exc) in (sqlite3.OperationalError, sqlite3.DatabaseError):
                    raise self._write_error(exc) from exc  # not a bug's IntegrityError
                raise

    def _rollback(self) -> None:
        """Undo the open transaction; SQLite may have undone it already (a full disk does),
        and that must not hide the error that made it."""
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    def _write_error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if "full" in text or "disk I/O" in text:
            return StoreError(
                f"Disk full or I/O error on {self.path} ({text}); nothing of this change was "
                "written: free space on its disk and retry."
            )
        if "malformed" in text or "not a database" in text:
            return self._damaged(exc)
        return StoreError(f"Cannot write {self.path}: {text}.")

    def _damaged(self, exc: sqlite3.Error) -> StoreError:
        return StoreError(damaged(self.path, exc))

    # -- the change counter ----------------------------------------------------------------------
    def generation(self) -> int:
        """Grows with every committed change; readers poll it to refresh cheaply."""
        row = self._one("SELECT value FROM meta WHERE key = 'generation'")
        return int(row[0]) if row else 0

    def meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0] if row else None

    def publish_targets(self) -> dict[str, dict[str, Any]]:
        """target -> what it last published (generation, commit, at) or its error."""
        rows = self._tuples("SELECT key, value FROM meta WHERE key LIKE 'publish:%' ORDER BY key")
        return {k[len("publish:") :]: json.loads(v) for k, v in rows}

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def bump(self) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('generation', 1) "
            "ON CONFLICT (key) DO UPDATE SET value = value + 1"
        )


def _wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL; the switch takes no busy timeout, so retry while another opens it."""
    for attempt in range(100):
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)
