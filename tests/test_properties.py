"""Property tests: any input gives issues, never an unexpected exception."""

from __future__ import annotations

import json

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gitdags.crosscheck import EmptyCatalog, check_across
from gitdags.kinds import check_file

EXTENSIONS = ["a.yaml", "a.yml", "a.json", "a.toml"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "dag_id",
        "schedule",
        "tasks",
        "nodes",
        "edges",
        "depends_on_dags",
        "default_args",
        "start_date",
        "tags",
        "params",
        "max_active_runs",
        "owner",
        "catchup",
        "enabled",
        "x",
    ]
)
task = st.dictionaries(
    st.sampled_from(["id", "type", "config", "depends_on", "retries", "trigger_rule", "timeout"]),
    values | st.sampled_from(["bash", "sql", "a", "b", ["a"], ["b"], {"command": "x"}]),
)
dags = st.dictionaries(keys, values | st.lists(task, max_size=5), max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(EXTENSIONS), st.binary(max_size=300))
def test_any_bytes(name: str, content: bytes) -> None:
    f = check_file(name, content)
    assert f.valid or f.issues
    check_across([f], EmptyCatalog())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(EXTENSIONS), st.text(max_size=300))
def test_any_text(name: str, text: str) -> None:
    f = check_file(name, text.encode())
    assert f.valid or f.issues


@settings(max_examples=300, deadline=None)
@given(dags, st.booleans())
def test_any_structure(data: dict, as_json: bool) -> None:
    text = json.dumps(data) if as_json else yaml.safe_dump(data)
    f = check_file("a.json" if as_json else "a.yaml", text.encode())
    assert f.valid or f.issues
    if f.spec is not None:
        json.dumps(f.spec)  # a normalized spec is always JSON
    check_across([f, f], EmptyCatalog())
