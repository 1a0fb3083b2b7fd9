"""Plain data passed between the layers: issues, parsed files, DAG states, versions, syncs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]

STATUSES = ("active", "invalid", "disabled", "deleted", "paused", "pinned")

# Stable issue codes. The number never changes meaning; the name is for people.
CODES: dict[str, str] = {
    # the file itself
    "GD001": "file-too-large",
    "GD002": "binary-file",
    "GD003": "symlink",
    "GD004": "parse-error",
    "GD005": "not-a-mapping",
    "GD006": "unsupported-extension",
    "GD007": "not-a-dag-definition",
    # fields of one DAG
    "GD101": "missing-field",
    "GD102": "wrong-type",
    "GD103": "unknown-field",
    "GD104": "bad-id",
    "GD105": "bad-schedule",
    "GD106": "bad-duration",
    "GD107": "bad-date",
    "GD108": "bad-value",
    "GD109": "tasks-and-nodes",
    # tasks of one DAG
    "GD201": "duplicate-task-id",
    "GD202": "unknown-task",
    "GD203": "self-dependency",
    "GD204": "cycle",
    "GD205": "unknown-task-type",
    "GD206": "missing-config-key",
    "GD207": "no-tasks",
    # across files and sources
    "GD301": "duplicate-dag-id",
    "GD302": "unknown-dag-dependency",
    "GD303": "dag-cycle",
    "GD304": "namespace-violation",
    "GD305": "outside-namespace",
    "GD306": "dag-id-pattern",
    # Airflow Python files
    "GD401": "syntax-error",
    "GD402": "import-error",
    "GD403": "parse-timeout",
    "GD404": "no-dag-found",
    "GD405": "forbidden-import",
    "GD406": "top-level-call",
    "GD407": "missing-module",
    "GD408": "airflow3-removed",
    "GD409": "file-held-back",
}


@dataclass(frozen=True, slots=True)
class Issue:
    """One validation finding, located in a file."""

    code: str
    severity: Severity
    file: str
    location: str
    line: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "file": self.file,
            "location": self.location,
            "line": self.line,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Issue:
        return cls(
            code=data["code"],
            severity=data["severity"],
            file=data["file"],
            location=data["location"],
            line=data.get("line"),
            message=data["message"],
        )

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        loc = f" [{self.location}]" if self.location else ""
        return f"{where}: {self.severity} {self.code}{loc} {self.message}"


def has_errors(issues: tuple[Issue, ...] | list[Issue]) -> bool:
    return any(i.severity == "error" for i in issues)


@dataclass(frozen=True, slots=True)
class DagFile:
    """One DAG definition file, read and validated on its own."""

    path: str
    dag_id: str
    spec: dict[str, Any] | None  # normalized; None when the file could not be parsed
    issues: tuple[Issue, ...]
    content_hash: str
    content: str = ""
    spec_json: str = ""  # the spec serialized, when a worker process made it

    @property
    def valid(self) -> bool:
        return self.spec is not None and not has_errors(self.issues)

    def with_issues(self, extra: list[Issue]) -> DagFile:
        return dataclasses.replace(self, issues=self.issues + tuple(extra))


@dataclass(frozen=True, slots=True)
class FileDefinitions:
    """What a definition kind found in one file: zero or more DAGs, the modules the file
    imports, and issues about the file as a whole (it cannot be read, it is not a DAG file)."""

    path: str
    kind: str  # "v1"; "none" when the file is not a DAG definition or cannot be read
    content_hash: str
    dags: tuple[DagFile, ...] = ()
    imports: tuple[str, ...] = ()
    issues: tuple[Issue, ...] = ()
    content: str = ""
    # (line, dotted path, dag id or "") of each Python object a declarative file names
    probes: tuple[tuple[int, str, str], ...] = ()

    @property
    def broken(self) -> bool:
        """The file could not be read as a whole: the DAGs it held keep their last good."""
        return has_errors(self.issues)

    def all_issues(self) -> tuple[Issue, ...]:
        return self.issues + tuple(i for d in self.dags for i in d.issues)

    @property
    def text(self) -> str:
        """The file's text (kept on its DAGs when there are some)."""
        return self.content or next((d.content for d in self.dags), "")

    def with_issues(self, extra: list[Issue]) -> FileDefinitions:
        """Issues about what the file defines: on each of its DAGs (a Python file is served
        as a whole), or on the file when it defines none."""
        if not extra:
            return self
        if self.dags:
            return dataclasses.replace(self, dags=tuple(d.with_issues(extra) for d in self.dags))
        return dataclasses.replace(self, issues=self.issues + tuple(extra))


