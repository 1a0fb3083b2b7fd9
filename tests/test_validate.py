"""The validator: every bad file produces its code; good files give a normalized spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitdags.checks.crosscheck import EmptyCatalog, check_across
from gitdags.checks.offline import check_paths
from gitdags.kinds import check_file
from gitdags.model import CODES
from gitdags.spec import parse_duration
from tests.conftest import SAMPLE, dag_yaml

BAD = Path(__file__).parent / "data" / "bad"
BAD_FILES = sorted(p for p in BAD.iterdir())


WARNINGS = {"GD007", "GD103", "GD404", "GD406"}
CHECKS = {  # the files are checked as one source with these settings
    "namespaces": {"sales": "sales_"},  # GD304: another source owns sales_
    "own_namespace": "team_",  # GD305 (Airflow files)
    "pattern": "(?!legacy_).*",  # GD306
    "forbidden_imports": ("mycompany.jobs",),  # GD405
}


AIRFLOW_CODES = {"GD402", "GD403", "GD407"}  # found only by parsing with Airflow
DAGSTER_CODES = {"GD420", "GD421", "GD422", "GD423"}  # Dagster locations: tests/test_dagster.py
STATIC_FILES = [p for p in BAD_FILES if p.name.split("-")[0] not in AIRFLOW_CODES | DAGSTER_CODES]


@pytest.mark.parametrize("path", STATIC_FILES, ids=lambda p: p.name)
def test_every_bad_file_produces_the_code_it_names(path: Path) -> None:
    code = path.name.split("-")[0]
    assert code in CODES
    _files, issues = check_paths([str(p) for p in BAD_FILES], **CHECKS)
    severity = "warning" if code in WARNINGS else "error"
    codes = {i.code for i in issues if i.file == path.as_posix() and i.severity == severity}
    assert code in codes, f"{path.name} gave {codes}"


def test_every_code_has_a_bad_file() -> None:
    assert {p.name.split("-")[0] for p in BAD_FILES} == set(CODES)


def test_sample_repo_is_valid() -> None:
    files, issues = check_paths([str(SAMPLE)])
    # 10 format v1, 3 Airflow DAG files, 2 helpers, 1 dag-factory; a Prefect project: its
    # prefect.yaml (2 deployments), 1 flow file (3 flows), 2 modules; and the 5 modules of the
    # Dagster location (helper modules to Airflow's reading)
    assert len(files) == 25
    assert sum(len(f.dags) for f in files) == 22  # the 3 flows of the flow file count
    assert issues == []
    # the Dagster code location beside them
    files, issues = check_paths([str(SAMPLE / "dagster")], orchestrator="dagster")
    assert len(files) == 5 and sum(len(f.dags) for f in files) == 1  # the job train_model
    assert issues == []


def test_formats_give_the_same_spec() -> None:
    yaml_text = (
        "dag_id: x\nschedule: '@daily'\ntasks:\n  - {id: a, type: bash, config: {command: ls}}\n"
    )
    json_text = json.dumps(
        {
            "dag_id": "x",
            "schedule": "@daily",
            "tasks": [{"id": "a", "type": "bash", "config": {"command": "ls"}}],
        }
    )
    toml_text = (
        'dag_id = "x"\nschedule = "@daily"\n'
        '[[nodes]]\nid = "a"\ntype = "bash"\nconfig = {command = "ls"}\n'
    )
    specs = [
        check_file(name, text.encode()).spec
        for name, text in (("x.yaml", yaml_text), ("x.json", json_text), ("x.toml", toml_text))
    ]
    assert specs[0] == specs[1] == specs[2]


def test_normalized_spec_merges_edges_and_depends_on() -> None:
    text = """
dag_id: merged
start_date: 2024-01-01
default_args: {retries: 2, retry_delay: 5m, timeout: 2h}
tasks:
  - {id: a, type: empty}
  - {id: b, type: empty}
  - {id: c, type: empty, depends_on: [a]}
edges:
  - {from: b, to: c}
"""
    f = check_file("merged.yaml", text.encode())
    assert f.valid, f.issues
    assert f.spec is not None
    assert f.spec["tasks"][2]["depends_on"] == ["a", "b"]
    assert f.spec["default_args"] == {"retries": 2, "retry_delay": 300, "timeout": 7200}
    assert f.spec["start_date"] == "2024-01-01"


def test_dag_id_defaults_to_file_name() -> None:
    f = check_file("dags/nightly_report.yaml", b"tasks: [{id: a, type: empty}]\n")
    assert f.dag_id == "nightly_report" and f.valid


def test_unknown_top_level_field_is_a_warning() -> None:
    f = check_file("w.yaml", dag_yaml("w").replace("schedule:", "colour: blue\nschedule:").encode())
    assert f.valid
    assert [(i.code, i.severity, i.line) for i in f.issues] == [("GD103", "warning", 2)]


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = """
dag_id: many
schedule: "every day"
tasks:
  - {id: a, type: teleport}
  - {id: b, type: sql, config: {sql: x}, depends_on: [zzz]}
  - {id: b, type: empty}
