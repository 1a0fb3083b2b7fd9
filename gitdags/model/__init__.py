"""Plain data passed between the layers: issues, parsed files, DAG states, versions, syncs.

The package is the vocabulary's import path: `from gitdags.model import X` for every name
below; the modules hold them by aggregate. It imports nothing else of gitdags."""

from __future__ import annotations

from gitdags.model.actions import ActionResult, AuditEntry
from gitdags.model.consumers import CONSUMER_STATES, ConsumerDag, ConsumerStatus
from gitdags.model.dags import (
    DAG_SORTS,
    FILE_FORMATS,
    STATUSES,
    Commit,
    DagDetail,
    DagPage,
    DagQuery,
    DagRow,
    DagState,
    ServedDag,
    SpecDiff,
    Version,
)
from gitdags.model.files import DagFile, FileDefinitions
from gitdags.model.issues import CODES, Issue, Severity, has_errors
from gitdags.model.sources import HookState, SourceRecord, SourceStatus
from gitdags.model.sync import DagChange, SyncResult

__all__ = [
    "CODES",
    "CONSUMER_STATES",
    "DAG_SORTS",
    "FILE_FORMATS",
    "STATUSES",
    "ActionResult",
    "AuditEntry",
    "Commit",
    "ConsumerDag",
    "ConsumerStatus",
    "DagChange",
    "DagDetail",
    "DagFile",
    "DagPage",
    "DagQuery",
    "DagRow",
    "DagState",
    "FileDefinitions",
    "HookState",
    "Issue",
    "ServedDag",
    "Severity",
    "SourceRecord",
    "SourceStatus",
    "SpecDiff",
    "SyncResult",
    "Version",
    "has_errors",
]
