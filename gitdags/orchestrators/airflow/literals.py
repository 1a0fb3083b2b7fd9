"""The bounded evaluator of the constant expressions (ids, f-strings, loops) of a DAG file."""

from __future__ import annotations

import ast
import re
from pathlib import PurePosixPath
from typing import Any

from gitdags.orchestrators.airflow.imports import dotted

MAX_LOOP_IDS = 1000  # ids a loop may spell out before the static reading gives up
MAX_TEXT = 10_000  # the longest string the static reading builds (a DAG id is at most 250)
UNKNOWN = object()
_PATHS = ("Path", "PurePath", "PurePosixPath")
_STR_METHODS = ("replace", "removesuffix", "removeprefix", "lower", "upper", "strip", "format")
_PERCENT = re.compile(r"%[sdri%]")  # the conversions it evaluates: no width, no precision
_FIELD = re.compile(r"\{\w*\}")  # the fields of `.format` it evaluates: no format spec


def _shown(value: Any) -> str:
    """str(value), or "" past MAX_TEXT (an int of 5,000 digits cannot even be shown)."""
    try:
        text = str(value)
    except ValueError:
        return "?" * (MAX_TEXT + 1)
    return text if len(text) <= MAX_TEXT else "?" * (MAX_TEXT + 1)


def _small(template: str, fields: int, args: Any) -> bool:
    """Whether formatting `template` (with `fields` fields) with `args` stays under MAX_TEXT."""
    values = args if isinstance(args, tuple | list) else [args]
    widest = max((len(_shown(a)) for a in values), default=0)
    return len(template) + fields * widest <= MAX_TEXT


def literal_value(node: ast.expr, env: dict[str, Any]) -> Any:
    """The value of a constant expression: literals, known names, f-strings, `+`, `%` and
    `.format()` of strings; `UNKNOWN` for anything else."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env.get(node.id, UNKNOWN)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        items = [literal_value(e, env) for e in node.elts]
        return UNKNOWN if any(i is UNKNOWN for i in items) else items
    if isinstance(node, ast.Dict):
        keys = [literal_value(k, env) if k is not None else UNKNOWN for k in node.keys]
        values = [literal_value(v, env) for v in node.values]
        return {k: v for k, v in zip(keys, values, strict=True) if isinstance(k, str | int | float)}
    if isinstance(node, ast.JoinedStr):
        parts, size = [], 0
        for value in node.values:
            if isinstance(value, ast.Constant):
                part = str(value.value)
            elif isinstance(value, ast.FormattedValue):
                inner = literal_value(value.value, env)
                if inner is UNKNOWN or value.format_spec is not None:
                    return UNKNOWN
                part = _shown(inner)
            else:
                return UNKNOWN
            size += len(part)
            if size > MAX_TEXT:  # a string no DAG needs, that would cost memory and time
                return UNKNOWN
            parts.append(part)
        return "".join(parts)
    if isinstance(node, ast.BinOp):
        left, right = literal_value(node.left, env), literal_value(node.right, env)
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
            return left + right if len(left) + len(right) <= MAX_TEXT else UNKNOWN
        if isinstance(node.op, ast.Mod) and isinstance(left, str):
            args = tuple(right) if isinstance(right, list) else right
            if _PERCENT.sub("", left).count("%") or not _small(left, left.count("%"), args):
                return UNKNOWN  # a width or precision: `%0300000000d` is 300 MB
            try:
                return left % args
            except (TypeError, ValueError):
                return UNKNOWN
        return UNKNOWN
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and not node.keywords
    ):
        template = literal_value(node.func.value, env)
        args = [literal_value(a, env) for a in node.args]
        if isinstance(template, str) and all(a is not UNKNOWN for a in args):
            plain = template.replace("{{", "").replace("}}", "")
            fields = len(_FIELD.findall(plain))
            if "{" in _FIELD.sub("", plain) or not _small(template, fields, args):
                return UNKNOWN  # a format spec: `{:300000000}` is 300 MB
            try:
                return template.format(*args)
            except (IndexError, KeyError, ValueError):
                return UNKNOWN
    if isinstance(node, ast.Attribute) and node.attr in ("stem", "name", "parent"):
        inner = node.value  # Path(__file__).stem and the like
        if isinstance(inner, ast.Call) and dotted(inner.func).split(".")[-1] in _PATHS:
            base = literal_value(inner.args[0], env) if inner.args else UNKNOWN
            if isinstance(base, str):
                return str(getattr(PurePosixPath(base), node.attr))
        return UNKNOWN
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        method, target = node.func.attr, literal_value(node.func.value, env)
        args = [literal_value(a, env) for a in node.args]
        if (
            isinstance(target, str)
            and method in _STR_METHODS
            and all(isinstance(a, str) for a in args)
            and not node.keywords
            and method != "format"
        ):
            if method == "replace" and len(args) >= 2:  # "x".replace("", long) grows fast
                count = target.count(args[0]) if args[0] else len(target) + 1
                if len(target) + count * len(args[1]) > MAX_TEXT:
                    return UNKNOWN
            try:
                return getattr(target, method)(*args)
            except (TypeError, ValueError):
                return UNKNOWN
    if isinstance(node, ast.Call) and dotted(node.func) in ("os.path.basename", "basename"):
        base = literal_value(node.args[0], env) if node.args else UNKNOWN
        return PurePosixPath(base).name if isinstance(base, str) else UNKNOWN
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Call)
        and dotted(node.value.func) in ("os.path.splitext", "splitext")
        and node.value.args
    ):
        base = literal_value(node.value.args[0], env)
        index = literal_value(node.slice, env)
        if isinstance(base, str) and index in (0, -2):
            return base.rsplit(".", 1)[0] if "." in PurePosixPath(base).name else base
    if isinstance(node, ast.Call) and dotted(node.func).split(".")[-1] == "datetime":
        parts = [literal_value(a, env) for a in node.args[:3]]  # datetime(2024, 1, 1)
        if len(parts) == 3 and all(isinstance(p, int) for p in parts):
            return f"{parts[0]:04}-{parts[1]:02}-{parts[2]:02}"
    if isinstance(node, ast.Call) and dotted(node.func) in ("range",) and node.args:
        bounds = [literal_value(a, env) for a in node.args]
        if all(isinstance(b, int) for b in bounds) and len(bounds) <= 3:
            values = range(*bounds)
            if len(values) <= MAX_LOOP_IDS:
                return list(values)
    return UNKNOWN