@dataclass(slots=True)
class DagRow:
    """A DAG's row in the store, as sync and the operator actions change it."""

    dag_id: str
    source: str
    path: str
    served_version: int | None = None
    newest_version: int | None = None
    newest_valid: bool = False
    enabled: bool = True
    paused: bool = False
    pinned: bool = False
    pin_until_change: bool = False
    deleted: bool = False
    owner: str | None = None
    tags: tuple[str, ...] = ()
    schedule: str | None = None
    depends_on_dags: tuple[str, ...] = ()
    served_commit: str | None = None
    created_at: str = ""
    updated_at: str = ""

    @property
    def status(self) -> str:
        """The one place a DAG's status is decided."""
        if self.deleted:
            return "deleted"
        if self.paused:
            return "paused"
        if self.pinned:
            return "pinned"
        if not self.newest_valid:
            return "invalid"
        if not self.enabled:
            return "disabled"
        return "active"

    def serve(self, number: int | None, commit: str | None, spec: dict[str, Any] | None) -> None:
        """Serve version `number` made at `commit` (None: nothing); the served fields come from
        its spec."""
        self.served_version, self.served_commit = number, commit
        if number is None:
            return
        spec = spec or {}
        self.enabled = bool(spec.get("enabled", True))
        self.owner = spec.get("owner")
        self.tags = tuple(spec.get("tags") or ())
        self.schedule = spec.get("schedule")
        self.depends_on_dags = tuple(spec.get("depends_on_dags") or ())

    def serve_version(self, version: Version | None) -> None:
        if version is None:
            self.serve(None, None, None)
        else:
            self.serve(version.version, version.commit, version.spec)

    def state(self) -> DagState:
        return DagState(
            dag_id=self.dag_id,
            source=self.source,
            path=self.path,
            status=self.status,
            paused=self.paused,
            pinned=self.pinned,
            pin_until_change=self.pin_until_change,
            served_version=self.served_version,
            newest_version=self.newest_version,
            served_commit=self.served_commit,
            owner=self.owner,
            tags=self.tags,
            schedule=self.schedule,
            updated_at=self.updated_at,
        )


@dataclass(frozen=True, slots=True)
class DagState:
    """A DAG as the database holds it now."""

    dag_id: str
    source: str
    path: str
    status: str
    paused: bool
    pinned: bool
    pin_until_change: bool
    served_version: int | None
    newest_version: int | None
    served_commit: str | None
    owner: str | None
    tags: tuple[str, ...]
    schedule: str | None
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies, which costs 0.8 s on `list --json` of 10k
        gone = self.status == "deleted"
        return {
            "dag_id": self.dag_id,
            "source": self.source,
            "path": self.path,
            "status": self.status,
            "paused": self.paused,
            "pinned": self.pinned,
            "pin_until_change": self.pin_until_change,
            # a deleted DAG serves nothing; the version it served last is kept for a restore
            "served_version": None if gone else self.served_version,
            "last_served_version": self.served_version,
            "newest_version": self.newest_version,
            "served_commit": None if gone else self.served_commit,
            "owner": self.owner,
            "tags": list(self.tags),
            "schedule": self.schedule,
            "updated_at": self.updated_at,
            # the same two names on every record: `time` (UTC) and `commit`
            "time": self.updated_at,
            "commit": None if gone else self.served_commit,
        }


@dataclass(frozen=True, slots=True)
class Version:
    """One recorded version of a DAG."""

    dag_id: str
    version: int
    source: str
    commit: str
    author: str
    committed_at: str
    message: str
    path: str
    content_hash: str
    valid: bool
    served: bool
    issues: tuple[Issue, ...]
    spec: dict[str, Any] | None
    content: str
    recorded_at: str
    blob: str | None = None  # the git blob of its file

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": self.version,
            "commit": self.commit,
            "author": self.author,
            "committed_at": self.committed_at,
            "message": self.message,
            "path": self.path,
            "content_hash": self.content_hash,
            "valid": self.valid,
            "served": self.served,
            "issues": [i.to_dict() for i in self.issues],
            "time": self.committed_at,
        }
        if full:
            data.update(dag_id=self.dag_id, source=self.source, spec=self.spec)
        return data


@dataclass(frozen=True, slots=True)
class Commit:
    """A git commit, as a version records it."""

    sha: str
    author: str
    committed_at: str
    message: str
    parents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DagChange:
    """What one sync or action did to one DAG."""

    dag_id: str
    change: str  # added, changed, renamed, invalid, deleted, restored, unchanged
    version: int | None
    path: str
    old_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "change": self.change,
            "version": self.version,
            "path": self.path,
            "old_path": self.old_path,
        }


