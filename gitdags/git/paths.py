"""A source's files: a tree's entries, the changes between commits, the paths it counts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

SYMLINK = "120000"
AIRFLOWIGNORE = ".airflowignore"
GITLINK = "160000"


@dataclass(frozen=True, slots=True)
class Entry:
    """A file in a tree: its path in the repository, blob id, mode and size (-1: unknown)."""

    path: str
    blob: str
    mode: str
    size: int = -1


@dataclass(frozen=True, slots=True)
class Change:
    """One file changed between two commits: A, M, D or R (old_path set)."""

    status: str
    path: str
    entry: Entry | None  # None for a deletion
    old_path: str | None = None


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A git-style glob: `**/` matches any folders (or none), `*` and `?` stay in one folder."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


class PathFilter:
    """Which repository paths a source counts: under `subdir`, matching include, not exclude."""

    def __init__(self, subdir: str, include: Iterable[str], exclude: Iterable[str]) -> None:
        self.prefix = subdir.strip("/") + "/" if subdir.strip("/") else ""
        self.include = [glob_regex(p) for p in include]
        self.exclude = [glob_regex(p) for p in exclude]
        # a source that counts Python files also reads .airflowignore, as Airflow does
        self.python = any(r.fullmatch(p) for r in self.include for p in ("a.py", "x/a.py"))

    def __call__(self, path: str) -> bool:
        if not path.startswith(self.prefix):
            return False
        rel = path[len(self.prefix) :]
        if self.python and (rel == AIRFLOWIGNORE or rel.endswith("/" + AIRFLOWIGNORE)):
            return True
        return any(r.fullmatch(rel) for r in self.include) and not any(
            r.fullmatch(rel) for r in self.exclude
        )


def escaped_name(path: str) -> str:
    """A file name read with `surrogateescape`, its bytes that are not UTF-8 as `\\xNN`."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def unchanged(blobs: dict[str, str], skip: set[str]) -> list[Change]:
    """Files that did not change, to be checked again."""
    return [
        Change("M", path, Entry(path, blob, "100644"))
        for path, blob in sorted(blobs.items())
        if path not in skip
    ]
