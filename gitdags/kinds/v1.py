"""Format v1 (PRODUCT.md section 1): one DAG per YAML, JSON or TOML file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitdags import validate
from gitdags.formats import LineFinder
from gitdags.model import DagFile

if TYPE_CHECKING:
    from gitdags.kinds import ReadContext


def definition(
    path: str, data: dict[str, Any], line_of: LineFinder, ctx: ReadContext, digest: str, text: str
) -> DagFile:
    """The DAG of one v1 file; `dag_id` defaults to the file name without extension."""
    spec, issues = validate.check_dag(path, data, line_of, ctx.task_types)
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
