"""JSON reader."""

from __future__ import annotations

import functools
import json

from gitdags.formats import FieldPath, Parsed, parse_error
from gitdags.formats.locate import find_line


def parse(path: str, text: str) -> Parsed:
    constants: list[str] = []  # NaN, Infinity, -Infinity: not JSON, but Python's json reads them
    try:
        data = json.loads(text, parse_constant=lambda name: constants.append(name) or float(name))
    except json.JSONDecodeError as exc:
        return Parsed(None, [parse_error(path, exc.lineno, exc.msg)])
    except RecursionError:
        return Parsed(None, [parse_error(path, None, "nested too deeply")])
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        first = str(exc).split(";")[0].split(":")[0] or "a value out of range"
        return Parsed(None, [parse_error(path, None, first)])
    return Parsed(data, [], functools.partial(_line_of, text, data), bool(constants))


def _line_of(text: str, data: object, path: FieldPath) -> int | None:
    return find_line(text, data, path, key_pattern='"{key}"\\s*:')
