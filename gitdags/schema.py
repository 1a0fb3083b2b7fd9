"""JSON Schema of format v1, built from the validator's field tables (one description)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitdags.spec import (
    DEFAULT_ARGS,
    ID_MAX,
    PRESETS,
    TASK_FIELDS,
    TASK_TYPES,
    TOP_FIELDS,
    TRIGGER_RULES,
)

_ID = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$", "maxLength": ID_MAX}
_DURATION = {
    "oneOf": [
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[smhd]?\s*$"},
        {"type": "number", "minimum": 0},
    ]
}


def _kind(kind: str) -> dict[str, Any]:
    if kind == "default_args":
        return {"type": "object", "properties": {k: _kind(v) for k, v in DEFAULT_ARGS.items()}}
    simple: dict[str, dict[str, Any]] = {
        "str": {"type": "string"},
        "bool": {"type": "boolean"},
        "int": {"type": "integer"},
        "count": {"type": "integer", "minimum": 0},
        "id": _ID,
        "ids": {"type": "array", "items": _ID},
        "strs": {"type": "array", "items": {"type": "string"}},
        "mapping": {"type": "object"},
        "duration": _DURATION,
        "date": {"type": "string", "format": "date"},
        "schedule": {
            "oneOf": [
                {"type": "null"},
                {"enum": list(PRESETS)},
                {"type": "string", "pattern": r"^\S+(\s+\S+){4}$"},
            ]
        },
        "edges": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["from", "to"],
                "properties": {"from": _ID, "to": _ID},
            },
        },
    }
    return dict(simple[kind])


def json_schema(task_types: Mapping[str, tuple[str, ...]] = TASK_TYPES) -> dict[str, Any]:
    task_props = {}
    for name, (kind, doc) in TASK_FIELDS.items():
        task_props[name] = {**_kind(kind), "description": doc}
    task_props["type"]["enum"] = list(task_types)
    task_props["trigger_rule"]["enum"] = list(TRIGGER_RULES)
    task = {
        "type": "object",
        "required": ["id", "type"],
        "properties": task_props,
        "allOf": [
            {
                "if": {"properties": {"type": {"const": name}}},
                "then": {"properties": {"config": {"required": list(keys)}}}
                | ({"required": ["config"]} if keys else {}),
            }
            for name, keys in task_types.items()
        ],
    }
    props: dict[str, Any] = {}
    for name, (kind, doc) in TOP_FIELDS.items():
        if kind == "tasks":
            props[name] = {"type": "array", "items": task, "description": doc}
        else:
            props[name] = {**_kind(kind), "description": doc}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://gitdags.dev/schema/dag-v1.json",
        "title": "gitdags DAG definition (format v1)",
        "type": "object",
        "properties": props,
        "oneOf": [{"required": ["tasks"]}, {"required": ["nodes"]}],
    }
