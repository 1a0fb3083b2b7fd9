"""A DAG as recorded and served: its row, state, versions, served spec, detail and diff."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gitdags.model.issues import Issue

STATUSES = ("active", "invalid", "disabled", "deleted", "paused", "pinned")
# The formats of DAGs served as their Python file, as a whole (an Airflow DAG file, a Prefect
# flow file): held, rolled back and paused with the file's other DAGs
FILE_FORMATS = ("airflow", "prefect-flow", "dagster")


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
    # consumer -> what it has of this DAG (state, version, since, parsed_at, paused, error)
    consumers: dict[str, dict[str, Any]] = field(default_factory=dict)

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
            "consumers": self.consumers,
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


# the orders a page of DAGs can be read in (the console's sorts)
DAG_SORTS = (
    "dag_id",
    "status",
    "updated_at",
    "source",
    "owner",
    "served_version",
    "newest_version",
)


@dataclass(frozen=True, slots=True)
class DagQuery:
    """Which DAGs, in which order: `needle` found (case-insensitive) in the id, the owner or a
    tag; only `status` (None: any); sorted by `sort` (one of DAG_SORTS), then by id."""

    needle: str = ""
    status: str | None = None
    sort: str = "dag_id"


@dataclass(frozen=True, slots=True)
class DagPage:
    """A window of the DAGs a query finds: `total` of them, `rows` from `offset`; `every`
    DAG and `counts` by status (of every DAG); `position` of the DAG asked for, when it is
    among them."""

    total: int
    every: int
    counts: dict[str, int]
    offset: int
    rows: tuple[DagState, ...]
    position: int | None = None
