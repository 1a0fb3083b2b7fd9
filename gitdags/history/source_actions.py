"""Operator actions on a whole source: rollback to a commit, unpin, prune."""

from __future__ import annotations

import shutil

from gitdags.errors import ActionError, NotFoundError, UsageError
from gitdags.history.action_core import ActionCore, require_version
from gitdags.model import ActionResult, DagChange


class SourceActions(ActionCore):
    """Rollback, unpin and prune of every DAG of a source."""

    def rollback_source(
        self, source: str, to: str, *, reason: str = "", actor: str | None = None
    ) -> ActionResult:
        """Serve every DAG of a source as it was at commit `to`, pinned as a whole."""
        self.settings.source(source)
        if not to.strip():
            raise UsageError("--to is empty; give the commit to serve the source as of.")
        git = self.git(source)
        commit = git.resolve(to.strip()) if (git.mirror / "HEAD").exists() else None
        if commit is None:
            raise NotFoundError(
                f"Commit {to!r} is not in source {source!r}; `gitdags syncs --source {source}` "
                "lists synced commits."
            )
        tree = set(git.tree(commit))
        ancestors = set(git.ancestors(commit))
        changes: list[DagChange] = []
        with self.store.transaction():
            held = self._own_decisions(source)
            for dag in self.store.dags(source=source):
                versions = [v for v in self.store.versions(dag) if v.source == source]
                then = next((v for v in versions if v.commit in ancestors), None)
                served = None
                if then is not None and then.path in tree:
                    served = (
                        then
                        if then.valid
                        else next(
                            (
                                v
                                for v in versions
                                if v.valid and v.version < then.version and v.commit in ancestors
                            ),
                            None,
                        )
                    )
                before = (dag.served_version, dag.deleted)
                dag.serve_version(served)
                dag.pinned, dag.pin_until_change, dag.deleted = True, False, False
                self.store.save_dags([dag])
                if before != (dag.served_version, False):
                    kind = (
                        "withdrawn" if served is None else "restored" if before[1] else "rollback"
                    )
                    changes.append(DagChange(dag.dag_id, kind, dag.served_version, dag.path))
            self.store.set_source_pin(source, commit)
            audit_id = self._audit(
                "rollback-source",
                actor,
                source=source,
                reason=reason,
                detail={
                    "commit": commit,
                    "changes": [c.to_dict() for c in changes],
                    "held": held,  # each DAG's own rollback or pin, given back by unpin
                },
            )
            self.store.bump()
        result = ActionResult(
            "rollback-source",
            f"Source {source} now serves its DAGs as of {commit[:10]} ({len(changes)} changed), "
            f"pinned until `gitdags unpin --source {source}`.",
            tuple(changes),
            audit_id,
        )
        self.notify(source, commit, result.changes)
        return result

    def _own_decisions(self, source: str) -> dict[str, dict[str, object]]:
        """The DAGs of `source` pinned by an operator one by one (a rollback, a pin), as they
        are: what a source rollback puts aside and its release gives back. Under a source pin
        already, those the first source rollback put aside."""
        record = self.store.source_record(source)
        if record is not None and record.pinned_commit:
            held = self.store.last_audit_detail("rollback-source", source).get("held")
            return dict(held) if isinstance(held, dict) else {}
        return {
            dag.dag_id: {
                "served_version": dag.served_version,
                "pin_until_change": dag.pin_until_change,
                "deleted": dag.deleted,
            }
            for dag in self.store.dags(source=source, pinned=True)
        }

    def unpin_source(
        self, source: str, *, reason: str = "", actor: str | None = None
    ) -> ActionResult:
        """Release a source rollback: each DAG serves its newest valid version, except those an
        operator had rolled back or pinned on their own before it: they get that back."""
        self.settings.source(source)
        with self.store.transaction():
            record = self.store.source_record(source)
            if record is None or not record.pinned_commit:  # as `unpin DAG` of an unpinned DAG
                return ActionResult(
                    "unpin-source", f"Source {source} is not rolled back; nothing to do."
                )
            held = self._own_decisions(source)
            changes, kept = [], []
            for dag in self.store.dags(source=source, pinned=True):
                own = held.get(dag.dag_id)
                if not isinstance(own, dict):
                    changes.append(self._release(dag))
                    continue
                number = own.get("served_version")
                version = (
                    require_version(self.store, dag, number) if isinstance(number, int) else None
                )
                dag.serve_version(version)
                dag.pin_until_change = bool(own.get("pin_until_change"))
                dag.deleted = bool(own.get("deleted"))
                self.store.save_dags([dag])
                kept.append(dag.dag_id)
                changes.append(DagChange(dag.dag_id, "pin kept", dag.served_version, dag.path))
            self.store.set_source_pin(source, None)
            audit_id = self._audit(
                "unpin-source",
                actor,
                source=source,
                reason=reason,
                detail={
                    "released": len(changes) - len(kept),
                    "kept": kept,
                    "changes": [c.to_dict() for c in changes],
                },
            )
            self.store.bump()
        also = (
            f"; {len(kept)} keep their own rollback or pin ({', '.join(sorted(kept)[:5])}"
            + (", ..." if len(kept) > 5 else "")
            + ")"
            if kept
            else ""
        )
        result = ActionResult(
            "unpin-source",
            f"Source {source} is unpinned; {len(changes) - len(kept)} DAGs serve their newest "
            f"valid version{also}.",
            tuple(changes),
            audit_id,
        )
        self.notify(source, None, result.changes)
        return result

    def prune_source(
        self, source: str, *, reason: str = "", actor: str | None = None
    ) -> ActionResult:
        """Retire the DAGs of a source that left the config (history kept) and forget its
        files, reconcile record and mirror. Adding the source again brings its DAGs back."""
        if any(s.name == source for s in self.settings.sources):
            raise ActionError(
                f"Source {source!r} is still in the config; remove its [[sources]] table "
                "first, then prune it."
            )
        with self.store.transaction():
            every = self.store.dags(source=source)
            dags = [d for d in every if not d.deleted]
            if not dags and self.store.source_record(source) is None:
                if every:  # pruned before (by the daemon on SIGHUP, or by hand): kept as history
                    return ActionResult(
                        "prune-source",
                        f"Source {source} is already pruned: its {len(every)} DAGs are retired "
                        "and keep their history; nothing to do.",
                    )
                raise NotFoundError(f"The database holds no source named {source!r}.")
            changes = []
            for dag in dags:
                dag.deleted, dag.pinned, dag.pin_until_change = True, False, False
                changes.append(DagChange(dag.dag_id, "deleted", None, dag.path))
            self.store.save_dags(dags)
            self.store.forget_source(source)
            audit_id = self._audit(
                "prune-source",
                actor,
                source=source,
                reason=reason,
                detail={"retired": [d.dag_id for d in dags]},
            )
            self.store.bump()
        mirrors = self.settings.mirrors_dir
        for leftover in (f"{source}.git", f"{source}.tree", f"{source}.tree.index"):
            path = mirrors / leftover
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists() or path.is_symlink():
                path.unlink()
        result = ActionResult(
            "prune-source",
            f"Source {source} is pruned: {len(dags)} DAGs retired (their history is kept).",
            tuple(changes),
            audit_id,
        )
        self.notify(source, None, result.changes)
        return result
