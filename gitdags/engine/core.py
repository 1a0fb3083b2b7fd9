"""The engine's syncing, publishing, workers and actions (see the package's docstring)."""

from __future__ import annotations

import dataclasses
import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitdags import faults
from gitdags.config import Settings, SourceConfig, missing_config
from gitdags.engine.reads import RECOVERED, EngineReads
from gitdags.errors import GitdagsError, PublishError, StoreError, damaged
from gitdags.git.source import GitSource, open_source
from gitdags.history.actions import OperatorActions
from gitdags.history.store import HistoryStore, now
from gitdags.model import (
    ActionResult,
    DagChange,
    SyncResult,
)
from gitdags.serve.hooks import payload
from gitdags.serve.publisher import Publisher, deploy_path, served_root, what_failed
from gitdags.sync import SourceSync

if TYPE_CHECKING:
    from gitdags.consumers import Consumers
    from gitdags.orchestrators.airflow.parsing import ParseWorker
    from gitdags.serve.deploy import Generation

log = logging.getLogger(__name__)

# Called after a committed change to what is served: (source, commit, changes).
Listener = Callable[[str, str | None, tuple[DagChange, ...]], None]


class _DryRun(Exception):
    """Raised inside the transaction of a dry run so that nothing is written."""


class SyncEngine(EngineReads):
    def __init__(
        self, settings: Settings, store: HistoryStore | None = None, *, readonly: bool = False
    ) -> None:
        self.settings = settings
        self.store = store or HistoryStore(settings.database, readonly=readonly)
        self.listeners: list[Listener] = []
        self.publisher: Publisher | None = None
        self.consumers: Consumers | None = None  # the orchestrators' APIs ([[consumers]])
        self.parse_workers: dict[str, ParseWorker] = {}  # by source
        self.actions = OperatorActions(
            settings, self.store, lambda name: self.git(settings.source(name)), self._notify
        )
        # the operator actions, offered as engine methods
        self.rollback = self.actions.rollback
        self.rollback_target = self.actions.rollback_target
        self.pin = self.actions.pin
        self.unpin = self.actions.unpin
        self.rollback_source = self.actions.rollback_source
        self.unpin_source = self.actions.unpin_source
        self.prune_source = self.actions.prune_source
        self.diff = self.actions.diff
        self.audit = self.actions.audit

    def pause(self, dag_id: str, *, reason: str = "", actor: str | None = None) -> ActionResult:
        """Stop serving a DAG (its file's DAGs with it), and pause it in each consumer."""
        return self._tell_consumers(self.actions.pause(dag_id, reason=reason, actor=actor), True)

    def resume(self, dag_id: str, *, reason: str = "", actor: str | None = None) -> ActionResult:
        """Serve a paused DAG again, and resume it in each consumer."""
        return self._tell_consumers(self.actions.resume(dag_id, reason=reason, actor=actor), False)

    def _tell_consumers(self, result: ActionResult, paused: bool) -> ActionResult:
        """A pause or resume, told to each consumer that runs the DAGs; the answers go into the
        action's audit entry and its message."""
        if self.consumers is None or not self.consumers.configs or result.audit_id is None:
            return result
        answers = {}
        for change in result.changes:
            dag = self.store.dag(change.dag_id)
            if dag is not None:
                answers[change.dag_id] = self.consumers.set_paused(dag.dag_id, dag.source, paused)
        with self.store.transaction():
            self.store.annotate_audit(result.audit_id, {"consumers": answers})
        failed = sorted(
            {a["error"] for by in answers.values() for a in by.values() if "error" in a}
        )
        told = sorted({c for by in answers.values() for c, a in by.items() if "error" not in a})
        verb = "paused" if paused else "resumed"
        note = f" It is {verb} in {', '.join(told)} too." if told else ""
        note += "".join(f" {e}" for e in failed)
        return dataclasses.replace(result, message=result.message + note)

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.close()
        for worker in self.parse_workers.values():
            worker.close()
        self.store.close()

    def parse_worker(self, config: SourceConfig) -> ParseWorker:
        """The long-lived Airflow parse worker of a source (started on use): one per source,
        so that repository code sees its own source's tree and no other."""
        from gitdags.orchestrators.airflow.parsing import ParseWorker

        worker = self.parse_workers.get(config.name)
        prefect = config.orchestrator == "prefect"  # Prefect's loader, in the same sandbox
        dagster = config.orchestrator == "dagster"  # Dagster's loader, likewise
        python = (
            config.prefect_python
            if prefect
            else config.dagster_python
            if dagster
            else config.airflow_python
        )
        if worker is not None and (worker.python, worker.sandbox) != (
            python,
            config.sandbox,
        ):
            worker.close()  # the config changed (SIGHUP)
            worker = None
        if worker is None:
            mirrors = self.settings.mirrors_dir
            extra: dict[str, Any] = {}
            if prefect:
                from gitdags.orchestrators.prefect.loading import check, worker_script

                extra = {
                    "script": worker_script(mirrors / "parse"),
                    "check": check,
                    "orchestrator": "prefect",
                }
            elif dagster:
                from gitdags.orchestrators.dagster.tier import LOAD_WORKER

                extra = {"script": LOAD_WORKER, "orchestrator": "dagster"}
            worker = ParseWorker(
                python,
                mirrors / "parse" / config.name,
                self.settings.parsing_processes,
                sandbox=config.sandbox,
                # the source's files as the deploy folder serves them: its subdir's content,
                # under its deploy_subdir (what Airflow's DAGs folder and sys.path see)
                readable=(self.tree_dir(config.name) / config.subdir,),
                private=self.private_paths(),
                served_under=config.deploy_subdir,
                **extra,
            )
            self.parse_workers[config.name] = worker
        return worker

    def tree_dir(self, source: str) -> Path:
        """Where a source's tree is checked out for Airflow to parse (all the sandbox sees of
        the source)."""
        return self.settings.mirrors_dir / f"{source}.tree"

    def private_paths(self) -> tuple[Path, ...]:
        """gitdags' own paths, which no folder shown to repository code may hold."""
        paths = [self.settings.database, self.settings.mirrors_dir, Path.home()]
        paths += [p for p in (self.settings.config_path, self.settings.deploy_dir) if p]
        paths += [p for p in (self.settings.git_repo,) if p]
        return tuple(paths)

    def publish(self, *, force: bool = True) -> Generation | None:
        """Write the deploy folder now; the new generation, or None when nothing changed."""
        if self.publisher is None or self.publisher.folder is None:
            raise GitdagsError(
                "No deploy folder is configured; set [publish] deploy_dir in config.toml."
            )
        return self.publisher.folder.publish(self.store, force=force)

    def git(self, config: SourceConfig, *, deadline: float | None = None) -> GitSource:
        mirror = self.settings.mirrors_dir / f"{config.name}.git"
        return open_source(config, mirror, self.settings.max_file_size, deadline=deadline)

    def _notify(
        self,
        source: str,
        commit: str | None,
        changes: tuple[DagChange, ...],
        *,
        queued: bool = False,
    ) -> str | None:
        """Tell the listeners (the deploy folder, hooks); what kept the deploy folder from
        being brought up to date, in one sentence, or None. The sync stands either way. An
        operator action's change goes to the hooks' outbox here (a sync's is `queued` in its
        transaction)."""
        if not queued and self.settings.hooks and changes and not self.store.readonly:
            with self.store.transaction():
                self.store.queue_delivery(payload(source, commit, changes))
        problem = None
        for listener in self.listeners:
            try:
                listener(source, commit, changes)
            except Exception as exc:
                problem = problem or self._publish_problem(exc)
                cause = exc.__cause__ if isinstance(exc, PublishError) else exc
                log.error("%s", problem, exc_info=not isinstance(cause, GitdagsError | OSError))
        return problem

    def _publish_problem(self, exc: Exception) -> str:
        if isinstance(exc, PublishError):  # it names each target that failed
            return str(exc)
        folder = self.publisher.folder if self.publisher is not None else None
        where = f"The deploy folder {folder.root}" if folder is not None else "Publishing"
        return (
            f"{where} was not brought up to date ({what_failed(exc)}); the DAGs are recorded "
            "and the next sync tries again."
        )

    # -- syncing -----------------------------------------------------------------------------
    def sync(
        self,
        source: str | None = None,
        *,
        dry_run: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[SyncResult]:
        configs = sources_to_sync(self.settings, source)
        return [self.sync_source(c, dry_run=dry_run, progress=progress) for c in configs]

    def sync_source(
        self,
        config: SourceConfig,
        *,
        dry_run: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> SyncResult:
        """Fetch and sync one source. Failures are recorded and returned, never raised."""
        started, started_at = time.perf_counter(), now()
        git = self.git(config, deadline=time.monotonic() + self.settings.sync_timeout)
        head: str | None = None
        result: SyncResult | None = None
        try:
            head = git.fetch()
            faults.point("after-fetch")
            if config.verify != "none":
                served = self.store.source_record(config.name)
                git.verify(served.served_commit if served else None, head)
            sync = SourceSync(
                self.settings,
                self.store,
                config,
                git,
                lambda: self.parse_worker(config).bounded(git.remaining),  # its deadline
            )
            if progress is not None:
                sync.progress = lambda done, total: progress(config.name, done, total)
            plan = sync.plan(head)  # reads and validates without holding the write lock
            faults.point("after-plan")
            git.remaining(1)  # past the deadline: fail now, before writing anything
            try:
                with self.store.transaction():
                    if not sync.still_current(plan):  # another process synced meanwhile
                        plan = sync.plan(head)
                    result = sync.record(plan, started_at)
                    result = dataclasses.replace(
                        result, duration_ms=(time.perf_counter() - started) * 1000, dry_run=dry_run
                    )
                    if dry_run:
                        raise _DryRun
                    result = self._record_success(config, result, head)
                    if self.settings.hooks and result.changes:  # delivered at least once
                        self.store.queue_delivery(
                            payload(config.name, result.to_commit, result.changes)
                        )
                    faults.point("in-record")
                    git.remaining(1)  # past the deadline: roll back, the last good state stays
            except _DryRun:
                pass
        except GitdagsError as exc:
            return self._fail(config, str(exc), head, started, started_at, dry_run)
        except sqlite3.DatabaseError as exc:  # a read outside a transaction hit a bad page
            message = damaged(self.settings.database, exc)
            return self._fail(config, message, head, started, started_at, dry_run)
        except Exception as exc:  # a bug must not stop the daemon or lose the last good state
            log.exception("sync of source %s failed", config.name)
            message = f"Internal error while syncing {config.name!r}: {exc!r}; please report it."
            return self._fail(config, message, head, started, started_at, dry_run)
        assert result is not None
        faults.point("after-commit")
        problem = None
        if not dry_run and result.changes:
            problem = self._notify(config.name, result.to_commit, result.changes, queued=True)
        elif not dry_run and self.publisher is not None and self.publisher.behind_possible:
            try:  # a sync or action killed before it published: bring every target up
                self.publisher.catch_up(config.name, result.to_commit)
            except Exception as exc:
                problem = self._publish_problem(exc)
                log.error("%s", problem)
        return dataclasses.replace(result, publish_error=problem) if problem else result

    def _record_success(self, config: SourceConfig, result: SyncResult, head: str) -> SyncResult:
        """The reconcile record (and the sync log) after a sync that worked. A poll that found
        nothing new writes nothing, unless it ends a run of failures: that one is logged with
        a note, so that `syncs` and `status` show the recovery."""
        before = self.store.source_record(config.name)
        if result.nothing_new and before is not None and not before.last_error and not result.note:
            return result
        if before is not None and before.failures:
            said = f"{RECOVERED} {before.failures} failed syncs"
            result = dataclasses.replace(
                result, note=f"{result.note}; {said}" if result.note else said
            )
        if not result.nothing_new or result.forced or result.note:
            self.store.insert_sync(result)
        self.store.record_synced(
            config.name, config.safe_url, config.branch, config.fingerprint(), head
        )
        self.store.bump()
        return result

    def _fail(
        self,
        config: SourceConfig,
        message: str,
        head: str | None,
        started: float,
        started_at: str,
        dry_run: bool,
    ) -> SyncResult:
        duration = (time.perf_counter() - started) * 1000
        # said once by whoever runs the sync: the CLI prints the result, the daemon logs it
        log.debug("sync of source %s failed: %s", config.name, message)
        before = self.store.source_record(config.name)
        result = SyncResult(
            config.name,
            before.served_commit if before else None,
            None,
            duration_ms=duration,
            error=message,
            dry_run=dry_run,
            started_at=started_at,
        )
        if dry_run:
            return result
        try:
            with self.store.transaction():
                self.store.record_failed(config.name, config.safe_url, config.branch, head, message)
                self.store.insert_sync(result)
                self.store.bump()
        except StoreError as exc:  # the database itself failed: the sync's result says so
            log.error("cannot record the failed sync of %s: %s", config.name, exc)
        return result

    def sync_now(
        self, source: str | None = None, *, reason: str = "", actor: str | None = None
    ) -> ActionResult:
        """Sync one source (or all) now, as an operator action: recorded in the audit log."""
        results = self.sync(source)
        audit_id = self.actions.audit_sync(source, [r.to_dict() for r in results], reason, actor)
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


def sources_to_sync(settings: Settings, source: str | None = None) -> list[SourceConfig]:
    """The sources a sync covers: the one named, else all; an error when there are none."""
    configs = [settings.source(source)] if source else list(settings.sources)
    if not configs:
        if settings.config_path is None:
            raise missing_config()
        raise GitdagsError(
            f"No sources are configured; add a [[sources]] table to {settings.config_path}."
        )
    return configs


def build_engine(settings: Settings, *, readonly: bool = False) -> SyncEngine:
    """The one factory for the CLI, the console, the daemon and the tests. A read-only engine
    (for commands that only read) opens the database read-only and never creates it."""
    engine = SyncEngine(settings, readonly=readonly)
    targets = (
        settings.deploy_dir,
        settings.hooks,
        settings.git_repo,
        settings.s3,
        settings.prefect,
    )
    if not readonly and any(targets):
        engine.publisher = Publisher(settings, engine.store)
        engine.listeners.append(engine.publisher)
    if settings.consumers:
        from gitdags.consumers import Consumers

        root = served_root(settings)
        engine.consumers = Consumers(
            settings,
            engine.store,
            current=lambda: current_generation(root),
            deploy_path=functools.partial(deploy_path, settings),
        )
    return engine


def current_generation(root: Path | None) -> Path | None:
    link = root / "current" if root is not None else None
    return link.resolve() if link is not None and link.is_symlink() else None
