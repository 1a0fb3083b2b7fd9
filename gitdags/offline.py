"""Offline validation of files on disk, for CI and pre-commit: no git, no database."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from gitdags import validate
from gitdags.config import DEFAULT_INCLUDE
from gitdags.crosscheck import EmptyCatalog, check_across
from gitdags.errors import GitdagsError
from gitdags.model import DagFile, Issue
from gitdags.source import PathFilter
from gitdags.spec import MAX_FILE_SIZE, TASK_TYPES


def collect(paths: Iterable[str]) -> list[Path]:
    """Files named, plus the DAG files under each folder named (hidden folders skipped)."""
    accepts = PathFilter("", DEFAULT_INCLUDE, ())
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_symlink() or path.is_file():
            found.append(path)
        elif path.is_dir():
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
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
) -> tuple[list[DagFile], list[Issue]]:
    """Validate files on their own and across each other; returns the files and all issues."""
    checked: list[DagFile] = []
    for path in collect(paths):
        name = path.as_posix()
        if path.is_symlink():
            checked.append(validate.symlink(name))
            continue
        size = path.stat().st_size
        if size > max_file_size:
            checked.append(validate.oversized(name, size, max_file_size))
            continue
        checked.append(validate.check_file(name, path.read_bytes(), task_types=task_types))
    extra = check_across(checked, EmptyCatalog())
    issues = [i for f in checked for i in f.issues]
    issues += [i for found in extra.values() for i in found]
    issues.sort(key=lambda i: (i.file, i.line or 0, i.code))
    return checked, issues
