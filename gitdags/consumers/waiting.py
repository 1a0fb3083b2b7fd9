"""`gitdags wait`: has a commit landed? (`argocd app wait` for DAGs.) One `Waiter` answers, as
often as it is asked, where a commit is: not synced yet, served, and for each DAG it changed,
landed or not in each consumer; or failed, when a DAG of it is invalid in gitdags, broken in a
consumer, or can never land (paused, pinned to an older version)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from gitdags.config import Settings, SourceConfig
from gitdags.errors import ActionError, GitdagsError, NotFoundError
from gitdags.git.source import GitSource
from gitdags.history.store import HistoryStore
from gitdags.model import ConsumerDag, DagChange, SyncResult


@dataclass(frozen=True)
class Progress:
    done: bool = False  # the commit is served and every DAG it changed landed everywhere
    failed: tuple[str, ...] = ()  # why it never will: one sentence per DAG
    line: str = ""  # where it is now, in a few words
    dags: dict[str, dict[str, str]] = field(default_factory=dict)  # dag -> consumer -> state


class Waiter:
    def __init__(
        self,
        settings: Settings,
        store: HistoryStore,
        git: Callable[[SourceConfig], GitSource],
        *,
        source: str | None = None,
        commit: str | None = None,
        dag_ids: tuple[str, ...] = (),
    ) -> None:
        self.settings = settings
        self.store = store
        self.dag_ids = dag_ids
        self.config = self._source(source, dag_ids)
        self.git = git(self.config)
        self.wanted = commit  # resolved to a full sha once the mirror has it
        if commit is None:
            record = store.source_record(self.config.name)
            if record is None or not record.newest_commit:
                raise ActionError(
                    f"Source {self.config.name} has not been synced yet, so it has no newest "
                    "commit to wait for; run `gitdags sync` or give --commit."
                )
            self.wanted = record.newest_commit
        self.commit: str | None = None
        self.sync: SyncResult | None = None  # the sync that took the commit in, once found
        self.changed: list[DagChange] | None = None  # the DAGs it changed, once served

    def _source(self, name: str | None, dag_ids: tuple[str, ...]) -> SourceConfig:
        if name:
            return self.settings.source(name)
        for dag_id in dag_ids:
            dag = self.store.dag(dag_id)
            if dag is None:
                raise NotFoundError(f"There is no DAG {dag_id!r}; see `gitdags list`.")
            return self.settings.source(dag.source)
        if len(self.settings.sources) == 1:
            return self.settings.sources[0]
        raise ActionError(
            "Several sources are configured; say which one to wait for with --source, "
            "or name its DAGs."
        )

    def check(self) -> Progress:
        name = self.config.name
        record = self.store.source_record(name)
        served = record and (record.pinned_commit or record.served_commit)
        if self.commit is None and self.wanted:
            with contextlib.suppress(GitdagsError):  # a mirror not made yet
                self.commit = self.git.resolve(self.wanted)
        commit = self.commit
        short = (self.wanted or "")[:12]
        if commit is None or not served or not self._at_or_after(commit, served):
            failing = record is not None and record.failures
            why = f"; its last sync failed: {record.last_error}" if record and failing else ""
            return Progress(line=f"{name}: {short} is not synced yet{why}")
        if self.changed is None:  # once served, what the commit changed stays as it is
            self.changed = self._changes(commit)
        changes = self.changed
        failed: list[str] = []
        dags: dict[str, dict[str, str]] = {}
        waiting: list[str] = []
        consumers = [c for c in self.settings.consumers if c.runs(name)]
        states = {c.name: _by_dag(self.store.consumer_dags(c.name)) for c in consumers}
        for change in changes:
            dag = self.store.dag(change.dag_id)
            if change.change == "invalid":
                why = self._why(change)
                failed.append(f"{change.dag_id} is invalid in gitdags at {short}{why}")
                continue
            if change.change == "deleted" or dag is None or dag.deleted:
                continue  # retired: nothing to land
            wanted = change.version or 0
            if dag.paused:
                failed.append(f"{change.dag_id} is paused in gitdags, so it is not served")
                continue
            if (dag.served_version or 0) < wanted:
                failed.append(
                    f"{change.dag_id} is pinned at v{dag.served_version}, so v{wanted} of "
                    f"{short} is not served; `gitdags unpin {change.dag_id}` serves it"
                )
                continue
            dags[change.dag_id] = {}
            for consumer in consumers:
                there = states[consumer.name].get(change.dag_id)
                old = there is None or (there.version or 0) < wanted
                state = "pending" if old else there.state
                dags[change.dag_id][consumer.name] = state
                if state == "broken":
                    failed.append(
                        f"{change.dag_id} v{wanted} is served but {consumer.name} cannot import "
                        f"it: {there.error if there else ''}"
                    )
                elif state != "landed":
                    waiting.append(f"{change.dag_id} {state} in {consumer.name}")
        if failed:
            return Progress(failed=tuple(failed), dags=dags, line="; ".join(failed))
        total = len(dags)
        if not consumers:
            line = f"{name}: {short} is served ({total} DAGs changed; no [[consumers]] to ask)"
            return Progress(done=True, dags=dags, line=line)
        if waiting:
            landed = sum(all(s == "landed" for s in by.values()) for by in dags.values())
            asked = self.store.consumer_statuses(c.name for c in consumers)
            waiting[:0] = [f"{c.name} cannot be asked: {c.error}" for c in asked if c.error]
            more = f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
            line = (
                f"{name}: {short} served; {landed}/{total} DAGs landed; waiting for "
                + ", ".join(waiting[:3])
                + more
            )
            return Progress(dags=dags, line=line)
        names = ", ".join(c.name for c in consumers)
        line = f"{name}: {short} landed: {total} DAGs changed, each runs in {names}"
        return Progress(done=True, dags=dags, line=line)

    def _at_or_after(self, commit: str, served: str) -> bool:
        return commit == served or self.git.is_ancestor(commit, served)

    def _changes(self, commit: str) -> list[DagChange]:
        """The DAGs the commit changed, as the sync that took it in recorded them (a sync of
        several commits: those of the files the commit itself changed), or the DAGs named."""
        if self.dag_ids:
            found = []
            for dag_id in self.dag_ids:
                dag = self.store.dag(dag_id)
                if dag is None:
                    raise NotFoundError(f"There is no DAG {dag_id!r}; see `gitdags list`.")
                version = self._version_at(dag_id, commit)
                found.append(DagChange(dag_id, "changed", version, dag.path))
            return found
        sync = self._sync_of(commit)
        if sync is None:
            return []
        if sync.from_commit and sync.to_commit != commit:
            parent = self.git.resolve(commit + "^")  # a merge: against its first parent
            paths = {c.path for c in self.git.diff(parent, commit)} if parent else None
            if paths is not None:
                return [c for c in sync.changes if c.path in paths or c.old_path in paths]
        return list(sync.changes)

    def _sync_of(self, commit: str) -> SyncResult | None:
        """The sync that took `commit` in (found once: it walks the sync log with a git call
        per sync)."""
        if self.sync is None:
            self.sync = self._find_sync(commit)
        return self.sync

    def _find_sync(self, commit: str) -> SyncResult | None:
        for sync in self.store.syncs(source=self.config.name, limit=500):
            if sync.error or not sync.to_commit:
                continue
            if not self._at_or_after(commit, sync.to_commit):
                continue
            if sync.from_commit is None or not self._at_or_after(commit, sync.from_commit):
                return sync
        return None

    def _version_at(self, dag_id: str, commit: str) -> int | None:
        """The newest version of the DAG recorded at or before `commit`."""
        dag = self.store.dag(dag_id)
        if dag is None:
            return None
        for version in self.store.versions(dag):
            if self._at_or_after(version.commit, commit):
                return version.version
        return None

    def _why(self, change: DagChange) -> str:
        sync = self._sync_of(self.commit or "")
        issues = [i for i in (sync.issues if sync else ()) if i.file == change.path]
        errors = [i for i in issues if i.severity == "error"] or issues
        return f" ({errors[0].code}: {errors[0].message})" if errors else ""


def _by_dag(found: list[ConsumerDag]) -> dict[str, ConsumerDag]:
    return {d.dag_id: d for d in found}
