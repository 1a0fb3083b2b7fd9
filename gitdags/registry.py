"""The read API for consumers: the served DAGs, one DAG, the change counter.

Safe to use from another process while the daemon writes: the database is opened read-only,
in WAL mode readers never block the writer, and each call reads one consistent snapshot.

    from gitdags.registry import Registry

    with Registry("/var/lib/gitdags/gitdags.db") as registry:
        for dag in registry.served():
            print(dag["dag_id"], dag["version"], dag["spec"]["schedule"])
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any

from gitdags.store import HistoryStore, loads

SERVED_SQL = (
    "SELECT d.dag_id, d.source, d.path, d.status, d.served_version, d.served_commit, v.spec "
    "FROM dags d JOIN versions v ON v.dag_id = d.dag_id AND v.version = d.served_version "
    "WHERE d.deleted = 0 AND d.paused = 0 AND d.enabled = 1"
)


def served_set(store: HistoryStore, dag_id: str | None = None) -> list[dict[str, Any]]:
    """The served set: valid, enabled, unpaused, not deleted; each with its spec."""
    sql, params = SERVED_SQL, ()
    if dag_id is not None:
        sql, params = sql + " AND d.dag_id = ?", (dag_id,)
    return [
        {
            "dag_id": r["dag_id"],
            "source": r["source"],
            "path": r["path"],
            "status": r["status"],
            "version": r["served_version"],
            "commit": r["served_commit"],
            "spec": loads(r["spec"]),
        }
        for r in store.rows(sql + " ORDER BY d.dag_id", params)
    ]


class Registry:
    """Read-only access to what gitdags serves."""

    def __init__(self, database: str | os.PathLike[str]) -> None:
        self.store = HistoryStore(Path(database), readonly=True)

    def served(self) -> list[dict[str, Any]]:
        """Every served DAG: dag_id, source, path, status, version, commit, spec."""
        return served_set(self.store)

    def get(self, dag_id: str) -> dict[str, Any] | None:
        """One served DAG, or None when it is not served (unknown, deleted, paused, ...)."""
        found = served_set(self.store, dag_id)
        return found[0] if found else None

    def change_counter(self) -> int:
        """Grows with every change; poll it to know when to reload."""
        return self.store.generation()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
