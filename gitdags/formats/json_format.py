"""JSON reader."""

from __future__ import annotations

import json

from gitdags.formats.base import Parsed, parse_error
from gitdags.formats.locate import Locator


def parse(path: str, text: str) -> Parsed:
    constants: list[str] = []  # NaN, Infinity, -Infinity: not JSON, but Python's json reads them
    try:
        data = json.loads(
            text,
            parse_constant=lambda name: constants.append(name) or float(name),
            object_pairs_hook=_unique,
        )
    except json.JSONDecodeError as exc:
        return Parsed(None, [parse_error(path, exc.lineno, exc.msg)])
    except RecursionError:
        return Parsed(None, [parse_error(path, None, "nested too deeply")])
    except _Duplicate as exc:
        key = exc.args[0]
        return Parsed(
            None, [parse_error(path, _key_line(text, key), f"the key {key!r} is given twice")]
        )
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        first = str(exc).split(";")[0].split(":")[0] or "a value out of range"
        return Parsed(None, [parse_error(path, None, first)])
    return Parsed(data, [], _locator(text, data), bool(constants))


class _Duplicate(ValueError):
    pass


def _unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object whose keys are unique (a repeated key would win silently)."""
    found: dict[str, object] = {}
    for key, value in pairs:
        if key in found:
            raise _Duplicate(key)
        found[key] = value
    return found


def _key_line(text: str, key: str) -> int | None:
    """The line of the second `"key":` in the text (best effort)."""
    needle = json.dumps(key)
    first = text.find(needle)
    second = text.find(needle, first + 1) if first >= 0 else -1
    return text.count("\n", 0, second) + 1 if second >= 0 else None


def _locator(text: str, data: object) -> Locator:
    return Locator(text, data, key_pattern='"{key}"\\s*:')
