"""The checks of one dag-factory DAG and its spec: structure, task and group ids, `operator` /
`decorator`, dependencies on tasks and groups (and the outputs a task takes), cycles spelled
out, schedules, dates, keys Airflow 3 removed, DAG keys dag-factory ignores; the graph as
dag-factory builds it in Airflow; the Python objects the block names (for ruff's AIR3 rules).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gitdags import formats
from gitdags.checks import validate
from gitdags.model import DagFile, Issue
from gitdags.orchestrators.airflow.dagfactory_defaults import Defaults, compose, merged

# DAG-level keys dag-factory reads (others are ignored, silently, by dag-factory)
DAG_KEYS = frozenset(
    {
        "access_control",
        "catchup",
        "concurrency",
        "dag_display_name",
        "dagrun_timeout",
        "default_args",
        "default_view",
        "description",
        "doc_md",
        "doc_md_file_path",
        "doc_md_python_arguments",
        "doc_md_python_callable_file",
        "doc_md_python_callable_name",
        "end_date",
        "is_paused_upon_creation",
        "max_active_runs",
        "max_active_tasks",
        "on_failure_callback",
        "on_failure_callback_file",
        "on_failure_callback_name",
        "on_success_callback",
        "on_success_callback_file",
        "on_success_callback_name",
        "operator_aliases",
        "orientation",
        "params",
        "render_template_as_native_obj",
        "schedule",
        "schedule_interval",
        "sla_miss_callback",
        "start_date",
        "tags",
        "task_groups",
        "tasks",
        "template_searchpath",
        "timetable",
        "timezone",
        "user_defined_macros",
    }
)
# DAG keys Airflow 3 removed or ignores: (severity, what to do)
AIRFLOW3_DAG_KEYS = {
    "schedule_interval": ("error", "Airflow 3 removed `schedule_interval`; use `schedule`"),
    "timetable": ("error", "Airflow 3 removed `timetable`; give the timetable as `schedule`"),
    "concurrency": ("warning", "`concurrency` is deprecated; use `max_active_tasks`"),
    "sla_miss_callback": ("warning", "Airflow 3.1 removed SLAs; `sla_miss_callback` is ignored"),
    "default_view": ("warning", "Airflow 3 ignores `default_view`"),
    "orientation": ("warning", "Airflow 3 ignores `orientation`"),
}
# task (and default_args) keys Airflow 3 operators no longer take
AIRFLOW3_TASK_KEYS = {
    "sla": "Airflow 3 removed SLAs (`sla`); use deadline alerts",
    "task_concurrency": "Airflow 3 removed `task_concurrency`; use `max_active_tis_per_dag`",
    "provide_context": "Airflow 3 removed `provide_context`; the context is always passed",
}
PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly")
PRESETS += ("@yearly", "@annually")
TASK_ID = re.compile(r"[\w.-]+")  # Airflow's task and group ids (KEY_REGEX)
RELATIVE_TIME = re.compile(
    r"(\d+\s+hours?)?\s*(\d+\s+minutes?)?\s*(\d+\s+seconds?)?\s*(\d+\s+days?)?", re.IGNORECASE
)
CALLBACKS = ("on_execute_callback", "on_success_callback", "on_failure_callback")
CALLBACKS += ("on_retry_callback", "on_skipped_callback", "sla_miss_callback")
SCHEDULE_KEYS = frozenset({"datasets", "file", "conditions", "timetable", "__type__", "__args__"})

Where = tuple[str | int, ...]


@dataclass
class _Task:
    name: str
    conf: dict[str, Any]
    where: Where
    group: str | None = None


@dataclass
class DagReader:
    """Checks one DAG block and makes its spec."""

    path: str
    dag_id: str
    line_of: formats.LineFinder
    problems: tuple[Issue, ...]
    issues: list[Issue] = field(default_factory=list)
    probes: list[tuple[int, str]] = field(default_factory=list)

    def add(self, code: str, where: Where, message: str, severity: str = "error") -> None:
        line = self.line_of((self.dag_id, *where)) or self.line_of(("default", *where))
        location = formats.path_text((self.dag_id, *where))
        self.issues.append(Issue(code, severity, self.path, location, line, message))  # type: ignore[arg-type]

    def read(
        self, block: Any, default: dict[str, Any], reached: list[Defaults], text: str
    ) -> DagFile:
        if not validate.is_id(self.dag_id):
            self.add(
                "GD104",
                (),
                f"{self.dag_id!r} is not a valid DAG id (letters, digits, `_`, `.`, `-`, at "
                f"most {validate.ID_MAX} characters); rename the key.",
            )
            return self.dag("", None, text)
        if not isinstance(block, dict):
            self.add(
                "GD102",
                (),
                f"DAG {self.dag_id!r} is a {type(block).__name__}; a dag-factory DAG is a "
                "mapping of DAG arguments with `tasks`.",
            )
            return self.dag(self.dag_id, None, text)
        effective_default, effective = compose(block, default, reached)
        params = merged(effective, effective_default)
        self.check_keys(params, own=merged(block, default))
        self.check_schedule(params)
        self.check_dates(params)
        tasks = self.check_tasks(params)
        self.probes += probes_of(block, (self.dag_id,), self.line_of)
        config = validate.plain({"default": effective_default, self.dag_id: effective})
        self.issues += self.problems
        spec = {
            "dag_id": self.dag_id,
            "format": "dag-factory",
            "description": _text(params.get("description")),
            "schedule": _schedule_text(params.get("schedule")),
            "start_date": _date_text(params.get("start_date") or _arg(params, "start_date")),
            "owner": _owner(params.get("default_args")),
            "tags": sorted(str(t) for t in params.get("tags") or [] if isinstance(t, str)),
            "depends_on_dags": [],
            "tasks": tasks,
            "dag_factory": {
                "file": self.path,
                "defaults": [d.path for d in reached],
                "config": config,
            },
        }
        return self.dag(self.dag_id, spec, text)

    def dag(self, dag_id: str, spec: dict[str, Any] | None, text: str) -> DagFile:
        content = json.dumps(
            (spec or {}).get("dag_factory", {}).get("config"), sort_keys=True, default=str
        )
        digest = hashlib.sha256(f"dag-factory\0{self.dag_id}\0{content}".encode()).hexdigest()
        return DagFile(self.path, dag_id, spec, tuple(self.issues), digest, text)

    # -- checks ----------------------------------------------------------------------------------
    def check_keys(self, params: dict[str, Any], own: dict[str, Any]) -> None:
        """Keys Airflow 3 removed, and keys dag-factory ignores (those of this file only: a
        defaults file is shared, and may hold keys of later dag-factory versions)."""
        for key in params:
            if key in AIRFLOW3_DAG_KEYS:
                severity, what = AIRFLOW3_DAG_KEYS[key]
                self.add("GD408", (key,), f"{what}.", severity)
            elif key in own and key not in DAG_KEYS and not key.endswith(("_file", "_name")):
                near = _closest(key, DAG_KEYS)
                self.add(
                    "GD103",
                    (key,),
                    f"dag-factory ignores the DAG key {key!r}"
                    + (f"; did you mean {near!r}?" if near else "; remove it."),
                    "warning",
                )
        args = params.get("default_args")
        if args is not None and not isinstance(args, dict):
            self.add("GD102", ("default_args",), "`default_args` must be a mapping.")
        elif isinstance(args, dict):
            for key in args:
                if key in AIRFLOW3_TASK_KEYS:
                    self.add("GD408", ("default_args", key), f"{AIRFLOW3_TASK_KEYS[key]}.")

    def check_schedule(self, params: dict[str, Any]) -> None:
        if "schedule" not in params:
            return
        value = params["schedule"]
        problem = None
        if isinstance(value, str):
            problem = schedule_problem(value)
        elif isinstance(value, list):
            if not all(
                (isinstance(v, str) and v.strip()) or (isinstance(v, dict) and "__type__" in v)
                for v in value
            ):
                problem = "a list schedule holds assets: URIs, or mappings with `__type__`"
        elif isinstance(value, dict):
            odd = sorted(str(k) for k in value if k not in SCHEDULE_KEYS)
            if "__type__" not in value and "datasets" not in value:
                problem = "a mapping schedule has `datasets` (assets) or a `__type__`"
            elif odd and "__type__" not in value:
                problem = f"unknown schedule keys {', '.join(odd)}"
        elif value is not None:
            problem = f"a schedule cannot be a {type(value).__name__}"
        if problem:
            self.add(
                "GD105",
                ("schedule",),
                f"Schedule {value!r} is not valid: {problem}; use a 5-field cron, a preset "
                "(@daily), null, asset URIs or a timetable with `__type__`.",
            )

    def check_dates(self, params: dict[str, Any]) -> None:
        places: list[tuple[Where, Any]] = [(("start_date",), params.get("start_date"))]
        places.append((("end_date",), params.get("end_date")))
        args = params.get("default_args")
        if isinstance(args, dict):
            places += [(("default_args", k), args.get(k)) for k in ("start_date", "end_date")]
        for where, value in places:
            if value is None or isinstance(value, dt.date):
                continue
            if not isinstance(value, str) or not _date_like(value):
                self.add(
                    "GD107",
                    where,
                    f"{where[-1]} {value!r} is neither a date (2024-01-31, 2024-01-31T06:00) "
                    "nor a relative time (`3 days`).",
                )

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


# -- small helpers -------------------------------------------------------------------------------
def schedule_problem(value: str) -> str | None:
    text = value.strip()
    if text.lower() == "none":
        return None
    if text.startswith("@"):
        return None if text in PRESETS else f"the preset must be one of {' '.join(PRESETS)}"
    return validate.check_schedule(text)


def _date_like(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return True
    except ValueError:
        pass
    match = RELATIVE_TIME.fullmatch(value.strip())
    return match is not None and any(match.groups())


def probes_of(node: Any, where: Where, line_of: formats.LineFinder) -> list[tuple[int, str]]:
    """(line, dotted path) of each Python object a block names: operators, decorators,
    `__type__` classes, callbacks given as strings."""
    found: list[tuple[int, str]] = []
    todo: list[tuple[Where, Any]] = [(where, node)]
    while todo:
        at, value = todo.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                key = str(key)
                if isinstance(item, str) and (
                    key in ("operator", "decorator", "__type__", "python_callable", "callback")
                    or key in CALLBACKS
                ):
                    line = line_of((*at, key))
                    if line is not None and re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+", item):
                        found.append((line, item))
                elif isinstance(item, dict | list):
                    todo.append(((*at, key), item))
        elif isinstance(value, list):
            todo += [((*at, i), item) for i, item in enumerate(value)]
    return found


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


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _arg(params: dict[str, Any], key: str) -> Any:
    args = params.get("default_args")
    return args.get(key) if isinstance(args, dict) else None


def _owner(args: Any) -> str | None:
    owner = args.get("owner") if isinstance(args, dict) else None
    return owner if isinstance(owner, str) else None


def _date_text(value: Any) -> str | None:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value if isinstance(value, str) else None


def _schedule_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return None if isinstance(value, str) and value.strip().lower() == "none" else value
    if isinstance(value, list):
        return "assets: " + ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        if "__type__" in value:
            return str(value["__type__"]).rsplit(".", 1)[-1]
        if "datasets" in value:
            return "assets"
    return "(dag-factory)"


def _closest(key: str, known: frozenset[str]) -> str | None:
    import difflib

    near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
    return near[0] if near else None
