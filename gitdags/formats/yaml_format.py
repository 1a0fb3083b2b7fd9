"""YAML reader: safe loading only.

libyaml's C parser composes the node tree (tags resolved the safe way); a small builder turns
the nodes into plain values, about twice as fast as PyYAML's generic constructor, and keeps
the tree so that issues get exact line numbers. Anything unusual (merge keys, other tags) goes
through PyYAML's SafeConstructor, so the result is always what `yaml.safe_load` gives.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gitdags.formats.base import FieldPath, Parsed, parse_error

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_SAFE = SafeConstructor()


# The tags of JSON-compatible data (and dates): !!binary, !!set, !!omap, !!pairs and the like
# hold values a DAG spec cannot carry.
_PLAIN_TAGS = {
    "tag:yaml.org,2002:" + t
    for t in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map", "merge")
}
MAX_VALUES = 1_000_000  # values a file may expand to through its aliases (an alias bomb: far more)


class _Builder:
    """Turns composed nodes into values; aliases are the same object, as safe_load gives,
    with their expanded size counted and recursion refused."""

    def __init__(self) -> None:
        self.memo: dict[int, Any] = {}
        self.sizes: dict[int, int] = {}
        self.active: set[int] = set()
        self.total = 0
        self.non_finite = False


def parse(path: str, text: str) -> Parsed:
    try:
        node = yaml.compose(text, Loader=_Loader)
        builder = _Builder()
        data = None if node is None else _build(node, builder)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        detail = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return Parsed(None, [parse_error(path, line, detail or "invalid YAML")])
    except (yaml.YAMLError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        return Parsed(None, [parse_error(path, None, first)])
    return Parsed(data, [], functools.partial(_line_of, node), builder.non_finite)


def _build(node: Node, b: _Builder) -> Any:
    key = id(node)
    if key in b.active:
        raise ConstructorError(
            None, None, "an alias refers to a value that contains it", node.start_mark
        )
    if key in b.memo:  # an alias: the same object, as safe_load gives; its size counts again
        b.total += b.sizes.get(key, 1)
        if b.total > MAX_VALUES:
            raise ConstructorError(
                None,
                None,
                f"its aliases expand to more than {MAX_VALUES:,} values",
                node.start_mark,
            )
        return b.memo[key]
    if node.tag not in _PLAIN_TAGS:
        raise ConstructorError(
            None,
            None,
            f"tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not plain data (use "
            "strings, numbers, lists and mappings)",
            node.start_mark,
        )
    before = b.total
    b.total += 1
    if b.total > MAX_VALUES:
        raise ConstructorError(
            None, None, f"it holds more than {MAX_VALUES:,} values", node.start_mark
        )
    kind = node.__class__
    if kind is ScalarNode:
        tag = node.tag
        value = node.value
        if tag == _STR:
            result: Any = value
        elif (
            tag == _INT
            and value.isascii()
            and value.isdigit()
            and (value[0] != "0" or value == "0")
        ):
            result = int(value)  # plain decimal; 010 is octal in YAML 1.1, left to PyYAML
        elif tag == _NULL:
            result = None
        else:
            result = _SAFE.yaml_constructors[tag](_SAFE, node)  # float, bool, timestamp
            if isinstance(result, float) and not math.isfinite(result):
                b.non_finite = True
        return result  # an alias to a scalar builds it again: one value
    b.active.add(key)
    try:
        if kind is SequenceNode:
            items: list[Any] = []
            b.memo[key] = items
            items.extend(_build(child, b) for child in node.value)
            result = items
        elif kind is MappingNode:
            if any(k.tag == _MERGE for k, _v in node.value):
                _check_merged(node, b)  # what the merge brings in is checked like the rest
                result = _SafeLoad(node).get()
                b.memo[key] = result
            else:
                mapping: dict[Any, Any] = {}
                b.memo[key] = mapping
                for key_node, value_node in node.value:
                    name = _build(key_node, b)
                    try:
                        if name in mapping:  # YAML keys are unique: the later would win silently
                            raise ConstructorError(
                                None, None, f"the key {name!r} is given twice", key_node.start_mark
                            )
                        mapping[name] = _build(value_node, b)
                    except TypeError:
                        raise ConstructorError(
                            None, None, "found an unhashable key", key_node.start_mark
                        ) from None
                result = mapping
        else:
            raise ConstructorError(None, None, f"unexpected node {kind.__name__}", node.start_mark)
    finally:
        b.active.discard(key)
    b.sizes[key] = b.total - before
    return result


def _check_merged(root: Node, b: _Builder) -> None:
    """The nodes under a mapping with merge keys, checked as `_build` checks the others:
    plain tags only, and non-finite floats noted (PyYAML builds the mapping itself)."""
    todo, seen = [root], set()
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag not in _PLAIN_TAGS:
            raise ConstructorError(
                None,
                None,
                f"tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not plain data (use "
                "strings, numbers, lists and mappings)",
                node.start_mark,
            )
        if isinstance(node, ScalarNode):
            if node.tag == "tag:yaml.org,2002:float":
                value = _SAFE.construct_yaml_float(node)
                b.non_finite = b.non_finite or not math.isfinite(value)
        elif isinstance(node, SequenceNode):
            todo.extend(node.value)
        elif isinstance(node, MappingNode):
            todo.extend(n for pair in node.value for n in pair)


class _SafeLoad(SafeConstructor):
    """PyYAML's own safe construction of one node (merge keys and the like)."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node

    def get(self) -> Any:
        return self.construct_document(self.node)


def _line_of(root: Node | None, path: FieldPath) -> int | None:
    node = root
    line = None
    for part in path:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, MappingNode) and isinstance(part, str):
            match = [(k, v) for k, v in node.value if getattr(k, "value", None) == part]
            if not match:
                return line
            key, node = match[-1]  # merge keys (`<<`) put the merged pairs first
            line = key.start_mark.line + 1
        elif isinstance(node, SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    if line is None and node is not None:
        return node.start_mark.line + 1
    return line