@dataclass(frozen=True, slots=True)
class SyncResult:
    """The outcome of syncing one source once."""

    source: str
    from_commit: str | None
    to_commit: str | None
    added: int = 0
    changed: int = 0
    deleted: int = 0
    invalid: int = 0
    unchanged: int = 0
    duration_ms: float = 0.0
    forced: bool = False
    error: str | None = None
    dry_run: bool = False
    started_at: str = ""
    changes: tuple[DagChange, ...] = ()
    issues: tuple[Issue, ...] = field(default=())
    blobs_read: int = 0
    note: str = ""  # why it checked more than the diff (the Airflow environment changed)
    publish_error: str | None = None  # recorded, but the deploy folder was not brought up to it

    @property
    def nothing_new(self) -> bool:
        return self.error is None and not self.changes and self.from_commit == self.to_commit

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "started_at": self.started_at,
            "from_commit": self.from_commit,
            "to_commit": self.to_commit,
            "added": self.added,
            "changed": self.changed,
            "deleted": self.deleted,
            "invalid": self.invalid,
            "unchanged": self.unchanged,
            "duration_ms": round(self.duration_ms, 1),
            "forced": self.forced,
            "error": self.error,
            "dry_run": self.dry_run,
            "changes": [c.to_dict() for c in self.changes],
            "issues": [i.to_dict() for i in self.issues],
            "note": self.note,
            "publish_error": self.publish_error,
            "time": self.started_at,
            "commit": self.to_commit,
        }


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """The reconcile record of one source, written only by the engine (as Flux keeps
    lastAttemptedRevision apart from lastAppliedRevision): the newest commit fetched, the
    commit served, and how the last attempts went."""

    name: str
    url: str = ""
    branch: str = ""
    fingerprint: str | None = None
    newest_commit: str | None = None  # fetched and attempted, whether or not it synced
    served_commit: str | None = None  # the commit the source's DAGs were last synced to
    last_sync_at: str | None = None  # the last successful sync
    last_attempt_at: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None  # when the current run of failures began
    failures: int = 0  # consecutive failed syncs
    pinned_commit: str | None = None
    pinned_at: str | None = None


@dataclass(frozen=True, slots=True)
class ServedDag:
    """One DAG of the served set, with the spec of its served version."""

    dag_id: str
    source: str
    path: str
    status: str
    version: int
    commit: str
    spec: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "source": self.source,
            "path": self.path,
            "status": self.status,
            "version": self.version,
            "commit": self.commit,
            "spec": self.spec,
        }


@dataclass(frozen=True, slots=True)
class DagDetail:
    """`gitdags show`: a DAG, the version shown, its spec and the issues to fix."""

    state: DagState
    version: int | None
    spec: dict[str, Any] | None
    issues: tuple[Issue, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.state.to_dict(),
            "version": self.version,
            "spec": self.spec,
            "issues": [i.to_dict() for i in self.issues],
        }


@dataclass(frozen=True, slots=True)
class HookState:
    """How one change hook's deliveries went."""

    name: str
    last_ok_at: str | None
    last_error: str | None
    last_error_at: str | None
    failures: int
    delivered: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "last_ok_at": self.last_ok_at,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "failures": self.failures,
        }


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """Where one source stands: has my commit landed?"""

    source: str
    url: str
    branch: str
    newest_commit: str | None
    served_commit: str | None
    last_sync_at: str | None
    last_error: str | None
    last_error_at: str | None
    pinned_commit: str | None
    counts: dict[str, int]
    hooks: tuple[HookState, ...] = ()
    failures: int = 0
    last_attempt_at: str | None = None
    file_errors: int = 0  # files that are not DAG definitions or cannot be read
    publish: dict[str, dict[str, Any]] = field(default_factory=dict)  # target -> its last
    sandbox: str | None = None  # where repository code runs: "bwrap", "none", or None (static)
    recovered: str = ""  # "<when>: recovered after N failed syncs", while its last sync says so

    def to_dict(self) -> dict[str, Any]:
        data = {
            "source": self.source,
            "url": self.url,
            "branch": self.branch,
            "newest_commit": self.newest_commit,
            "served_commit": self.served_commit,
            "last_sync_at": self.last_sync_at,
            "last_attempt_at": self.last_attempt_at,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "consecutive_failures": self.failures,
            "recovered": self.recovered or None,
            "pinned_commit": self.pinned_commit,
            "file_errors": self.file_errors,
            "counts": dict(self.counts),
            "hooks": [h.to_dict() for h in self.hooks],
            "publish": self.publish,
            "sandbox": self.sandbox,
            "time": self.last_sync_at,
            "commit": self.pinned_commit or self.served_commit,
        }
        data.update(self.counts)
        return data


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One operator action, recorded."""

    id: int
    at: str
    actor: str
    action: str
    dag_id: str | None
    source: str | None
    reason: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "time": self.at}


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an operator action did."""

    action: str
    message: str
    changes: tuple[DagChange, ...] = ()
    audit_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "message": self.message,
            "changes": [c.to_dict() for c in self.changes],
            "audit_id": self.audit_id,
        }


@dataclass(frozen=True, slots=True)
class SpecDiff:
    """The difference between two versions of a DAG."""

    dag_id: str
    from_version: int | None
    to_version: int | None
    text: str  # unified diff of the normalized specs, empty when they are equal
    changes: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "identical": not self.text,
            **self.changes,
        }
