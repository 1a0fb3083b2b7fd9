"""JSON reader."""

from __future__ import annotations

import functools
import json

from gitdags.formats import FieldPath, Parsed, parse_error
from gitdags.formats.locate import find_line


def parse(path: str, text: str) -> Parsed:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return Parsed(None, [parse_error(path, exc.lineno, exc.msg)])
    except RecursionError:
        return Parsed(None, [parse_error(path, None, "nested too deeply")])
    return Parsed(data, [], functools.partial(_line_of, text, data))


def _line_of(text: str, data: object, path: FieldPath) -> int | None:
    return find_line(text, data, path, key_pattern='"{key}"\\s*:')