"""
    codes = sorted(i.code for i in check_file("m.yaml", text.encode()).issues)
    assert codes == ["GD105", "GD201", "GD202", "GD205", "GD206"]


def test_cycle_is_spelled_out_with_line() -> None:
    f = check_file("c.yaml", (BAD / "GD204-cycle.yaml").read_bytes())
    (issue,) = f.issues
    assert issue.message == "Tasks form a cycle: a -> b -> c -> a."
    assert issue.location == "tasks" and issue.line == 2


def test_extra_task_types_from_config() -> None:
    text = b"tasks: [{id: s, type: spark_submit, config: {application: job.py}}]\n"
    assert not check_file("s.yaml", text).valid
    types = {"spark_submit": ("application",)}
    assert check_file("s.yaml", text, task_types=types).valid
    missing = check_file("s.yaml", b"tasks: [{id: s, type: spark_submit}]\n", task_types=types)
    assert [i.code for i in missing.issues] == ["GD206"]


def test_python_callable_format() -> None:
    bad = check_file(
        "p.yaml", b"tasks: [{id: p, type: python, config: {callable: not-a-callable}}]"
    )
    assert [i.code for i in bad.issues] == ["GD108"]
    good = check_file("p.yaml", b"tasks: [{id: p, type: python, config: {callable: pkg.mod:run}}]")
    assert good.valid


def test_ids_are_limited_to_250_characters() -> None:
    long_id = "a" * 251
    f = check_file("x.yaml", f"dag_id: {long_id}\ntasks: [{{id: a, type: empty}}]".encode())
    assert [i.code for i in f.issues] == ["GD104"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), (90, 90)]
)
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_cross_dag_cycle_and_unknown_target() -> None:
    a = check_file("a.yaml", dag_yaml("a", depends_on_dags="[b]").encode())
    b = check_file("b.yaml", dag_yaml("b", depends_on_dags="[c]").encode())
    c = check_file("c.yaml", dag_yaml("c", depends_on_dags="[a, ghost]").encode())
    found = check_across([a, b, c], EmptyCatalog())
    assert {i.code for i in found[("c.yaml", "c")]} == {"GD302", "GD303"}
    cycle = next(i for i in found[("a.yaml", "a")] if i.code == "GD303")
    # upstream -> downstream: c waits for a, b for c, a for b
    assert cycle.message == "DAGs depend on each other in a cycle: a -> c -> b -> a."


def test_namespace_of_another_source_is_refused() -> None:
    f = check_file("x.yaml", dag_yaml("sales_daily").encode())
    found = check_across([f], EmptyCatalog(), source="ops", namespaces={"sales": "sales_"})
    assert [i.code for i in found[("x.yaml", "sales_daily")]] == ["GD304"]
    assert check_across([f], EmptyCatalog(), source="sales", namespaces={"sales": "sales_"}) == {}


def test_sample_files_match_the_published_json_schema() -> None:
    import jsonschema

    from gitdags.formats import parse
    from gitdags.schema import json_schema

    validator = jsonschema.Draft202012Validator(json_schema())
    for path in sorted((SAMPLE / "dags").rglob("*.*")):
        if path.suffix == ".py" or path.parent.name == "marketing":
            continue  # Airflow Python files and dag-factory files: not format v1
        data = parse(path.name, path.read_text()).data
        data = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}
        errors = [e.message for e in validator.iter_errors(data)]
        assert errors == [], path.name


def test_the_airflow_bad_files_produce_their_codes_when_airflow_parses_them() -> None:
    from tests.test_airflow import airflow_python

    dynamic = [p for p in BAD_FILES if p.name.split("-")[0] in AIRFLOW_CODES]
    _files, issues = check_paths(
        [str(p) for p in dynamic], airflow_python=str(airflow_python()), parse_timeout=3
    )
    found = {(i.file.rsplit("/", 1)[-1], i.code) for i in issues if i.severity == "error"}
    assert found >= {(p.name, p.name.split("-")[0]) for p in dynamic}, found


def test_lines_of_many_issues_in_json_and_toml_are_found_in_one_pass() -> None:
    """14,000 bad tasks took 54 s to locate (a search from the top per issue); one Locator
    per file scans the ids after a list once and finds each line by bisection."""
    from gitdags.formats import parse

    tasks = [{"id": f"t{i}", "type": "nope"} for i in range(3000)]
    text = json.dumps({"dag_id": "big", "tasks": tasks}, indent=1)
    parsed = parse("big.json", text)
    lines = text.splitlines()
    for i in (0, 1, 1500, 2999):
        line = parsed.line_of(("tasks", i, "type"))
        assert line is not None and lines[line - 1].strip() == '"type": "nope"'
        assert lines[line - 2].strip() == f'"id": "t{i}",'
    assert len(parsed.line_of._strings) == 1  # type: ignore[attr-defined]  # one scan
    toml = 'dag_id = "t"\n' + "".join(
        f'[[tasks]]\nid = "t{i}"\ntype = "nope"\n' for i in range(3000)
    )
    parsed = parse("big.toml", toml)
    assert parsed.line_of(("tasks", 2999, "type")) == 1 + 3 * 2999 + 3


def test_an_invalid_version_shows_what_was_committed() -> None:
    """A rejected field used to read `null` in show and diff (`+schedule: null`)."""
    bad = check_file(
        "a.yaml",
        b'dag_id: a\nschedule: "every day"\ndefault_args: {retries: x}\n'
        b"tasks:\n  - {id: a, type: bash, config: {command: ls}, timeout: 3z}\n",
    )
    assert not bad.valid and bad.spec is not None
    assert bad.spec["schedule"] == "every day"
    assert bad.spec["default_args"] == {"retries": "x"}
    assert bad.spec["tasks"][0]["timeout"] == "3z"
