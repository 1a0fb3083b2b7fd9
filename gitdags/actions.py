"""Operator actions: rollback, pin, unpin, pause, resume, source rollback, diff, audit.

Each action is one engine method and one SQLite transaction (serialized with syncs, never
seen half-done by readers), records who, when, why and what changed in the audit log, and
returns an `ActionResult`. Mixed into `SyncEngine`.
"""

from __future__ import annotations

import getpass
import os
import re
from typing import TYPE_CHECKING, Any

from gitdags.dagrow import save_dag, served_fields
from gitdags.errors import ActionError, NotFoundError
from gitdags.model import ActionResult, AuditEntry, DagChange, SpecDiff
from gitdags.store import dumps, loads, now

if TYPE_CHECKING:
    from gitdags.engine import SyncEngine

    _Base = SyncEngine
else:
    _Base = object

VERSION_RE = re.compile(r"v?(\d{1,6})")


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


class OperatorActions(_Base):
    # -- helpers -----------------------------------------------------------------------------
    def _dag_row(self, dag_id: str) -> dict[str, Any]:
        row = self.store.row("SELECT * FROM dags WHERE dag_id = ?", (dag_id,))
        if row is None:
            raise NotFoundError(f"There is no DAG {dag_id!r}; `gitdags list` shows the DAGs.")
        return row

    def _version_row(self, dag_id: str, number: int) -> dict[str, Any]:
        row = self.store.row(
            "SELECT * FROM versions WHERE dag_id = ? AND version = ?", (dag_id, number)
        )
        if row is None:
            raise NotFoundError(
                f"DAG {dag_id!r} has no version {number}; `gitdags history {dag_id}` lists them."
            )
        return row

    def _newest_valid(self, dag_id: str, below: int | None = None) -> dict[str, Any] | None:
        sql = "SELECT * FROM versions WHERE dag_id = ? AND valid = 1"
        params: list[Any] = [dag_id]
        if below is not None:
            sql += " AND version < ?"
            params.append(below)
        return self.store.row(sql + " ORDER BY version DESC LIMIT 1", params)

    def _at_commit(self, dag: dict[str, Any], rev: str) -> dict[str, Any]:
        """The version of a DAG that was current at commit `rev`."""
        versions = self.store.rows(
            "SELECT * FROM versions WHERE dag_id = ? ORDER BY version DESC", (dag["dag_id"],)
        )
        exact = [v for v in versions if v["commit_sha"].startswith(rev.lower())]
        if exact:
            return exact[0]
        git = self.git(self.settings.source(dag["source"]))
        full = git.resolve(rev)
        if full is None:
            raise NotFoundError(
                f"Commit {rev!r} is not in source {dag['source']!r}; "
                f"`gitdags history {dag['dag_id']}` lists the commits."
            )
        for v in versions:
            if git.is_ancestor(v["commit_sha"], full):
                return v
        raise NotFoundError(f"DAG {dag['dag_id']!r} did not exist yet at commit {rev[:12]}.")

    def _target(self, dag: dict[str, Any], to: str | None) -> dict[str, Any]:
        """The version a rollback or pin goes to, checked to be valid."""
        dag_id = dag["dag_id"]
        if to is None:
            return self._default_target(dag)
        match = VERSION_RE.fullmatch(to.strip())
        row = (
            self._version_row(dag_id, int(match.group(1)))
            if match
            else self._at_commit(dag, to.strip())
        )
        if not row["valid"]:
            codes = ", ".join(sorted({i["code"] for i in loads(row["issues"]) or []}))
            raise ActionError(
                f"Version {row['version']} of {dag_id!r} is invalid ({codes}) and cannot be "
                f"served; pick a valid one from `gitdags history {dag_id}`."
            )
        return row

    def _default_target(self, dag: dict[str, Any]) -> dict[str, Any]:
        dag_id, served = dag["dag_id"], dag["served_version"]
        if dag["deleted"] and served:
            row = self._version_row(dag_id, served)
            if row["valid"]:
                return row
        if served is None:
            raise ActionError(f"DAG {dag_id!r} serves no version to roll back from.")
        row = self._newest_valid(dag_id, below=served)
        if row is None:
            raise ActionError(
                f"DAG {dag_id!r} has no valid version before v{served} to roll back to."
            )
        return row

    def _serve(self, dag: dict[str, Any], version: dict[str, Any] | None) -> None:
        if version is None:
            dag.update(served_version=None, served_commit=None)
        else:
            spec = loads(version["spec"])
            dag.update(
                served_version=version["version"],
                served_commit=version["commit_sha"],
                **served_fields(spec),
            )

    def _audit(
        self,
        action: str,
        *,
        dag_id: str | None,
        source: str | None,
        reason: str,
        actor: str | None,
        detail: dict[str, Any],
    ) -> int:
        return self.store.insert(
            "audit",
            {
                "at": now(),
                "actor": actor or default_actor(),
                "action": action,
                "dag_id": dag_id,
                "source": source,
                "reason": reason or "",
                "detail": dumps(detail),
            },
        )

    def _file_exists(self, dag: dict[str, Any]) -> bool:
        found = self.store.scalar(
            "SELECT 1 FROM files WHERE source = ? AND path = ? AND dag_id = ?",
            (dag["source"], dag["path"], dag["dag_id"]),
        )
        return bool(found)

    # -- one DAG -----------------------------------------------------------------------------
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
            dag = self._dag_row(dag_id)
            if action == "pin" and to is None:
                if dag["served_version"] is None or dag["deleted"]:
                    raise ActionError(f"DAG {dag_id!r} serves no version to pin; use --to.")
                target = self._version_row(dag_id, dag["served_version"])
            else:
                target = self._target(dag, to)
            before = dag["served_version"]
            was_deleted = bool(dag["deleted"])
            self._serve(dag, target)
            dag.update(pinned=1, pin_until_change=int(until_change), deleted=0)
            save_dag(self.store, dag)
            detail = {
                "from_version": before,
                "to_version": target["version"],
                "commit": target["commit_sha"],
                "until_change": until_change,
                "restored": was_deleted,
            }
            audit_id = self._audit(
                action,
                dag_id=dag_id,
                source=dag["source"],
                reason=reason,
                actor=actor,
                detail=detail,
            )
            self.store.bump()
        lets_go = (
            " until a new commit changes it"
            if until_change
            else f"; `gitdags unpin {dag_id}` releases it"
        )
        verb = "restored and pinned" if was_deleted else "pinned"
        change = DagChange(
            dag_id, "restored" if was_deleted else action, target["version"], dag["path"]
        )
        serves = f"v{target['version']} ({target['commit_sha'][:10]})"
        result = ActionResult(
            action,
            f"{dag_id} now serves {serves}, {verb}{lets_go}.",
            (change,),
            audit_id,
        )
        self._notify(dag["source"], target["commit_sha"], result.changes)
        return result

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
            dag = self._dag_row(dag_id)
            if not dag["pinned"]:
                return ActionResult("unpin", f"{dag_id} is not pinned; nothing to do.")
            change = self._release(dag)
            audit_id = self._audit(
                "unpin",
                dag_id=dag_id,
                source=dag["source"],
                reason=reason,
                actor=actor,
                detail={"served_version": dag["served_version"], "deleted": bool(dag["deleted"])},
            )
            self.store.bump()
        now_serving = (
            "is deleted in git and no longer served"
            if dag["deleted"]
            else f"now serves v{dag['served_version']}"
            if dag["served_version"]
            else "has no valid version to serve"
        )
        result = ActionResult(
            "unpin", f"{dag_id} is unpinned and {now_serving}.", (change,), audit_id
        )
        self._notify(dag["source"], dag["served_commit"], result.changes)
        return result

    def _release(self, dag: dict[str, Any]) -> DagChange:
        dag.update(pinned=0, pin_until_change=0)
        if not self._file_exists(dag):
            dag["deleted"] = 1
            change = DagChange(dag["dag_id"], "deleted", None, dag["path"])
        else:
            self._serve(dag, self._newest_valid(dag["dag_id"]))
            change = DagChange(dag["dag_id"], "unpin", dag["served_version"], dag["path"])
        save_dag(self.store, dag)
        return change

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
            dag = self._dag_row(dag_id)
            if bool(dag["paused"]) == paused:
                state = "paused" if paused else "not paused"
                return ActionResult(action, f"{dag_id} is already {state}; nothing to do.")
            dag["paused"] = int(paused)
            save_dag(self.store, dag)
            audit_id = self._audit(
                action,
                dag_id=dag_id,
                source=dag["source"],
                reason=reason,
                actor=actor,
                detail={"served_version": dag["served_version"]},
            )
            self.store.bump()
        change = DagChange(dag_id, action, dag["served_version"], dag["path"])
        verb = (
            "paused: registered and versioned, not served" if paused else "resumed and served again"
        )
        result = ActionResult(action, f"{dag_id} is {verb}.", (change,), audit_id)
        self._notify(dag["source"], dag["served_commit"], result.changes)
        return result

    # -- a whole source ----------------------------------------------------------------------
    def rollback_source(
        self, source: str, to: str, *, reason: str = "", actor: str | None = None
    ) -> ActionResult:
        """Serve every DAG of a source as it was at commit `to`, pinned as a whole."""
        config = self.settings.source(source)
        git = self.git(config)
        commit = git.resolve(to) if (git.mirror / "HEAD").exists() else None
        if commit is None:
            raise NotFoundError(
                f"Commit {to!r} is not in source {source!r}; `gitdags syncs --source {source}` "
                "lists synced commits."
            )
        tree = set(git.tree(commit))
        ancestors = set(git.ancestors(commit))
        changes: list[DagChange] = []
        with self.store.transaction():
            for dag in self.store.rows("SELECT * FROM dags WHERE source = ?", (source,)):
                versions = self.store.rows(
                    "SELECT * FROM versions WHERE dag_id = ? AND source = ? ORDER BY version DESC",
                    (dag["dag_id"], source),
                )
                then = next((v for v in versions if v["commit_sha"] in ancestors), None)
                existed = then is not None and then["path"] in tree
                served = None
                if existed and then is not None:
                    served = (
                        then
                        if then["valid"]
                        else next(
                            (
                                v
                                for v in versions
                                if v["valid"]
                                and v["version"] < then["version"]
                                and v["commit_sha"] in ancestors
                            ),
                            None,
                        )
                    )
                before = (dag["served_version"], bool(dag["deleted"]))
                self._serve(dag, served)
                dag.update(pinned=1, pin_until_change=0, deleted=0)
                save_dag(self.store, dag)
                if before != (dag["served_version"], False):
                    kind = (
                        "withdrawn" if served is None else "restored" if before[1] else "rollback"
                    )
                    changes.append(
                        DagChange(dag["dag_id"], kind, dag["served_version"], dag["path"])
                    )
            self.store.update(
                "sources", {"name": source}, {"pinned_commit": commit, "pinned_at": now()}
            )
            audit_id = self._audit(
                "rollback-source",
                dag_id=None,
                source=source,
                reason=reason,
                actor=actor,
                detail={"commit": commit, "changes": [c.to_dict() for c in changes]},
            )
            self.store.bump()
        result = ActionResult(
            "rollback-source",
            f"Source {source} now serves its DAGs as of {commit[:10]} ({len(changes)} changed), "
            f"pinned until `gitdags unpin --source {source}`.",
            tuple(changes),
            audit_id,
        )
        self._notify(source, commit, result.changes)
        return result

    def unpin_source(
        self, source: str, *, reason: str = "", actor: str | None = None
    ) -> ActionResult:
        """Release a source rollback: every DAG of the source serves its newest valid version."""
        self.settings.source(source)
        changes = []
        with self.store.transaction():
            for dag in self.store.rows(
                "SELECT * FROM dags WHERE source = ? AND pinned = 1", (source,)
            ):
                changes.append(self._release(dag))
            self.store.update(
                "sources", {"name": source}, {"pinned_commit": None, "pinned_at": None}
            )
            audit_id = self._audit(
                "unpin-source",
                dag_id=None,
                source=source,
                reason=reason,
                actor=actor,
                detail={"released": len(changes)},
            )
            self.store.bump()
        result = ActionResult(
            "unpin-source",
            f"Source {source} is unpinned; {len(changes)} DAGs serve their newest valid version.",
            tuple(changes),
            audit_id,
        )
        self._notify(source, None, result.changes)
        return result

    def sync_now(
        self, source: str | None = None, *, reason: str = "", actor: str | None = None
    ) -> ActionResult:
        """Sync one source (or all) now, as an operator action: recorded in the audit log."""
        results = self.sync(source)
        with self.store.transaction():
            audit_id = self._audit(
                "sync",
                dag_id=None,
                source=source,
                reason=reason,
                actor=actor,
                detail={"results": [r.to_dict() for r in results]},
            )
            self.store.bump()
        parts = []
        for r in results:
            if r.error:
                parts.append(f"{r.source} failed: {r.error}")
            elif r.nothing_new:
                parts.append(f"{r.source} is up to date")
            else:
                parts.append(
                    f"{r.source} synced to {r.to_commit[:10] if r.to_commit else '-'} "
                    f"(+{r.added} ~{r.changed} -{r.deleted} !{r.invalid})"
                )
        changes = tuple(c for r in results for c in r.changes)
        return ActionResult("sync", "; ".join(parts) + ".", changes, audit_id)

    # -- reading -----------------------------------------------------------------------------
    def diff(self, dag_id: str, v1: int | None = None, v2: int | None = None) -> SpecDiff:
        """Normalized specs compared: by default the served version against the newest."""
        dag = self._dag_row(dag_id)
        if v1 is None:
            v1 = dag["served_version"] or dag["newest_version"]
        if v2 is None:
            v2 = dag["newest_version"] if v1 != dag["newest_version"] or v1 is None else v1
        from gitdags import specdiff  # YAML rendering: loaded by the commands that diff

        a, b = self._version_row(dag_id, v1), self._version_row(dag_id, v2)
        spec_a, spec_b = loads(a["spec"]), loads(b["spec"])
        text = specdiff.unified(
            specdiff.as_text(spec_a, a["content"] or ""),
            specdiff.as_text(spec_b, b["content"] or ""),
            f"{dag_id} v{v1} ({a['commit_sha'][:10]})",
            f"{dag_id} v{v2} ({b['commit_sha'][:10]})",
        )
        return SpecDiff(dag_id, v1, v2, text, specdiff.structured(spec_a, spec_b))

    def audit(self, dag_id: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        sql, params = "SELECT * FROM audit", []
        if dag_id:
            sql += " WHERE dag_id = ?"
            params.append(dag_id)
        rows = self.store.rows(sql + " ORDER BY id DESC LIMIT ?", [*params, limit])
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
