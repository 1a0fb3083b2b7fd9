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

from gitdags.history.store import HistoryStore


class Registry:
    """Read-only access to what gitdags serves."""

    def __init__(self, database: str | os.PathLike[str]) -> None:
        self.store = HistoryStore(Path(database), readonly=True)

    def served(self) -> list[dict[str, Any]]:
        """Every served DAG: dag_id, source, path, status, version, commit, spec."""
        return [dag.to_dict() for dag in self.store.served()]

    def get(self, dag_id: str) -> dict[str, Any] | None:
        """One served DAG, or None when it is not served (unknown, deleted, paused, ...)."""
        found = self.store.served(dag_id)
        return found[0].to_dict() if found else None

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
