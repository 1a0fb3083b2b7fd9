"""What syncing a source did: one DAG's change and the outcome of one sync."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gitdags.model.issues import Issue


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
