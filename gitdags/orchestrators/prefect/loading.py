"""The sandboxed tier of a Prefect source (`python = "prefect"`): Prefect's own loader loads
the flow of each deployment whose code or block this sync changed, in the sandboxed worker
(`load_worker`), from a copy of the source's tree at the commit. A flow that does not load (an
import error, an exception at import, a timeout) is an error of the deployments that run it
(GD402, GD403), and the flow's parameter schema, as Prefect builds it from the signature, is
checked against each deployment's parameters (GD103 unknown, GD101 required and not given).
The error keeps each deployment's last good version served (and `tier.hold_code` then holds
back the code that broke it)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitdags.model import DagFile, FileDefinitions, Issue
from gitdags.orchestrators.prefect.deployments import dedupe

if TYPE_CHECKING:
    from gitdags.orchestrators.interface import SyncView
    from gitdags.plan import Plan

OVERRIDES = Path(__file__).with_name("load_worker.py")


def worker_script(folder: Path) -> Path:
    """The worker program: Airflow's parse worker with `load_worker`'s definitions in place
    of its Airflow ones, written where the sandbox can bind it (rewritten when it differs)."""
    from gitdags.orchestrators.airflow.parse_client import WORKER

    base = WORKER.read_text(encoding="utf-8")
    base = base.replace('\nif __name__ == "__main__":\n    main()\n', "\n")
    text = (
        base
        + "\n\n# --- Prefect: the definitions below replace the Airflow ones above ---\n"
        + OVERRIDES.read_text(encoding="utf-8")
        + '\n\nif __name__ == "__main__":\n    main()\n'
    )
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "prefect_load_worker.py"
    try:
        if script.read_text(encoding="utf-8") == text:
            return script
    except OSError:
        pass
    temp = folder / f".prefect_load_worker.py.{os.getpid()}"
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, script)
    return script


def check(result: object) -> dict[str, Any]:
    """A result from the worker, checked for shape (it crossed from where repository code ran)."""
    try:
        return _check(result)
    except (TypeError, ValueError, KeyError) as exc:
        return {"error": "crashed", "message": f"The load gave a malformed answer ({exc})."}


def _check(result: object) -> dict[str, Any]:
    from gitdags.orchestrators.airflow.parse_client import checked_error

    error = checked_error(result, known=None)
    if error is not None:
        return error
    assert isinstance(result, dict)
    flows = result["flows"]
    if not isinstance(flows, list) or len(flows) != 1 or not isinstance(flows[0], dict):
        raise TypeError("flows is not one flow")
    flow = flows[0]
    schema = flow["parameters"]
    if not isinstance(flow.get("name"), str) or not isinstance(schema, dict):
        raise TypeError("a flow")
    properties, required = schema.get("properties"), schema.get("required")
    if not isinstance(properties, dict) or not isinstance(required, list):
        raise TypeError("a parameter schema")
    if not all(isinstance(r, str) for r in required):
        raise TypeError("required parameters")
    return {
        "flows": [{"name": flow["name"], "properties": sorted(properties), "required": required}]
    }


Todo = dict[str, list[tuple[str, DagFile]]]  # request "file" -> (project path, deployment)
Wanted = Callable[[str, DagFile, bool], bool]  # (project path, deployment, guessed) -> load?


def load_flows(sync: SyncView, plan: Plan, head: str, projects: list[str], every: bool) -> None:
    """Load the flows of the deployments this sync changed (all of them with `every`)."""
    root = sync.ctx.root
    changed = {c.path for c in plan.changes if c.path not in plan.again}

    def wanted(path: str, dag: DagFile, guessed: bool) -> bool:
        code = {c[0] for c in (dag.spec or {})["code"]}
        return every or guessed or path in changed or bool(code & changed)

    def folder(path: str) -> str:
        return path[len(root) :].rpartition("/")[0] if path.startswith(root) else ""

    todo = requests(plan.checked, projects, folder, wanted)
    if not todo:
        return
    tree = sync.git.checkout_tree(head, sync.settings.mirrors_dir / f"{sync.name}.tree")
    results = sync.worker().parse(  # type: ignore[attr-defined]
        tree / root,
        sorted(todo),
        timeout=sync.config.parse_timeout,
        memory=sync.config.memory_limit,
    )
    judged(plan.checked, projects, todo, results, str(tree) + "/")


def requests(
    checked: dict[str, FileDefinitions],
    projects: list[str],
    folder: Callable[[str], str],
    wanted: Wanted,
) -> Todo:
    """The loads to ask the worker for (`<project folder>\\t<entrypoint>`), and the
    deployments each is for; what the syntax tree could not see is left to the loader."""
    todo: Todo = {}
    for path in projects:
        dags = []
        for dag in checked[path].dags:
            spec = dag.spec or {}
            guessed = [i for i in dag.issues if _guessed(i)]
            if (
                guessed
                and spec.get("code")
                and not any(i.severity == "error" for i in dag.issues if i not in guessed)
            ):  # what the syntax tree could not see: Prefect's loader says
                dag = dataclasses.replace(
                    dag, issues=tuple(i for i in dag.issues if i not in guessed)
                )
            dags.append(dag)
            if dag.valid and spec.get("code") and wanted(path, dag, bool(guessed)):
                todo.setdefault(f"{folder(path)}\t{spec['entrypoint']}", []).append((path, dag))
        checked[path] = dataclasses.replace(checked[path], dags=tuple(dags))
    return todo


def judged(
    checked: dict[str, FileDefinitions],
    projects: list[str],
    todo: Todo,
    results: dict[str, dict[str, Any]],
    tree: str,
) -> None:
    """Each deployment with what Prefect's loader made of its flow (`tree`: the prefix of the
    paths in its messages, taken out)."""
    verdicts: dict[tuple[str, str], tuple[list[Issue], str | None]] = {}
    for request, users in todo.items():
        result = results.get(request) or {"error": "crashed", "message": "No answer."}
        for path, dag in users:
            verdicts[(path, dag.dag_id)] = _judge(result, path, dag, tree)
    for path in projects:
        found = checked[path]
        dags = [_named(d, *verdicts.get((path, d.dag_id), ([], None))) for d in found.dags]
        checked[path] = dataclasses.replace(found, dags=dedupe(dags))


def _guessed(issue: Issue) -> bool:
    """A finding of the syntax tree about the flow an entrypoint names (not a flow, or its
    parameters), which Prefect's loader decides instead."""
    return issue.code in ("GD110", "GD103", "GD101") and (
        issue.location.endswith(".entrypoint") or ".parameters" in issue.location
    )


