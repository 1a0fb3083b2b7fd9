"""JSON reader."""

from __future__ import annotations

import json

from gitdags.formats import Parsed, parse_error
from gitdags.formats.locate import Locator


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
    return Parsed(data, [], _locator(text, data), bool(constants))


def _locator(text: str, data: object) -> Locator:
    return Locator(text, data, key_pattern='"{key}"\\s*:')
