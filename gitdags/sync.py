"""One sync of one source: diff the new commit against the last synced one, read what changed
into definitions (a file yields zero or more DAGs), and record it. Runs inside the caller's
transaction.

Rules (PRODUCT.md §3): unchanged content makes no new version; an invalid file never replaces
the served version; a deleted file retires its DAGs and keeps their history, and so does a DAG
that disappears from a file that still exists; a DAG keeps its history when its file is renamed
(a DAG is its `dag_id`, wherever it lives); a file that cannot be read keeps the DAGs it held,
invalid, their last good version served; a file that is not a DAG definition yields no DAG. A
force-pushed branch or changed source settings are compared against the files the database
holds. DAGs that wait for a DAG id (a duplicate) or depend on a DAG that this sync retires,
invalidates or adds are checked again in the same sync (the source's own files) or at the next
sync of their source.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gitdags.checks.crosscheck import check_across, whole_files
from gitdags.checks.pool import DeadlinePassed, check_all, context, packing_dictionary
from gitdags.config import Settings, SourceConfig
from gitdags.git.paths import AIRFLOWIGNORE, Change, Entry, unchanged
from gitdags.git.source import GitSource
from gitdags.history.packing import Dictionary
from gitdags.history.store import FileRow, HistoryStore, now
from gitdags.kinds import PYTHON_KINDS, ReadContext, misnamed
from gitdags.model import (
    Commit,
    DagChange,
    DagFile,
    DagRow,
    FileDefinitions,
    Issue,
    SyncResult,
)
from gitdags.orchestrators import tiers
from gitdags.orchestrators.airflow.dagfactory_defaults import is_defaults
from gitdags.plan import Plan

if TYPE_CHECKING:
    from gitdags.orchestrators.airflow.parsing import ParseWorker

log = logging.getLogger(__name__)


class StoreCatalog:
    """Answers `crosscheck.check_across` about DAGs outside the files of this sync."""

    def __init__(self, store: HistoryStore, source: str, released: set[tuple[str, str]]) -> None:
        self.store = store
        self.source = source
        self.released = released  # (path, dag_id) of this source that the path gives up

    def owners(self, dag_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        return {
            dag_id: owner
            for dag_id, owner in self.store.owners(dag_ids).items()
            if not (owner[0] == self.source and (owner[1], dag_id) in self.released)
        }

    def depends_on(self, dag_id: str) -> list[str]:
        return self.store.depends_on(dag_id)


@dataclass
class _Counts:
    added: int = 0
    changed: int = 0
    deleted: int = 0
    invalid: int = 0
    changes: list[DagChange] = field(default_factory=list)

    def add(self, change: DagChange) -> None:
        self.changes.append(change)
        if change.change in ("added", "restored"):
            self.added += 1
        elif change.change in ("changed", "renamed"):
            self.changed += 1
        elif change.change == "deleted":
            self.deleted += 1
        elif change.change == "invalid":
            self.invalid += 1


class SourceSync:
    """Brings one source's rows in the store up to `head`."""

    def __init__(
        self,
        settings: Settings,
        store: HistoryStore,
        config: SourceConfig,
        git: GitSource,
        worker: Callable[[], ParseWorker] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.config = config
        self.git = git
        self.name = config.name
        self.worker = worker  # the Airflow parse worker, for python = "airflow"
        self.progress: Callable[[int, int], None] | None = None  # files checked, of how many
        self.dictionary: Dictionary | None = None  # what the pool packs versions with

    # -- planning: reads only --------------------------------------------------------------------
    def plan(self, head: str) -> Plan:
        """Everything that only reads: the diff, the changed blobs, their validation. It runs
        outside the write transaction, so a large sync never blocks other writers for long."""
        src = self.store.source_record(self.name)
        old = src.served_commit if src else None
        fingerprint = src.fingerprint if src else None
        same_config = fingerprint == self.config.fingerprint()
        plan = Plan(base=(old, fingerprint), old=old, head=head)
        plan.note = self.git.note  # what the fetch left out (keys of an S3 prefix)
        asked = self.store.rechecks(self.name)
        judges = tiers(self)  # the orchestrators' own loaders, after the static reading
        if any([tier.environment(plan) for tier in judges]):  # what an orchestrator runs with
            # changed: every file it judges is read again
            asked = {**self.store.python_files(self.name), **asked}
        if old == head and same_config and not asked:
            plan.nothing_new = True
            return plan
        if old == head and same_config:
            changes: list[Change] = []
        elif old and same_config and self.git.is_ancestor(old, head):  # (False: old is gone)
            changes = self.git.diff(old, head)
        else:
            plan.forced = bool(old) and same_config
            if plan.forced:
                log.warning(
                    "source %s: %s is not an ancestor of %s (force-push); comparing with the "
                    "files the database holds",
                    self.name,
                    old[:12] if old else "",
                    head[:12],
                )
            # new checks (namespace, dag_id_pattern, imports, tier): every file is checked again
            every = bool(old) and _checks(fingerprint) != _checks(self.config.fingerprint())
            changes = self._compare_with_store(head, every=every)
        touched = {c.path for c in changes} | {c.old_path for c in changes if c.old_path}
        freed = self.store.defined_ids(self.name, touched)
        again = unchanged(asked, touched)
        again += unchanged(self.store.waiting_files(self.name, freed), touched)
        self.ctx = self._context(head, changes)
        if any(_is_ignore(path) for path in touched):  # what Airflow ignores changed
            again += unchanged(self.store.python_files(self.name), touched)
        reached = self._reached_by_defaults(touched)
        if reached:  # a default changed: the DAGs it reaches get new versions
            again += reached
            note = f"dag-factory defaults changed: {len(reached)} file(s) below them read again"
            plan.note = f"{plan.note}; {note}" if plan.note else note
            log.info("source %s: %s", self.name, note)
        changes += again
        started = time.perf_counter()
        plan.checked = self.read_changes(plan, head, changes)
        if changes:  # the source's DAGs that wait for, or depend on, what this sync changes
            defined = {d.dag_id for f in plan.checked.values() for d in f.dags if d.valid}
            seen = touched | {c.path for c in changes}
            dependents = unchanged(self.store.dependent_files(self.name, freed - defined), seen)
            if dependents:
                plan.checked.update(self.read_changes(plan, head, dependents))
                changes += dependents
                again += dependents
        plan.changes = changes
        plan.again = {c.path for c in again}
        for tier in judges:
            tier.judge(plan, head)
        plan.commits = self._attribution(plan)
        log.debug(
            "sync planned",
            extra={
                "source": self.name,
                "files": len(changes),
                "check_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return plan

    def read_changes(
        self, plan: Plan, head: str, changes: list[Change]
    ) -> dict[str, FileDefinitions]:
        """The definitions the kinds read from `changes` at `head` (in the pool of readers)."""
        entries = [c.entry for c in changes if c.entry is not None]
        plan.commit, contents = self.git.read(head, entries)
        items = [(e, contents.get(e.path)) for e in entries]
        if self.dictionary is None:  # what versions are packed with: trained at the first sync
            self.dictionary = packing_dictionary(self.store.current_dictionary(), items, self.ctx)
        try:
            found = check_all(
                items, self.ctx, self.progress, self.git.deadline, dictionary=self.dictionary
            )
        except DeadlinePassed:
            self.git.remaining(1)  # says it in the sync's one sentence
            raise
        for path in self.git.misnamed & set(found):
            found[path] = misnamed(path)
        return found

    def _context(self, head: str, changes: list[Change]) -> ReadContext:
        """The reading context of the source, with the files at `head` that change how other
        files read: .airflowignore files and dag-factory defaults files."""
        ctx = context(self.settings, self.config)
        wanted = self.store.defaults_files(self.name)
        if self.git.accepts.python:
            wanted |= {p: b for p, b in self.store.python_files(self.name).items() if _is_ignore(p)}
        for c in changes:
            if c.old_path:
                wanted.pop(c.old_path, None)
            if _is_ignore(c.path) or is_defaults(c.path):
                if c.entry is None:
                    wanted.pop(c.path, None)
                else:
                    wanted[c.path] = c.entry.blob
        if not wanted:
            return ctx
        entries = [Entry(path, blob, "100644") for path, blob in sorted(wanted.items())]
        _commit, contents = self.git.read(head, entries)
        ignores, defaults = [], []
        for path, content in sorted(contents.items()):
            if not isinstance(content, bytes):
                continue
            text = content.decode("utf-8", "replace")
            if is_defaults(path):
                defaults.append((path, text))
            elif self.git.accepts.python:
                rel = path[len(ctx.root) :] if path.startswith(ctx.root) else path
                ignores.append((rel.rpartition("/")[0], text))
        return dataclasses.replace(ctx, airflowignore=tuple(ignores), defaults=tuple(defaults))

    def _reached_by_defaults(self, touched: set[str]) -> list[Change]:
        """The unchanged dag-factory files below a defaults file this sync changed."""
        folders = {p.rpartition("/")[0] for p in touched if is_defaults(p)}
        if not folders:
            return []
        files = self.store.files_of_kind(self.name, "dag-factory")
        reached = {
            p: b for p, b in files.items() if any(not f or p.startswith(f + "/") for f in folders)
        }
        return unchanged(reached, touched)

    def _attribution(self, plan: Plan) -> dict[str, Commit]:
        """The commit that last changed each file, when the sync spans more than one commit,
        so that a version says who really changed it."""
        assert plan.commit is not None
        if plan.old is not None and plan.commit.parents == (plan.old,):
            return {}
        changed = {c.path for c in plan.changes if c.entry is not None and c.status != "D"}
        by_path = self.git.last_changed(plan.old, plan.head, changed)
        commits = self.git.commits(sha for sha in set(by_path.values()) if sha != plan.head)
        commits[plan.head] = plan.commit
        return {path: commits[sha] for path, sha in by_path.items() if sha in commits}

    def still_current(self, plan: Plan) -> bool:
        """False when another process synced this source since `plan` was made."""
        src = self.store.source_record(self.name)
        return (
            (src.served_commit, src.fingerprint) == plan.base if src else plan.base == (None, None)
        )

    def _compare_with_store(self, head: str, *, every: bool = False) -> list[Change]:
        """Every difference between the tree at `head` and the files the database holds
        (with `every`, unchanged files too)."""
        tree = self.git.tree(head)
        held = self.store.file_blobs(self.name)
        changes = [
            Change("A" if path not in held else "M", path, entry)
            for path, entry in tree.items()
            if every or held.get(path) != entry.blob
        ]
        changes += [Change("D", path, None) for path in held if path not in tree]
        return changes

    # -- recording -------------------------------------------------------------------------------
    def record(self, plan: Plan, started_at: str) -> SyncResult:
        """Write what `plan` found; runs inside the caller's transaction."""
        if plan.environment is not None:
            self.store.set_meta(*plan.environment)
        if plan.nothing_new:
            return SyncResult(self.name, plan.old, plan.head, started_at=started_at)
        src = self.store.source_record(self.name)
        self.source_pinned = bool(src and src.pinned_commit)
        counts, issues = self._apply(plan)
        touched = {c.dag_id for c in counts.changes if c.change in ("deleted", "invalid", "added")}
        if touched:  # other sources' files that wait for or depend on these DAGs
            self.store.ask_recheck(touched, besides=self.name)
        live = {c.dag_id for c in counts.changes if c.change != "deleted"}
        return SyncResult(
            self.name,
            plan.old,
            plan.head,
            added=counts.added,
            changed=counts.changed,
            deleted=counts.deleted,
            invalid=counts.invalid,
            unchanged=max(self.store.live_count(self.name) - len(live), 0),
            forced=plan.forced,
            started_at=started_at,
            changes=tuple(counts.changes),
            issues=tuple(issues),
            blobs_read=self.git.blobs_read,
            note=plan.note,
        )

    def _apply(self, plan: Plan) -> tuple[_Counts, list[Issue]]:
        counts = _Counts()
        checked = plan.checked
        gone = {c.path for c in plan.changes if c.status == "D"}
        gone |= {c.old_path for c in plan.changes if c.old_path}
        held = self.store.held_dags(self.name, gone | set(checked))
        renamed_from = {c.path: c.old_path for c in plan.changes if c.old_path}

        # What each file defines now. A file that cannot be read keeps the DAGs it held (each
        # gets an invalid version with the file's issues); a path gives up the DAGs it held and
        # no longer defines.
        released = {(path, d) for path in gone for d in held.get(path, ())}
        candidates: list[DagFile] = []
        issues: list[Issue] = []
        for path, found in checked.items():
            if path not in plan.again:  # a file checked again speaks only when its DAG changes
                issues += found.all_issues()
            named = [d for d in found.dags if d.dag_id]
            if found.broken or (found.dags and not named):
                holders = held.get(path) or held.get(renamed_from.get(path) or "", [])
                file_issues = found.all_issues()
                text = found.text
                if not holders:
                    counts.invalid += 1
                candidates += [
                    DagFile(path, d, None, file_issues, found.content_hash, text) for d in holders
                ]
                continue
            candidates += named
            defined = {d.dag_id for d in named}
            released |= {(path, d) for d in held.get(path, ()) if d not in defined}

        catalog = StoreCatalog(self.store, self.name, released)
        extra = check_across(
            candidates,
            catalog,
            source=self.name,
            namespaces=self.settings.namespaces,
            own_namespace=self.config.namespace,
            pattern=self.config.dag_id_pattern,
        )
        found_dags = []
        for f in candidates:
            more = extra.get((f.path, f.dag_id))
            if more:
                f = f.with_issues(more)
                if f.path not in plan.again:
                    issues += more
            found_dags.append(f)
        found_dags, held_back = whole_files(found_dags, {p: f.kind for p, f in checked.items()})
        issues += [f.issues[-1] for f in held_back if f.path not in plan.again]
        claimed: dict[str, DagFile] = {}
        by_path: dict[str, list[tuple[DagFile, bool]]] = {}
        for f in found_dags:
            more = extra.get((f.path, f.dag_id), [])
            refused = any(i.code in ("GD301", "GD304") for i in more)
            if refused:
                counts.invalid += 1
            else:
                claimed[f.dag_id] = f
            by_path.setdefault(f.path, []).append((f, not refused))

        files, defines = [], []
        self.blobs = {c.path: c.entry.blob for c in plan.changes if c.entry is not None}
        for path, found in checked.items():
            dags = by_path.get(path, [])
            refused_issues = tuple(i for f, ok in dags if not ok for i in f.issues)
            good = found.kind in PYTHON_KINDS and not found.broken and all(f.valid for f, _ in dags)
            files.append(
                FileRow(
                    path,
                    self.blobs[path],
                    found.kind,
                    found.issues + refused_issues,
                    found.imports,
                    good,
                )
            )
            defines += [(path, f.dag_id, ok) for f, ok in dags]
        self.store.save_files(self.name, files, defines)
        self.store.delete_files(self.name, gone - set(checked))

        known = self.store.dags_with_newest(list(claimed))
        self.now = now()
        self.new_versions: list[tuple[str, int, Commit, DagFile, str | None]] = []
        self.saved: list[DagRow] = []
        for dag_id, f in claimed.items():
            change = self._record(plan, dag_id, f, known.get(dag_id))
            if change is not None:
                counts.add(change)
                if f.path in plan.again:
                    issues += f.issues
        self.store.insert_versions(self.name, self.new_versions, self.now, self.dictionary)
        self.store.save_dags(self.saved, at=self.now)

        for path, dag_id in sorted(released):
            if dag_id not in claimed and self._retire(dag_id, path):
                counts.add(DagChange(dag_id, "deleted", None, path))
        return counts, issues

    def _record(
        self, plan: Plan, dag_id: str, f: DagFile, known: tuple[DagRow, str, bool] | None
    ) -> DagChange | None:
        """A new version of `dag_id` from `f`, unless its content and validity are unchanged."""
        dag, newest_hash, newest_ok = known or (None, None, False)
        if dag is not None and dag.source != self.name and not dag.deleted:
            return None  # owned elsewhere: check_across refused the file already
        if (
            dag is not None
            and not dag.deleted
            and newest_hash == f.content_hash
            and newest_ok == f.valid
        ):
            if dag.path == f.path:
                return None
            old_path, dag.path = dag.path, f.path
            self.saved.append(dag)
            return DagChange(dag_id, "renamed", dag.newest_version, f.path, old_path)

        number = (dag.newest_version or 0) + 1 if dag else 1
        commit = plan.commit_of(f.path)
        self.new_versions.append((dag_id, number, commit, f, self.blobs.get(f.path)))
        if dag is None:
            # a pinned source serves nothing new
            dag = DagRow(dag_id, self.name, f.path, pinned=self.source_pinned)
            kind, old_path = "added", None
        else:
            kind = "restored" if dag.deleted else "changed"
            old_path = dag.path
        dag.source, dag.path, dag.deleted = self.name, f.path, False
        dag.newest_version, dag.newest_valid = number, f.valid
        if f.valid:
            if dag.pinned and dag.pin_until_change:
                dag.pinned = dag.pin_until_change = False
                self._audit_auto_unpin(dag_id, number)
            if not dag.pinned:
                dag.serve(number, commit.sha, f.spec)
        if not f.valid:
            kind = "invalid"
        elif kind == "changed" and old_path and old_path != f.path:
            kind = "renamed"
        self.saved.append(dag)
        return DagChange(dag_id, kind, number, f.path, old_path if old_path != f.path else None)

    def _retire(self, dag_id: str, path: str) -> bool:
        """Its file is gone, or no longer defines it: the DAG is deleted, unless a pin holds it
        (until unpinned)."""
        dag = self.store.dag(dag_id)
        if dag is None or dag.deleted or dag.source != self.name or dag.path != path:
            return False
        if dag.pinned and not dag.pin_until_change:
            return False
        if dag.pinned:
            self._audit_auto_unpin(dag_id, None)
        dag.deleted, dag.pinned, dag.pin_until_change = True, False, False
        self.store.save_dags([dag])
        return True

    def _audit_auto_unpin(self, dag_id: str, version: int | None) -> None:
        self.store.insert_audit(
            "unpin",
            actor="gitdags",
            dag_id=dag_id,
            source=self.name,
            reason="until-change: a newer commit changed the DAG",
            detail={"served_version": version},
        )


def _checks(fingerprint: str | None) -> list[str]:
    """The part of a source's fingerprint that says how files are checked (after which
    files count: url, branch, subdir, include, exclude)."""
    return (fingerprint or "").split("|")[5:]


def _is_ignore(path: str) -> bool:
    return path.rsplit("/", 1)[-1] == AIRFLOWIGNORE
