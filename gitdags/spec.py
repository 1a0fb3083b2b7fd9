"""Format v1 of DAG definition files, described once: fields and their kinds, task types
and their required config keys, trigger rules, ids and durations. The validator checks
against it and `gitdags schema` turns it into a JSON Schema."""

from __future__ import annotations

import re
from typing import Any

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
ID_MAX = 250
CALLABLE_RE = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*")
DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly")
TRIGGER_RULES = (
    "all_success",
    "all_failed",
    "all_done",
    "all_done_min_one_success",
    "all_done_setup_success",
    "all_skipped",
    "one_success",
    "one_failed",
    "one_done",
    "none_failed",
    "none_failed_min_one_success",
    "none_skipped",
    "always",
)

# Built-in task types and the config keys each one requires.
TASK_TYPES: dict[str, tuple[str, ...]] = {
    "empty": (),
    "bash": ("command",),
    "python": ("callable",),
    "sql": ("conn_id", "sql"),
    "http": ("url",),
    "kubernetes_pod": ("image",),
    "sensor": ("kind", "target"),
    "local": ("module",),
    "lambda": ("function_name",),
}

# Field tables: the one description of format v1, used by the checks and by `gitdags schema`.
# kind: str, bool, int, id, ids, strs, mapping, schedule, date, duration, tasks, edges
TOP_FIELDS: dict[str, tuple[str, str]] = {
    "dag_id": ("id", "DAG id; default: the file name without extension"),
    "description": ("str", "what the DAG does"),
    "enabled": ("bool", "false: kept and versioned, never published"),
    "schedule": ("schedule", "5-field cron, a preset, or null"),
    "start_date": ("date", "first logical date, e.g. 2024-01-01"),
    "catchup": ("bool", "run missed intervals"),
    "max_active_runs": ("int", "runs of this DAG at once (>= 1)"),
    "owner": ("str", "team or person responsible"),
    "tags": ("strs", "free labels"),
    "default_args": ("default_args", "defaults for every task"),
    "params": ("mapping", "parameters passed to runs"),
    "depends_on_dags": ("ids", "DAGs this DAG waits for"),
    "tasks": ("tasks", "the tasks; 'nodes' is accepted as an alias"),
    "nodes": ("tasks", "alias of tasks"),
    "edges": ("edges", "dependencies as {from, to} pairs"),
}
TASK_FIELDS: dict[str, tuple[str, str]] = {
    "id": ("id", "task id, unique in the DAG"),
    "type": ("str", "task type: " + ", ".join(TASK_TYPES)),
    "config": ("mapping", "type-specific settings"),
    "depends_on": ("ids", "tasks that must finish first"),
    "description": ("str", "what the task does"),
    "retries": ("count", "retries of this task"),
    "retry_delay": ("duration", "wait between retries"),
    "timeout": ("duration", "execution timeout"),
    "trigger_rule": ("str", "when the task runs: " + ", ".join(TRIGGER_RULES)),
    "pool": ("str", "orchestrator pool"),
    "priority_weight": ("int", "orchestrator priority"),
}
DEFAULT_ARGS: dict[str, str] = {
    "retries": "count",
    "retry_delay": "duration",
    "timeout": "duration",
    "sla": "duration",
    "owner": "str",
}
MAX_FILE_SIZE = 1024 * 1024


def parse_duration(value: Any) -> int | None:
    """30s 5m 2h 1d, or a number of seconds -> seconds; None when it is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if value >= 0 else None
    if isinstance(value, str):
        match = DURATION_RE.fullmatch(value)
        if match:
            return int(float(match.group(1)) * DURATION_UNITS[match.group(2)])
    return None
