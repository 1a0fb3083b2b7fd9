"""Offline validation of files on disk, for CI and pre-commit: no git, no database."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from gitdags import kinds
from gitdags.checks.crosscheck import EmptyCatalog, check_across, whole_files
from gitdags.config import DEFAULT_INCLUDE, PY_INCLUDE
from gitdags.errors import ConfigError, GitdagsError
from gitdags.git.paths import PathFilter
from gitdags.kinds import ReadContext
from gitdags.model import FileDefinitions, Issue
from gitdags.orchestrators.airflow import compat
from gitdags.orchestrators.airflow.dagfactory_defaults import is_defaults
from gitdags.orchestrators.airflow.kind import is_dag_file
from gitdags.spec import MAX_FILE_SIZE, TASK_TYPES


def collect(paths: Iterable[str]) -> list[Path]:
    """Files named, plus the DAG files under each folder named (hidden folders skipped)."""
    return [file for file, _root in collect_with_roots(paths)]


def collect_with_roots(paths: Iterable[str]) -> list[tuple[Path, Path]]:
    """Each file with its DAGs folder: the folder named, or the folder of a file named."""
    accepts = PathFilter("", (*DEFAULT_INCLUDE, PY_INCLUDE), ())
    found: list[tuple[Path, Path]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_symlink() or path.is_file():
            found.append((path, path.parent))
        elif path.is_dir():
            for folder, dirs, files in os.walk(path):
                # a symlink to a folder is a file to git (and GD003 to a sync), not a folder
                links = [d for d in dirs if Path(folder, d).is_symlink()]
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in links)
                for name in sorted([*files, *links]):
                    full = Path(folder, name)
                    if accepts(full.relative_to(path).as_posix()):
                        found.append((full, path))
        else:
            raise GitdagsError(f"{raw} does not exist; name DAG files or folders to validate.")
    return found


def check_paths(
    paths: Iterable[str],
    *,
    task_types: Mapping[str, tuple[str, ...]] = TASK_TYPES,
    max_file_size: int = MAX_FILE_SIZE,
    namespaces: Mapping[str, str] | None = None,
    own_namespace: str = "",
    pattern: str = "",
    forbidden_imports: tuple[str, ...] = (),
    airflow_python: str = "",
    parse_timeout: float = 30.0,
    sandbox: str = "bwrap",
    orchestrator: str = "airflow",
    prefect_python: str = "",
) -> tuple[list[FileDefinitions], list[Issue]]:
    """Validate files on their own and across each other; returns the files and all issues.
    `namespaces` maps source names to the id prefix each owns: the files checked here belong
    to none of them; `own_namespace`, `pattern` and `forbidden_imports` are the checks of the
    source they are for."""
    ctx = ReadContext(
        task_types=task_types,
        max_file_size=max_file_size,
        forbidden_imports=forbidden_imports,
        orchestrator=orchestrator,
    )
    checked: list[FileDefinitions] = []
    files = collect_with_roots(paths)
    defaults = tuple(
        (p.as_posix(), p.read_text(encoding="utf-8", errors="replace"))
        for p, _root in files
        if is_defaults(p.name)
        and p.is_file()
        and not p.is_symlink()
        and p.stat().st_size <= max_file_size
    )
    if defaults:
        ctx = dataclasses.replace(ctx, defaults=defaults)
    from gitdags.orchestrators.prefect import offline as prefect

    projects = prefect.project_folders([p for p, _root in files], max_file_size)
    in_prefect = dataclasses.replace(ctx, orchestrator="prefect")
    for path, _root in files:
        name = path.as_posix()
        here = in_prefect if projects and prefect.in_project(name, projects) else ctx
        if path.is_symlink():
            checked.append(kinds.read(name, None, symlink=True, ctx=here))
            continue
        size = path.stat().st_size
        content: bytes | int = size if size > max_file_size else path.read_bytes()
        if here is in_prefect and isinstance(content, bytes) and is_dag_file(content):
            here = ctx  # an Airflow DAG file beside a Prefect project stays Airflow's
        checked.append(kinds.read(name, content, ctx=here))
    if projects:  # each deployment against its flow on disk (and loaded by Prefect)
        checked = prefect.resolve_on_disk(checked, max_file_size)
        if prefect_python:
            checked = prefect.load_on_disk(checked, prefect_python, parse_timeout, sandbox)
    by_path = {f.path: f for f in checked}
    if orchestrator == "dagster":  # each folder named is a code location: checked as a whole
        from gitdags.orchestrators.dagster.location import check_location

        for root in sorted({root for _path, root in files}):
            prefix = "" if root == Path(".") else root.as_posix().rstrip("/") + "/"
            mine = {p.as_posix() for p, r in files if r == root and p.suffix == ".py"}
            texts = {p: by_path[p].text.encode() for p in mine}
            for path, extra in check_location(texts, prefix).items():
                by_path[path] = dataclasses.replace(
                    by_path[path], issues=(*by_path[path].issues, *extra)
                )
        checked = [by_path[f.path] for f in checked]
    check = compat.start(by_path)
    if sandbox not in ("bwrap", "none"):
        raise ConfigError(f'--sandbox {sandbox!r}: use "bwrap" (bubblewrap) or "none".')
    if airflow_python:
        parsed = _parse_with_airflow(checked, files, airflow_python, parse_timeout, sandbox)
        by_path = {f.path: f for f in parsed}
    compat.finish(check, by_path, parsed=bool(airflow_python))
    checked = [by_path[f.path] for f in checked]
    dags = [d for f in checked for d in f.dags]
    extra = check_across(
        dags, EmptyCatalog(), namespaces=namespaces, own_namespace=own_namespace, pattern=pattern
    )
    dags = [d.with_issues(extra.get((d.path, d.dag_id), [])) for d in dags]
    _dags, held_back = whole_files(dags, {f.path: f.kind for f in checked})
    issues = [i for f in checked for i in f.all_issues()]
    issues += [i for found in extra.values() for i in found]
    issues += [f.issues[-1] for f in held_back]
    issues.sort(key=lambda i: (i.file, i.line or 0, i.code))
    return checked, issues


def _parse_with_airflow(
    checked: list[FileDefinitions],
    files: list[tuple[Path, Path]],
    python: str,
    timeout: float,
    sandbox: str,
) -> list[FileDefinitions]:
    """The dynamic tier offline: Airflow, in the sandboxed worker, parses the Airflow files,
    each from the folder it was found under (its DAGs folder)."""
    import tempfile

    from gitdags.orchestrators.airflow.kind import module_of, parsed_by_airflow
    from gitdags.orchestrators.airflow.parsing import ParseWorker, parse_files

    found = {f.path: f for f in checked}
    by_root: dict[Path, list[str]] = {}
    for path, root in files:
        f = found.get(path.as_posix())
        if f is not None and parsed_by_airflow(f):
            by_root.setdefault(root, []).append(f.path)
    with tempfile.TemporaryDirectory(prefix="gitdags-parse-") as scratch:
        readable = tuple(root.resolve() for root in by_root)
        worker = ParseWorker(python, Path(scratch), sandbox=sandbox, readable=readable)
        try:
            for root, paths in by_root.items():
                prefix = "" if root == Path(".") else root.as_posix().rstrip("/") + "/"
                own = {
                    module_of(p.as_posix(), prefix).split(".")[0]
                    for p, r in files
                    if r == root and p.suffix == ".py"
                }
                own |= {p.name for p in root.iterdir() if p.is_dir() or p.suffix == ".py"}
                parse_files(
                    worker,
                    root.resolve(),
                    found,
                    paths,
                    prefix=prefix,
                    own={o.removesuffix(".py") for o in own},
                    timeout=timeout,
                    memory=2 << 30,
                )
        finally:
            worker.close()
    return [found[f.path] for f in checked]
