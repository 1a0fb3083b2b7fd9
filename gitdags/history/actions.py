"""Operator actions: rollback, pin, unpin, pause, resume, source rollback, diff, audit.

Each action is one SQLite transaction (serialized with syncs, never seen half-done by
readers), records who, when, why and what changed in the audit log, and returns an
`ActionResult`. `OperatorActions` is a component the engine composes: it gets the store, a way
to open a source's git mirror and a way to tell listeners what changed.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
from collections.abc import Callable
from typing import Any

from gitdags.config import Settings
from gitdags.errors import ActionError, NotFoundError, UsageError
from gitdags.git.source import GitSource
from gitdags.history.store import HistoryStore
from gitdags.model import ActionResult, AuditEntry, DagChange, DagRow, SpecDiff, Version

VERSION_RE = re.compile(r"v?(\d{1,6})")

Notify = Callable[[str, str | None, tuple[DagChange, ...]], None]


def default_actor() -> str:
    """The OS user; under `sudo -u gitdags`, the person who ran sudo (as that user)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("USER", "unknown")
    sudo = os.environ.get("SUDO_USER", "")
    return f"{sudo} (sudo as {user})" if sudo and sudo != user else user


def require_dag(store: HistoryStore, dag_id: str) -> DagRow:
    dag = store.dag(dag_id)
    if dag is None:
        raise NotFoundError(f"There is no DAG {dag_id!r}; `gitdags list` shows the DAGs.")
    return dag


def require_version(store: HistoryStore, dag: DagRow, number: int) -> Version:
    version = store.version(dag, number)
    if version is None:
        raise NotFoundError(
            f"DAG {dag.dag_id!r} has no version {number}; "
            f"`gitdags history {dag.dag_id}` lists them."
        )
    return version


class OperatorActions:
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

    # -- helpers -----------------------------------------------------------------------------
    def _at_commit(self, dag: DagRow, rev: str) -> Version:
        """The version of a DAG that was current at commit `rev`."""
        versions = self.store.versions(dag)
        exact = [v for v in versions if v.commit.startswith(rev.lower())]
        if exact:
            return exact[0]
        git = self.git(dag.source)
        full = git.resolve(rev)
        if full is None:
            raise NotFoundError(
                f"Commit {rev!r} is not in source {dag.source!r}; "
                f"`gitdags history {dag.dag_id}` lists the commits."
            )
        for v in versions:
            if git.is_ancestor(v.commit, full):
                return v
        raise NotFoundError(f"DAG {dag.dag_id!r} did not exist yet at commit {rev[:12]}.")

    def rollback_target(self, dag_id: str, to: str | None, action: str = "rollback") -> Version:
        """The version a rollback (or pin) would serve, or the one-sentence reason it cannot:
        the console asks before it opens its confirmation, with the CLI's rules."""
        return self._checked_target(require_dag(self.store, dag_id), to, action)

    def _checked_target(self, dag: DagRow, to: str | None, action: str) -> Version:
        if action == "pin" and to is None:
            if dag.served_version is None or dag.deleted:
                raise ActionError(f"DAG {dag.dag_id!r} serves no version to pin; use --to.")
            return require_version(self.store, dag, dag.served_version)
        target = self._target(dag, to)
        if action == "rollback" and target.version == dag.served_version and not dag.deleted:
            raise ActionError(
                f"DAG {dag.dag_id!r} already serves v{target.version}; roll back to an older "
                f"valid version (`gitdags history {dag.dag_id}`), or `gitdags pin "
                f"{dag.dag_id}` to hold it."
            )
        return target

    def _target(self, dag: DagRow, to: str | None) -> Version:
        """The version a rollback or pin goes to, checked to be valid."""
        if to is None:
            return self._default_target(dag)
        wanted = to.strip()
        if not wanted:
            raise UsageError("--to is empty; give a version (3 or v3) or a commit.")
        match = VERSION_RE.fullmatch(wanted)
        version = (
            require_version(self.store, dag, int(match.group(1)))
            if match
            else self._at_commit(dag, wanted)
        )
        if not version.valid:
            codes = ", ".join(sorted({i.code for i in version.issues}))
            raise ActionError(
                f"Version {version.version} of {dag.dag_id!r} is invalid ({codes}) and cannot "
                f"be served; pick a valid one from `gitdags history {dag.dag_id}`."
            )
        return version

    def _default_target(self, dag: DagRow) -> Version:
        served = dag.served_version
        if dag.deleted and served:
            version = require_version(self.store, dag, served)
            if version.valid:
                return version
        if served is None:
            raise ActionError(f"DAG {dag.dag_id!r} serves no version to roll back from.")
        version = self.store.newest_valid(dag, below=served)
        if version is None:
            raise ActionError(
                f"DAG {dag.dag_id!r} has no valid version before v{served} to roll back to."
            )
        return version

    def _audit(
        self,
        action: str,
        actor: str | None,
        *,
        dag_id: str | None = None,
        source: str | None = None,
        reason: str = "",
        detail: dict[str, object] | None = None,
    ) -> int:
        return self.store.insert_audit(
            action,
            actor=actor or default_actor(),
            dag_id=dag_id,
            source=source,
            reason=reason,
            detail=detail,
        )

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
        if (target.spec or {}).get("format") != "airflow" or not target.blob:
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

    def _release(self, dag: DagRow) -> DagChange:
        dag.pinned = dag.pin_until_change = False
        if not self.store.file_defines(dag.source, dag.path, dag.dag_id):
            dag.deleted = True
            change = DagChange(dag.dag_id, "deleted", None, dag.path)
        else:
            dag.serve_version(self.store.newest_valid(dag))
            change = DagChange(dag.dag_id, "unpin", dag.served_version, dag.path)
        self.store.save_dags([dag])
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
            dag = require_dag(self.store, dag_id)
            if dag.paused == paused:
                state = "paused" if paused else "not paused"
                return ActionResult(action, f"{dag_id} is already {state}; nothing to do.")
            dag.paused = paused
            mates = [m for m in self._file_mates(dag) if m.paused != paused]
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

    # -- a whole source ----------------------------------------------------------------------
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
        python = any((v.spec or {}).get("format") == "airflow" for v in (a, b)) or (
            dag.path.endswith(".py")
        )

        def shown(v: Version) -> dict[str, Any] | None:
            """What people changed: an Airflow file's source, a dag-factory DAG's block (with
            its defaults), a format v1 spec."""
            if python:
                return None
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
