"""A Prefect project file (`prefect.yaml`, or any YAML whose top level has `deployments`),
read on its own: each deployment block is one DAG, its id `<flow name>/<deployment name>`.

Read alone, a deployment's flow name is guessed from its entrypoint's function (Prefect's
default: `_` turned to `-`); `project.resolve` then reads the flow file and gives the name the
flow really has, checks the entrypoint and the parameters, and makes the deployment's content
cover its code. Checks here: the file's shape, each block's fields and types (GD101/GD102,
unknown keys GD103 as warnings, since Prefect ignores them), names Prefect refuses (GD104),
schedules (GD105-GD107), an entrypoint that is not `path.py:function` (GD110), and the same
deployment twice (GD301, by the id both get)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gitdags.checks.validate import plain
from gitdags.formats import LineFinder
from gitdags.model import DagFile, FileDefinitions, Issue
from gitdags.orchestrators.prefect import schedules
from gitdags.orchestrators.prefect.flows import BANNED

if TYPE_CHECKING:
    from gitdags.kinds import ReadContext

PROJECT_KEYS = frozenset({"prefect-version", "name", "build", "push", "pull", "deployments"})
PROJECT_KEYS |= {"definitions"}  # the customary home of YAML anchors
DEPLOYMENT_KEYS = frozenset(
    {
        "name",
        "version",
        "version_type",
        "tags",
        "description",
        "schedule",
        "schedules",
        "paused",
        "concurrency_limit",
        "flow_name",
        "entrypoint",
        "parameters",
        "enforce_parameter_schema",
        "build",
        "push",
        "pull",
        "work_pool",
        "triggers",
        "sla",
    }
)
NAMES = ("prefect.yaml", "prefect.yml")


def is_project_name(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in NAMES


def looks_like(path: str, data: Any) -> bool:
    """A Prefect project file: named prefect.yaml, or a mapping with a `deployments` list."""
    if is_project_name(path):
        return True
    return (
        isinstance(data, dict)
        and isinstance(data.get("deployments"), list)
        and all(isinstance(d, dict) and "entrypoint" in d for d in data["deployments"])
    )


def block_hash(block: dict[str, Any], project: dict[str, Any], code: list[list[str]]) -> str:
    """A deployment's content: its block, the project's shared keys, and the (path, blob) of
    each repository file its flow runs with."""
    text = json.dumps([block, project, code], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def guessed_flow_name(entrypoint: Any) -> str:
    if isinstance(entrypoint, str) and ":" in entrypoint:
        return entrypoint.rpartition(":")[2].rpartition(".")[2].replace("_", "-")
    return ""


def definitions(
    path: str, data: Any, line_of: LineFinder, ctx: ReadContext, digest: str, text: str
) -> FileDefinitions:
    def issue(
        code: str, where: tuple[str | int, ...], message: str, severity: str = "error"
    ) -> Issue:
        location = ".".join(str(w) for w in where)
        return Issue(code, severity, path, location, line_of(where), message)  # type: ignore[arg-type]

    if data is None:
        data = {}
    if not isinstance(data, dict):
        bad = issue("GD005", (), "A Prefect project file (prefect.yaml) must be a mapping.")
        return FileDefinitions(path, "prefect", digest, issues=(bad,), content=text)
    file_issues = [
        issue(
            "GD103", (key,), f"{key!r} is not a key of prefect.yaml; Prefect ignores it.", "warning"
        )
        for key in data
        if key not in PROJECT_KEYS
    ]
    project = plain(
        {k: v for k, v in data.items() if k in PROJECT_KEYS - {"deployments", "definitions"}}
    )
    for key in ("build", "push", "pull"):
        if key in data and not _steps(data[key]):
            file_issues.append(issue("GD102", (key,), f"{key} is a list of steps (mappings)."))
    blocks = data.get("deployments", [])
    if blocks is None:
        blocks = []
    if not isinstance(blocks, list):
        file_issues.append(issue("GD102", ("deployments",), "deployments must be a list."))
        return FileDefinitions(path, "prefect", digest, issues=tuple(file_issues), content=text)
    dags = []
    for index, block in enumerate(blocks):
        where: tuple[str | int, ...] = ("deployments", index)
        if not isinstance(block, dict):
            file_issues.append(issue("GD102", where, "A deployment is a mapping."))
            continue
        dags.append(_deployment(path, where, block, project, line_of, digest, text, issue))
    return FileDefinitions(
        path, "prefect", digest, dags=tuple(dags), issues=tuple(file_issues), content=text
    )


def dedupe(dags: list[DagFile] | tuple[DagFile, ...]) -> tuple[DagFile, ...]:
    """A deployment id given twice in one file: `prefect deploy` would apply the second over
    the first; the first keeps the id, the other is refused (GD301) and is no DAG."""
    seen: dict[str, DagFile] = {}
    out = []
    for dag in dags:
        first = seen.get(dag.dag_id) if dag.dag_id else None
        if first is None:
            if dag.dag_id:
                seen[dag.dag_id] = dag
            out.append(dag)
            continue
        spec = dag.spec or {}
        out.append(
            dataclasses.replace(dag, dag_id="").with_issues(
                [
                    Issue(
                        "GD301",
                        "error",
                        dag.path,
                        f"deployments.{spec.get('index')}.name",
                        spec.get("line"),
                        f"Deployment {dag.dag_id!r} is defined twice in this file (first at line "
                        f"{(first.spec or {}).get('line')}); each deployment name of a flow "
                        "must be unique.",
                    )
                ]
            )
        )
    return tuple(out)


def _steps(value: Any) -> bool:
    if value is None or isinstance(value, dict):
        return True
    return isinstance(value, list) and all(isinstance(s, dict) for s in value)


def _deployment(
    path: str,
    where: tuple[str | int, ...],
    block: dict[str, Any],
    project: dict[str, Any],
    line_of: LineFinder,
    digest: str,
    text: str,
    issue: Callable[..., Issue],
) -> DagFile:
    issues: list[Issue] = []
    name = block.get("name")
    if name is None:
        issues.append(issue("GD101", where, "A deployment needs a name."))
        name = ""
    elif not isinstance(name, str) or not name.strip():
        issues.append(
            issue("GD102", (*where, "name"), "A deployment's name is a non-empty string.")
        )
        name = ""
    elif any(c in name for c in BANNED):
        issues.append(
            issue(
                "GD104",
                (*where, "name"),
                f"Deployment name {name!r} holds a character "
                f"Prefect refuses ({' '.join(BANNED)}); rename it.",
            )
        )
    for key in block:
        if key not in DEPLOYMENT_KEYS:
            issues.append(
                issue(
                    "GD103",
                    (*where, key),
                    f"{key!r} is not a key of a Prefect deployment; Prefect ignores it.",
                    "warning",
                )
            )
    entrypoint = block.get("entrypoint")
    if entrypoint is None:
        issues.append(
            issue(
                "GD101",
                where,
                f"Deployment {name!r} needs an entrypoint (path/to/flows.py:function).",
            )
        )
    elif not isinstance(entrypoint, str) or not _entrypoint_form(entrypoint):
        issues.append(
            issue(
                "GD110",
                (*where, "entrypoint"),
                f"entrypoint {entrypoint!r} is not path/to/file.py:function.",
            )
        )
    parameters = block.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        issues.append(
            issue("GD102", (*where, "parameters"), "parameters is a mapping of names to values.")
        )
    tags = block.get("tags")
    if (
        tags is not None
        and not schedules.templated(tags)
        and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags))
    ):
        issues.append(issue("GD102", (*where, "tags"), "tags is a list of strings."))
    pool = block.get("work_pool")
    if pool is not None and not (
        isinstance(pool, dict) and isinstance(pool.get("name", ""), str | None)
    ):
        issues.append(issue("GD102", (*where, "work_pool"), "work_pool is a mapping with a name."))
    for key in ("build", "push", "pull"):
        if key in block and not _steps(block[key]):
            issues.append(issue("GD102", (*where, key), f"{key} is a list of steps (mappings)."))
    for key in ("paused", "enforce_parameter_schema"):
        if block.get(key) is not None and not isinstance(block[key], bool):
            issues.append(issue("GD102", (*where, key), f"{key} must be true or false."))
    items: list[tuple[tuple[str | int, ...], Any]] = []
    if block.get("schedule") is not None:
        items.append(((*where, "schedule"), block["schedule"]))
    listed = block.get("schedules")
    if isinstance(listed, list):
        items += [((*where, "schedules", i), item) for i, item in enumerate(listed)]
    elif listed is not None:
        issues.append(issue("GD102", (*where, "schedules"), "schedules is a list."))
    summaries = []
    for at, item in items:
        summary, found = schedules.check(path, at, item, line_of)
        issues += found
        if summary:
            summaries.append(summary)
    flow_name = guessed_flow_name(entrypoint)
    block = plain(block)
    spec = {
        "dag_id": f"{flow_name}/{name}" if name else "",
        "format": "prefect",
        "deployment": name,
        "flow_name": flow_name,
        "entrypoint": entrypoint if isinstance(entrypoint, str) else None,
        "schedule": "; ".join(summaries) or None,
        "tags": sorted(tags)
        if isinstance(tags, list) and all(isinstance(t, str) for t in tags)
        else [],
        "owner": None,
        "depends_on_dags": [],
        "work_pool": (pool or {}).get("name") if isinstance(pool, dict) else None,
        "parameters": parameters if isinstance(parameters, dict) else {},
        "block": block,
        "project": project,
        "index": where[1],
        "line": line_of(where),
        "lines": _lines(where, block, line_of),
        "code": [],
    }
    dag_id = spec["dag_id"] if name and flow_name else ""
    return DagFile(path, dag_id, spec, tuple(issues), block_hash(block, project, []), text)


def _lines(
    where: tuple[str | int, ...], block: dict[str, Any], line_of: LineFinder
) -> dict[str, Any]:
    """The lines of what resolving checks later: the entrypoint and each parameter."""
    found: dict[str, Any] = {"entrypoint": line_of((*where, "entrypoint"))}
    params = block.get("parameters")
    if isinstance(params, dict):
        found["parameters"] = {str(k): line_of((*where, "parameters", k)) for k in params}
    listed = block.get("schedules")
    if isinstance(listed, list):
        found["schedules"] = {
            str(i): {
                str(k): line_of((*where, "schedules", i, "parameters", k))
                for k in item["parameters"]
            }
            for i, item in enumerate(listed)
            if isinstance(item, dict) and isinstance(item.get("parameters"), dict)
        }
    return found


def _entrypoint_form(entrypoint: str) -> bool:
    if schedules.templated(entrypoint):
        return True
    file, sep, function = entrypoint.rpartition(":")
    return bool(
        sep
        and file.endswith(".py")
        and function
        and all(part.isidentifier() for part in function.split("."))
    )
