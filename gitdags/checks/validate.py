"""Validation of DAG definition files: pure functions, no I/O.

Graphs: a cycle check runs on every file, so the common case (no cycle) is Kahn's algorithm
on plain dicts; networkx is brought in to find and spell out the cycles when there are some,
and for the graph between DAGs.

`check_dag` turns one format v1 mapping into a normalized spec and a list of issues (every
problem, not just the first). Reading files is `gitdags.kinds`; the checks that need more than
one file are in `gitdags.checks.crosscheck`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from gitdags import formats
from gitdags.formats import FieldPath, path_text
from gitdags.model import Issue
from gitdags.spec import (
    CALLABLE_RE,
    DEFAULT_ARGS,
    ID_MAX,
    ID_RE,
    PRESETS,
    TASK_FIELDS,
    TASK_TYPES,
    TOP_FIELDS,
    TRIGGER_RULES,
    parse_duration,
)

_TASK_OPTIONAL = frozenset(TASK_FIELDS) - {"id", "type", "config", "depends_on"}


def is_id(value: Any) -> bool:
    return type(value) is str and len(value) <= ID_MAX and ID_RE.fullmatch(value) is not None


def content_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def file_issue(path: str, code: str, message: str, location: str = "") -> Issue:
    return Issue(code, "error", path, location, None, message)


def default_dag_id(path: str) -> str:
    return PurePosixPath(path).stem


@functools.lru_cache(maxsize=4096)
def check_schedule(value: str) -> str | None:
    """None when `value` is a valid 5-field cron or preset, else the reason."""
    if value.startswith("@"):
        return None if value in PRESETS else f"preset must be one of {' '.join(PRESETS)}"
    if len(value.split()) != 5:
        return "a cron expression has 5 fields (minute hour day month weekday)"
    from croniter import croniter  # imported here: only sync and validate need it

    try:
        croniter(value)
    except (ValueError, KeyError, TypeError) as exc:
        return str(exc) or "not a valid cron expression"
    return None


@dataclass
class _Checker:
    path: str
    line_of: formats.LineFinder
    task_types: Mapping[str, tuple[str, ...]]
    issues: list[Issue] = field(default_factory=list)

    def add(self, code: str, where: FieldPath, message: str, severity: str = "error") -> None:
        self.issues.append(
            Issue(code, severity, self.path, path_text(where), self.line_of(where), message)  # type: ignore[arg-type]
        )

    # -- scalar kinds ---------------------------------------------------------------------------
    def value(self, kind: str, value: Any, where: FieldPath) -> Any:
        """Check `value` against `kind`; return its normalized form (None when wrong)."""
        if kind == "str":
            if isinstance(value, str):
                return value
            return self._wrong(where, "{name} must be a string")
        if kind == "bool":
            if isinstance(value, bool):
                return value
            return self._wrong(where, "{name} must be true or false")
        if kind in ("int", "count"):
            if isinstance(value, int) and not isinstance(value, bool):
                if kind == "count" and value < 0:
                    self.add("GD108", where, f"{path_text(where)} must be 0 or more, not {value}.")
                    return None
                return value
            return self._wrong(where, "{name} must be a whole number")
        if kind == "id":
            return self.ident(value, where)
        if kind in ("ids", "strs"):
            if not isinstance(value, list):
                return self._wrong(where, "{name} must be a list")
            out = []
            for i, item in enumerate(value):
                if kind == "ids":
                    checked = self.ident(item, (*where, i))
                else:
                    checked = self.value("str", item, (*where, i))
                if checked is not None:
                    out.append(checked)
            return out
        if kind == "mapping":
            if isinstance(value, dict):
                return plain(value)
            return self._wrong(where, "{name} must be a mapping")
        if kind == "duration":
            seconds = parse_duration(value)
            if seconds is None:
                self.add(
                    "GD106",
                    where,
                    f"{path_text(where)} is not a duration ({value!r}); "
                    "write 30s, 5m, 2h, 1d or seconds.",
                )
            return seconds
        if kind == "schedule":
            if value is None:
                return None
            if not isinstance(value, str):
                return self._wrong(where, "{name} must be a cron string, a preset or null")
            reason = check_schedule(value.strip())
            if reason:
                self.add("GD105", where, f"schedule {value!r} is not valid: {reason}.")
                return None
            return value.strip()
        if kind == "date":
            return self.date(value, where)
        raise AssertionError(f"unknown field kind {kind}")

    def _wrong(self, where: FieldPath, message: str) -> None:
        """A GD102; "{name}" in `message` becomes the field path (computed only on error)."""
        self.add("GD102", where, message.replace("{name}", path_text(where)) + ".")
        return None

    def ident(self, value: Any, where: FieldPath) -> str | None:
        if not isinstance(value, str):
            return self._wrong(where, f"{path_text(where)} must be a string id")
        if not ID_RE.fullmatch(value) or len(value) > ID_MAX:
            self.add(
                "GD104",
                where,
                f"{value!r} is not a valid id: use letters, digits, '_', '.', '-', starting "
                f"with a letter or digit, at most {ID_MAX} characters.",
            )
            return None
        return value

    def date(self, value: Any, where: FieldPath) -> str | None:
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return (
                    dt.datetime.fromisoformat(value.strip()).isoformat().removesuffix("T00:00:00")
                )
            except ValueError:
                pass
        self.add("GD107", where, f"start_date {value!r} is not a date; write e.g. 2024-01-01.")
        return None

    # -- the DAG --------------------------------------------------------------------------------
    def dag(self, data: Any) -> dict[str, Any] | None:
        if not isinstance(data, dict):
            kind = "empty" if data is None else type(data).__name__
            self.add("GD005", (), f"The file must hold one mapping (a DAG), not {kind}.")
            return None
        spec: dict[str, Any] = {}
        for key in data:
            if key not in TOP_FIELDS:
                self.add(
                    "GD103",
                    (str(key),),
                    f"Unknown field {key!r} is ignored; known fields: "
                    + ", ".join(k for k in TOP_FIELDS if k != "nodes")
                    + ".",
                    "warning",
                )
        dag_id = self.value("id", data["dag_id"], ("dag_id",)) if "dag_id" in data else None
        spec["dag_id"] = dag_id
        spec["description"] = self.opt(data, "description", "")
        spec["enabled"] = self.opt(data, "enabled", True)
        spec["schedule"] = self.opt(data, "schedule", None)
        spec["start_date"] = self.opt(data, "start_date", None)
        spec["catchup"] = self.opt(data, "catchup", False)
        spec["max_active_runs"] = self.opt(data, "max_active_runs", None)
        if spec["max_active_runs"] is not None and spec["max_active_runs"] < 1:
            self.add("GD108", ("max_active_runs",), "max_active_runs must be 1 or more.")
        spec["owner"] = self.opt(data, "owner", None)
        spec["tags"] = self.opt(data, "tags", [])
        spec["default_args"] = self.default_args(data.get("default_args"))
        spec["params"] = self.opt(data, "params", {})
        spec["depends_on_dags"] = sorted(set(self.opt(data, "depends_on_dags", [])))
        spec["tasks"] = self.tasks(data)
        return spec

    def opt(self, data: dict[str, Any], key: str, default: Any) -> Any:
        if key not in data:
            return default
        if data[key] is None and key != "schedule":
            return default
        checked = self.value(TOP_FIELDS[key][0], data[key], (key,))
        return default if checked is None and key != "schedule" else checked

    def default_args(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self._wrong(("default_args",), "default_args must be a mapping")
            return {}
        out = plain(value)
        for key, kind in DEFAULT_ARGS.items():
            if key in value:
                out[key] = self.value(kind, value[key], ("default_args", key))
        return out

    # -- tasks ----------------------------------------------------------------------------------
    def tasks(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        key = "tasks"
        if "tasks" in data and "nodes" in data:
            self.add("GD109", ("nodes",), "Use either tasks or nodes, not both.")
        elif "nodes" in data:
            key = "nodes"
        elif "tasks" not in data:
            self.add("GD101", (), "Required field tasks is missing (nodes is accepted too).")
            return []
        raw = data[key]
        if not isinstance(raw, list):
            self._wrong((key,), f"{key} must be a list of tasks")
            return []
        if not raw:
            self.add("GD207", (key,), "A DAG needs at least one task.")
        tasks: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, item in enumerate(raw):
            task = self.task(item, (key, i))
            if task is None:
                continue
            if task["id"] in seen:
                self.add("GD201", (key, i, "id"), f"Task id {task['id']!r} is used twice.")
                continue
            seen.add(task["id"])
            tasks.append(task)
        self.edges(data.get("edges"), tasks, seen)
        self.graph(tasks, key)
        for task in tasks:
            task["depends_on"] = sorted(set(task["depends_on"]))
        return tasks

    def task(self, item: Any, where: FieldPath) -> dict[str, Any] | None:
        if not isinstance(item, dict):
            self._wrong(where, f"{path_text(where)} must be a mapping with id and type")
            return None
        for key in item.keys() - TASK_FIELDS.keys():
            self.add(
                "GD103",
                (*where, str(key)),
                f"Unknown task field {key!r} is ignored; known: {', '.join(TASK_FIELDS)}.",
                "warning",
            )
        ok = True
        for required in ("id", "type"):
            if required not in item:
                self.add("GD101", where, f"Required task field {required} is missing.")
                ok = False
        # The common, valid case is checked inline; the generic checks name what is wrong.
        task_id = item.get("id")
        if not (type(task_id) is str and len(task_id) <= ID_MAX and ID_RE.fullmatch(task_id)):
            task_id = self.ident(task_id, (*where, "id")) if "id" in item else None
        task_type = item.get("type")
        if type(task_type) is not str:
            task_type = self.value("str", task_type, (*where, "type")) if "type" in item else None
        config = item.get("config", {})
        config = (
            plain(config)
            if type(config) is dict
            else self.value("mapping", config, (*where, "config"))
        )
        if task_type is not None and config is not None:
            self.config(task_type, config, where)
        depends_on = item.get("depends_on", [])
        if not (type(depends_on) is list and all(is_id(d) for d in depends_on)):
            depends_on = self.value("ids", depends_on, (*where, "depends_on"))
        if task_id is None or task_type is None or not ok:
            return None
        task: dict[str, Any] = {
            "id": task_id,
            "type": task_type,
            "config": config or {},
            "depends_on": list(depends_on or []),
        }
        for key in item.keys() & _TASK_OPTIONAL:
            checked = self.value(TASK_FIELDS[key][0], item[key], (*where, key))
            if key == "trigger_rule" and checked is not None and checked not in TRIGGER_RULES:
                self.add(
                    "GD108",
                    (*where, key),
                    f"Unknown trigger_rule {checked!r}; use one of {', '.join(TRIGGER_RULES)}.",
                )
            task[key] = checked
        task["_where"] = where
        return task

    def config(self, task_type: str, config: dict[str, Any], where: FieldPath) -> None:
        if task_type not in self.task_types:
            self.add(
                "GD205",
                (*where, "type"),
                f"Unknown task type {task_type!r}; use one of {', '.join(self.task_types)} "
                "or declare it under [task_types] in config.toml.",
            )
            return
        for key in self.task_types[task_type]:
            if key not in config or config[key] in (None, ""):
                self.add(
                    "GD206",
                    (*where, "config"),
                    f"Task type {task_type} needs config key {key!r}.",
                )
        call = config.get("callable")
        if task_type == "python" and isinstance(call, str) and not CALLABLE_RE.fullmatch(call):
            self.add(
                "GD108",
                (*where, "config", "callable"),
                f"callable {call!r} must be written package.module:function.",
            )

    def edges(self, value: Any, tasks: list[dict[str, Any]], ids: set[str]) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            self._wrong(("edges",), "edges must be a list of {from, to} mappings")
            return
        by_id = {t["id"]: t for t in tasks}
        for i, edge in enumerate(value):
            where: FieldPath = ("edges", i)
            if not isinstance(edge, dict) or "from" not in edge or "to" not in edge:
                self._wrong(where, f"edges[{i}] must be a mapping with from and to")
                continue
            src, dst = edge["from"], edge["to"]
            if not isinstance(src, str) or not isinstance(dst, str):
                self._wrong(where, f"edges[{i}] from and to must be task ids")
                continue
            missing = [t for t in (src, dst) if t not in ids]
            for name in missing:
                self.add("GD202", where, f"Edge names task {name!r}, which does not exist.")
            if src == dst:
                self.add("GD203", where, f"Task {src!r} cannot depend on itself.")
            elif not missing:
                by_id[dst]["depends_on"].append(src)

    def graph(self, tasks: list[dict[str, Any]], key: str) -> None:
        ids = {t["id"] for t in tasks}
        for task in tasks:
            where = task.pop("_where")
            kept = []
            for up in task["depends_on"]:
                if up == task["id"]:
                    self.add("GD203", (*where, "depends_on"), f"Task {up!r} depends on itself.")
                elif up not in ids:
                    self.add(
                        "GD202",
                        (*where, "depends_on"),
                        f"Task {task['id']!r} depends on {up!r}, which does not exist.",
                    )
                else:
                    kept.append(up)
            task["depends_on"] = kept
        edges = [(up, t["id"]) for t in tasks for up in t["depends_on"]]
        if acyclic(ids, edges):
            return
        import networkx as nx  # only to name the cycles: imported when there is one

        graph = nx.DiGraph(edges)
        for component in nx.strongly_connected_components(graph):
            if len(component) < 2:
                continue
            cycle = spell_cycle(graph.subgraph(component), [t["id"] for t in tasks])
            self.add("GD204", (key,), f"Tasks form a cycle: {cycle}.")


def acyclic(nodes: set[str], edges: list[tuple[str, str]]) -> bool:
    """Kahn's algorithm: the common case (no cycle) without building a networkx graph."""
    indegree = dict.fromkeys(nodes, 0)
    children: dict[str, list[str]] = {}
    for up, down in edges:
        indegree[down] += 1
        children.setdefault(up, []).append(down)
    ready = [n for n, d in indegree.items() if d == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for child in children.get(node, ()):
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return seen == len(nodes)


def plain(value: Any) -> Any:
    """Make parsed data JSON-safe: dates become ISO strings, keys become strings."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def check_dag(
    path: str,
    data: dict[str, Any],
    line_of: formats.LineFinder,
    task_types: Mapping[str, tuple[str, ...]] = TASK_TYPES,
) -> tuple[dict[str, Any], list[Issue]]:
    """A format v1 mapping checked on its own: its normalized spec and every issue found."""
    checker = _Checker(path, line_of, task_types)
    spec = checker.dag(data)
    assert spec is not None
    return spec, checker.issues


def spell_cycle(graph: Any, order: list[str]) -> str:
    """One cycle of a strongly connected graph, spelled from its first node in `order`."""
    import networkx as nx

    start = next(n for n in order if n in graph)
    edges = nx.find_cycle(graph, source=start)
    names = [edge[0] for edge in edges]
    first = min(
        range(len(names)), key=lambda i: order.index(names[i]) if names[i] in order else 1 << 30
    )
    names = names[first:] + names[:first]
    return " -> ".join([*names, names[0]])
