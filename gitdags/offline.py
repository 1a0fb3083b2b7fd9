"""Offline validation of files on disk, for CI and pre-commit: no git, no database."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from gitdags import kinds
from gitdags.config import DEFAULT_INCLUDE, PY_INCLUDE
from gitdags.crosscheck import EmptyCatalog, check_across, whole_files
from gitdags.errors import GitdagsError
from gitdags.kinds import ReadContext
from gitdags.model import FileDefinitions, Issue
from gitdags.source import PathFilter
from gitdags.spec import MAX_FILE_SIZE, TASK_TYPES


def collect(paths: Iterable[str]) -> list[Path]:
    """Files named, plus the DAG files under each folder named (hidden folders skipped)."""
    accepts = PathFilter("", (*DEFAULT_INCLUDE, PY_INCLUDE), ())
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_symlink() or path.is_file():
            found.append(path)
        elif path.is_dir():
            for folder, dirs, files in os.walk(path):
                # a symlink to a folder is a file to git (and GD003 to a sync), not a folder
                links = [d for d in dirs if Path(folder, d).is_symlink()]
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in links)
                for name in sorted([*files, *links]):
                    full = Path(folder, name)
                    if accepts(full.relative_to(path).as_posix()):
                        found.append(full)
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
) -> tuple[list[FileDefinitions], list[Issue]]:
    """Validate files on their own and across each other; returns the files and all issues.
    `namespaces` maps source names to the id prefix each owns: the files checked here belong
    to none of them; `own_namespace`, `pattern` and `forbidden_imports` are the checks of the
    source they are for."""
    ctx = ReadContext(
        task_types=task_types, max_file_size=max_file_size, forbidden_imports=forbidden_imports
    )
    checked: list[FileDefinitions] = []
    for path in collect(paths):
        name = path.as_posix()
        if path.is_symlink():
            checked.append(kinds.read(name, None, symlink=True, ctx=ctx))
            continue
        size = path.stat().st_size
        content: bytes | int = size if size > max_file_size else path.read_bytes()
        checked.append(kinds.read(name, content, ctx=ctx))
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
