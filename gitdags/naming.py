"""The names of served files, shared by the deploy folder that writes them and the kinds and
tiers that look for them: a DAG id made safe as a file name, and the stem of a dag-factory
DAG's loader. Standard library only, so any layer may import it."""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def safe_name(dag_id: str) -> str:
    """A file name that stays in its folder whatever the DAG id, and differs for different
    ids: one that had to be changed (unsafe characters, or too long) ends in a hash of the id."""
    name = _UNSAFE.sub("_", dag_id).lstrip(".") or "_"
    if name == dag_id and len(name) <= 200:
        return name
    return f"{name[:180]}-{hashlib.sha256(dag_id.encode()).hexdigest()[:16]}"


def loader_stem(path: str, dag_id: str) -> str:
    """The name of a served DAG's loader and data files, beside where its YAML file lies."""
    return f"{PurePosixPath(path).stem}__{safe_name(dag_id)}"
