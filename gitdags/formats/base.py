"""What every reader of DAG definition files shares: field paths, a parsed file, the parse
error issue."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gitdags.model import Issue

# A field path is a tuple of keys and list indexes: ("tasks", 2, "depends_on").
FieldPath = tuple[str | int, ...]
LineFinder = Callable[[FieldPath], int | None]


@dataclass
class Parsed:
    data: Any
    issues: list[Issue] = field(default_factory=list)
    line_of: LineFinder = lambda _path: None
    non_finite: bool = False  # the data may hold Infinity or NaN (the reader saw one)


def parse_error(path: str, line: int | None, detail: str) -> Issue:
    """A file the parser refused, with its reason (never an empty one)."""
    reason = detail.strip().rstrip(".") or "the parser gave no reason"
    return Issue("GD004", "error", path, "", line, f"The file cannot be parsed: {reason}.")


def path_text(path: FieldPath) -> str:
    """("tasks", 2, "depends_on") -> "tasks[2].depends_on"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
