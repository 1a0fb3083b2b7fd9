"""Operator actions: rollback, pin, unpin, pause, resume, source rollback, diff, audit.

Each action is one SQLite transaction (serialized with syncs, never seen half-done by
readers), records who, when, why and what changed in the audit log, and returns an
`ActionResult`. `OperatorActions` is a component the engine composes: it gets the store, a way
to open a source's git mirror and a way to tell listeners what changed.

The actions on one DAG are in `dag_actions`, those on a whole source in `source_actions`,
what they share in `action_core`; the readers (diff, audit) are here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gitdags.config import Settings
from gitdags.errors import NotFoundError
from gitdags.git.source import GitSource
from gitdags.history.action_core import Notify, require_dag, require_version
from gitdags.history.dag_actions import DagActions
from gitdags.history.source_actions import SourceActions
from gitdags.history.store import HistoryStore
from gitdags.model import FILE_FORMATS, AuditEntry, SpecDiff, Version

# what other modules import from here
__all__ = ["OperatorActions", "require_dag", "require_version"]


class OperatorActions(DagActions, SourceActions):
    """The operator actions the engine composes: on one DAG, on a source, and their readers."""

    def __init__(
        self,
        settings: Settings,
        store: HistoryStore,
        git: Callable[[str], GitSource],
        notify: Notify,
    ) -> None:
        self.settings = settings
        self.store = store
        self.git = git  # source name -> its mirror
        self.notify = notify

    def audit_sync(
        self, source: str | None, results: list[dict[str, object]], reason: str, actor: str | None
    ) -> int:
        with self.store.transaction():
            audit_id = self._audit(
                "sync", actor, source=source, reason=reason, detail={"results": results}
            )
            self.store.bump()
        return audit_id

    # -- reading -----------------------------------------------------------------------------
    def diff(self, dag_id: str, v1: int | None = None, v2: int | None = None) -> SpecDiff:
        """Normalized specs compared: by default the served version against the newest."""
        dag = require_dag(self.store, dag_id)
        if v1 is None:
            v1 = dag.served_version or dag.newest_version
        if v2 is None:
            v2 = dag.newest_version if v1 != dag.newest_version or v1 is None else v1
        if v1 is None or v2 is None:
            raise NotFoundError(f"DAG {dag_id!r} has no versions to compare.")
        from gitdags import specdiff  # YAML rendering: loaded by the commands that diff

        a, b = require_version(self.store, dag, v1), require_version(self.store, dag, v2)
        python = any((v.spec or {}).get("format") in FILE_FORMATS for v in (a, b)) or (
            dag.path.endswith(".py")
        )

        def shown(v: Version) -> dict[str, Any] | None:
            """What people changed: an Airflow file's source, a dag-factory DAG's block (with
            its defaults), a Prefect deployment's block and the blobs of its code, a format v1
            spec."""
            if python:
                return None
            if (v.spec or {}).get("format") == "prefect":  # its block, and its code's blobs
                code = {path: blob[:12] for path, blob in v.spec.get("code") or []}  # type: ignore[union-attr]
                return {"deployment": v.spec.get("block"), "code": code}  # type: ignore[union-attr]
            factory = (v.spec or {}).get("dag_factory")
            return factory["config"] if isinstance(factory, dict) else v.spec

        text = specdiff.unified(
            specdiff.as_text(shown(a), a.content),
            specdiff.as_text(shown(b), b.content),
            f"{dag_id} v{v1} ({a.commit[:10]})",
            f"{dag_id} v{v2} ({b.commit[:10]})",
        )
        return SpecDiff(dag_id, v1, v2, text, specdiff.structured(a.spec, b.spec))

    def audit(self, dag_id: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        return self.store.audit(dag_id, limit=limit)
