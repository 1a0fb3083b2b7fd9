"""What the operator actions share: the DAG, version or commit named, the audit, a pin's release."""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable

from gitdags.config import Settings
from gitdags.errors import ActionError, NotFoundError, UsageError
from gitdags.git.source import GitSource
from gitdags.history.store import HistoryStore
from gitdags.model import DagChange, DagRow, Version

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


class ActionCore:
    """The store, the mirrors and the listeners an action uses, and the steps actions share."""

    settings: Settings
    store: HistoryStore
    git: Callable[[str], GitSource]  # source name -> its mirror
    notify: Notify

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
