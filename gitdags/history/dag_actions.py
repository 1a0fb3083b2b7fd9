"""Operator actions on one DAG: rollback, pin, unpin, pause, resume (its file's DAGs with it)."""

from __future__ import annotations

from gitdags.history.action_core import ActionCore, require_dag
from gitdags.model import FILE_FORMATS, ActionResult, DagChange, DagRow, Version


class DagActions(ActionCore):
    """Rollback, pin, unpin, pause and resume of one DAG."""

    def rollback(
        self,
        dag_id: str,
        to: str | None = None,
        *,
        until_change: bool = False,
        reason: str = "",
        actor: str | None = None,
        action: str = "rollback",
    ) -> ActionResult:
        """Serve an earlier valid version (default: the one before the served one) and pin it."""
        with self.store.transaction():
            dag = require_dag(self.store, dag_id)
            target = self._checked_target(dag, to, action)
            before = dag.served_version
            was_deleted = dag.deleted
            dag.serve_version(target)
            dag.pinned, dag.pin_until_change, dag.deleted = True, until_change, False
            mates = self._hold_file(dag, target, until_change)
            self.store.save_dags([dag, *mates])
            detail = {
                "from_version": before,
                "to_version": target.version,
                "commit": target.commit,
                "until_change": until_change,
                "restored": was_deleted,
                "file_dags": [m.dag_id for m in mates],
            }
            audit_id = self._audit(
                action, actor, dag_id=dag_id, source=dag.source, reason=reason, detail=detail
            )
            self.store.bump()
        lets_go = (
            " until a new commit changes it"
            if until_change
            else f"; `gitdags unpin {dag_id}` releases it"
        )
        verb = "restored and pinned" if was_deleted else "pinned"
        change = DagChange(dag_id, "restored" if was_deleted else action, target.version, dag.path)
        changes = (change, *(DagChange(m.dag_id, action, m.served_version, m.path) for m in mates))
        serves = f"v{target.version} ({target.commit[:10]})"
        also = (
            f" Its file {dag.path} is served as a whole, so "
            f"{', '.join(m.dag_id for m in mates)} {'is' if len(mates) == 1 else 'are'} "
            "held with it."
            if mates
            else ""
        )
        result = ActionResult(
            action, f"{dag_id} now serves {serves}, {verb}{lets_go}.{also}", changes, audit_id
        )
        self.notify(dag.source, target.commit, result.changes)
        return result

    def _file_mates(self, dag: DagRow) -> list[DagRow]:
        """The other DAGs of an Airflow Python file (served, paused, rolled back with it)."""
        return self.store.file_mates(dag) if dag.path.endswith(".py") else []

    def _hold_file(self, dag: DagRow, target: Version, until_change: bool) -> list[DagRow]:
        """An Airflow Python file is served as a whole: the other DAGs of the file serve what
        the same blob of the file defined (nothing, if it did not define them), pinned too."""
        if (target.spec or {}).get("format") not in FILE_FORMATS or not target.blob:
            return []
        mates = self._file_mates(dag)
        for mate in mates:
            mate.serve_version(self.store.version_with_blob(mate, target.blob))
            mate.pinned, mate.pin_until_change = True, until_change
        return mates

    def pin(
        self,
        dag_id: str,
        to: str | None = None,
        *,
        until_change: bool = False,
        reason: str = "",
        actor: str | None = None,
    ) -> ActionResult:
        """Hold the served version (or the one given) while new commits are only recorded."""
        return self.rollback(
            dag_id, to, until_change=until_change, reason=reason, actor=actor, action="pin"
        )

    def unpin(self, dag_id: str, *, reason: str = "", actor: str | None = None) -> ActionResult:
        """Release a pin: serve the newest valid version again."""
        with self.store.transaction():
            dag = require_dag(self.store, dag_id)
            if not dag.pinned:
                return ActionResult("unpin", f"{dag_id} is not pinned; nothing to do.")
            change = self._release(dag)
            audit_id = self._audit(
                "unpin",
                actor,
                dag_id=dag_id,
                source=dag.source,
                reason=reason,
                detail={"served_version": dag.served_version, "deleted": dag.deleted},
            )
            self.store.bump()
        now_serving = (
            "is deleted in git and no longer served"
            if dag.deleted
            else f"now serves v{dag.served_version}"
            if dag.served_version
            else "has no valid version to serve"
        )
        result = ActionResult(
            "unpin", f"{dag_id} is unpinned and {now_serving}.", (change,), audit_id
        )
        self.notify(dag.source, dag.served_commit, result.changes)
        return result

    def pause(self, dag_id: str, *, reason: str = "", actor: str | None = None) -> ActionResult:
        """Keep the DAG registered and versioned, but stop serving it."""
        return self._set_paused(dag_id, True, reason, actor)

    def resume(self, dag_id: str, *, reason: str = "", actor: str | None = None) -> ActionResult:
        """Serve a paused DAG again."""
        return self._set_paused(dag_id, False, reason, actor)

    def _set_paused(
        self, dag_id: str, paused: bool, reason: str, actor: str | None
    ) -> ActionResult:
        action = "pause" if paused else "resume"
        with self.store.transaction():
            dag = require_dag(self.store, dag_id)
            if dag.paused == paused:
                state = "paused" if paused else "not paused"
                return ActionResult(action, f"{dag_id} is already {state}; nothing to do.")
            dag.paused = paused
            # a Dagster job's file stays served when it is paused: its mates are not touched
            alone = any(
                s.name == dag.source and s.orchestrator == "dagster" for s in self.settings.sources
            )
            mates = [] if alone else [m for m in self._file_mates(dag) if m.paused != paused]
            for mate in mates:
                mate.paused = paused
            self.store.save_dags([dag, *mates])
            audit_id = self._audit(
                action,
                actor,
                dag_id=dag_id,
                source=dag.source,
                reason=reason,
                detail={
                    "served_version": dag.served_version,
                    "file_dags": [m.dag_id for m in mates],
                },
            )
            self.store.bump()
        changes = tuple(
            DagChange(d.dag_id, action, d.served_version, d.path) for d in (dag, *mates)
        )
        verb = (
            "paused: registered and versioned, not served" if paused else "resumed and served again"
        )
        also = (
            f" Its file {dag.path} is served as a whole, so "
            f"{', '.join(m.dag_id for m in mates)} {'is' if len(mates) == 1 else 'are'} too."
            if mates
            else ""
        )
        result = ActionResult(action, f"{dag_id} is {verb}.{also}", changes, audit_id)
        self.notify(dag.source, dag.served_commit, result.changes)
        return result
