"""Differences between two normalized specs: a unified text diff and structured changes."""

from __future__ import annotations

import difflib
from typing import Any

import yaml


def as_text(spec: dict[str, Any] | None, fallback: str = "") -> list[str]:
    """The spec as YAML lines (the raw content when it could not be parsed)."""
    if spec is None:
        return fallback.splitlines(keepends=True)
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True).splitlines(keepends=True)


def unified(a: list[str], b: list[str], a_name: str, b_name: str) -> str:
    return "".join(difflib.unified_diff(a, b, a_name, b_name, n=3))


def _fields(a: Any, b: Any, prefix: str = "") -> list[dict[str, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in [*a, *(k for k in b if k not in a)]:
            name = f"{prefix}.{key}" if prefix else str(key)
            out += _fields(a.get(key), b.get(key), name)
        return out
    return [] if a == b else [{"field": prefix, "from": a, "to": b}]


def structured(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any]:
    """Tasks added, removed and changed (with their fields), and other fields changed."""
    a, b = a or {}, b or {}
    a_tasks = {t["id"]: t for t in a.get("tasks", [])}
    b_tasks = {t["id"]: t for t in b.get("tasks", [])}
    top_a = {k: v for k, v in a.items() if k != "tasks"}
    top_b = {k: v for k, v in b.items() if k != "tasks"}
    return {
        "fields_changed": _fields(top_a, top_b),
        "tasks_added": [t for t in b_tasks if t not in a_tasks],
        "tasks_removed": [t for t in a_tasks if t not in b_tasks],
        "tasks_changed": [
            {"id": t, "fields": _fields(a_tasks[t], b_tasks[t])}
            for t in a_tasks
            if t in b_tasks and a_tasks[t] != b_tasks[t]
        ],
    }
