"""TOML reader (the standard library's tomllib)."""

from __future__ import annotations

import functools
import re
import tomllib

from gitdags.formats import FieldPath, Parsed, parse_error
from gitdags.formats.locate import find_line

_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def parse(path: str, text: str) -> Parsed:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _AT_LINE.search(message)
        detail = _AT_LINE.sub("", message).strip()
        return Parsed(None, [parse_error(path, int(found.group(1)) if found else None, detail)])
    return Parsed(data, [], functools.partial(_line_of, text, data))


def _line_of(text: str, data: object, path: FieldPath) -> int | None:
    return find_line(text, data, path, key_pattern=r'(?:^|[\s{{,.\[])"?{key}"?\s*(?:=|\]|\.)')
