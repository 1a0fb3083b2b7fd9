"""Readers for DAG definition files: YAML, JSON and TOML give the same plain structure.

`parse(path, text)` never raises for bad input: a file that cannot be read becomes a
`GD004 parse-error` issue. Each reader also offers `line_of(field path)` so that issues can
point at a line where the format makes that possible.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from gitdags.formats.base import FieldPath, LineFinder, Parsed, parse_error, path_text
from gitdags.model import Issue

EXTENSIONS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}


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


__all__ = [
    "EXTENSIONS",
    "FieldPath",
    "LineFinder",
    "Parsed",
    "format_of",
    "parse",
    "parse_error",
    "path_text",
]
