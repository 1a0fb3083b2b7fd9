"""The history layer: every SQL statement of gitdags, and the mapping of rows to models.

Tables: `sources` (one reconcile record per source), `files` (every counted file of a source
at its synced commit, with its file-level issues), `file_dags` (the DAG ids each file defines,
and whether it owns them), `dags` (each DAG's state), `versions` (every version ever seen),
`syncs`, `audit`, `hooks`, `meta` (the change counter).

Writes happen inside `HistoryStore.transaction()` (BEGIN IMMEDIATE ... COMMIT), so a sync or an
operator action is one transaction: a crash leaves the database as before or after, never
between, and two writers are serialized by SQLite, never lost. Readers in other processes see
whole transactions only (WAL).

Migrations (`gitdags.history.migrations`) are plain SQL, numbered by `PRAGMA user_version`, each run
in the transaction that records its number.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitdags.errors import StoreError, damaged
from gitdags.history.migrations import MIGRATIONS
from gitdags.model import (
    AuditEntry,
    Commit,
    DagChange,
    DagFile,
    DagRow,
    DagState,
    HookState,
    Issue,
    ServedDag,
    SourceRecord,
    SyncResult,
    Version,
)

BUSY_TIMEOUT_MS = 30_000
CHUNK = 500  # values per `IN (...)`: well under SQLite's limit on parameters


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def loads(value: str | None) -> Any:
    return json.loads(value) if value else None


_DAG_COLUMNS = (
    "dag_id",
    "source",
    "path",
    "status",
    "served_version",
    "newest_version",
    "newest_valid",
    "enabled",
    "paused",
    "pinned",
    "pin_until_change",
    "deleted",
    "owner",
    "tags",
    "schedule",
    "depends_on_dags",
    "served_commit",
    "created_at",
    "updated_at",
)
_SAVE_DAG = (
    f"INSERT INTO dags ({', '.join(_DAG_COLUMNS)}) VALUES ({', '.join('?' * len(_DAG_COLUMNS))}) "
    "ON CONFLICT (dag_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _DAG_COLUMNS[1:])
)
_SERVED = (
    "SELECT d.dag_id, d.source, d.path, d.status, d.served_version, d.served_commit, v.spec "
    "FROM dags d JOIN versions v ON v.dag_id = d.dag_id AND v.version = d.served_version "
    "WHERE d.deleted = 0 AND d.paused = 0 AND d.enabled = 1"
)
CROSS_CODES = ("GD301", "GD302", "GD303")  # issues that another file can cause, or mend


_DAG_SELECT = ", ".join(f"d.{c}" for c in _DAG_COLUMNS)


def _ids(value: str | None) -> tuple[str, ...]:
    return () if not value or value == "[]" else tuple(json.loads(value))


def _dag_row(r: Sequence[Any]) -> DagRow:
    """A row of `SELECT {_DAG_SELECT}` (the columns of _DAG_COLUMNS, in order)."""
    (
        dag_id,
        source,
        path,
        _status,
        served_version,
        newest_version,
        newest_valid,
        enabled,
        paused,
        pinned,
        pin_until_change,
        deleted,
        owner,
        tags,
        schedule,
        depends_on_dags,
        served_commit,
        created_at,
        updated_at,
    ) = r[: len(_DAG_COLUMNS)]
    return DagRow(
        dag_id=dag_id,
        source=source,
        path=path,
        served_version=served_version,
        newest_version=newest_version,
        newest_valid=bool(newest_valid),
        enabled=enabled is None or bool(enabled),
        paused=bool(paused),
        pinned=bool(pinned),
        pin_until_change=bool(pin_until_change),
        deleted=bool(deleted),
        owner=owner,
        tags=_ids(tags),
        schedule=schedule,
        depends_on_dags=_ids(depends_on_dags),
        served_commit=served_commit,
        created_at=created_at or "",
        updated_at=updated_at or "",
    )


def _dag_state(r: Sequence[Any]) -> DagState:
    """A row of `_DAG_STATE_SQL`: the read model of listings, without a DagRow in between."""
    dag_id, source, path, status, paused, pinned, until, served, newest, commit, owner = r[:11]
    return DagState(
        dag_id=dag_id,
        source=source,
        path=path,
        status=status,
        paused=bool(paused),
        pinned=bool(pinned),
        pin_until_change=bool(until),
        served_version=served,
        newest_version=newest,
        served_commit=commit,
        owner=owner,
        tags=_ids(r[11]),
        schedule=r[12],
        updated_at=r[13] or "",
    )


_DAG_STATE_SQL = (
    "SELECT dag_id, source, path, status, paused, pinned, pin_until_change, served_version, "
    "newest_version, served_commit, owner, tags, schedule, updated_at FROM dags"
)


def _where(**equal: str | bool | None) -> tuple[str, list[Any]]:
    """` WHERE a = ? AND b = ?` for the arguments given (None: any)."""
    where, params = [], []
    for column, value in equal.items():
        if value is not None:
            where.append(f"{column} = ?")
            params.append(int(value) if isinstance(value, bool) else value)
    return (" WHERE " + " AND ".join(where) if where else ""), params


def _dag_values(d: DagRow) -> tuple[Any, ...]:
    return (
        d.dag_id,
        d.source,
        d.path,
        d.status,
        d.served_version,
        d.newest_version,
        int(d.newest_valid),
        int(d.enabled),
        int(d.paused),
        int(d.pinned),
        int(d.pin_until_change),
        int(d.deleted),
        d.owner,
        dumps(list(d.tags)),
        d.schedule,
        dumps(list(d.depends_on_dags)),
        d.served_commit,
        d.created_at,
        d.updated_at,
    )


def _issues(value: str | None) -> tuple[Issue, ...]:
    return tuple(Issue.from_dict(i) for i in loads(value) or ())


def _version(r: sqlite3.Row, dag: DagRow | None) -> Version:
    served = dag is not None and r["version"] == dag.served_version and not dag.deleted
    return Version(
        dag_id=r["dag_id"],
        version=r["version"],
        source=r["source"],
        commit=r["commit_sha"],
        author=r["author"] or "",
        committed_at=r["committed_at"] or "",
        message=r["message"] or "",
        path=r["path"],
        content_hash=r["content_hash"],
        valid=bool(r["valid"]),
        served=served,
        issues=_issues(r["issues"]),
        spec=loads(r["spec"]),
        content=r["content"] or "",
        recorded_at=r["recorded_at"] or "",
        blob=r["blob"],
    )


def _source(r: sqlite3.Row) -> SourceRecord:
    return SourceRecord(**{k: r[k] for k in r.keys()})  # noqa: SIM118 - sqlite3.Row


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


class HistoryStore:
    """The state database. One instance per thread of work; writes are serialized."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._lock = threading.RLock()
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
                for statement in script.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {number}")

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

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def _tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows as plain tuples: for the hot paths that read thousands of rows."""
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return cursor.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def _all_in(self, sql: str, values: Iterable[Any], *params: Any) -> list[sqlite3.Row]:
        """Rows for `... IN ({marks})` over many values, in chunks SQLite accepts."""
        ordered = list(values)
        found: list[sqlite3.Row] = []
        for start in range(0, len(ordered), CHUNK):
            chunk = ordered[start : start + CHUNK]
            found += self._all(sql.format(marks=",".join("?" * len(chunk))), [*params, *chunk])
        return found

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

    # -- sources: the reconcile record -----------------------------------------------------------
    def source_record(self, name: str) -> SourceRecord | None:
        row = self._one("SELECT * FROM sources WHERE name = ?", (name,))
        return _source(row) if row else None

    def source_records(self) -> dict[str, SourceRecord]:
        return {r["name"]: _source(r) for r in self._all("SELECT * FROM sources ORDER BY name")}

    def record_synced(
        self, name: str, url: str, branch: str, fingerprint: str, commit: str
    ) -> None:
        """A successful sync: the commit is fetched, attempted and served."""
        at = now()
        self.conn.execute(
            "INSERT INTO sources (name, url, branch, fingerprint, newest_commit, served_commit, "
            "last_sync_at, last_attempt_at, last_error, last_error_at, failures) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, 0) ON CONFLICT (name) DO UPDATE SET "
            "url = excluded.url, branch = excluded.branch, fingerprint = excluded.fingerprint, "
            "newest_commit = excluded.newest_commit, served_commit = excluded.served_commit, "
            "last_sync_at = excluded.last_sync_at, last_attempt_at = excluded.last_attempt_at, "
            "last_error = NULL, last_error_at = NULL, failures = 0",
            (name, url, branch, fingerprint, commit, commit, at, at),
        )

    def record_failed(
        self, name: str, url: str, branch: str, newest: str | None, message: str
    ) -> SourceRecord:
        """A failed sync: the commit it attempted (if the fetch got one), the error, one more
        failure in a row. The served commit stays."""
        at = now()
        self.conn.execute(
            "INSERT INTO sources (name, url, branch, newest_commit, last_attempt_at, last_error, "
            "last_error_at, failures) VALUES (?, ?, ?, ?, ?, ?, ?, 1) "
            "ON CONFLICT (name) DO UPDATE SET url = excluded.url, branch = excluded.branch, "
            "newest_commit = COALESCE(excluded.newest_commit, newest_commit), "
            "last_attempt_at = excluded.last_attempt_at, last_error = excluded.last_error, "
            "last_error_at = CASE WHEN last_error IS NULL THEN excluded.last_error_at "
            "ELSE last_error_at END, failures = failures + 1",
            (name, url, branch, newest, at, message, at),
        )
        record = self.source_record(name)
        assert record is not None
        return record

    def set_source_pin(self, name: str, commit: str | None) -> None:
        self.conn.execute(
            "UPDATE sources SET pinned_commit = ?, pinned_at = ? WHERE name = ?",
            (commit, now() if commit else None, name),
        )

    # -- files -----------------------------------------------------------------------------------
    def file_blobs(self, source: str) -> dict[str, str]:
        rows = self._all("SELECT path, blob FROM files WHERE source = ?", (source,))
        return {r["path"]: r["blob"] for r in rows}

    def defaults_files(self, source: str) -> dict[str, str]:
        """path -> blob of the source's dag-factory defaults files (read or not)."""
        rows = self._all(
            "SELECT path, blob FROM files WHERE source = ? AND (path LIKE '%defaults.yml' "
            "OR path LIKE '%defaults.yaml')",
            (source,),
        )
        names = ("defaults.yml", "defaults.yaml")
        return {r["path"]: r["blob"] for r in rows if r["path"].rsplit("/", 1)[-1] in names}

    def files_of_kind(self, source: str, kind: str) -> dict[str, str]:
        """path -> blob of the source's files of one definition kind."""
        rows = self._all(
            "SELECT path, blob FROM files WHERE source = ? AND kind = ?", (source, kind)
        )
        return {r["path"]: r["blob"] for r in rows}

    def file_kinds(self, source: str) -> dict[str, str]:
        """path -> definition kind of each file the source counts."""
        rows = self._all("SELECT path, kind FROM files WHERE source = ?", (source,))
        return {r["path"]: r["kind"] for r in rows}

    def python_files(self, source: str) -> dict[str, str]:
        """path -> blob of the source's Python files and .airflowignore files."""
        rows = self._all(
            "SELECT path, blob FROM files WHERE source = ? AND kind IN ('airflow', 'module', "
            "'ignore')",
            (source,),
        )
        return {r["path"]: r["blob"] for r in rows}

    def served_blobs(self, source: str, paths: Iterable[str]) -> dict[str, str]:
        """path -> the blob served for each of these files (those that have one)."""
        rows = self._all_in(
            "SELECT path, served_blob FROM files WHERE source = ? AND served_blob IS NOT NULL "
            "AND path IN ({marks})",
            sorted(set(paths)),
            source,
        )
        return {r["path"]: r["served_blob"] for r in rows}

    def python_imports(self, source: str) -> dict[str, tuple[str, ...]]:
        """path -> the modules each Python file of the source imports."""
        rows = self._all(
            "SELECT path, imports FROM files WHERE source = ? AND kind IN ('airflow', 'module')",
            (source,),
        )
        return {r["path"]: tuple(loads(r["imports"]) or ()) for r in rows}

    def save_files(
        self, source: str, files: list[FileRow], defines: list[tuple[str, str, bool]]
    ) -> None:
        """One row per file read; (path, dag_id, claimed) per DAG each defines. A file's
        served blob moves only when `served` is set (its new blob is good)."""
        paths = [(source, f.path) for f in files]
        self.conn.executemany("DELETE FROM file_dags WHERE source = ? AND path = ?", paths)
        self.conn.executemany(
            "INSERT INTO files (source, path, blob, kind, issues, imports, served_blob, recheck) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT (source, path) DO UPDATE SET "
            "blob = excluded.blob, kind = excluded.kind, issues = excluded.issues, "
            "imports = excluded.imports, recheck = 0, "
            "served_blob = COALESCE(excluded.served_blob, served_blob)",
            [
                (
                    source,
                    f.path,
                    f.blob,
                    f.kind,
                    dumps([i.to_dict() for i in f.issues]),
                    dumps(list(f.imports)),
                    f.blob if f.good else None,
                )
                for f in files
            ],
        )
        self.conn.executemany(
            "INSERT INTO file_dags (source, path, dag_id, claimed) VALUES (?, ?, ?, ?)",
            [(source, p, d, int(c)) for p, d, c in defines],
        )

    def delete_files(self, source: str, paths: Iterable[str]) -> None:
        pairs = [(source, p) for p in paths]
        self.conn.executemany("DELETE FROM files WHERE source = ? AND path = ?", pairs)
        self.conn.executemany("DELETE FROM file_dags WHERE source = ? AND path = ?", pairs)

    # -- hook deliveries (the outbox) ------------------------------------------------------------
    def queue_delivery(self, body: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO outbox (body, created_at) VALUES (?, ?)", (json.dumps(body), now())
        )

    def pending_deliveries(self) -> list[tuple[int, dict[str, Any]]]:
        rows = self._tuples("SELECT id, body FROM outbox ORDER BY id")
        return [(int(i), json.loads(b)) for i, b in rows]

    def delivered(self, delivery: int) -> None:
        self.conn.execute("DELETE FROM outbox WHERE id = ?", (delivery,))

    def served_without_version(self) -> list[str]:
        """DAGs whose served version is missing or invalid (the doctor's check)."""
        rows = self._tuples(
            "SELECT d.dag_id FROM dags d LEFT JOIN versions v ON v.dag_id = d.dag_id "
            "AND v.version = d.served_version WHERE d.served_version IS NOT NULL "
            "AND d.deleted = 0 AND (v.dag_id IS NULL OR v.valid = 0) ORDER BY d.dag_id"
        )
        return [r[0] for r in rows]

    def forget_source(self, source: str) -> None:
        """A source pruned from the config: its files and reconcile record go; its DAGs'
        rows and versions, its syncs and the audit stay (history is kept)."""
        self.conn.execute("DELETE FROM files WHERE source = ?", (source,))
        self.conn.execute("DELETE FROM file_dags WHERE source = ?", (source,))
        self.conn.execute("DELETE FROM sources WHERE name = ?", (source,))

    def file_defines(self, source: str, path: str, dag_id: str) -> bool:
        """Whether the file (still) defines this DAG."""
        row = self._one(
            "SELECT 1 FROM file_dags WHERE source = ? AND path = ? AND dag_id = ?",
            (source, path, dag_id),
        )
        return row is not None

    def defined_ids(self, source: str, paths: Iterable[str]) -> set[str]:
        """The DAG ids these files of the source define, owned or refused."""
        rows = self._all_in(
            "SELECT dag_id FROM file_dags WHERE source = ? AND path IN ({marks})",
            sorted(set(paths)),
            source,
        )
        return {r["dag_id"] for r in rows}

    def waiting_files(self, source: str, dag_ids: Iterable[str]) -> dict[str, str]:
        """path -> blob of this source's files refused a DAG id of `dag_ids` (a duplicate)."""
        rows = self._all_in(
            "SELECT f.path, f.blob FROM file_dags d JOIN files f "
            "ON f.source = d.source AND f.path = d.path "  # +: look up by dag_id, not source
            "WHERE +d.source = ? AND d.claimed = 0 AND d.dag_id IN ({marks})",
            sorted(set(dag_ids)),
            source,
        )
        return {r["path"]: r["blob"] for r in rows}

    def dependent_files(self, source: str, dag_ids: Iterable[str]) -> dict[str, str]:
        """path -> blob of this source's files whose DAGs name one of `dag_ids` in
        depends_on_dags, or whose newest version is invalid for a cross-file reason only."""
        ids = sorted(set(dag_ids))
        paths = {
            r["path"]
            for r in self._all_in(
                "SELECT path FROM dags d WHERE source = ? AND deleted = 0 "
                "AND depends_on_dags != '[]' AND EXISTS (SELECT 1 FROM "
                "json_each(d.depends_on_dags) j WHERE j.value IN ({marks}))",
                ids,
                source,
            )
        }
        for r in self._all(
            "SELECT d.path, v.issues FROM dags d JOIN versions v "
            "ON v.dag_id = d.dag_id AND v.version = d.newest_version "
            "WHERE d.source = ? AND d.deleted = 0 AND d.newest_valid = 0",
            (source,),
        ):
            errors = {i.code for i in _issues(r["issues"]) if i.severity == "error"}
            if errors and errors <= set(CROSS_CODES):
                paths.add(r["path"])
        if not paths:
            return {}
        rows = self._all_in(
            "SELECT path, blob FROM files WHERE source = ? AND path IN ({marks})",
            sorted(paths),
            source,
        )
        return {r["path"]: r["blob"] for r in rows}

    def rechecks(self, source: str) -> dict[str, str]:
        """path -> blob of the files another source's sync asked this one to check again."""
        rows = self._all("SELECT path, blob FROM files WHERE source = ? AND recheck = 1", (source,))
        return {r["path"]: r["blob"] for r in rows}

    def ask_recheck(self, dag_ids: Iterable[str], *, besides: str) -> int:
        """Ask the other sources to check again their files that wait for (a duplicate) or
        depend on these DAG ids, at their next sync. Returns how many files were marked."""
        ids = sorted(set(dag_ids))
        pairs: set[tuple[str, str]] = set()
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            for r in self._all(
                f"SELECT source, path FROM file_dags WHERE claimed = 0 AND dag_id IN ({marks}) "
                "AND +source != ? UNION SELECT source, path FROM dags d WHERE source != ? "
                "AND deleted = 0 AND depends_on_dags != '[]' AND EXISTS (SELECT 1 FROM "
                f"json_each(d.depends_on_dags) j WHERE j.value IN ({marks}))",
                [*chunk, besides, besides, *chunk],
            ):
                pairs.add((r["source"], r["path"]))
        self.conn.executemany(
            "UPDATE files SET recheck = 1 WHERE source = ? AND path = ?", sorted(pairs)
        )
        return len(pairs)

    def file_error_counts(self) -> dict[str, int]:
        """Per source, the files with a file-level error (not readable, not DAG definitions)."""
        rows = self._all(
            "SELECT source, count(*) AS n FROM files WHERE issues != '[]' AND EXISTS "
            "(SELECT 1 FROM json_each(files.issues) WHERE json_extract(value, '$.severity') "
            "= 'error') GROUP BY source"
        )
        return {r["source"]: r["n"] for r in rows}

    # -- DAGs ------------------------------------------------------------------------------------
    def dag(self, dag_id: str) -> DagRow | None:
        row = self._tuples(f"SELECT {_DAG_SELECT} FROM dags d WHERE dag_id = ?", (dag_id,))
        return _dag_row(row[0]) if row else None

    def dags(
        self, *, source: str | None = None, status: str | None = None, pinned: bool | None = None
    ) -> list[DagRow]:
        where, params = _where(source=source, status=status, pinned=pinned)
        rows = self._tuples(f"SELECT {_DAG_SELECT} FROM dags d{where} ORDER BY dag_id", params)
        return [_dag_row(r) for r in rows]

    def dag_states(self, *, source: str | None = None, status: str | None = None) -> list[DagState]:
        """The DAGs as listings show them."""
        where, params = _where(source=source, status=status)
        rows = self._tuples(f"{_DAG_STATE_SQL}{where} ORDER BY dag_id", params)
        return [_dag_state(r) for r in rows]

    def dags_with_newest(self, dag_ids: Iterable[str]) -> dict[str, tuple[DagRow, str, bool]]:
        """These DAGs' rows with the content hash and validity of their newest version."""
        ordered = list(dag_ids)
        found: dict[str, tuple[DagRow, str, bool]] = {}
        for start in range(0, len(ordered), CHUNK):
            chunk = ordered[start : start + CHUNK]
            for r in self._tuples(
                f"SELECT {_DAG_SELECT}, v.content_hash, v.valid FROM dags d LEFT JOIN versions v "
                "ON v.dag_id = d.dag_id AND v.version = d.newest_version "
                f"WHERE d.dag_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                found[r[0]] = (_dag_row(r), r[-2], bool(r[-1]))
        return found

    def held_dags(self, source: str, paths: Iterable[str]) -> dict[str, list[str]]:
        """path -> the live DAGs of this source that the file at path holds."""
        held: dict[str, list[str]] = {}
        for r in self._all_in(
            "SELECT dag_id, path FROM dags WHERE source = ? AND deleted = 0 AND path IN ({marks})",
            sorted(set(paths)),
            source,
        ):
            held.setdefault(r["path"], []).append(r["dag_id"])
        return held

    def owners(self, dag_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """dag_id -> (source, path) of each live DAG among `dag_ids`."""
        rows = self._all_in(
            "SELECT dag_id, source, path FROM dags WHERE deleted = 0 AND dag_id IN ({marks})",
            dag_ids,
        )
        return {r["dag_id"]: (r["source"], r["path"]) for r in rows}

    def depends_on(self, dag_id: str) -> list[str]:
        row = self._one(
            "SELECT depends_on_dags FROM dags WHERE dag_id = ? AND deleted = 0", (dag_id,)
        )
        return (loads(row[0]) or []) if row else []

    def live_count(self, source: str) -> int:
        row = self._one("SELECT count(*) FROM dags WHERE source = ? AND deleted = 0", (source,))
        return int(row[0]) if row else 0

    def save_dags(self, dags: Iterable[DagRow], *, at: str | None = None) -> None:
        stamp = at or now()
        rows = []
        for dag in dags:
            dag.updated_at = stamp
            dag.created_at = dag.created_at or stamp
            rows.append(_dag_values(dag))
        self.conn.executemany(_SAVE_DAG, rows)

    def dag_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for r in self._all(
            "SELECT source, status, count(*) AS n FROM dags GROUP BY source, status"
        ):
            counts.setdefault(r["source"], {})[r["status"]] = r["n"]
        return counts

    # -- versions --------------------------------------------------------------------------------
    def version(self, dag: DagRow, number: int) -> Version | None:
        row = self._one(
            "SELECT * FROM versions WHERE dag_id = ? AND version = ?", (dag.dag_id, number)
        )
        return _version(row, dag) if row else None

    def versions(self, dag: DagRow) -> list[Version]:
        rows = self._all(
            "SELECT * FROM versions WHERE dag_id = ? ORDER BY version DESC", (dag.dag_id,)
        )
        return [_version(r, dag) for r in rows]

    def newest_valid(self, dag: DagRow, below: int | None = None) -> Version | None:
        row = self._one(
            "SELECT * FROM versions WHERE dag_id = ? AND valid = 1 AND version < ? "
            "ORDER BY version DESC LIMIT 1",
            (dag.dag_id, below if below is not None else 1 << 62),
        )
        return _version(row, dag) if row else None

    def version_with_blob(self, dag: DagRow, blob: str) -> Version | None:
        """The newest valid version of a DAG made from this blob of its file."""
        row = self._one(
            "SELECT * FROM versions WHERE dag_id = ? AND blob = ? AND valid = 1 "
            "ORDER BY version DESC LIMIT 1",
            (dag.dag_id, blob),
        )
        return _version(row, dag) if row else None

    def file_mates(self, dag: DagRow) -> list[DagRow]:
        """The other live DAGs that the file of this DAG defines."""
        rows = self._tuples(
            f"SELECT {_DAG_SELECT} FROM dags d WHERE source = ? AND path = ? AND dag_id != ? "
            "AND deleted = 0 ORDER BY dag_id",
            (dag.source, dag.path, dag.dag_id),
        )
        return [_dag_row(r) for r in rows]

    def insert_versions(
        self,
        source: str,
        items: list[tuple[str, int, Commit, DagFile, str | None]],
        recorded_at: str,
    ) -> None:
        """One new version per (dag_id, number, commit that made it, the DAG as found, its
        file's blob)."""
        self.conn.executemany(
            "INSERT INTO versions (dag_id, version, source, commit_sha, author, committed_at, "
            "message, path, content_hash, valid, issues, spec, content, recorded_at, blob) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    dag_id,
                    number,
                    source,
                    commit.sha,
                    commit.author,
                    commit.committed_at,
                    commit.message,
                    f.path,
                    f.content_hash,
                    int(f.valid),
                    dumps([i.to_dict() for i in f.issues]),
                    f.spec_json or (dumps(f.spec) if f.spec is not None else None),
                    f.content,
                    recorded_at,
                    blob,
                )
                for dag_id, number, commit, f, blob in items
            ],
        )

    def served(self, dag_id: str | None = None) -> list[ServedDag]:
        """The served set: valid, enabled, unpaused, not deleted; each with its spec."""
        sql, params = _SERVED, ()
        if dag_id is not None:
            sql, params = sql + " AND d.dag_id = ?", (dag_id,)
        return [
            ServedDag(
                dag_id=r["dag_id"],
                source=r["source"],
                path=r["path"],
                status=r["status"],
                version=r["served_version"],
                commit=r["served_commit"],
                spec=loads(r["spec"]),
            )
            for r in self._all(sql + " ORDER BY d.dag_id", params)
        ]

    def served_files(self) -> list[tuple[str, str, str]]:
        """(source, path, blob) of each Python file served as a file: the blob of the served
        version of the DAGs of each DAG file (a pin or rollback holds the whole file), and
        each helper module's last good blob."""
        rows = self._tuples(
            "SELECT d.source, v.path, min(v.blob) FROM dags d JOIN versions v "
            "ON v.dag_id = d.dag_id AND v.version = d.served_version "
            "WHERE d.deleted = 0 AND d.paused = 0 AND d.enabled = 1 AND v.blob IS NOT NULL "
            "AND v.path LIKE '%.py' GROUP BY d.source, v.path"
        )
        dag_files = {(source, path) for source, path, _blob in rows}
        rows += [  # a path once: a DAG file's served version wins over a module's row
            row
            for row in self._tuples(
                "SELECT source, path, served_blob FROM files "
                "WHERE kind = 'module' AND served_blob IS NOT NULL"
            )
            if (row[0], row[1]) not in dag_files
        ]
        return sorted(rows)

    # -- syncs -----------------------------------------------------------------------------------
    def insert_sync(self, result: SyncResult) -> None:
        self.conn.execute(
            "INSERT INTO syncs (source, started_at, from_commit, to_commit, added, changed, "
            "deleted, invalid, unchanged, duration_ms, forced, error, changes, issues, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                result.source,
                result.started_at,
                result.from_commit,
                result.to_commit,
                result.added,
                result.changed,
                result.deleted,
                result.invalid,
                result.unchanged,
                round(result.duration_ms, 1),
                int(result.forced),
                result.error,
                dumps([c.to_dict() for c in result.changes]),
                dumps([i.to_dict() for i in result.issues]),
                result.note or None,
            ),
        )

    def syncs(self, *, source: str | None = None, limit: int = 50) -> list[SyncResult]:
        where, params = _where(source=source or None)
        rows = self._all(f"SELECT * FROM syncs{where} ORDER BY id DESC LIMIT ?", [*params, limit])
        return [
            SyncResult(
                source=r["source"],
                from_commit=r["from_commit"],
                to_commit=r["to_commit"],
                added=r["added"],
                changed=r["changed"],
                deleted=r["deleted"],
                invalid=r["invalid"],
                unchanged=r["unchanged"],
                duration_ms=r["duration_ms"],
                forced=bool(r["forced"]),
                error=r["error"],
                started_at=r["started_at"],
                changes=tuple(DagChange(**c) for c in loads(r["changes"]) or []),
                issues=_issues(r["issues"]),
                note=r["note"] or "",
            )
            for r in rows
        ]

    # -- the audit log ---------------------------------------------------------------------------
    def insert_audit(
        self,
        action: str,
        *,
        actor: str,
        dag_id: str | None = None,
        source: str | None = None,
        reason: str = "",
        detail: dict[str, Any] | None = None,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO audit (at, actor, action, dag_id, source, reason, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (now(), actor, action, dag_id, source, reason or "", dumps(detail or {})),
        )
        return int(cur.lastrowid or 0)

    def last_audit_detail(self, action: str, source: str) -> dict[str, Any]:
        """The detail of the newest audit entry of `action` on `source` ({} when none)."""
        row = self.conn.execute(
            "SELECT detail FROM audit WHERE action = ? AND source = ? ORDER BY id DESC LIMIT 1",
            (action, source),
        ).fetchone()
        return (loads(row["detail"]) or {}) if row else {}

    def audit(self, dag_id: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        where, params = _where(dag_id=dag_id or None)
        rows = self._all(f"SELECT * FROM audit{where} ORDER BY id DESC LIMIT ?", [*params, limit])
        return [
            AuditEntry(
                id=r["id"],
                at=r["at"],
                actor=r["actor"],
                action=r["action"],
                dag_id=r["dag_id"],
                source=r["source"],
                reason=r["reason"] or "",
                detail=loads(r["detail"]) or {},
            )
            for r in rows
        ]

    # -- hooks -----------------------------------------------------------------------------------
    def hooks(self) -> tuple[HookState, ...]:
        return tuple(
            HookState(
                name=r["name"],
                last_ok_at=r["last_ok_at"],
                last_error=r["last_error"],
                last_error_at=r["last_error_at"],
                failures=r["failures"] or 0,
                delivered=r["delivered"] or 0,
            )
            for r in self._all("SELECT * FROM hooks ORDER BY name")
        )

    def record_hook(self, name: str, error: str | None) -> None:
        at = now()
        if error is None:
            self.conn.execute(
                "INSERT INTO hooks (name, last_ok_at, failures, delivered) VALUES (?, ?, 0, 1) "
                "ON CONFLICT (name) DO UPDATE SET last_ok_at = excluded.last_ok_at, "
                "last_error = NULL, last_error_at = NULL, failures = 0, delivered = delivered + 1",
                (name, at),
            )
        else:
            self.conn.execute(
                "INSERT INTO hooks (name, last_error, last_error_at, failures) "
                "VALUES (?, ?, ?, 1) ON CONFLICT (name) DO UPDATE SET "
                "last_error = excluded.last_error, last_error_at = excluded.last_error_at, "
                "failures = failures + 1",
                (name, error, at),
            )


@dataclass(frozen=True, slots=True)
class FileRow:
    """A file as a sync records it."""

    path: str
    blob: str
    kind: str
    issues: tuple[Issue, ...] = ()
    imports: tuple[str, ...] = ()
    good: bool = False  # its blob may be served (a Python file that parsed, with good DAGs)


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
