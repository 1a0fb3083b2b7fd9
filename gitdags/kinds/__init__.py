"""Definition kinds: how one file of a source becomes zero or more DAG definitions.

A kind turns (path, content) into `FileDefinitions`: the DAGs the file defines, the modules it
imports (for dependency tracking) and issues about the file as a whole. `read` does what every
kind shares (size limit, symlinks, binary and non-UTF-8 files; a Python file's bytes are read
as Python reads them, by its coding declaration), picks the kind by extension and shape, and
never raises for bad input:

    v1       gitdags' own format: a YAML, JSON or TOML mapping with `dag_id`, `tasks` or `nodes`
    dag-factory  a YAML mapping of DAG ids to dag-factory DAG blocks (zero or more DAGs)
    defaults a dag-factory defaults.yml / defaults.yaml: part of the DAGs below its folder
    airflow  an Airflow Python DAG file (zero or more DAGs), read from its syntax tree
    module   a Python helper module: versioned and served with the tree, never a DAG
    prefect  a Prefect project file (prefect.yaml): one DAG per deployment, in a Prefect source
    prefect-flow  a Prefect flow file: one DAG per @flow, served as a whole with the tree
    none     anything else: a file that cannot be read, or that is not a DAG definition

A file that is not a DAG definition (a config YAML beside the DAGs) gets one warning (GD007)
and yields no DAG; it never becomes a DAG named after its file.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitdags import formats
from gitdags.checks.validate import content_hash
from gitdags.model import DagFile, FileDefinitions, Issue
from gitdags.spec import MAX_FILE_SIZE, TASK_TYPES

if TYPE_CHECKING:
    from gitdags.orchestrators.airflow.dagfactory_defaults import Defaults
    from gitdags.orchestrators.airflow.ignore import AirflowIgnore

log = logging.getLogger(__name__)
V1_KEYS = ("dag_id", "tasks", "nodes")
PYTHON_KINDS = ("airflow", "module", "prefect-flow", "dagster")  # Python files: served as files


@dataclass(frozen=True)
class ReadContext:
    """What the kinds need to know of the settings and of the source."""

    task_types: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(TASK_TYPES))
    max_file_size: int = MAX_FILE_SIZE
    orchestrator: str = "airflow"  # whose files these are (config.keys.ORCHESTRATORS)
    root: str = ""  # the source's subdir with a trailing "/": Airflow's DAGs folder
    forbidden_imports: tuple[str, ...] = ()
    airflowignore: tuple[tuple[str, str], ...] = ()  # (folder under root, text) of each file
    defaults: tuple[tuple[str, str], ...] = ()  # (path, text) of each dag-factory defaults file
    present: frozenset[str] = frozenset()  # optional imports known to work where Airflow runs

    @functools.cached_property
    def ignore(self) -> AirflowIgnore | None:
        from gitdags.orchestrators.airflow.ignore import AirflowIgnore

        found = AirflowIgnore(dict(self.airflowignore)) if self.airflowignore else None
        return found if found else None

    @functools.cached_property
    def defaults_by_folder(self) -> dict[str, Defaults]:
        from gitdags.orchestrators.airflow.dagfactory_defaults import read_defaults

        return read_defaults(self.defaults)

    def airflow_ignores(self, path: str) -> bool:
        rel = path[len(self.root) :] if self.root and path.startswith(self.root) else path
        return self.ignore is not None and self.ignore.ignored(rel)


DEFAULT = ReadContext()


def file_issue(path: str, code: str, message: str, severity: str = "error") -> Issue:
    return Issue(code, severity, path, "", None, message)  # type: ignore[arg-type]


def read(
    path: str, content: bytes | int | None, *, symlink: bool = False, ctx: ReadContext = DEFAULT
) -> FileDefinitions:
    """The definitions in one file. `content` is its bytes, or its size when it is over the
    limit and was not read. A bug in a kind is an error of that file, never of its source."""
    try:
        found = _read(path, content, symlink=symlink, ctx=ctx)
        if found.kind in ("airflow", "dag-factory") and found.dags:  # stored as JSON
            json.dumps([d.spec for d in found.dags], allow_nan=False)
        return found
    except Exception as exc:
        log.exception("reading %s failed", path)
        message = (
            f"The file cannot be read: internal error ({type(exc).__name__}: {exc}); "
            "please report it."
        )
        return FileDefinitions(path, "none", "", issues=(file_issue(path, "GD004", message),))


def misnamed(path: str) -> FileDefinitions:
    """A file whose name is not UTF-8 (shown with `\\x` escapes): never read."""
    message = "The file name is not UTF-8 text, so the file is not read; rename it."
    return FileDefinitions(path, "none", "", issues=(file_issue(path, "GD002", message),))


def _read(
    path: str, content: bytes | int | None, *, symlink: bool, ctx: ReadContext
) -> FileDefinitions:
    if not path.isascii() and any("\udc80" <= c <= "\udcff" for c in path):
        from gitdags.git.paths import escaped_name

        return misnamed(escaped_name(path))
    if symlink:
        message = "The file is a symlink, which is never followed; commit the file itself."
        return FileDefinitions(path, "none", "", issues=(file_issue(path, "GD003", message),))
    if isinstance(content, int):
        message = (
            f"The file is {content} bytes, over the {ctx.max_file_size}-byte limit; split it "
            "or raise [validation] max_file_size."
        )
        return FileDefinitions(path, "none", "", issues=(file_issue(path, "GD001", message),))
    raw = content or b""
    digest = content_hash(raw)
    if b"\0" in raw[:8192]:
        issue = file_issue(path, "GD002", "The file is binary; DAG files are UTF-8 text.")
        return FileDefinitions(path, "none", digest, issues=(issue,))
    if ctx.orchestrator != "airflow":  # the orchestrator's own kinds first
        from gitdags.orchestrators import read_file

        found = read_file(path, raw, digest, ctx)
        if found is not None:
            return found
    if path.endswith(".py"):  # read as Python reads it: its coding declaration says how
        from gitdags.orchestrators.airflow import kind

        dag_file = kind.is_dag_file(raw) and not ctx.airflow_ignores(path)
        return kind.definitions(path, raw, digest, ctx, dag_file=dag_file)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        issue = file_issue(path, "GD002", "The file is not UTF-8 text; save it as UTF-8.")
        return FileDefinitions(path, "none", digest, issues=(issue,))
    if path.rsplit("/", 1)[-1] == ".airflowignore":
        return FileDefinitions(path, "ignore", digest, content=text)
    parsed = formats.parse(path, text)
    if parsed.issues:
        return FileDefinitions(path, "none", digest, issues=tuple(parsed.issues), content=text)
    data = parsed.data
    odd = _non_finite(data) if parsed.non_finite else []
    if odd:  # JSON has no Infinity or NaN: a spec holding one could not be served as JSON
        where = formats.path_text(odd[0])
        issue = Issue(
            "GD108",
            "error",
            path,
            where,
            parsed.line_of(odd[0]),
            f"{where or 'A value'} is not a finite number"
            + (f" (nor are {len(odd) - 1} more values)" if len(odd) > 1 else "")
            + "; DAG files hold JSON numbers, without Infinity or NaN.",
        )
        return FileDefinitions(path, "none", digest, issues=(issue,), content=text)
    if isinstance(data, dict) and any(key in data for key in V1_KEYS):
        from gitdags.kinds import v1

        dag = v1.definition(path, data, parsed.line_of, ctx, digest, text)
        return FileDefinitions(path, "v1", digest, dags=(dag,), content=text)
    from gitdags.orchestrators.airflow import dagfactory
    from gitdags.orchestrators.airflow.dagfactory_defaults import is_defaults

    if is_defaults(path) and formats.format_of(path) == "yaml":
        if data is not None and not isinstance(data, dict):
            issue = file_issue(path, "GD005", "A dag-factory defaults file must be a mapping.")
            return FileDefinitions(path, "defaults", digest, issues=(issue,), content=text)
        return FileDefinitions(path, "defaults", digest, content=text)
    if dagfactory.looks_like(path, data):
        return dagfactory.definitions(path, data, parsed.line_of, ctx, digest, text)
    return FileDefinitions(path, "none", digest, issues=(_not_a_dag(path, data),), content=text)


def _non_finite(data: Any) -> list[tuple[str | int, ...]]:
    """The field paths of the floats that are infinite or NaN."""
    found: list[tuple[str | int, ...]] = []
    todo: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    seen: set[int] = set()
    while todo:
        where, value = todo.pop()
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                found.append(where)
        elif isinstance(value, dict | list) and id(value) not in seen:
            seen.add(id(value))  # YAML aliases share objects: each is walked once
            items = value.items() if isinstance(value, dict) else enumerate(value)
            todo.extend(((*where, k if isinstance(k, int) else str(k)), v) for k, v in items)
    return sorted(found, key=str)


def _not_a_dag(path: str, data: Any) -> Issue:
    if isinstance(data, list) and any(
        isinstance(item, dict) and any(key in item for key in V1_KEYS) for item in data
    ):
        return file_issue(
            path,
            "GD005",
            "The file holds a list of DAGs; format v1 is one DAG per file, a mapping.",
        )
    what = (
        "is empty"
        if data is None or data == {}
        else f"holds a {type(data).__name__}"
        if not isinstance(data, dict)
        else "has no dag_id, tasks or nodes at its top level"
    )
    return file_issue(
        path,
        "GD007",
        f"The file {what}, so it is not a DAG definition and defines no DAG; "
        "exclude it in the source's `exclude` globs if it is not meant to be one.",
        "warning",
    )


def check_file(
    path: str, content: bytes, *, task_types: Mapping[str, tuple[str, ...]] = TASK_TYPES
) -> DagFile:
    """One file of format v1 on its own: its DAG, or (dag_id "") the issues of the file."""
    found = read(path, content, ctx=ReadContext(task_types=task_types))
    if found.dags:
        return found.dags[0]
    return DagFile(path, "", None, found.issues, found.content_hash, found.content)
