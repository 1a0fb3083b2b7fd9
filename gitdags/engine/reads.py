"""What the engine reads for the CLI, the console and the daemon: DAGs (whole, streamed or a
page at a time, each with what the consumers have of it), versions, a DAG shown, each source's
status, the sync log and the served set. A mixin of `SyncEngine` over its store and settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from gitdags.config import Settings
from gitdags.errors import GitdagsError
from gitdags.history.actions import require_dag, require_version
from gitdags.history.store import HistoryStore
from gitdags.model import (
    CONSUMER_STATES,
    STATUSES,
    DagDetail,
    DagPage,
    DagQuery,
    DagState,
    ServedDag,
    SourceRecord,
    SourceStatus,
    SyncResult,
    Version,
)

RECOVERED = "recovered after"  # the note of a sync that ended a run of failures


class EngineReads:
    settings: Settings
    store: HistoryStore

    def list_dags(self, *, source: str | None = None, status: str | None = None) -> list[DagState]:
        return list(self.iter_dags(source=source, status=status))

    def iter_dags(
        self, *, source: str | None = None, status: str | None = None
    ) -> Iterator[DagState]:
        """The DAGs, a page at a time: `list --json` streams them."""
        if status and status not in STATUSES:
            raise GitdagsError(f"Unknown status {status!r}; use one of {', '.join(STATUSES)}.")
        states = self.store.iter_dag_states(source=source, status=status)
        if not self.settings.consumers:
            return states
        found = self._consumer_states()
        return (
            dataclasses.replace(d, consumers=found[d.dag_id]) if d.dag_id in found else d
            for d in states
        )

    def dag_page(
        self, query: DagQuery, limit: int, *, around: str | None = None, at: int = 0
    ) -> DagPage:
        """A window of the DAGs the query finds, with counts (HistoryStore.dag_page)."""
        page = self.store.dag_page(query, limit, around=around, at=at)
        return dataclasses.replace(page, rows=tuple(self._with_consumers(page.rows)))

    def dag_rows(
        self, query: DagQuery, offset: int, limit: int, *, total: int | None = None
    ) -> list[DagState]:
        """`limit` DAGs the query finds, from `offset` (HistoryStore.dag_rows)."""
        return self._with_consumers(self.store.dag_rows(query, offset, limit, total=total))

    def find_dags(self, letters: str, whole: str, limit: int) -> list[DagState]:
        """The command palette's candidates (HistoryStore.find_dags)."""
        return self.store.find_dags(letters, whole, limit)

    def dag(self, dag_id: str) -> DagState:
        return self._with_consumers([require_dag(self.store, dag_id).state()])[0]

    def _with_consumers(self, dags: list[DagState] | tuple[DagState, ...]) -> list[DagState]:
        """These DAGs with what each consumer has of them (as its last poll found)."""
        found = self._consumer_states([d.dag_id for d in dags]) if self.settings.consumers else {}
        return [
            dataclasses.replace(d, consumers=found[d.dag_id]) if d.dag_id in found else d
            for d in dags
        ]

    def _consumer_states(self, dag_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """dag -> consumer -> what it has of the DAG (of these DAGs, or of all)."""
        found: dict[str, dict[str, Any]] = {}
        rows = (
            self.store.consumer_dags() if dag_ids is None else self.store.consumer_dags_in(dag_ids)
        )
        for row in rows:
            found.setdefault(row.dag_id, {})[row.consumer] = {
                k: v for k, v in row.to_dict().items() if k not in ("consumer", "dag_id")
            }
        return found

    def history(self, dag_id: str) -> list[Version]:
        return self.store.versions(require_dag(self.store, dag_id))

    def version(self, dag_id: str, number: int | None = None) -> Version:
        """Version `number` of a DAG; by default the served one, else the newest."""
        dag = require_dag(self.store, dag_id)
        wanted = number or dag.served_version or dag.newest_version
        if wanted is None:
            raise GitdagsError(f"DAG {dag_id!r} has no versions yet.")
        return require_version(self.store, dag, wanted)

    def show(self, dag_id: str, number: int | None = None) -> DagDetail:
        """A DAG with the spec of its served (or the given) version and the issues to fix."""
        dag = require_dag(self.store, dag_id)
        shown = self.version(dag_id, number) if (number or dag.newest_version) else None
        issues = shown.issues if shown else ()
        if number is None and dag.newest_version and dag.newest_version != dag.served_version:
            issues = require_version(self.store, dag, dag.newest_version).issues
        spec = shown.spec if shown and (number or dag.served_version) else None
        state = self._with_consumers([dag.state()])[0]
        return DagDetail(state, shown.version if shown else None, spec, issues)

    def source_record(self, name: str) -> SourceRecord | None:
        return self.store.source_record(name)

    def status(self) -> list[SourceStatus]:
        records = self.store.source_records()
        counts = self.store.dag_counts()
        file_errors = self.store.file_error_counts()
        hooks = self.store.hooks()
        settings = self.settings
        targets = {  # a target no longer configured is not shown (nor its last error)
            "deploy folder": bool(settings.deploy_dir or settings.git_repo or settings.s3),
            "served branch": bool(settings.git_repo),
            "s3": settings.s3 is not None,
            "dagster": settings.dagster is not None,
        }
        published = {t: v for t, v in self.store.publish_targets().items() if targets.get(t)}
        configured = {s.name: s for s in self.settings.sources}
        names = [*configured, *(n for n in records if n not in configured)]
        consumers = self.store.consumer_counts() if settings.consumers else {}
        names_of = [c.name for c in settings.consumers]
        polls = {c.name: c for c in self.store.consumer_statuses(names_of)}
        out = []
        for name in names:
            r = records.get(name) or SourceRecord(name)
            cfg = configured.get(name)
            recovered = ""
            if not r.last_error:  # the last run of failures it ended, while it is the news
                last = self.store.last_sync_note(name)  # not its (long) list of changes
                if last and RECOVERED in last[1]:
                    recovered = f"{last[0]}: {last[1]}"
            out.append(
                SourceStatus(
                    source=name,
                    url=cfg.safe_url if cfg else r.url,
                    branch=cfg.branch if cfg else r.branch,
                    newest_commit=r.newest_commit,
                    served_commit=r.pinned_commit or r.served_commit,
                    last_sync_at=r.last_sync_at,
                    last_error=r.last_error,
                    last_error_at=r.last_error_at,
                    pinned_commit=r.pinned_commit,
                    counts={s: counts.get(name, {}).get(s, 0) for s in STATUSES},
                    hooks=hooks,
                    failures=r.failures,
                    last_attempt_at=r.last_attempt_at,
                    file_errors=file_errors.get(name, 0),
                    publish=published,
                    sandbox=cfg.sandbox_state if cfg else None,
                    recovered=recovered,
                    consumers={
                        c.name: {
                            **{state: 0 for state in CONSUMER_STATES},
                            **consumers.get((c.name, name), {}),
                            "checked_at": polls[c.name].checked_at,
                            "error": polls[c.name].error,
                        }
                        for c in settings.consumers
                        if c.runs(name)
                    },
                )
            )
        return out

    def syncs(self, *, source: str | None = None, limit: int = 50) -> list[SyncResult]:
        return self.store.syncs(source=source, limit=limit)

    def served(self) -> list[ServedDag]:
        """The served set: valid, enabled, unpaused, not deleted; each with its spec."""
        return self.store.served()

    def iter_served(self) -> Iterator[ServedDag]:
        """The served set, a page at a time: `export` streams it."""
        return self.store.iter_served()

    def generation(self) -> int:
        return self.store.generation()
