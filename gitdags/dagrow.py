"""A DAG's row in the store: the one place its status is derived and its served fields set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitdags.store import HistoryStore, dumps, now


def derive_status(dag: Mapping[str, Any]) -> str:
    """The one place a DAG's status is decided."""
    if dag["deleted"]:
        return "deleted"
    if dag["paused"]:
        return "paused"
    if dag["pinned"]:
        return "pinned"
    if not dag["newest_valid"]:
        return "invalid"
    if not dag["enabled"]:
        return "disabled"
    return "active"


DAG_COLUMNS = (
    "dag_id",
    "source",
    "path",
    "status",
    "served_version",
    "newest_version",
    "newest_valid",
    "enabled",
    "paused",
    "pinned",
    "pin_until_change",
    "deleted",
    "owner",
    "tags",
    "schedule",
    "depends_on_dags",
    "served_commit",
    "created_at",
    "updated_at",
)


def save_dag(store: HistoryStore, dag: dict[str, Any]) -> None:
    dag["status"] = derive_status(dag)
    dag["updated_at"] = now()
    store.upsert("dags", dag, ("dag_id",))


def served_fields(spec: dict[str, Any] | None) -> dict[str, Any]:
    """Columns of `dags` copied from the served version's spec."""
    spec = spec or {}
    return {
        "enabled": int(spec.get("enabled", True)),
        "owner": spec.get("owner"),
        "tags": dumps(spec.get("tags", [])),
        "schedule": spec.get("schedule"),
        "depends_on_dags": dumps(spec.get("depends_on_dags", [])),
    }
