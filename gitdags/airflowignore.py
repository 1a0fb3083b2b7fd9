""".airflowignore, read as Airflow 3 reads it (`dag_ignore_file_syntax = glob`, the default).

Each `.airflowignore` holds gitignore-style patterns (pathspec's GitWildMatchPattern, as in
Airflow) for its folder and every folder below it. A pattern with a `/` at its start or middle
is relative to the file's folder; one without matches a file or folder name at any depth; a
trailing `/` matches folders only; `!` re-includes; a matched folder is skipped whole. A `.py`
file that Airflow would ignore is no DAG file to gitdags either: it stays a helper module,
versioned and served with the tree (DAGs often import from an ignored `common/`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

NAME = ".airflowignore"


class AirflowIgnore:
    def __init__(self, files: Mapping[str, str]) -> None:
        """`files`: the text of each .airflowignore, by its folder relative to the DAGs
        folder ("" for the top)."""
        try:  # pathspec >= 1.0; GitWildMatchPattern (what Airflow uses) is deprecated there
            from pathspec.patterns.gitignore.spec import (
                GitIgnoreSpecPattern as GitWildMatchPattern,
            )
        except ImportError:
            from pathspec.patterns import GitWildMatchPattern  # type: ignore[no-redef]

        self.rules: dict[str, list[tuple[object, bool, bool]]] = {}
        for folder, text in files.items():
            rules = []
            for raw in text.splitlines():
                line = raw.rstrip()
                if not line.strip() or line.lstrip().startswith("#") or line.strip() == "/":
                    continue
                anchored = line.startswith("/") or "/" in line.rstrip("/")
                dir_only = line.lstrip("!").rstrip() != line.lstrip("!").rstrip().rstrip("/")
                try:
                    pattern = GitWildMatchPattern(line)
                except Exception:  # an invalid pattern is skipped, as Airflow does (with a log)
                    continue
                rules.append((pattern, anchored, dir_only))
            self.rules[folder.strip("/")] = rules
        self.order = sorted(self.rules, key=lambda f: (f.count("/") + bool(f), f))

    def __bool__(self) -> bool:
        return any(self.rules.values())

    def ignored(self, rel: str) -> bool:
        """Whether Airflow skips `rel` (a file path relative to the DAGs folder)."""
        parts = PurePosixPath(rel).parts
        for depth in range(1, len(parts) + 1):
            entry = "/".join(parts[:depth])
            is_dir = depth < len(parts)
            if self._matches(entry, is_dir):
                return True
        return False

    def _matches(self, entry: str, is_dir: bool) -> bool:
        parent = str(PurePosixPath(entry).parent)
        parent = "" if parent == "." else parent
        matched = False
        for folder in self.order:  # the rules of every folder above the entry, parents first
            rules = self.rules[folder]
            if folder and not (parent == folder or parent.startswith(folder + "/")):
                continue
            for pattern, anchored, dir_only in rules:
                if dir_only and not is_dir:
                    continue
                rel = entry[len(folder) + 1 :] if folder else entry
                name = rel if anchored else PurePosixPath(entry).name
                candidate = f"{name}/" if is_dir else name
                if pattern.include is not None and pattern.match_file(candidate) is not None:  # type: ignore[attr-defined]
                    matched = bool(pattern.include)  # type: ignore[attr-defined]
        return matched
