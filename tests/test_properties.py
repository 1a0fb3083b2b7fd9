"""Property tests: any input gives issues, never an unexpected exception."""

from __future__ import annotations

import json

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gitdags.checks.crosscheck import EmptyCatalog, check_across
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


TOKENS = st.sampled_from(
    [
        "010",
        "0755",
        "0",
        "00",
        "08",
        "0x1F",
        "0o17",
        "1_000",
        "+12",
        "-0",
        "12",
        "1e3",
        ".inf",
        "-.inf",
        ".nan",
        "yes",
        "No",
        "on",
        "~",
        "null",
        "2024-01-01",
        "12:30",
        "0b101",
        "'010'",
        "3.0",
        "1:20",
        "٣",
        "²",
        "1__0",
        "x",
        '"a',
        'b"',
        "[]",
        "{}",
    ]
)


def _same(a: object, b: object) -> bool:
    return repr(a) == repr(b)  # NaN != NaN, but their reprs match


@settings(max_examples=300, deadline=None)
@given(st.lists(TOKENS, min_size=1, max_size=6), dags)
def test_the_lean_yaml_builder_equals_safe_load(tokens: list[str], data: dict) -> None:
    from gitdags.formats import yaml_format

    texts = [
        "value: " + tokens[0] + "\nitems: [" + ", ".join(tokens) + "]\n",
        yaml.safe_dump(data),
        "\n".join(f"k{i}: {t}" for i, t in enumerate(tokens)) + "\n",
    ]
    for text in texts:
        try:
            expected = yaml.safe_load(text)
        except yaml.YAMLError:
            assert yaml_format.parse("a.yaml", text).issues
            continue
        parsed = yaml_format.parse("a.yaml", text)
        assert not parsed.issues and _same(parsed.data, expected), text


def test_octal_and_leading_zero_integers_read_as_yaml_says() -> None:
    from gitdags.formats import yaml_format

    assert yaml_format.parse("a.yaml", "retries: 010\nmode: 0755\n").data == {
        "retries": 8,
        "mode": 493,
    }


FRAGMENTS = st.sampled_from(
    [
        "from airflow.sdk import DAG, dag, task\n",
        "import os\n",
        "from . import x\n",
        "from .. import y\n",
        "X = 'a'\n",
        "X = X + 'b'\n",
        "for i in [1, 2]:\n    pass\n",
        "for i in range(3):\n    DAG(f'd_{i}')\n",
        "for a, b in [('x', 1), ('y', 2)]:\n    with DAG(dag_id=a):\n        pass\n",
        "with DAG('w') as d:\n    t = T(task_id='t')\n    u = T(task_id='u')\n    t >> u\n",
        "with DAG(dag_id=X, schedule=None):\n    pass\n",
        "with DAG(dag_id='e', description=doc, tags=[t], default_args=args, start_date=s):\n"
        "    pass\n",
        "@dag\ndef f():\n    pass\nf()\n",
        "@dag(dag_id=X)\ndef g():\n    pass\n",
        "@asset(schedule=None)\ndef h():\n    pass\n",
        "globals()['k'] = DAG('k')\n",
        "d = DAG(Path(__file__).stem)\n",
        "d = DAG(os.path.basename(__file__).replace('.py', ''))\n",
        "DAG(123)\n",
        "DAG(dag_id=None)\n",
        "with DAG('%s_x' % X):\n    pass\n",
        "with DAG('{}_y'.format(X)):\n    pass\n",
        "class C:\n    dag = DAG('in_class')\n",
        "if True:\n    with DAG('in_if'):\n        pass\nelse:\n    pass\n",
        "try:\n    import z\nexcept ImportError:\n    z = None\n",
        "Variable.get('v')\n",
        "x = [DAG('in_list')]\n",
        "(a, b) = (1, 2)\n",
        "lambda: DAG('in_lambda')\n",
        "def q(): return DAG('in_func')\n",
        "    bad indentation\n",
        "with DAG(\n",
        "t1 >> [t2, t3] << t4\n",
        "async def r():\n    pass\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAGMENTS, max_size=8))
def test_any_python_file_reads_without_an_exception(parts: list[str]) -> None:
    from gitdags import kinds

    found = kinds.read("dags/x.py", "".join(parts).encode())
    assert found.kind in ("airflow", "module")
    for d in found.dags:
        json.dumps(d.spec)  # the static spec is always JSON


TAGGED = st.sampled_from(
    [
        "!!set {a, b}",
        "!!binary aGVsbG8=",
        "!!omap [{a: 1}]",
        "!!pairs [{a: 1}]",
        "!!timestamp 2024-01-01 10:00:00",
        "!!float .inf",
        ".nan",
        "2024-01-01",
        "[1, {x: y}]",
        "{k: !!set {z}}",
        "plain",
    ]
)


@settings(max_examples=300, deadline=None)
@given(TAGGED, TAGGED, st.booleans())
def test_any_accepted_yaml_with_merge_keys_gives_a_json_spec(a: str, b: str, factory: bool) -> None:
    """Whatever the readers accept yields a JSON-serializable spec, merge keys included
    (a `!!set` reached only through `<<:` crashed the sync of its whole source)."""
    from gitdags.kinds import read

    if factory:  # a dag-factory file whose DAG block merges an anchored mapping
        text = (
            f"base: &b\n  owner: {a}\n  params: {{p: {b}}}\n"
            "my_dag:\n  <<: *b\n  default_args: {owner: x}\n  schedule: null\n"
            "  tasks:\n    t1: {operator: airflow.providers.standard.operators.empty.EmptyOp}\n"
        )
    else:
        text = f"dag_id: x\ntasks: [{{id: a, type: empty}}]\nparams:\n  <<: {{v: {a}, w: {b}}}\n"
    found = read("dags/a.yaml", text.encode())
    assert found.kind != "none" or found.issues
    for dag in found.dags:
        if dag.spec is not None:
            json.dumps(dag.spec, allow_nan=False)
    assert not any("internal error" in i.message for i in found.all_issues())
