"""Operator actions: what one did, and the audit entry that records it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gitdags.model.sync import DagChange


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
