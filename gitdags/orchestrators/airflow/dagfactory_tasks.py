"""The task checks of a dag-factory DAG (ids, operators, groups, dependencies) and its graph."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitdags.checks import validate

# task (and default_args) keys Airflow 3 operators no longer take
AIRFLOW3_TASK_KEYS = {
    "sla": "Airflow 3 removed SLAs (`sla`); use deadline alerts",
    "task_concurrency": "Airflow 3 removed `task_concurrency`; use `max_active_tis_per_dag`",
    "provide_context": "Airflow 3 removed `provide_context`; the context is always passed",
}
TASK_ID = re.compile(r"[\w.-]+")  # Airflow's task and group ids (KEY_REGEX)

Where = tuple[str | int, ...]


@dataclass
class _Task:
    name: str
    conf: dict[str, Any]
    where: Where
    group: str | None = None


class TaskChecks:
    """The checks of a DAG block's tasks and task groups, and the graph Airflow makes of them:
    the part of `DagReader` (which gives `dag_id` and `add`) about tasks."""

    dag_id: str

    if TYPE_CHECKING:

        def add(self, code: str, where: Where, message: str, severity: str = "error") -> None: ...

    def check_tasks(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        groups = self.groups(params.get("task_groups"))
        tasks = self.tasks(params.get("tasks"))
        names = {t.name for t in tasks}
        aliases = _aliases(params.get("operator_aliases"))
        for task in tasks:
            conf = task.conf
            if isinstance(conf.get("operator"), str) and conf["operator"] in aliases:
                task.conf = conf = {**conf, "operator": aliases[conf["operator"]]}
            if "operator" not in conf and "decorator" not in conf:
                self.add(
                    "GD101",
                    task.where,
                    f"Task {task.name!r} has neither `operator` nor `decorator`; name the "
                    "operator class (airflow.providers.standard.operators.bash.BashOperator).",
                )
            for key in ("operator", "decorator"):
                value = conf.get(key)
                if key in conf and (not isinstance(value, str) or "." not in value):
                    self.add(
                        "GD102",
                        (*task.where, key),
                        f"`{key}` of task {task.name!r} must be a dotted import path "
                        "(package.module.Name).",
                    )
            for key in conf:
                if key in AIRFLOW3_TASK_KEYS:
                    self.add("GD408", (*task.where, key), f"{AIRFLOW3_TASK_KEYS[key]}.")
            group = conf.get("task_group_name")
            if group is not None:
                if group in groups:
                    task.group = group
                else:
                    self.add(
                        "GD202",
                        (*task.where, "task_group_name"),
                        f"Task {task.name!r} is in task group {group!r}, which does not exist.",
                    )
        for name, (conf, where) in groups.items():
            parent = conf.get("parent_group_name")
            if parent is not None and parent not in groups:
                self.add(
                    "GD202",
                    (*where, "parent_group_name"),
                    f"Task group {name!r} is in task group {parent!r}, which does not exist.",
                )
        self.group_cycles(groups)
        upstream: dict[str, list[str]] = {}
        items = [(t.name, t.conf, t.where) for t in tasks]
        items += [(n, c, w) for n, (c, w) in groups.items()]
        for name, conf, where in items:
            deps = conf.get("dependencies")
            refs = _references(conf) if name in names else []
            if deps is None and not refs:
                continue
            if deps is None:
                deps = []
            if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
                self.add("GD102", (*where, "dependencies"), "`dependencies` is a list of names.")
                continue
            for ref in refs:
                if ref not in names:
                    self.add(
                        "GD202",
                        where,
                        f"Task {name!r} takes the output of {ref!r}, which is not a task of "
                        "this DAG.",
                    )
            deps = [*deps, *(r for r in refs if r in names and r not in deps)]
            kept = []
            for dep in deps:
                if dep == name:
                    self.add("GD203", (*where, "dependencies"), f"{name!r} depends on itself.")
                elif dep not in names and dep not in groups:
                    self.add(
                        "GD202",
                        (*where, "dependencies"),
                        f"{name!r} depends on {dep!r}, which is neither a task nor a task "
                        "group of this DAG.",
                    )
                else:
                    kept.append(dep)
            upstream[name] = kept
        return self.graph(tasks, groups, upstream)

    def tasks(self, raw: Any) -> list[_Task]:
        if raw is None or raw == [] or raw == {}:
            self.add("GD207", ("tasks",), f"DAG {self.dag_id!r} has no tasks.", "warning")
            return []
        found: list[_Task] = []
        if isinstance(raw, dict):
            entries: Iterator[tuple[Any, Any, Where]] = (
                (name, conf, ("tasks", str(name))) for name, conf in raw.items()
            )
        elif isinstance(raw, list):
            entries = (
                (conf.get("task_id") if isinstance(conf, dict) else None, conf, ("tasks", i))
                for i, conf in enumerate(raw)
            )
        else:
            self.add("GD102", ("tasks",), "`tasks` is a mapping of task ids, or a list of tasks.")
            return []
        seen: set[str] = set()
        for name, conf, where in entries:
            if not isinstance(conf, dict):
                self.add("GD102", where, "A task is a mapping with `operator` or `decorator`.")
                continue
            if name is None:
                self.add("GD101", where, "A task in a list of tasks needs a `task_id`.")
                continue
            name = str(name)
            if not TASK_ID.fullmatch(name) or len(name) > validate.ID_MAX:
                self.add(
                    "GD104",
                    where,
                    f"Task id {name!r} is not valid (letters, digits, `_`, `.`, `-`).",
                )
                continue
            if name in seen:
                self.add("GD201", where, f"Task id {name!r} is defined twice.")
                continue
            seen.add(name)
            found.append(_Task(name, conf, where))
        return found

    def groups(self, raw: Any) -> dict[str, tuple[dict[str, Any], Where]]:
        if raw is None:
            return {}
        if isinstance(raw, dict):
            entries = [(str(n), c, ("task_groups", str(n))) for n, c in raw.items()]
        elif isinstance(raw, list):
            entries = [
                (str(c.get("group_name")) if isinstance(c, dict) else "", c, ("task_groups", i))
                for i, c in enumerate(raw)
            ]
        else:
            self.add("GD102", ("task_groups",), "`task_groups` is a mapping, or a list.")
            return {}
        found: dict[str, tuple[dict[str, Any], Where]] = {}
        for name, conf, where in entries:
            if not isinstance(conf, dict) or name in ("", "None"):
                self.add("GD102", where, "A task group is a mapping (with `group_name` in a list).")
            elif name in found:
                self.add("GD201", where, f"Task group {name!r} is defined twice.")
            else:
                found[name] = (conf, where)
        return found

    def group_cycles(self, groups: dict[str, tuple[dict[str, Any], Where]]) -> None:
        for name, (_conf, where) in groups.items():
            seen = [name]
            parent = groups[name][0].get("parent_group_name")
            while parent in groups and parent not in seen:
                seen.append(parent)
                parent = groups[parent][0].get("parent_group_name")
            if parent in seen:
                loop = " -> ".join([*seen[seen.index(parent) :], parent])
                self.add("GD204", (*where, "parent_group_name"), f"Groups nest in a cycle: {loop}.")
                return

    def graph(
        self,
        tasks: list[_Task],
        groups: dict[str, tuple[dict[str, Any], Where]],
        upstream: dict[str, list[str]],
    ) -> list[dict[str, Any]]:
        """The tasks as Airflow makes them: ids prefixed with their groups, a dependency on a
        group meaning on its last tasks, a group's dependency holding for its first tasks."""

        def group_id(name: str, depth: int = 0) -> str:
            conf = groups[name][0]
            parent = conf.get("parent_group_name")
            own = name
            if parent in groups and depth < len(groups):
                prefix = group_id(parent, depth + 1)
                own = f"{prefix}.{name}" if prefix else name
            return own if conf.get("prefix_group_id", True) is not False else ""

        def task_id(task: _Task) -> str:
            prefix = group_id(task.group) if task.group else ""
            return f"{prefix}.{task.name}" if prefix else task.name

        ids = {t.name: task_id(t) for t in tasks}
        members: dict[str, set[str]] = {g: set() for g in groups}
        for task in tasks:
            group, depth = task.group, 0
            while group in groups and depth <= len(groups):
                members[group].add(task.name)
                group, depth = groups[group][0].get("parent_group_name"), depth + 1

        def ends(name: str, last: bool) -> list[str]:
            if name not in groups:
                return [name]
            inside = members[name]
            if last:  # tasks of the group no other task of the group depends on
                used = {d for t in inside for d in upstream.get(t, []) if d in inside}
                return sorted(inside - used)
            return sorted(t for t in inside if not set(upstream.get(t, [])) & inside)

        ups: dict[str, set[str]] = {t.name: set() for t in tasks}
        for name, deps in upstream.items():
            for down in ends(name, last=False):
                for dep in deps:
                    ups[down].update(u for u in ends(dep, last=True) if u != down)
        order = [t.name for t in tasks]
        edges = [(u, d) for d, us in ups.items() for u in us]
        if not validate.acyclic(set(order), edges):
            import networkx as nx

            graph = nx.DiGraph(edges)
            for component in nx.strongly_connected_components(graph):
                if len(component) > 1:
                    cycle = validate.spell_cycle(graph.subgraph(component), order)
                    self.add("GD204", ("tasks",), f"Tasks form a cycle: {cycle}.")
        return [
            {
                "id": ids[t.name],
                "type": _short(t.conf.get("operator") or t.conf.get("decorator")),
                "depends_on": sorted(ids[u] for u in ups[t.name]),
            }
            for t in tasks
        ]


