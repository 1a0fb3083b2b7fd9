"""One sync of one source: diff the new commit against the last synced one, validate what
changed, and record it. Runs inside the caller's transaction.

Rules (PRODUCT.md §3): unchanged content makes no new version; an invalid file never replaces
the served version; a deleted file retires its DAG and keeps its history; a DAG keeps its
history when its file is renamed (a DAG is its `dag_id`, wherever it lives); a force-pushed
branch or changed source settings are compared against the files the database holds.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gitdags import validate
from gitdags.checking import check_all
from gitdags.config import Settings, SourceConfig
from gitdags.crosscheck import check_across
from gitdags.dagrow import DAG_COLUMNS, derive_status, save_dag, served_fields
from gitdags.model import DagChange, DagFile, SyncResult
from gitdags.source import Change, Commit, Entry, GitSource
from gitdags.spec import ID_RE
from gitdags.store import HistoryStore, dumps, loads, now

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """What a sync will record, worked out before taking the write lock."""

    base: tuple[str | None, str | None]  # the source's (served commit, settings) it started from
    old: str | None
    head: str
    forced: bool = False
    nothing_new: bool = False
    had_error: bool = False
    commit: Commit | None = None
    changes: list[Change] = field(default_factory=list)
    checked: dict[str, DagFile] = field(default_factory=dict)


class StoreCatalog:
    """Answers `crosscheck.check_across` about DAGs outside the files of this sync."""

    def __init__(self, store: HistoryStore, source: str, released: set[str]) -> None:
        self.store = store
        self.source = source
        self.released = released  # paths of this source that no longer define their DAG

    def owners(self, dag_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        rows = self.store.rows_in(
            "SELECT dag_id, source, path FROM dags WHERE deleted = 0 AND dag_id IN ({marks})",
            dag_ids,
        )
        return {
            r["dag_id"]: (r["source"], r["path"])
            for r in rows
            if not (r["source"] == self.source and r["path"] in self.released)
        }

    def depends_on(self, dag_id: str) -> list[str]:
        value = self.store.scalar(
            "SELECT depends_on_dags FROM dags WHERE dag_id = ? AND deleted = 0", (dag_id,)
        )
        return loads(value) or []


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
        self, settings: Settings, store: HistoryStore, config: SourceConfig, git: GitSource
    ) -> None:
        self.settings = settings
        self.store = store
        self.config = config
        self.git = git
        self.name = config.name

    def plan(self, head: str) -> Plan:
        """Everything that only reads: the diff, the changed blobs, their validation. It runs
        outside the write transaction, so a large sync never blocks other writers for long."""
        src = self.store.row("SELECT * FROM sources WHERE name = ?", (self.name,))
        old = src["served_commit"] if src else None
        fingerprint = src["fingerprint"] if src else None
        same_config = fingerprint == self.config.fingerprint()
        plan = Plan(base=(old, fingerprint), old=old, head=head)
        if old == head and same_config:
            plan.nothing_new = True
            plan.had_error = bool(src and src["last_error"])
            return plan
        if old and same_config and self.git.has_commit(old) and self.git.is_ancestor(old, head):
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
            changes = self._compare_with_store(head)
        changes += self._waiting_claimants(changes)
        started = time.perf_counter()
        entries = [c.entry for c in changes if c.entry is not None]
        plan.commit, contents = self.git.read(head, entries)
        read = time.perf_counter()
        plan.checked = check_all(
            [(c.entry, contents.get(c.path)) for c in changes if c.entry is not None],
            self.settings,
        )
        plan.changes = changes
        log.debug(
            "sync planned",
            extra={
                "source": self.name,
                "files": len(changes),
                "read_ms": round((read - started) * 1000, 1),
                "check_ms": round((time.perf_counter() - read) * 1000, 1),
            },
        )
        return plan

    def still_current(self, plan: Plan) -> bool:
        """False when another process synced this source since `plan` was made."""
        src = self.store.row(
            "SELECT served_commit, fingerprint FROM sources WHERE name = ?", (self.name,)
        )
        return (
            (src["served_commit"], src["fingerprint"]) == plan.base
            if src
            else (plan.base == (None, None))
        )

    def record(self, plan: Plan, started_at: str) -> SyncResult:
        """Write what `plan` found; runs inside the caller's transaction."""
        if plan.nothing_new:
            if plan.had_error:
                self._clear_error()
            return SyncResult(self.name, plan.old, plan.head, started_at=started_at)
        src = self.store.row("SELECT pinned_commit FROM sources WHERE name = ?", (self.name,))
        self.source_pinned = bool(src and src["pinned_commit"])
        assert plan.commit is not None
        changes, checked = plan.changes, plan.checked
        gone = {c.path for c in changes if c.status == "D"}
        gone |= {c.old_path for c in changes if c.old_path}
        counts = self._apply(plan.commit, changes, checked, gone)
        unchanged = self.store.scalar(
            "SELECT count(*) FROM dags WHERE source = ? AND deleted = 0", (self.name,)
        ) - len({c.dag_id for c in counts.changes if c.change != "deleted"})
        result = SyncResult(
            self.name,
            plan.old,
            plan.head,
            added=counts.added,
            changed=counts.changed,
            deleted=counts.deleted,
            invalid=counts.invalid,
            unchanged=max(unchanged, 0),
            forced=plan.forced,
            started_at=started_at,
            changes=tuple(counts.changes),
            issues=tuple(i for f in checked.values() for i in f.issues),
            blobs_read=self.git.blobs_read,
        )
        self.store.upsert(
            "sources",
            {
                "name": self.name,
                "url": self.config.safe_url,
                "branch": self.config.branch,
                "fingerprint": self.config.fingerprint(),
                "newest_commit": plan.head,
                "served_commit": plan.head,
                "last_sync_at": now(),
                "last_error": None,
                "last_error_at": None,
                "failures": 0,
            },
            ("name",),
        )
        return result

    def _clear_error(self) -> None:
        self.store.update(
            "sources",
            {"name": self.name},
            {"last_error": None, "last_error_at": None, "failures": 0, "last_sync_at": now()},
        )
        self.store.bump()

    # -- what changed ----------------------------------------------------------------------------
    def _compare_with_store(self, head: str) -> list[Change]:
        """Every difference between the tree at `head` and the files the database holds."""
        tree = self.git.tree(head)
        held = {
            r["path"]: r["blob"]
            for r in self.store.rows("SELECT path, blob FROM files WHERE source = ?", (self.name,))
        }
        changes = [
            Change("A" if path not in held else "M", path, entry)
            for path, entry in tree.items()
            if held.get(path) != entry.blob
        ]
        changes += [Change("D", path, None) for path in held if path not in tree]
        return changes

    def _waiting_claimants(self, changes: list[Change]) -> list[Change]:
        """Files refused as duplicates of a DAG id that this commit frees (its other file was
        deleted or now names another DAG): checked again, so one of them can take it."""
        touched = {c.path for c in changes} | {c.old_path for c in changes if c.old_path}
        if not touched:
            return []
        freed = {
            r["dag_id"]
            for r in self.store.rows_in(
                "SELECT dag_id FROM files WHERE source = ? AND dag_id IS NOT NULL "
                "AND path IN ({marks})",
                sorted(touched),
                self.name,
            )
        }
        if not freed:
            return []
        waiting = self.store.rows_in(
            "SELECT path, blob FROM files WHERE source = ? AND issues LIKE '%GD301%' "
            "AND dag_id IN ({marks})",
            sorted(freed),
            self.name,
        )
        return [
            Change("M", r["path"], Entry(r["path"], r["blob"], "100644"))
            for r in waiting
            if r["path"] not in touched
        ]

    # -- recording -------------------------------------------------------------------------------
    def _apply(
        self,
        commit: Commit,
        changes: list[Change],
        checked: dict[str, DagFile],
        gone: set[str],
    ) -> _Counts:
        counts = _Counts()
        in_flux = gone | set(checked)
        held = self._held_dags(in_flux)  # path -> dag_id before this sync

        # A file that names no DAG of its own (unparseable) stays with the DAG it held.
        renamed_from = {c.path: c.old_path for c in changes if c.old_path}
        for path, f in list(checked.items()):
            if not f.dag_id:
                old_path = renamed_from.get(path, "")
                dag_id = held.get(path) or held.get(old_path) or validate.default_dag_id(path)
                if ID_RE.fullmatch(dag_id):
                    checked[path] = _with_dag_id(f, dag_id)

        # Paths that no longer hold the DAG they held give it up to this sync's files.
        released = gone | {p for p, f in checked.items() if p in held and held[p] != f.dag_id}
        catalog = StoreCatalog(self.store, self.name, released)
        extra = check_across(
            checked.values(), catalog, source=self.name, namespaces=self.settings.namespaces
        )
        rejected: set[str] = set()
        for path, issues in extra.items():
            checked[path] = checked[path].with_issues(issues)
            if any(i.code in ("GD301", "GD304") for i in issues):
                rejected.add(path)

        blobs = {c.path: c.entry.blob for c in changes if c.entry is not None}
        claimed: dict[str, DagFile] = {}
        files = []
        for path, f in sorted(checked.items()):
            attributed = bool(f.dag_id) and path not in rejected
            if attributed:
                claimed[f.dag_id] = f
            else:
                counts.invalid += 1
            files.append(
                {
                    "source": self.name,
                    "path": path,
                    "blob": blobs[path],
                    "dag_id": f.dag_id or None,
                    "issues": "[]" if attributed else dumps([i.to_dict() for i in f.issues]),
                }
            )
        self.store.upsert_many("files", files, ("source", "path"))
        for path in gone - set(checked):
            self.store.execute("DELETE FROM files WHERE source = ? AND path = ?", (self.name, path))

        known = self._known(list(claimed))
        self.now = now()
        self.new_versions: list[dict[str, Any]] = []
        self.new_dags: list[dict[str, Any]] = []
        for dag_id, f in claimed.items():
            change = self._record(commit, dag_id, f, *known.get(dag_id, (None, None)))
            if change is not None:
                counts.add(change)
        self.store.insert_many("versions", self.new_versions)
        self.store.upsert_many("dags", self.new_dags, ("dag_id",))

        for path, dag_id in held.items():
            if dag_id not in claimed and self._retire(dag_id):
                counts.add(DagChange(dag_id, "deleted", None, path))
        return counts

    def _held_dags(self, paths: set[str]) -> dict[str, str]:
        rows = self.store.rows_in(
            "SELECT dag_id, path FROM dags WHERE source = ? AND deleted = 0 AND path IN ({marks})",
            sorted(paths),
            self.name,
        )
        return {r["path"]: r["dag_id"] for r in rows}

    def _known(self, dag_ids: list[str]) -> dict[str, tuple[dict[str, Any], str | None]]:
        """The rows of these DAGs and the content hash of their newest version, in bulk."""
        rows = self.store.rows_in(
            "SELECT d.*, v.content_hash AS newest_hash FROM dags d LEFT JOIN versions v "
            "ON v.dag_id = d.dag_id AND v.version = d.newest_version WHERE d.dag_id IN ({marks})",
            dag_ids,
        )
        return {r["dag_id"]: (r, r.pop("newest_hash")) for r in rows}

    def _record(
        self,
        commit: Commit,
        dag_id: str,
        f: DagFile,
        dag: dict[str, Any] | None,
        newest_hash: str | None,
    ) -> DagChange | None:
        """A new version of `dag_id` from file `f`, unless its content is unchanged."""
        if dag is not None and dag["source"] != self.name and not dag["deleted"]:
            return None  # owned elsewhere: check_across rejected the file already
        if dag is not None and not dag["deleted"] and newest_hash == f.content_hash:
            if dag["path"] == f.path:
                return None
            old_path = dag["path"]
            dag.update(path=f.path)
            save_dag(self.store, dag)
            return DagChange(dag_id, "renamed", dag["newest_version"], f.path, old_path)

        number = (dag["newest_version"] or 0) + 1 if dag else 1
        self.new_versions.append(
            {
                "dag_id": dag_id,
                "version": number,
                "source": self.name,
                "commit_sha": commit.sha,
                "author": commit.author,
                "committed_at": commit.committed_at,
                "message": commit.message,
                "path": f.path,
                "content_hash": f.content_hash,
                "valid": int(f.valid),
                "issues": dumps([i.to_dict() for i in f.issues]),
                "spec": f.spec_json or None,
                "content": f.content,
                "recorded_at": self.now,
            },
        )
        if dag is None:
            dag = {
                "dag_id": dag_id,
                "source": self.name,
                "created_at": self.now,
                "paused": 0,
                "pinned": int(self.source_pinned),  # a pinned source serves nothing new
                "pin_until_change": 0,
                "served_version": None,
                "served_commit": None,
                "enabled": 1,
                "owner": None,
                "tags": "[]",
                "schedule": None,
                "depends_on_dags": "[]",
            }
            kind = "added"
        else:
            kind = "restored" if dag["deleted"] else "changed"
        old_path = dag.get("path")
        dag.update(source=self.name, path=f.path, deleted=0, newest_version=number)
        dag["newest_valid"] = int(f.valid)
        if f.valid:
            if dag["pinned"] and dag["pin_until_change"]:
                dag.update(pinned=0, pin_until_change=0)
                self._audit_auto_unpin(dag_id, number)
            if not dag["pinned"]:
                dag.update(served_version=number, served_commit=commit.sha, **served_fields(f.spec))
        if not f.valid:
            kind = "invalid"
        elif kind == "changed" and old_path and old_path != f.path:
            kind = "renamed"
        dag.update(status=derive_status(dag), updated_at=self.now)
        self.new_dags.append({column: dag.get(column) for column in DAG_COLUMNS})
        return DagChange(dag_id, kind, number, f.path, old_path if old_path != f.path else None)

    def _retire(self, dag_id: str) -> bool:
        """Its file is gone: the DAG is deleted, unless a pin holds it (until unpinned)."""
        dag = self.store.row("SELECT * FROM dags WHERE dag_id = ?", (dag_id,))
        assert dag is not None
        if dag["pinned"] and not dag["pin_until_change"]:
            return False
        if dag["pinned"]:
            self._audit_auto_unpin(dag_id, None)
        dag.update(deleted=1, pinned=0, pin_until_change=0)
        save_dag(self.store, dag)
        return True

    def _audit_auto_unpin(self, dag_id: str, version: int | None) -> None:
        self.store.insert(
            "audit",
            {
                "at": now(),
                "actor": "gitdags",
                "action": "unpin",
                "dag_id": dag_id,
                "source": self.name,
                "reason": "until-change: a newer commit changed the DAG",
                "detail": dumps({"served_version": version}),
            },
        )


def _with_dag_id(f: DagFile, dag_id: str) -> DagFile:
    if f.spec is None:
        return dataclasses.replace(f, dag_id=dag_id)
    whole = loads(f.spec_json) if f.spec_json else dict(f.spec)
    whole["dag_id"] = dag_id
    return dataclasses.replace(f, dag_id=dag_id, spec=whole, spec_json=dumps(whole))
