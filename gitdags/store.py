"""The SQLite side: sources, files, DAGs, versions, syncs, the audit log; migrations; WAL.

Writes happen inside `HistoryStore.transaction()` (BEGIN IMMEDIATE ... COMMIT), so a sync or an
operator action is one transaction: a crash leaves the database as before or after, never
between, and two writers are serialized by SQLite, never lost. Readers in other processes
see whole transactions only (WAL).

sqlite-utils builds and migrates the schema (imported only when a migration runs: it costs
100 ms of start-up, numpy included, that `gitdags list` should not pay); queries and writes are
plain SQL, because sqlite-utils' write helpers commit on their own, which would split a sync.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitdags.errors import StoreError

if TYPE_CHECKING:
    import sqlite_utils

BUSY_TIMEOUT_MS = 30_000


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _v1(db: sqlite_utils.Database) -> None:
    db["sources"].create(
        {
            "name": str,
            "url": str,
            "branch": str,
            "fingerprint": str,
            "newest_commit": str,
            "served_commit": str,
            "last_sync_at": str,
            "last_error": str,
            "last_error_at": str,
            "failures": int,
            "pinned_commit": str,
            "pinned_at": str,
        },
        pk="name",
        not_null={"url", "branch"},
        defaults={"failures": 0},
    )
    db["files"].create(
        {"source": str, "path": str, "blob": str, "dag_id": str, "issues": str},
        pk=("source", "path"),
        not_null={"blob"},
        defaults={"issues": "[]"},
    )
    db["files"].create_index(["dag_id"])
    db["dags"].create(
        {
            "dag_id": str,
            "source": str,
            "path": str,
            "status": str,
            "served_version": int,
            "newest_version": int,
            "newest_valid": int,
            "enabled": int,
            "paused": int,
            "pinned": int,
            "pin_until_change": int,
            "deleted": int,
            "owner": str,
            "tags": str,
            "schedule": str,
            "depends_on_dags": str,
            "served_commit": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="dag_id",
        not_null={"source", "path", "status"},
        defaults={"paused": 0, "pinned": 0, "pin_until_change": 0, "deleted": 0},
    )
    db["dags"].create_index(["source", "path"])
    db["dags"].create_index(["status"])
    db["versions"].create(
        {
            "dag_id": str,
            "version": int,
            "source": str,
            "commit_sha": str,
            "author": str,
            "committed_at": str,
            "message": str,
            "path": str,
            "content_hash": str,
            "valid": int,
            "issues": str,
            "spec": str,
            "content": str,
            "recorded_at": str,
        },
        pk=("dag_id", "version"),
        not_null={"source", "commit_sha", "valid"},
    )
    db["versions"].create_index(["commit_sha"])
    db["syncs"].create(
        {
            "id": int,
            "source": str,
            "started_at": str,
            "from_commit": str,
            "to_commit": str,
            "added": int,
            "changed": int,
            "deleted": int,
            "invalid": int,
            "unchanged": int,
            "duration_ms": float,
            "forced": int,
            "error": str,
            "changes": str,
            "issues": str,
        },
        pk="id",
    )
    db["syncs"].create_index(["source", "id"])
    db["audit"].create(
        {
            "id": int,
            "at": str,
            "actor": str,
            "action": str,
            "dag_id": str,
            "source": str,
            "reason": str,
            "detail": str,
        },
        pk="id",
    )
    db["audit"].create_index(["dag_id", "id"])
    db["meta"].create({"key": str, "value": str}, pk="key")


def _v2(db: sqlite_utils.Database) -> None:
    """0.2: the state of each change hook, for `gitdags status`."""
    db["hooks"].create(
        {
            "name": str,
            "last_ok_at": str,
            "last_error": str,
            "last_error_at": str,
            "failures": int,
            "delivered": int,
        },
        pk="name",
        defaults={"failures": 0, "delivered": 0},
    )


# Each release appends migrations; PRAGMA user_version records how many have run.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2]


class HistoryStore:
    """The state database. One instance per thread of work; writes are serialized."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            if readonly:
                if not path.exists():
                    raise StoreError(
                        f"Database {path} does not exist; "
                        "run `gitdags sync` or `gitdags demo` first."
                    )
                conn = sqlite3.connect(
                    f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
                )
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not readonly:
                _wal(conn)
                conn.execute("PRAGMA synchronous = NORMAL")
            self.conn = conn
            if not readonly:
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"Cannot open database {path}: {exc}; check the path.") from exc

    def close(self) -> None:
        self.conn.close()

    def _migrate(self) -> None:
        if self._schema_version() == len(MIGRATIONS):
            return
        import sqlite_utils

        db = sqlite_utils.Database(self.conn)
        with self.transaction():  # under the write lock: two processes never migrate twice
            version = self._schema_version()
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"Database {self.path} was written by a newer gitdags (schema {version}); "
                    "upgrade gitdags."
                )
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(db)
                self.conn.execute(f"PRAGMA user_version = {number}")

    def _schema_version(self) -> int:
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
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            try:
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self.conn.execute("ROLLBACK")
                raise StoreError(f"Cannot write {self.path}: {exc}; check disk space.") from exc

    # -- generic access --------------------------------------------------------------------------
    def rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor]

    def row(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def rows_in(self, sql: str, values: Iterable[Any], *params: Any) -> list[dict[str, Any]]:
        """Rows for `... IN ({marks})` over many values, in chunks SQLite accepts."""
        ordered = list(values)
        found: list[dict[str, Any]] = []
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            found += self.rows(sql.format(marks=",".join("?" * len(chunk))), [*params, *chunk])
        return found

    def scalar(self, sql: str, params: Any = ()) -> Any:
        found = self.conn.execute(sql, params).fetchone()
        return found[0] if found else None

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def upsert(self, table: str, record: dict[str, Any], pk: tuple[str, ...]) -> None:
        columns = ", ".join(record)
        marks = ", ".join(f":{c}" for c in record)
        updates = ", ".join(f"{c} = excluded.{c}" for c in record if c not in pk)
        conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        self.conn.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({marks}) "
            f"ON CONFLICT ({', '.join(pk)}) {conflict}",
            record,
        )

    def upsert_many(self, table: str, records: list[dict[str, Any]], pk: tuple[str, ...]) -> None:
        """One prepared statement for many rows with the same columns."""
        if not records:
            return
        columns = list(records[0])
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in pk)
        self.conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join(':' + c for c in columns)}) "
            f"ON CONFLICT ({', '.join(pk)}) DO UPDATE SET {updates}",
            records,
        )

    def insert_many(self, table: str, records: list[dict[str, Any]]) -> None:
        if records:
            columns = list(records[0])
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join(':' + c for c in columns)})",
                records,
            )

    def insert(self, table: str, record: dict[str, Any]) -> int:
        columns = ", ".join(record)
        marks = ", ".join(f":{c}" for c in record)
        cur = self.conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", record)
        return int(cur.lastrowid or 0)

    def update(self, table: str, key: dict[str, Any], values: dict[str, Any]) -> None:
        sets = ", ".join(f"{c} = :{c}" for c in values)
        where = " AND ".join(f"{c} = :k_{c}" for c in key)
        params = {**values, **{f"k_{c}": v for c, v in key.items()}}
        self.conn.execute(f"UPDATE {table} SET {sets} WHERE {where}", params)

    # -- the change counter ----------------------------------------------------------------------
    def generation(self) -> int:
        """Grows with every committed change; readers poll it to refresh cheaply."""
        value = self.scalar("SELECT value FROM meta WHERE key = 'generation'")
        return int(value or 0)

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


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def loads(value: str | None) -> Any:
    return json.loads(value) if value else None
