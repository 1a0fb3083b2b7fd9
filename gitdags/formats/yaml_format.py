"""YAML reader: safe loading only (libyaml's C loader when available)."""

from __future__ import annotations

import functools

import yaml

from gitdags.formats import FieldPath, Parsed, parse_error

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(path: str, text: str) -> Parsed:
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        detail = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return Parsed(None, [parse_error(path, line, detail or "invalid YAML")])
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        return Parsed(None, [parse_error(path, None, str(exc).splitlines()[0] or "invalid YAML")])
    return Parsed(data, [], functools.partial(_line_of, text))


@functools.lru_cache(maxsize=8)
def _compose(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_Loader)
    except (yaml.YAMLError, RecursionError):
        return None


def _line_of(text: str, path: FieldPath) -> int | None:
    node = _compose(text)
    line = None
    for part in path:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = [(k, v) for k, v in node.value if getattr(k, "value", None) == part]
            if not match:
                return line
            key, node = match[0]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line if line is not None else (node.start_mark.line + 1 if node else None)
