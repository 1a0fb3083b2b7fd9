"""Format v1 (PRODUCT.md section 1): one DAG per YAML, JSON or TOML file."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gitdags.checks import validate
from gitdags.formats import LineFinder
from gitdags.model import DagFile, Issue

if TYPE_CHECKING:
    from gitdags.kinds import ReadContext


def definition(
    path: str, data: dict[str, Any], line_of: LineFinder, ctx: ReadContext, digest: str, text: str
) -> DagFile:
    """The DAG of one v1 file; `dag_id` defaults to the file name without extension."""
    spec, issues = validate.check_dag(path, data, line_of, ctx.task_types)
    if any(i.severity == "error" for i in issues):
        _keep_committed(spec, data, issues)
    dag_id = spec.get("dag_id") or ""
    if not dag_id and data.get("dag_id") is None:
        dag_id = validate.default_dag_id(path)
        if not validate.is_id(dag_id):
            issues.append(
                validate.file_issue(
                    path,
                    "GD104",
                    f"The file name {dag_id!r} is not a valid DAG id; set dag_id in the file.",
                    "dag_id",
                )
            )
            dag_id = ""
        spec["dag_id"] = dag_id
    return DagFile(path, dag_id, spec, tuple(issues), digest, text)


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
# fields others read as ids or walk as lists: they stay as normalized, wherever they are
_STRUCTURE = frozenset({"dag_id", "id", "nodes", "edges", "depends_on", "tags"})
_STRUCTURE |= {"depends_on_dags", "from", "to"}


def _keep_committed(spec: dict[str, Any], data: dict[str, Any], issues: list[Issue]) -> None:
    """An invalid version shows what was committed: a field the checks rejected (and the
    normalized spec holds as null) gets its committed value back. It is never served."""
    for issue in issues:
        if issue.severity != "error" or not issue.location:
            continue
        steps: list[str | int] = [
            int(index) if index else key for key, index in _STEP.findall(issue.location)
        ]
        into: Any = spec
        raw: Any = data
        for step in steps[:-1]:
            into = _at(into, step)
            raw = _at(raw, step)
        last = steps[-1] if steps else None
        if last in (None, "tasks") or set(steps) & _STRUCTURE or not isinstance(into, dict | list):
            continue
        value = _at(raw, last)
        fits = (
            isinstance(into, dict)
            if isinstance(last, str)
            else isinstance(into, list) and last < len(into)
        )
        if fits and value is not None and _at(into, last) is None:
            into[last] = validate.plain(value)


def _at(node: Any, step: str | int) -> Any:
    if isinstance(node, dict) and isinstance(step, str):
        return node.get(step)
    if isinstance(node, list) and isinstance(step, int) and step < len(node):
        return node[step]
    return None
