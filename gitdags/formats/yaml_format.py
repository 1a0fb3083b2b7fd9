"""YAML reader: safe loading only.

libyaml's C parser composes the node tree (tags resolved the safe way); a small builder turns
the nodes into plain values, about twice as fast as PyYAML's generic constructor, and keeps
the tree so that issues get exact line numbers. Anything unusual (merge keys, other tags) goes
through PyYAML's SafeConstructor, so the result is always what `yaml.safe_load` gives.
"""

from __future__ import annotations

import functools
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gitdags.formats import FieldPath, Parsed, parse_error

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_SAFE = SafeConstructor()


def parse(path: str, text: str) -> Parsed:
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = None if node is None else _build(node, {})
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        detail = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return Parsed(None, [parse_error(path, line, detail or "invalid YAML")])
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        return Parsed(None, [parse_error(path, None, first)])
    return Parsed(data, [], functools.partial(_line_of, node))


def _build(node: Node, memo: dict[int, Any]) -> Any:
    key = id(node)
    if key in memo:  # an alias: the same object, as safe_load gives (and no blow-up)
        return memo[key]
    kind = node.__class__
    if kind is ScalarNode:
        tag = node.tag
        if tag == _STR:
            return node.value
        value = node.value
        if (
            tag == _INT
            and value.isascii()
            and value.isdigit()
            and (value[0] != "0" or value == "0")
        ):
            return int(value)  # plain decimal; 010 is octal in YAML 1.1, left to PyYAML
        if tag == _NULL:
            return None
        construct = _SAFE.yaml_constructors.get(tag)
        if construct is None:
            raise ConstructorError(None, None, f"unsafe or unknown tag {tag}", node.start_mark)
        return construct(_SAFE, node)
    if kind is SequenceNode:
        items: list[Any] = []
        memo[key] = items
        items.extend(_build(child, memo) for child in node.value)
        return items
    if kind is MappingNode:
        if any(k.tag == _MERGE for k, _v in node.value):
            return _SafeLoad(node).get()
        mapping: dict[Any, Any] = {}
        memo[key] = mapping
        for key_node, value_node in node.value:
            name = _build(key_node, memo)
            try:
                mapping[name] = _build(value_node, memo)
            except TypeError:
                raise ConstructorError(
                    None, None, "found an unhashable key", key_node.start_mark
                ) from None
        return mapping
    raise ConstructorError(None, None, f"unexpected node {kind.__name__}", node.start_mark)


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
            key, node = match[0]
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