def _named(dag: DagFile, issues: list[Issue], name: str | None) -> DagFile:
    """The deployment with what the loader found: its flow's name (Prefect's, which a name
    made at run time changes) and the issues."""
    spec = dag.spec or {}
    if name and name != spec.get("flow_name"):
        dag_id = f"{name}/{spec.get('deployment')}"
        spec = {**spec, "flow_name": name, "dag_id": dag_id}
        dag = dag.with_spec(spec, dag_id=dag_id)
    return dag.with_issues(issues)


def _judge(
    result: dict[str, Any], path: str, dag: DagFile, tree: str
) -> tuple[list[Issue], str | None]:
    spec = dag.spec or {}
    name = spec.get("deployment")
    index = spec.get("index")
    line = (spec.get("lines") or {}).get("entrypoint") or spec.get("line")
    if result.get("error"):
        code = "GD403" if result["error"] == "timeout" else "GD402"
        message = str(result.get("message") or "").replace(tree, "")
        issue = Issue(
            code,
            "error",
            path,
            f"deployments.{index}.entrypoint",
            line,
            f"Deployment {name!r}: Prefect cannot load {spec.get('entrypoint')}: {message}",
        )
        return [issue], None
    flow = result["flows"][0]
    issues = []
    known = set(flow["properties"])
    given = spec.get("parameters") or {}
    unknown = sorted(k for k in given if k not in known)
    if unknown:
        issues.append(
            Issue(
                "GD103",
                "error",
                path,
                f"deployments.{index}.parameters",
                spec.get("line"),
                f"Deployment {name!r} passes {', '.join(unknown)}, which the parameter schema "
                f"Prefect builds for flow {flow['name']!r} does not have.",
            )
        )
    missing = [r for r in flow["required"] if r not in given]
    if missing:
        issues.append(
            Issue(
                "GD101",
                "error",
                path,
                f"deployments.{index}.parameters",
                spec.get("line"),
                f"Deployment {name!r} does not give {', '.join(missing)}, which the parameter "
                f"schema Prefect builds for flow {flow['name']!r} requires.",
            )
        )
    return issues, flow["name"]
