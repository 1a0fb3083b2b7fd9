"""The checks of one dag-factory DAG and its spec: structure, task and group ids, `operator` /
`decorator`, dependencies on tasks and groups (and the outputs a task takes), cycles spelled
out, schedules, dates, keys Airflow 3 removed, DAG keys dag-factory ignores; the graph as
dag-factory builds it in Airflow; the Python objects the block names (for ruff's AIR3 rules).
The checks of tasks and groups, and the graph, are `dagfactory_tasks.TaskChecks`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from gitdags import formats
from gitdags.checks import validate
from gitdags.model import DagFile, Issue
from gitdags.orchestrators.airflow.dagfactory_defaults import Defaults, compose, merged
from gitdags.orchestrators.airflow.dagfactory_tasks import AIRFLOW3_TASK_KEYS, TaskChecks, Where

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
PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly")
PRESETS += ("@yearly", "@annually")
RELATIVE_TIME = re.compile(
    r"(\d+\s+hours?)?\s*(\d+\s+minutes?)?\s*(\d+\s+seconds?)?\s*(\d+\s+days?)?", re.IGNORECASE
)
CALLBACKS = ("on_execute_callback", "on_success_callback", "on_failure_callback")
CALLBACKS += ("on_retry_callback", "on_skipped_callback", "sla_miss_callback")
SCHEDULE_KEYS = frozenset({"datasets", "file", "conditions", "timetable", "__type__", "__args__"})


@dataclass
class DagReader(TaskChecks):
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
