"""dag-factory YAML files: each DAG key its own DAG, composed with the file's `default:` block
and the defaults.yml chain; checked with lines; served one DAG at a time through a generated
loader that real Airflow 3 and real dag-factory load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitdags.checks.offline import check_paths
from gitdags.config import SourceConfig
from gitdags.engine import SyncEngine
from tests.conftest import GitRepo
from tests.test_airflow_py import airflow_loads
from tests.test_sync import statuses

BASH = "airflow.providers.standard.operators.bash.BashOperator"
EMPTY = "airflow.providers.standard.operators.empty.EmptyOperator"
PIPELINES = f"""\
default:
  default_args:
    owner: data-eng
    start_date: 2024-01-01
  schedule: "@daily"
  catchup: false

sales_daily:
  description: Daily sales
  task_groups:
    load:
      tooltip: loading
  tasks:
    extract:
      operator: {BASH}
      bash_command: echo extract $HOME
    transform:
      operator: {BASH}
      bash_command: echo transform
      dependencies: [extract]
    load_a:
      operator: {BASH}
      bash_command: echo a
      task_group_name: load
      dependencies: [transform]
    load_b:
      operator: {BASH}
      bash_command: echo b
      task_group_name: load
    notify:
      operator: {EMPTY}
      dependencies: [load]

inventory_hourly:
  schedule: "0 * * * *"
  tasks:
    - task_id: count
      operator: {BASH}
      bash_command: echo count
    - task_id: report
      operator: {BASH}
      bash_command: echo report
      dependencies: [count]
