"""The DAGs and versions tables: each DAG's state, every version seen, the served set."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from gitdags.errors import StoreError
from gitdags.history.packing import Dictionary, train, unpacked
from gitdags.history.rows import CHUNK, StoreRows, _issues, _where, dumps, loads, now
from gitdags.model import Commit, DagFile, DagRow, DagState, ServedDag, Version

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
    "SELECT d.dag_id, d.source, d.path, d.status, d.served_version, d.served_commit, v.spec, "
    "v.zdict "
    "FROM dags d JOIN versions v ON v.dag_id = d.dag_id AND v.version = d.served_version "
    "WHERE d.deleted = 0 AND d.paused = 0 AND d.enabled = 1"
)

_EMPTY = "[]"
PAGE = 1000  # rows a streamed listing reads at a time
_DAG_SELECT = ", ".join(f"d.{c}" for c in _DAG_COLUMNS)


def _ids(value: str | None) -> tuple[str, ...]:
    return () if not value or value == "[]" else _decoded_ids(value)


@functools.lru_cache(maxsize=4096)
def _decoded_ids(value: str) -> tuple[str, ...]:
    """A JSON list of ids (tags, depends_on_dags) as a tuple: the same few lists repeat over
    many DAGs, and decoding each again was two thirds of listing 100,000 DAGs."""
    return tuple(json.loads(value))


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
        dumps(list(d.tags)) if d.tags else _EMPTY,
        d.schedule,
        dumps(list(d.depends_on_dags)) if d.depends_on_dags else _EMPTY,
        d.served_commit,
        d.created_at,
        d.updated_at,
    )


def _version(r: sqlite3.Row, dag: DagRow | None, dictionary: Dictionary | None) -> Version:
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
        spec=loads(unpacked(r["spec"], dictionary, "spec")),
        content=unpacked(r["content"], dictionary, "text") or "",
        recorded_at=r["recorded_at"] or "",
        blob=r["blob"],
    )


class DagTables(StoreRows):
    """DAGs and their versions: what is found, what is served."""

    dictionaries: dict[int, Dictionary]  # the packing dictionaries read so far, by id

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
        return list(self.iter_dag_states(source=source, status=status))

    def iter_dag_states(
        self, *, source: str | None = None, status: str | None = None
    ) -> Iterator[DagState]:
        """The DAGs as listings show them, read a page at a time (constant memory)."""
        where, params = _where(source=source, status=status)
        cursor = self.conn.cursor()
        cursor.row_factory = None
        cursor.execute(f"{_DAG_STATE_SQL}{where} ORDER BY dag_id", params)
        while page := cursor.fetchmany(PAGE):
            yield from (_dag_state(r) for r in page)

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
        """source -> status -> DAGs (from the index on just those two columns)."""
        counts: dict[str, dict[str, int]] = {}
        for source, status, n in self._tuples(
            "SELECT source, status, count(*) FROM dags GROUP BY source, status"
        ):
            counts.setdefault(source, {})[status] = n
        return counts

    # -- versions --------------------------------------------------------------------------------
    def version(self, dag: DagRow, number: int) -> Version | None:
        row = self._one(
            "SELECT * FROM versions WHERE dag_id = ? AND version = ?", (dag.dag_id, number)
        )
        return self._version(row, dag) if row else None

    def versions(self, dag: DagRow) -> list[Version]:
        rows = self._all(
            "SELECT * FROM versions WHERE dag_id = ? ORDER BY version DESC", (dag.dag_id,)
        )
        return [self._version(r, dag) for r in rows]

    def newest_valid(self, dag: DagRow, below: int | None = None) -> Version | None:
        row = self._one(
            "SELECT * FROM versions WHERE dag_id = ? AND valid = 1 AND version < ? "
            "ORDER BY version DESC LIMIT 1",
            (dag.dag_id, below if below is not None else 1 << 62),
        )
        return self._version(row, dag) if row else None

    def version_with_blob(self, dag: DagRow, blob: str) -> Version | None:
        """The newest valid version of a DAG made from this blob of its file."""
        row = self._one(
            "SELECT * FROM versions WHERE dag_id = ? AND blob = ? AND valid = 1 "
            "ORDER BY version DESC LIMIT 1",
            (dag.dag_id, blob),
        )
        return self._version(row, dag) if row else None

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
        offered: Dictionary | None = None,
    ) -> None:
        """One new version per (dag_id, number, commit that made it, the DAG as found, its
        file's blob). Its spec and text are stored packed (`packing`): as the pool's workers
        packed them (with `offered` when the database had no dictionary yet), or here."""
        if offered is not None and self.dictionary(offered.id) is None:
            self._save_dictionary(offered)  # the first sync's, trained before its pool ran
        dictionary = self.dictionary_for_writing(items)
        rows = []
        for dag_id, number, commit, f, blob in items:
            if f.packed is not None:  # packed in the pool: with the current or the offered
                zdict, spec, text = f.packed
                if self.dictionary(zdict) is None:
                    raise StoreError(
                        f"Version {number} of {dag_id} was packed with an unknown "
                        "dictionary; this is a bug in gitdags: report it."
                    )
            else:
                spec_json = f.spec_json or (dumps(f.spec) if f.spec is not None else None)
                spec = dictionary.pack(spec_json, "spec") if spec_json is not None else None
                text, zdict = dictionary.pack(f.content, "text"), dictionary.id
            rows.append(
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
                    _EMPTY if not f.issues else dumps([i.to_dict() for i in f.issues]),
                    spec,
                    text,
                    recorded_at,
                    blob,
                    zdict,
                )
            )
        self.conn.executemany(
            "INSERT INTO versions (dag_id, version, source, commit_sha, author, committed_at, "
            "message, path, content_hash, valid, issues, spec, content, recorded_at, blob, "
            "zdict) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    # -- the dictionaries versions are packed with -----------------------------------------------
    def dictionary(self, id_: int | None) -> Dictionary | None:
        if id_ is None:
            return None
        found = self.dictionaries.get(id_)
        if found is None:
            row = self._tuples("SELECT spec, text FROM zdicts WHERE id = ?", (id_,))
            if not row:
                return None
            found = self.dictionaries[id_] = Dictionary(id_, row[0][0], row[0][1])
        return found

    def current_dictionary(self) -> Dictionary | None:
        """The dictionary new versions are packed with: the first one written (None before
        the first version)."""
        row = self._tuples("SELECT id FROM zdicts ORDER BY created_at, id LIMIT 1")
        return self.dictionary(row[0][0]) if row else None

    def dictionary_for_writing(
        self, items: list[tuple[str, int, Commit, DagFile, str | None]]
    ) -> Dictionary:
        """The current dictionary; the first time, one trained from these versions."""
        found = self.current_dictionary()
        if found is not None:
            return found
        return self._save_dictionary(
            train(
                [f.spec_json or dumps(f.spec) for *_, f, _b in items if f.spec is not None],
                [f.content for *_, f, _b in items],
            )
        )

    def _save_dictionary(self, dictionary: Dictionary) -> Dictionary:
        self.conn.execute(
            "INSERT OR IGNORE INTO zdicts (id, spec, text, created_at) VALUES (?, ?, ?, ?)",
            (dictionary.id, dictionary.spec, dictionary.text, now()),
        )
        return dictionary

    def _version(self, r: sqlite3.Row, dag: DagRow | None) -> Version:
        return _version(r, dag, self.dictionary(r["zdict"]))

    def served(self, dag_id: str | None = None) -> list[ServedDag]:
        """The served set: valid, enabled, unpaused, not deleted; each with its spec."""
        return list(self.iter_served(dag_id))

    def iter_served(self, dag_id: str | None = None) -> Iterator[ServedDag]:
        """The served set, read a page at a time (constant memory)."""
        sql, params = _SERVED, ()
        if dag_id is not None:
            sql, params = sql + " AND d.dag_id = ?", (dag_id,)
        cursor = self.conn.cursor()
        cursor.row_factory = None
        cursor.execute(sql + " ORDER BY d.dag_id", params)
        while page := cursor.fetchmany(PAGE):
            for dag_id_, source, path, status, version, commit, spec, zdict in page:
                yield ServedDag(
                    dag_id=dag_id_,
                    source=source,
                    path=path,
                    status=status,
                    version=version,
                    commit=commit,
                    spec=loads(unpacked(spec, self.dictionary(zdict), "spec")),
                )

    def served_files(self) -> list[tuple[str, str, str]]:
        """(source, path, blob) of each Python file served as a file: the blob of the served
        version of the DAGs of each DAG file (a pin or rollback holds the whole file), and
        each helper module's last good blob. A paused Dagster job's file stays (its code
        location needs it): Dagster itself stops the job's schedules and sensors."""
        rows = self._tuples(
            "SELECT d.source, v.path, min(v.blob) FROM dags d JOIN versions v "
            "ON v.dag_id = d.dag_id AND v.version = d.served_version "
            "WHERE d.deleted = 0 AND (d.paused = 0 OR EXISTS (SELECT 1 FROM files f WHERE "
            "f.source = d.source AND f.path = d.path AND f.kind = 'dagster')) "
            "AND d.enabled = 1 AND v.blob IS NOT NULL "
            "AND v.path LIKE '%.py' GROUP BY d.source, v.path"
        )
        dag_files = {(source, path) for source, path, _blob in rows}
        rows += [  # a path once: a DAG file's served version wins over a module's row
            row
            for row in self._tuples(
                "SELECT source, path, served_blob FROM files "
                "WHERE kind IN ('module', 'prefect-flow') AND served_blob IS NOT NULL"
            )
            if (row[0], row[1]) not in dag_files
        ]
        return sorted(rows)

    def served_without_version(self) -> list[str]:
        """DAGs whose served version is missing or invalid (the doctor's check)."""
        rows = self._tuples(
            "SELECT d.dag_id FROM dags d LEFT JOIN versions v ON v.dag_id = d.dag_id "
            "AND v.version = d.served_version WHERE d.served_version IS NOT NULL "
            "AND d.deleted = 0 AND (v.dag_id IS NULL OR v.valid = 0) ORDER BY d.dag_id"
        )
        return [r[0] for r in rows]