XCOM_OF_TASK = re.compile(r"\+(\w+)(\[.*\])?")  # a TaskFlow argument: +task or +task["key"]


def _references(conf: dict[str, Any]) -> list[str]:
    """The tasks whose output a task takes (dag-factory makes them upstream): `+task`
    arguments of a decorated task, `task.output` / `XcomArg(task)` in `expand`."""
    found: list[str] = []
    expand = conf.get("expand")
    expanded = list(expand.values()) if isinstance(expand, dict) else []
    if "decorator" in conf:
        partial = conf.get("partial")
        values = [*conf.values(), *expanded]
        values += list(partial.values()) if isinstance(partial, dict) else []
        for value in values:
            match = XCOM_OF_TASK.fullmatch(value) if isinstance(value, str) else None
            if match:
                found.append(match.group(1))
    else:
        for value in expanded:
            if isinstance(value, str) and ".output" in value:
                found.append(value.split(".output")[0].strip())
            elif isinstance(value, str) and "XcomArg" in value:
                inner = re.findall(r"\(+(.*?)\)", value)
                found += inner[:1]
    return list(dict.fromkeys(found))


def _aliases(raw: Any) -> dict[str, str]:
    """`operator_aliases` (a list of {operator_alias, operator_path}) as alias -> path."""
    if not isinstance(raw, list):
        return {}
    return {
        str(item["operator_alias"]): str(item["operator_path"])
        for item in raw
        if isinstance(item, dict) and "operator_alias" in item and "operator_path" in item
    }


def _short(value: Any) -> str:
    return value.rsplit(".", 1)[-1] if isinstance(value, str) else "?"
