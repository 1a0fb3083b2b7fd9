"""Where a source stands: its reconcile record, its status and its change hooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    # consumer -> its DAGs of this source by state, the oldest pending (s), its last answer
    consumers: dict[str, dict[str, Any]] = field(default_factory=dict)

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
            "consumers": self.consumers,
            "time": self.last_sync_at,
            "commit": self.pinned_commit or self.served_commit,
        }
        data.update(self.counts)
        return data
