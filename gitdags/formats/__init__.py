"""Readers for DAG definition files: YAML, JSON and TOML give the same plain structure.

`parse(path, text)` never raises for bad input: a file that cannot be read becomes a
`GD004 parse-error` issue. Each reader also offers `line_of(field path)` so that issues can
point at a line where the format makes that possible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from gitdags.model import Issue

# A field path is a tuple of keys and list indexes: ("tasks", 2, "depends_on").
FieldPath = tuple[str | int, ...]
LineFinder = Callable[[FieldPath], int | None]

EXTENSIONS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}


@dataclass
class Parsed:
    data: Any
    issues: list[Issue] = field(default_factory=list)
    line_of: LineFinder = lambda _path: None
    non_finite: bool = False  # the data may hold Infinity or NaN (the reader saw one)


def format_of(path: str) -> str | None:
    return EXTENSIONS.get(PurePosixPath(path).suffix.lower())


def parse(path: str, text: str) -> Parsed:
    """Parse `text` (the content of `path`) with the reader its extension names."""
    kind = format_of(path)
    if kind == "yaml":
        from gitdags.formats import yaml_format as reader
    elif kind == "json":
        from gitdags.formats import json_format as reader  # type: ignore[no-redef]
    elif kind == "toml":
        from gitdags.formats import toml_format as reader  # type: ignore[no-redef]
    else:
        suffix = PurePosixPath(path).suffix or "(none)"
        return Parsed(
            None,
            [
                Issue(
                    "GD006",
                    "error",
                    path,
                    "",
                    None,
                    f"Extension {suffix} is not a DAG format; use .yaml, .yml, .json or .toml.",
                )
            ],
        )
    return reader.parse(path, text)


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
