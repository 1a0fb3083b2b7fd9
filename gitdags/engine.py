"""The one place that composes config, git, validation and the store.

Every user action is one `SyncEngine` method that returns model objects; the CLI, the console,
the daemon and the tests all build it with `build_engine(settings)`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from gitdags.actions import OperatorActions
from gitdags.config import Settings, SourceConfig
from gitdags.errors import GitdagsError, NotFoundError
from gitdags.model import STATUSES, DagChange, DagState, Issue, SourceStatus, SyncResult, Version
from gitdags.registry import served_set
from gitdags.source import GitSource
from gitdags.store import HistoryStore, dumps, loads, now
from gitdags.sync import SourceSync

log = logging.getLogger(__name__)

# Called after a committed change to what is served: (source, commit, changes).
Listener = Callable[[str, str | None, tuple[DagChange, ...]], None]


class _DryRun(Exception):
    """Raised inside the transaction of a dry run so that nothing is written."""


class SyncEngine(OperatorActions):
    def __init__(self, settings: Settings, store: HistoryStore | None = None) -> None:
        self.settings = settings
        self.store = store or HistoryStore(settings.database)
        self.listeners: list[Listener] = []
        self.publisher: Publisher | None = None

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.close()
        self.store.close()

    def publish(self, *, force: bool = True) -> Any:
        """Write the deploy folder now; the new generation, or None when nothing changed."""
        if self.publisher is None or self.publisher.folder is None:
            raise GitdagsError(
                "No deploy folder is configured; set [publish] deploy_dir in config.toml."
            )
        return self.publisher.folder.publish(self.store, force=force)

    def git(self, config: SourceConfig) -> GitSource:
        mirror = self.settings.mirrors_dir / f"{config.name}.git"
        return GitSource(config, mirror, self.settings.max_file_size)

    def _notify(self, source: str, commit: str | None, changes: tuple[DagChange, ...]) -> None:
        for listener in self.listeners:
            try:
                listener(source, commit, changes)
            except Exception:  # a consumer's failure never fails a sync
                log.exception("change listener %r failed", listener)

    # -- syncing -----------------------------------------------------------------------------
    def sync(self, source: str | None = None, *, dry_run: bool = False) -> list[SyncResult]:
        configs = [self.settings.source(source)] if source else list(self.settings.sources)
        if not configs:
            raise GitdagsError(
                "No sources are configured; add a [[sources]] table to config.toml "
                "(or run `gitdags init`)."
            )
        return [self.sync_source(c, dry_run=dry_run) for c in configs]

    def sync_source(self, config: SourceConfig, *, dry_run: bool = False) -> SyncResult:
        """Fetch and sync one source. Failures are recorded and returned, never raised."""
        started, started_at = time.perf_counter(), now()
        git = self.git(config)
        result: SyncResult | None = None
        try:
            head = git.fetch()
            sync = SourceSync(self.settings, self.store, config, git)
            plan = sync.plan(head)  # reads and validates without holding the write lock
            try:
                with self.store.transaction():
                    if not sync.still_current(plan):  # another process synced meanwhile
                        plan = sync.plan(head)
                    result = sync.record(plan, started_at)
                    if dry_run:
                        raise _DryRun
                    if not result.nothing_new or result.forced:
                        self._record_sync(result, started)
            except _DryRun:
                pass
        except GitdagsError as exc:
            return self._fail(config, str(exc), started, started_at, dry_run)
        except Exception as exc:  # a bug must not stop the daemon or lose the last good state
            log.exception("sync of source %s failed", config.name)
            message = f"Internal error while syncing {config.name!r}: {exc!r}; please report it."
            return self._fail(config, message, started, started_at, dry_run)
        assert result is not None
        duration = (time.perf_counter() - started) * 1000
        result = dataclasses.replace(result, duration_ms=duration, dry_run=dry_run)
        if not dry_run and result.changes:
            self._notify(config.name, result.to_commit, result.changes)
        return result

    def _record_sync(self, result: SyncResult, started: float) -> None:
        self.store.insert(
            "syncs",
            {
                "source": result.source,
                "started_at": result.started_at,
                "from_commit": result.from_commit,
                "to_commit": result.to_commit,
                "added": result.added,
                "changed": result.changed,
                "deleted": result.deleted,
                "invalid": result.invalid,
                "unchanged": result.unchanged,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "forced": int(result.forced),
                "error": None,
                "changes": dumps([c.to_dict() for c in result.changes]),
                "issues": dumps([i.to_dict() for i in result.issues]),
            },
        )
        self.store.bump()

    def _fail(
        self, config: SourceConfig, message: str, started: float, started_at: str, dry_run: bool
    ) -> SyncResult:
        duration = (time.perf_counter() - started) * 1000
        log.warning("sync of source %s failed: %s", config.name, message)
        src = self.store.row("SELECT * FROM sources WHERE name = ?", (config.name,))
        result = SyncResult(
            config.name,
            src["served_commit"] if src else None,
            None,
            duration_ms=duration,
            error=message,
            dry_run=dry_run,
            started_at=started_at,
        )
        if dry_run:
            return result
        with self.store.transaction():
            since = src["last_error_at"] if src and src["last_error"] else now()
            self.store.upsert(
                "sources",
                {
                    "name": config.name,
                    "url": config.safe_url,
                    "branch": config.branch,
                    "last_error": message,
                    "last_error_at": since,
                    "failures": (src["failures"] if src else 0) + 1,
                },
                ("name",),
            )
            self.store.insert(
                "syncs",
                {
                    "source": config.name,
                    "started_at": started_at,
                    "from_commit": result.from_commit,
                    "to_commit": None,
                    "added": 0,
                    "changed": 0,
                    "deleted": 0,
                    "invalid": 0,
                    "unchanged": 0,
                    "duration_ms": round(duration, 1),
                    "forced": 0,
                    "error": message,
                    "changes": "[]",
                    "issues": "[]",
                },
            )
            self.store.bump()
        return result

    # -- reading -----------------------------------------------------------------------------
    def list_dags(self, *, source: str | None = None, status: str | None = None) -> list[DagState]:
        sql, params = "SELECT * FROM dags", []
        where = []
        if source:
            where.append("source = ?")
            params.append(source)
        if status:
            if status not in STATUSES:
                raise GitdagsError(f"Unknown status {status!r}; use one of {', '.join(STATUSES)}.")
            where.append("status = ?")
            params.append(status)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_dag_state(r) for r in self.store.rows(sql + " ORDER BY dag_id", params)]

    def dag(self, dag_id: str) -> DagState:
        row = self.store.row("SELECT * FROM dags WHERE dag_id = ?", (dag_id,))
        if row is None:
            raise NotFoundError(f"There is no DAG {dag_id!r}; `gitdags list` shows the DAGs.")
        return _dag_state(row)

    def history(self, dag_id: str) -> list[Version]:
        dag = self.dag(dag_id)
        rows = self.store.rows(
            "SELECT * FROM versions WHERE dag_id = ? ORDER BY version DESC", (dag_id,)
        )
        return [_version(r, dag) for r in rows]

    def version(self, dag_id: str, number: int | None = None) -> Version:
        """Version `number` of a DAG; by default the served one, else the newest."""
        dag = self.dag(dag_id)
        number = number or dag.served_version or dag.newest_version
        row = self.store.row(
            "SELECT * FROM versions WHERE dag_id = ? AND version = ?", (dag_id, number)
        )
        if row is None:
            raise NotFoundError(
                f"DAG {dag_id!r} has no version {number}; `gitdags history {dag_id}` lists them."
            )
        return _version(row, dag)

    def show(self, dag_id: str, number: int | None = None) -> dict[str, Any]:
        """A DAG with the spec of its served (or the given) version and the issues to fix."""
        dag = self.dag(dag_id)
        shown = self.version(dag_id, number) if (number or dag.newest_version) else None
        issues = shown.issues if shown else ()
        if number is None and dag.newest_version and dag.newest_version != dag.served_version:
            issues = self.version(dag_id, dag.newest_version).issues
        spec = shown.spec if shown and (number or dag.served_version) else None
        return {
            **dag.to_dict(),
            "version": shown.version if shown else None,
            "spec": spec,
            "issues": [i.to_dict() for i in issues],
        }

    def status(self) -> list[SourceStatus]:
        rows = {r["name"]: r for r in self.store.rows("SELECT * FROM sources")}
        counts: dict[str, dict[str, int]] = {}
        for r in self.store.rows(
            "SELECT source, status, count(*) AS n FROM dags GROUP BY source, status"
        ):
            counts.setdefault(r["source"], {})[r["status"]] = r["n"]
        hooks = [
            {k: r[k] for k in ("name", "last_ok_at", "last_error", "last_error_at", "failures")}
            for r in self.store.rows("SELECT * FROM hooks ORDER BY name")
        ]
        names = [s.name for s in self.settings.sources] + [
            n for n in rows if n not in {s.name for s in self.settings.sources}
        ]
        out = []
        for name in names:
            r = rows.get(name, {})
            cfg = next((s for s in self.settings.sources if s.name == name), None)
            out.append(
                SourceStatus(
                    source=name,
                    url=cfg.safe_url if cfg else r.get("url", ""),
                    branch=cfg.branch if cfg else r.get("branch", ""),
                    newest_commit=r.get("newest_commit"),
                    served_commit=r.get("pinned_commit") or r.get("served_commit"),
                    last_sync_at=r.get("last_sync_at"),
                    last_error=r.get("last_error"),
                    last_error_at=r.get("last_error_at"),
                    pinned_commit=r.get("pinned_commit"),
                    counts={s: counts.get(name, {}).get(s, 0) for s in STATUSES},
                    hooks=hooks,
                )
            )
        return out

    def syncs(self, *, source: str | None = None, limit: int = 50) -> list[SyncResult]:
        sql = "SELECT * FROM syncs"
        params: list[Any] = []
        if source:
            sql += " WHERE source = ?"
            params.append(source)
        rows = self.store.rows(sql + " ORDER BY id DESC LIMIT ?", [*params, limit])
        return [
            SyncResult(
                source=r["source"],
                from_commit=r["from_commit"],
                to_commit=r["to_commit"],
                added=r["added"],
                changed=r["changed"],
                deleted=r["deleted"],
                invalid=r["invalid"],
                unchanged=r["unchanged"],
                duration_ms=r["duration_ms"],
                forced=bool(r["forced"]),
                error=r["error"],
                started_at=r["started_at"],
                changes=tuple(DagChange(**c) for c in loads(r["changes"]) or []),
                issues=tuple(Issue.from_dict(i) for i in loads(r["issues"]) or []),
            )
            for r in rows
        ]

    def served(self) -> list[dict[str, Any]]:
        """The served set: valid, enabled, unpaused, not deleted; each with its spec."""
        return served_set(self.store)

    def generation(self) -> int:
        return self.store.generation()


class Publisher:
    """A listener: after each change to what is served, the deploy folder and the hooks."""

    def __init__(self, settings: Settings, store: HistoryStore) -> None:
        from gitdags.hooks import HookRunner
        from gitdags.publish import DeployFolder

        self.store = store
        self.folder = (
            DeployFolder(settings.deploy_dir, settings.keep, settings.airflow_template)
            if settings.deploy_dir
            else None
        )
        self.hooks = HookRunner(settings.hooks, settings.database) if settings.hooks else None

    def __call__(self, source: str, commit: str | None, changes: tuple[DagChange, ...]) -> None:
        if self.folder is not None:
            self.folder.publish(self.store)
        if self.hooks is not None:
            self.hooks(source, commit, changes)

    def close(self) -> None:
        if self.hooks is not None:
            self.hooks.close()


def build_engine(settings: Settings) -> SyncEngine:
    """The one factory for the CLI, the console, the daemon and the tests."""
    engine = SyncEngine(settings)
    if settings.deploy_dir or settings.hooks:
        engine.publisher = Publisher(settings, engine.store)
        engine.listeners.append(engine.publisher)
    return engine


def _dag_state(r: dict[str, Any]) -> DagState:
    return DagState(
        dag_id=r["dag_id"],
        source=r["source"],
        path=r["path"],
        status=r["status"],
        paused=bool(r["paused"]),
        pinned=bool(r["pinned"]),
        pin_until_change=bool(r["pin_until_change"]),
        served_version=r["served_version"],
        newest_version=r["newest_version"],
        served_commit=r["served_commit"],
        owner=r["owner"],
        tags=tuple(loads(r["tags"]) or ()),
        schedule=r["schedule"],
        updated_at=r["updated_at"],
    )


def _version(r: dict[str, Any], dag: DagState) -> Version:
    return Version(
        dag_id=r["dag_id"],
        version=r["version"],
        source=r["source"],
        commit=r["commit_sha"],
        author=r["author"] or "",
        committed_at=r["committed_at"] or "",
        message=r["message"] or "",
        path=r["path"],
        content_hash=r["content_hash"],
        valid=bool(r["valid"]),
        served=r["version"] == dag.served_version and dag.status not in ("deleted",),
        issues=tuple(Issue.from_dict(i) for i in loads(r["issues"]) or []),
        spec=loads(r["spec"]),
        content=r["content"] or "",
        recorded_at=r["recorded_at"] or "",
    )
