"""Airflow Python DAG files in a source: DAG ids from the syntax tree, helper modules, the last
good tree served in the deploy folder, a file served (and rolled back) as a whole."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gitdags.config import SourceConfig
from gitdags.engine import SyncEngine
from tests.conftest import GitRepo
from tests.test_sync import statuses

HELPER = 'def owner() -> str:\n    return "data-platform"\n'
LOOP = """\
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from common.helpers import owner

for region in ["eu", "us"]:
    with DAG(
        dag_id=f"sales_{region}",
        schedule="@daily",
        start_date=datetime(2024, 1, 1),
        default_args={"owner": owner()},
        tags=["sales"],
    ):
        extract = BashOperator(task_id="extract", bash_command="echo extract")
        load = BashOperator(task_id="load", bash_command="echo load")
        extract >> load
"""
TASKFLOW = """\
from airflow.sdk import dag, task


@dag(schedule=None)
def cleanup():
    @task
    def vacuum():
        return "ok"

    vacuum()


cleanup()
"""


def py_source(repo: GitRepo, **kw: object) -> SourceConfig:
    include = ("**/*.py", "**/*.yaml")
    return SourceConfig(name="main", url=str(repo.path), subdir="dags", include=include, **kw)  # type: ignore[arg-type]


@pytest.fixture
def world(repo: GitRepo, make_engine, tmp_path: Path) -> tuple[SyncEngine, GitRepo, Path]:
    repo.commit(
        "airflow dags",
        {
            "dags/common/__init__.py": "",
            "dags/common/helpers.py": HELPER,
            "dags/sales.py": LOOP,
            "dags/cleanup.py": TASKFLOW,
            "dags/scratch/notes.py": "# an airflow dag idea\nfrom airflow.sdk import DAG\n",
            "dags/.airflowignore": "scratch/\n",
        },
    )
    deploy = tmp_path / "deploy"
    engine = make_engine(py_source(repo), deploy_dir=deploy)
    (result,) = engine.sync()
    assert result.error is None, result.error
    return engine, repo, deploy


def current(deploy: Path) -> dict[str, str]:
    root = deploy / "current"
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json" and "__pycache__" not in p.parts
    }


def test_dags_of_python_files_and_the_served_tree(world) -> None:
    engine, _repo, deploy = world
    assert statuses(engine) == {"sales_eu": "active", "sales_us": "active", "cleanup": "active"}
    eu = engine.show("sales_eu")
    assert eu.state.path == "dags/sales.py" and eu.state.owner is None  # owner() runs in Airflow
    assert [t["id"] for t in eu.spec["tasks"]] == ["extract", "load"]  # type: ignore[index]
    assert eu.spec["tasks"][1]["depends_on"] == ["extract"]  # type: ignore[index]
    served = current(deploy)
    # the .py files at their paths under the subdir; ignored and helper files served too,
    # and the rest of the tree as at the served commit
    assert set(served) == {
        ".airflowignore",
        "common/__init__.py",
        "common/helpers.py",
        "sales.py",
        "cleanup.py",
        "scratch/notes.py",
    }
    assert served["sales.py"] == LOOP


def test_a_broken_file_is_held_back_and_a_removed_dag_retired(world) -> None:
    engine, repo, deploy = world
    broken = LOOP.replace("extract >> load", "extract >> load)")
    repo.commit("oops", {"dags/sales.py": broken})
    (result,) = engine.sync()
    assert sorted((c.dag_id, c.change) for c in result.changes) == [
        ("sales_eu", "invalid"),
        ("sales_us", "invalid"),
    ]
    assert [i.code for i in engine.history("sales_eu")[0].issues] == ["GD401"]
    assert current(deploy)["sales.py"] == LOOP  # the last good file stays served
    one_region = LOOP.replace('["eu", "us"]', '["eu"]')
    repo.commit("only eu", {"dags/sales.py": one_region})
    (result,) = engine.sync()
    assert sorted((c.dag_id, c.change) for c in result.changes) == [
        ("sales_eu", "changed"),
        ("sales_us", "deleted"),
    ]
    assert current(deploy)["sales.py"] == one_region


def test_a_broken_helper_keeps_its_last_good_blob(world) -> None:
    engine, repo, deploy = world
    repo.commit("broken helper", {"dags/common/helpers.py": "def owner(:\n"})
    (result,) = engine.sync()
    assert [(i.file, i.code) for i in result.issues] == [("dags/common/helpers.py", "GD401")]
    assert current(deploy)["common/helpers.py"] == HELPER
    assert engine.list_dags(status="invalid") == []  # a helper is never a DAG


def test_pause_of_a_python_dag_acts_on_its_file(world) -> None:
    engine, _repo, deploy = world
    result = engine.pause("sales_us", reason="partner outage")
    assert "sales_eu" in result.message
    assert engine.dag("sales_eu").paused and engine.dag("sales_us").paused
    assert "sales.py" not in current(deploy)
    engine.resume("sales_eu")
    assert not engine.dag("sales_us").paused and "sales.py" in current(deploy)


def test_rollback_of_a_python_dag_acts_on_its_file(world) -> None:
    engine, repo, deploy = world
    repo.commit("v2", {"dags/sales.py": LOOP.replace("echo load", "echo load v2")})
    engine.sync()
    result = engine.rollback("sales_eu", reason="v2 loads twice")
    assert "held with it" in result.message and "sales_us" in result.message
    assert {(c.dag_id, c.version) for c in result.changes} == {("sales_eu", 1), ("sales_us", 1)}
    assert engine.dag("sales_us").status == "pinned"
    assert current(deploy)["sales.py"] == LOOP
    diff = engine.diff("sales_eu", 1, 2).text  # a Python file's diff is its source's
    assert '-        load = BashOperator(task_id="load", bash_command="echo load")' in diff


DAGBAG = (
    "import json, os, sys\n"
    "sys.path.insert(0, sys.argv[1])  # as Airflow's dag processor does for a bundle\n"
    "from airflow.dag_processing.dagbag import DagBag\n"
    "bag = DagBag(dag_folder=sys.argv[1])\n"
    "print(json.dumps({'dags': sorted(bag.dags), 'errors': dict(bag.import_errors)}))\n"
)


def airflow_loads(deploy: Path, tmp_path: Path, script: str = DAGBAG) -> dict[str, object]:
    """What `script` (by default: Airflow 3's DagBag, its DAG ids and import errors) prints,
    run by the Airflow environment on the deploy folder's `current/`."""
    from tests.test_airflow import airflow_python

    home = tmp_path / "airflow-home"
    home.mkdir(exist_ok=True)
    done = subprocess.run(
        [str(airflow_python()), "-c", script, str(deploy / "current")],
        capture_output=True,
        text=True,
        timeout=300,
        env={"AIRFLOW_HOME": str(home), "PATH": "/usr/bin:/bin", "DO_NOT_TRACK": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_airflow_reads_the_deploy_folder_without_import_errors(world, tmp_path: Path) -> None:
    engine, repo, deploy = world
    repo.commit("oops", {"dags/sales.py": "from airflow.sdk import DAG\nDAG(dag_id='x'\n"})
    engine.sync()
    found = airflow_loads(deploy, tmp_path)
    assert found == {"dags": ["cleanup", "sales_eu", "sales_us"], "errors": {}}


# -- the dynamic tier: real Airflow, sandboxed -------------------------------------------------
HOSTILE = {
    "loop.py": "from airflow.sdk import DAG\nwhile True:\n    pass\n",
    "alloc.py": "from airflow.sdk import DAG\nx = bytearray(6 * 1024**3)\n",
    "exit.py": "import sys\nfrom airflow.sdk import DAG\nsys.exit(3)\n",
    "hard_exit.py": "import os\nfrom airflow.sdk import DAG\nos._exit(9)\n",
    "segfault.py": "import ctypes\nfrom airflow.sdk import DAG\nctypes.string_at(0)\n",
    "chatty.py": (
        "from airflow.sdk import DAG\nprint('x' * 100_000_000)\n"
        "with DAG(dag_id='chatty'):\n    pass\n"
    ),
    "secrets.py": (
        "import os\nfrom airflow.sdk import DAG\n"
        "leaked = sorted(k for k in os.environ if k.startswith(('GITDAGS_', 'AWS_')))\n"
        "with DAG(dag_id='env_' + ('_'.join(leaked) or 'clean')):\n    pass\n"
    ),
    "outside.py": (
        "import pathlib\nfrom airflow.sdk import DAG\n"
        "pathlib.Path(__file__).with_name('OUTSIDE').write_text('x')\n"
        "dag = DAG(dag_id='wrote_outside')\n"
    ),
    "network.py": (
        "import socket, os\nfrom airflow.sdk import DAG\n"
        "socket.create_connection(('127.0.0.1', int(os.environ.get('PORT', '9'))), timeout=2)\n"
        "dag = DAG(dag_id='reached_network')\n"
    ),
    "forkbomb.py": (
        "import os\nfrom airflow.sdk import DAG\nfor _ in range(10_000):\n    os.fork()\n"
    ),
}


def test_the_dynamic_tier_parses_with_airflow_and_contains_hostile_files(
    repo: GitRepo, make_engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from tests.test_airflow import airflow_python

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    monkeypatch.setenv("GITDAGS_SECRET_TOKEN", "s3cret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
    files = {f"dags/bad/{name}": text for name, text in HOSTILE.items()}
    repo.commit(
        "good and hostile files",
        {
            "dags/common/__init__.py": "",
            "dags/common/helpers.py": HELPER,
            "dags/sales.py": LOOP,
            "dags/cleanup.py": TASKFLOW,
            **files,
        },
    )
    deploy = tmp_path / "deploy"
    config = py_source(
        repo, python="airflow", airflow_python=str(airflow_python()), parse_timeout=5.0
    )
    engine = make_engine(config, deploy_dir=deploy, parsing_processes=2)
    try:
        (result,) = engine.sync()
        assert result.error is None, result.error
        found = statuses(engine)
        chatty = found.pop("chatty", None)  # 100 MB on stdout: Airflow logs what a file prints
        assert found == {
            "sales_eu": "active",
            "sales_us": "active",
            "cleanup": "active",
            "env_clean": "active",  # no GITDAGS_* or AWS_* variable reached the file
        }
        cleanup = engine.show("cleanup").spec
        assert cleanup is not None and cleanup["parsed_by"] == "airflow"
        assert cleanup["tasks"][0]["id"] == "vacuum"  # a taskflow task: only Airflow sees it
        issues = {i.file.rsplit("/", 1)[-1]: i for i in result.issues if i.severity == "error"}
        assert issues["loop.py"].code == "GD403"
        for name in ("alloc.py", "exit.py", "hard_exit.py", "segfault.py", "outside.py"):
            assert issues[name].code == "GD402", (name, issues.get(name))
        assert issues["network.py"].code == "GD402"  # no network in the sandbox
        assert issues["forkbomb.py"].code in ("GD402", "GD403")
        assert chatty == "active" or issues["chatty.py"].code in ("GD402", "GD403")
        assert not (repo.path / "dags" / "bad" / "OUTSIDE").exists()
        loaded = airflow_loads(deploy, tmp_path)  # Airflow never sees what gitdags refused
        active = {dag for dag, status in statuses(engine).items() if status == "active"}
        assert loaded == {"dags": sorted(active), "errors": {}}
        # a helper change that breaks its importers is held back; the DAGs show the error
        repo.commit("helper breaks", {"dags/common/helpers.py": "def owner():\n    return 1/0\n"})
        (result,) = engine.sync()
        assert {c.dag_id: c.change for c in result.changes} == {
            "sales_eu": "invalid",
            "sales_us": "invalid",
        }
        assert current(deploy)["common/helpers.py"] == HELPER
        assert "ZeroDivisionError" in engine.history("sales_eu")[0].issues[0].message
        assert "dags/common/helpers.py" in engine.history("sales_eu")[0].issues[0].message
        assert airflow_loads(deploy, tmp_path)["errors"] == {}
        # the fix changes what Airflow makes of the importers: new versions of their DAGs
        fixed = 'def owner() -> str:\n    return "analytics"\n'
        repo.commit("helper fixed", {"dags/common/helpers.py": fixed})
        (result,) = engine.sync()
        assert {c.dag_id: c.change for c in result.changes} == {
            "sales_eu": "changed",
            "sales_us": "changed",
        }
        assert engine.dag("sales_eu").owner == "analytics"
        assert current(deploy)["common/helpers.py"] == fixed
        # a package installed where Airflow runs: every Airflow file is parsed again, once
        purelib = subprocess.run(
            [
                str(airflow_python()),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            capture_output=True,
            text=True,
        ).stdout.strip()
        marker = Path(purelib) / "gitdags_test_marker-1.0.dist-info"
        marker.mkdir()
        try:
            (result,) = engine.sync()
        finally:
            marker.rmdir()
        assert result.note.startswith("the Airflow environment changed")
        assert engine.syncs(limit=1)[0].note == result.note
        # one commit changes a helper (held back: it breaks cleanup) and a DAG file that needs
        # the new helper: that file is checked with the helper that stays served, and fails
        cleanup2 = TASKFLOW + "from common.helpers import owner\n\nOWNER = owner()\n"
        repo.commit("cleanup names its owner", {"dags/cleanup.py": cleanup2})
        engine.sync()
        helper3 = fixed + 'def team() -> str:\n    return "sales"\n'
        helper3 = helper3.replace('return "analytics"', 'raise RuntimeError("owner moved")')
        sales3 = LOOP.replace("import owner", "import team").replace("owner()", "team()")
        repo.commit("teams", {"dags/common/helpers.py": helper3, "dags/sales.py": sales3})
        (result,) = engine.sync()
        changes = {c.dag_id: c.change for c in result.changes}
        assert changes == {"cleanup": "invalid", "sales_eu": "invalid", "sales_us": "invalid"}
        assert "team" in engine.history("sales_eu")[0].issues[0].message  # not in the old one
        assert current(deploy)["common/helpers.py"] == fixed
        assert current(deploy)["cleanup.py"] == cleanup2
        assert "import team" not in current(deploy)["sales.py"]
        assert airflow_loads(deploy, tmp_path)["errors"] == {}
    finally:
        listener.close()


def test_a_source_removed_from_the_config_does_not_stop_publishing(
    world, make_engine, tmp_path: Path
) -> None:
    _engine, _repo, deploy = world
    other = GitRepo(tmp_path / "other")
    other.commit("one", {"x.yaml": "dag_id: x\ntasks: [{id: a, type: empty}]\n"})
    later = make_engine(SourceConfig(name="other", url=str(other.path)), deploy_dir=deploy)
    (result,) = later.sync()  # "main" is gone from this config: its files are still read
    assert result.error is None and "x.json" in current(deploy)
