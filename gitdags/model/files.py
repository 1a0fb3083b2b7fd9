"""What a definition kind read from one file: its DAGs, imports and issues."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gitdags.model.issues import Issue, has_errors


@dataclass(frozen=True, slots=True)
class DagFile:
    """One DAG definition file, read and validated on its own."""

    path: str
    dag_id: str
    spec: dict[str, Any] | None  # normalized; None when the file could not be parsed
    issues: tuple[Issue, ...]
    content_hash: str
    content: str = ""
    spec_json: str = ""  # the spec serialized, when a worker process made it
    # (dictionary id, spec, text) packed by a worker (history.packing), or None
    packed: tuple[int, bytes | None, bytes] | None = None

    @property
    def valid(self) -> bool:
        return self.spec is not None and not has_errors(self.issues)

    def with_issues(self, extra: list[Issue]) -> DagFile:
        return dataclasses.replace(self, issues=self.issues + tuple(extra))

    def with_spec(self, spec: dict[str, Any] | None, **more: Any) -> DagFile:
        """This DAG with another spec (a tier or a cross-file reading completes it): what a
        worker serialized and packed of the old spec goes with it."""
        return dataclasses.replace(self, spec=spec, spec_json="", packed=None, **more)


@dataclass(frozen=True, slots=True)
class FileDefinitions:
    """What a definition kind found in one file: zero or more DAGs, the modules the file
    imports, and issues about the file as a whole (it cannot be read, it is not a DAG file)."""

    path: str
    kind: str  # "v1"; "none" when the file is not a DAG definition or cannot be read
    content_hash: str
    dags: tuple[DagFile, ...] = ()
    imports: tuple[str, ...] = ()
    issues: tuple[Issue, ...] = ()
    content: str = ""
    # (line, dotted path, dag id or "") of each Python object a declarative file names
    probes: tuple[tuple[int, str, str], ...] = ()

    @property
    def broken(self) -> bool:
        """The file could not be read as a whole: the DAGs it held keep their last good."""
        return has_errors(self.issues)

    def all_issues(self) -> tuple[Issue, ...]:
        return self.issues + tuple(i for d in self.dags for i in d.issues)

    @property
    def text(self) -> str:
        """The file's text (kept on its DAGs when there are some)."""
        return self.content or next((d.content for d in self.dags), "")

    def with_issues(self, extra: list[Issue]) -> FileDefinitions:
        """Issues about what the file defines: on each of its DAGs (a Python file is served
        as a whole), or on the file when it defines none."""
        if not extra:
            return self
        if self.dags:
            return dataclasses.replace(self, dags=tuple(d.with_issues(extra) for d in self.dags))
        return dataclasses.replace(self, issues=self.issues + tuple(extra))