"""
DEFAULTS = "default_args:\n  owner: platform\n  retries: 2\ntags: [managed]\n"
CALLABLE = 'def hello():\n    return "hello"\n'
LOADER = "from dagfactory import load_yaml_dags\n\nload_yaml_dags(globals_dict=globals())\n"


def df_source(repo: GitRepo, **kw: object) -> SourceConfig:
    include = ("**/*.yml", "**/*.yaml", "**/*.py")
    return SourceConfig(name="main", url=str(repo.path), subdir="dags", include=include, **kw)  # type: ignore[arg-type]


@pytest.fixture
def world(repo: GitRepo, make_engine, tmp_path: Path) -> tuple[SyncEngine, GitRepo, Path]:
    repo.commit(
        "dag-factory dags",
        {
            "dags/defaults.yml": DEFAULTS,
            "dags/team/pipelines.yml": PIPELINES,
            "dags/team/callables/hello.py": CALLABLE,
            "dags/team/settings.yml": "retention_days: 30\n",  # not a DAG file
            "dags/load_yaml.py": LOADER,  # the team's own loader: the generated ones replace it
        },
    )
    deploy = tmp_path / "deploy"
    engine = make_engine(df_source(repo), deploy_dir=deploy)
    (result,) = engine.sync()
    assert result.error is None, result.error
    return engine, repo, deploy


def block(dag: str, *lines: str) -> str:
    return f"{dag}:\n" + "".join(f"  {line}\n" for line in lines)


def issues_of(tmp_path: Path, files: dict[str, str]) -> list[tuple[str, int | None, str]]:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    _files, issues = check_paths([str(tmp_path)])
    return [(i.code, i.line, i.message) for i in issues if i.severity == "error"]


# -- reading -------------------------------------------------------------------------------------
def test_each_dag_key_is_a_dag_composed_as_dag_factory_merges(world) -> None:
    engine, _repo, _deploy = world
    assert statuses(engine) == {"inventory_hourly": "active", "sales_daily": "active"}
    detail = engine.show("sales_daily")
    spec = detail.spec
    assert detail.state.path == "dags/team/pipelines.yml"
    assert spec is not None
    assert spec["owner"] == "data-eng"  # the file's default: beats defaults.yml
    assert spec["schedule"] == "@daily"
    assert spec["start_date"] == "2024-01-01"
    tasks = {t["id"]: t["depends_on"] for t in spec["tasks"]}
    assert tasks == {
        "extract": [],
        "transform": ["extract"],
        "load.load_a": ["transform"],
        "load.load_b": [],
        "notify": ["load.load_a", "load.load_b"],  # a dependency on a group: on its last tasks
    }
    config = spec["dag_factory"]["config"]
    assert config["default"]["default_args"] == {
        "owner": "data-eng",
        "retries": 2,  # from defaults.yml, below the file's own default_args
        "start_date": "2024-01-01",
    }
    assert config["sales_daily"]["tags"] == ["managed"]  # defaults.yml's DAG-level keys
    assert config["sales_daily"]["tasks"]["extract"]["bash_command"] == "echo extract $HOME"
    assert spec["dag_factory"]["defaults"] == ["dags/defaults.yml"]


def test_a_broken_dag_keeps_its_last_good_while_its_neighbour_moves_on(world) -> None:
    engine, repo, _deploy = world
    broken = PIPELINES.replace("dependencies: [count]", "dependencies: [counting]")
    broken = broken.replace("echo extract $HOME", "echo extract v2")
    repo.commit("break inventory, change sales", {"dags/team/pipelines.yml": broken})
    (result,) = engine.sync()
    changes = {c.dag_id: c.change for c in result.changes}
    assert changes == {"sales_daily": "changed", "inventory_hourly": "invalid"}
    dags = {d.dag_id: d for d in engine.list_dags()}
    assert (dags["sales_daily"].served_version, dags["sales_daily"].newest_version) == (2, 2)
    assert (dags["inventory_hourly"].served_version, dags["inventory_hourly"].newest_version) == (
        1,
        2,
    )
    (issue,) = [i for i in result.issues if i.severity == "error"]
    assert issue.code == "GD202"
    assert issue.line == PIPELINES.splitlines().index("      dependencies: [count]") + 1
    assert "'counting'" in issue.message


def test_a_defaults_change_makes_new_versions_of_the_dags_it_reaches(world) -> None:
    engine, repo, _deploy = world
    repo.commit("more retries", {"dags/defaults.yml": DEFAULTS.replace("retries: 2", "retries: 5")})
    (result,) = engine.sync()
    assert {c.dag_id: c.change for c in result.changes} == {
        "inventory_hourly": "changed",
        "sales_daily": "changed",
    }
    assert "defaults changed" in result.note
    spec = engine.show("inventory_hourly").spec
    assert spec is not None
    assert spec["dag_factory"]["config"]["default"]["default_args"]["retries"] == 5
    # a nearer defaults file wins over the one above it
    repo.commit("team defaults", {"dags/team/defaults.yaml": "default_args:\n  retries: 9\n"})
    (result,) = engine.sync()
    assert len(result.changes) == 2
    spec = engine.show("sales_daily").spec
    assert spec is not None
    assert spec["dag_factory"]["defaults"] == ["dags/defaults.yml", "dags/team/defaults.yaml"]
    assert spec["dag_factory"]["config"]["default"]["default_args"]["retries"] == 9
    # a broken defaults file makes the DAGs below it invalid, their last good served
    repo.commit("oops", {"dags/team/defaults.yaml": "default_args: [\n"})
    (result,) = engine.sync()
    assert {c.change for c in result.changes} == {"invalid"}
    assert {d.served_version for d in engine.list_dags()} == {3}


def test_a_dag_removed_from_its_file_is_retired_and_a_duplicate_id_refused(world) -> None:
    engine, repo, _deploy = world
    only_sales = PIPELINES[: PIPELINES.index("inventory_hourly:")]
    other = block("sales_daily", "tasks:", f"  x: {{operator: {BASH}, bash_command: ls}}")
    repo.commit(
        "move inventory out, copy sales",
        {"dags/team/pipelines.yml": only_sales, "dags/other.yml": other},
    )
    (result,) = engine.sync()
    assert statuses(engine) == {"inventory_hourly": "deleted", "sales_daily": "active"}
    assert [i.code for i in result.issues if i.severity == "error"] == ["GD301"]


def test_rollback_serves_the_older_block_through_its_loader(world) -> None:
    engine, repo, deploy = world
    repo.commit("v2", {"dags/team/pipelines.yml": PIPELINES.replace("echo count", "echo count v2")})
    engine.sync()
    data = deploy / "current" / "team" / "pipelines__inventory_hourly.dagfactory"
    assert "echo count v2" in data.read_text()
    engine.rollback("inventory_hourly", to="1", reason="bad count")
    assert "echo count v2" not in data.read_text()
    assert "echo count\n" in data.read_text()
    diff = engine.diff("inventory_hourly", 1, 2)
    assert "echo count v2" in diff.text


def test_static_checks_give_codes_and_lines(tmp_path: Path) -> None:
    text = (
        block(
            "bad_one",
            'schedule: "every day"',
            "start_date: yesterday-ish",
            "schedule_interval: '@daily'",
            "tasks:",
            "  a:",
            f"    operator: {BASH}",
            "    dependencies: [b]",
            "  b:",
            "    bash_command: ls",
            "    dependencies: [a]",
            "  c:",
            f"    operator: {BASH}",
            "    dependencies: [nothing, c]",
            "    sla: 60",
        )
        + block("bad id!", "tasks:", f"  x: {{operator: {BASH}}}")
        + block("fine", "tasks:", f"  - {{task_id: x, operator: {BASH}}}")
    )
    found = issues_of(tmp_path, {"dags/f.yml": text})
    by_code = {(code, line): message for code, line, message in found}
    assert set(by_code) == {
        ("GD105", 2),
        ("GD107", 3),
        ("GD408", 4),
        ("GD204", 5),
        ("GD101", 9),
        ("GD202", 14),
        ("GD203", 14),
        ("GD408", 15),
        ("GD104", 16),
    }
    assert "Tasks form a cycle: a -> b -> a." in by_code[("GD204", 5)]


def test_what_is_not_a_dag_factory_file(tmp_path: Path) -> None:
    files = {
        "dags/v1.yml": "dag_id: v1\ntasks:\n  - {id: a, type: bash, config: {command: ls}}\n",
        "dags/settings.yml": "retention_days: 30\nregions: [eu]\n",
        "dags/defaults.yml": "default_args: {owner: me}\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    checked, issues = check_paths([str(tmp_path / "dags")])
    kinds = {Path(f.path).name: f.kind for f in checked}
    assert kinds == {"v1.yml": "v1", "settings.yml": "none", "defaults.yml": "defaults"}
    assert [i.code for i in issues] == ["GD007"]  # settings.yml: a warning, no DAG


def test_validate_reports_dag_factory_files_for_ci(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gitdags.cli import app

    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "p.yml").write_text(block("p", "tasks:", "  a: {bash_command: ls}"))
    runner = CliRunner()
    done = runner.invoke(app, ["validate", str(folder), "--format", "github"])
    assert done.exit_code == 1
    assert done.output.startswith(f"::error file={folder}/p.yml,line=3,title=GD101::")
    done = runner.invoke(app, ["validate", str(folder), "--format", "json"])
    report = json.loads(done.output)
    assert [i["code"] for i in report] == ["GD101"]


# -- real clients ------------------------------------------------------------------------------
CHECK = """\
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "errors": dict(bag.import_errors),
    "dags": {
        dag_id: {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}
        for dag_id, dag in bag.dags.items()
    },
    "callables": {
        f"{dag_id}.{t.task_id}": t.python_callable()
        for dag_id, dag in bag.dags.items() for t in dag.tasks if hasattr(t, "python_callable")
    },
}))
"""


def test_airflow_and_dag_factory_load_each_served_dag(world, tmp_path: Path) -> None:
    engine, repo, deploy = world
    with_callable = PIPELINES + block(
        "greeting",
        "tasks:",
        "  hello:",
        "    operator: airflow.providers.standard.operators.python.PythonOperator",
        "    python_callable_name: hello",
        "    python_callable_file: callables/hello.py",  # relative: against the served tree
    )
    repo.commit("greeting", {"dags/team/pipelines.yml": with_callable})
    engine.sync()
    broken = with_callable.replace("dependencies: [count]", "dependencies: [counting]")
    broken = broken.replace("echo transform", "echo transform v2")
    repo.commit("break inventory", {"dags/team/pipelines.yml": broken})
    engine.sync()

    found = airflow_loads(deploy, tmp_path, CHECK)
    assert found["errors"] == {}
    dags = found["dags"]
    assert isinstance(dags, dict)
    served = {d.dag_id: d.spec for d in engine.served()}
    assert set(dags) == set(served) == {"sales_daily", "inventory_hourly", "greeting"}
    for dag_id, spec in served.items():
        assert dags[dag_id] == {t["id"]: t["depends_on"] for t in spec["tasks"]}, dag_id
    assert found["callables"] == {"greeting.hello": "hello"}
    assert not (deploy / "current" / "load_yaml.py").exists()
    # the broken DAG is served at its last good block, the other one at its new block
    text = (deploy / "current" / "team" / "pipelines__sales_daily.dagfactory").read_text()
    assert "echo transform v2" in text
    text = (deploy / "current" / "team" / "pipelines__inventory_hourly.dagfactory").read_text()
    assert "[count]" in text or "- count" in text


def test_with_airflow_dag_factory_builds_each_dag_in_the_sandbox(
    repo: GitRepo, make_engine, tmp_path: Path
) -> None:
    from tests.test_airflow import airflow_python

    text = (
        PIPELINES
        + block("typo", "tasks:", "  a:", f"    operator: {BASH}", "    bash_commandd: ls")
        + block("gone", "tasks:", "  a:", "    operator: airflow.operators.bash_operator.Bash")
        + block("unset", "tasks:", "  a:", f"    operator: {BASH}", "    bash_command: $X")
        + "      x: 1\n"
    )
    repo.commit("dag-factory", {"dags/defaults.yml": DEFAULTS, "dags/team/pipelines.yml": text})
    engine = make_engine(
        df_source(repo, python="airflow", airflow_python=str(airflow_python()), parse_timeout=20.0)
    )
    (result,) = engine.sync()
    assert result.error is None, result.error
    assert statuses(engine) == {
        "sales_daily": "active",
        "inventory_hourly": "active",
        "typo": "invalid",
        "gone": "invalid",
        "unset": "active",  # an error where $X is not set: a warning
    }
    built = {i.location: i for i in result.issues if i.code == "GD402"}
    assert set(built) == {"typo", "gone", "unset"}
    assert "missing keyword argument 'bash_command'" in built["typo"].message
    assert "airflow.operators.bash_operator" in built["gone"].message
    assert built["unset"].severity == "warning"
    tree = engine.settings.mirrors_dir / "main.tree" / "dags" / "team"
    assert (tree / "pipelines.yml").exists()
    assert list(tree.glob(".gitdags-build-*")) == []  # the loaders built from are gone


def test_outputs_taken_are_dependencies_and_aliases_name_operators(tmp_path: Path) -> None:
    task = "airflow.sdk.task"
    text = block(
        "flow",
        "tasks:",
        "  numbers:",
        f"    decorator: {task}",
        "    python_callable: lib.numbers",
        "  double:",
        f"    decorator: {task}",
        "    python_callable: lib.double",
        "    expand: {number: +numbers}",
        "  total:",
        f"    decorator: {task}",
        "    python_callable: lib.total",
        "    values: +double",
        "  echo:",
        "    operator: Bash",  # an alias from defaults.yml
        "    bash_command: echo",
        "    expand: {env: total.output}",
        "  lost:",
        f"    decorator: {task}",
        "    python_callable: lib.x",
        "    value: +nowhere",
    )
    aliases = (
        "operator_aliases:\n  - operator_alias: Bash\n    operator_path: "
        f"{BASH}\nunknown_tool_setting: 1\n"
    )
    for rel, content in {"dags/defaults.yml": aliases, "dags/flow.yml": text}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content)
    checked, issues = check_paths([str(tmp_path / "dags")])
    (flow,) = [d for f in checked for d in f.dags]
    assert flow.spec is not None
    assert {t["id"]: t["depends_on"] for t in flow.spec["tasks"]} == {
        "numbers": [],
        "double": ["numbers"],
        "total": ["double"],
        "echo": ["total"],
        "lost": [],
    }
    assert {t["id"]: t["type"] for t in flow.spec["tasks"]}["echo"] == "BashOperator"
    # only the file's own keys are judged: a defaults file is shared with other tools
    assert [(i.code, i.line) for i in issues] == [("GD202", 18)]  # the task `lost`


def test_schedules_dag_factory_accepts(tmp_path: Path) -> None:
    """Asset objects and timetables given with `__type__` (dag-factory's own examples)."""
    asset = "{__type__: airflow.sdk.Asset, uri: 's3://b/k', name: k}"
    cron = "{__type__: airflow.timetables.trigger.CronTriggerTimetable, __args__: ['0 1 * * 3']}"
    text = (
        block(
            "assets", f"schedule: [{asset}, 's3://b/other']", "tasks:", f"  a: {{operator: {BASH}}}"
        )
        + block("timetable", f"schedule: {cron}", "tasks:", f"  a: {{operator: {BASH}}}")
        + block("off", "schedule: None", "tasks:", f"  a: {{operator: {BASH}}}")
        + block("bad", "schedule: [5]", "tasks:", f"  a: {{operator: {BASH}}}")
    )
    found = issues_of(tmp_path, {"dags/s.yml": text})
    assert [(code, line) for code, line, _m in found] == [("GD105", 14)]
