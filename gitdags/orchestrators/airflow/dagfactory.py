"""dag-factory YAML files (PRODUCT.md section 11): each top-level key but `default` and
`task_groups` is a DAG, built by dag-factory from its block, the file's `default:` block and
the `defaults.yml`/`defaults.yaml` files up the folders to the DAGs folder.

Reading is safe (the YAML reader builds plain data only: `$VARS` stay text, `__type__` objects
are never built here) and every issue carries a line. Each DAG's content is the document
dag-factory would build it from, composed here exactly as dag-factory merges it:

    block > defaults.yml keys (nearest folder first; `tags` joined) > the file's `default:`
    default_args: the block's > the `default:` block's > defaults.yml's (nearest first)

so a change to a default makes a new version of every DAG it reaches (`dagfactory_defaults`).
The composed document (`{"default": ..., DAG_ID: ...}`) is what the deploy folder hands to
dag-factory for that DAG alone (see `publish`); `dagfactory_checks` checks each DAG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitdags import formats
from gitdags.model import FileDefinitions, Issue
from gitdags.orchestrators.airflow.dagfactory_checks import DagReader, probes_of
from gitdags.orchestrators.airflow.dagfactory_defaults import chain

if TYPE_CHECKING:
    from gitdags.kinds import ReadContext

SYSTEM_KEYS = ("default", "task_groups")  # top-level keys that are not DAGs (dag-factory's)
# keys that make a top-level mapping a dag-factory DAG
SHAPE_KEYS = frozenset(
    {"tasks", "task_groups", "default_args", "schedule", "schedule_interval", "start_date"}
)


def looks_like(path: str, data: Any) -> bool:
    """A YAML mapping of DAG ids to DAG blocks (format v1 files were recognised before)."""
    if formats.format_of(path) != "yaml" or not isinstance(data, dict):
        return False
    blocks = [v for k, v in data.items() if k not in SYSTEM_KEYS]
    if any(isinstance(v, dict) and not SHAPE_KEYS.isdisjoint(v) for v in blocks):
        return True
    default = data.get("default")
    return isinstance(default, dict) and bool(blocks) and all(isinstance(v, dict) for v in blocks)


def definitions(
    path: str,
    data: dict[str, Any],
    line_of: formats.LineFinder,
    ctx: ReadContext,
    digest: str,
    text: str,
) -> FileDefinitions:
    default = data.get("default", {})
    if default is None:
        default = {}
    if not isinstance(default, dict):
        issue = Issue(
            "GD102",
            "error",
            path,
            "default",
            line_of(("default",)),
            f"`default` is a {type(default).__name__}; it must be a mapping of DAG arguments.",
        )
        return FileDefinitions(path, "dag-factory", digest, issues=(issue,), content=text)
    reached = chain(path, ctx)
    problems = tuple(d.problem for d in reached if d.problem is not None)
    dags = []
    probes: list[tuple[int, str, str]] = []
    for key, block in data.items():
        if key in SYSTEM_KEYS:
            continue
        reader = DagReader(path, str(key), line_of, problems)
        dags.append(reader.read(block, default, reached, text))
        probes += [(line, name, reader.dag_id) for line, name in reader.probes]
    probes += [(line, name, "") for line, name in probes_of(default, ("default",), line_of)]
    return FileDefinitions(
        path,
        "dag-factory",
        digest,
        dags=tuple(dags),
        imports=tuple(d.path for d in reached),
        content=text,
        probes=tuple(sorted(set(probes))),
    )
