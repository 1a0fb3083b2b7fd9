"""The Airflow factory, checked by Apache Airflow 3 itself in its own virtual environment.

The environment is made once (about a minute and a half) in `.venv-airflow` at the top of the
repository, or where GITDAGS_AIRFLOW_VENV points, and reused by later runs.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from gitdags.engine import build_engine
from tests.conftest import GitRepo, settings_for
from tests.test_sync import source
from tests.venvs import venv_python

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    "apache-airflow>=3,<4",
    "apache-airflow-providers-http",
    "apache-airflow-providers-cncf-kubernetes",
    "apache-airflow-providers-amazon",
    "dag-factory>=1.0,<2",  # the dag-factory kind: served DAGs are built by it
    "apache-airflow-providers-git",  # GitDagBundle, reading the served branches
]


def airflow_python() -> Path:
    return venv_python(
        "Apache Airflow", "GITDAGS_AIRFLOW_VENV", ".venv-airflow", PACKAGES, with_gitdags=True
    )


def test_served_sample_dags_load_in_airflow(tmp_path: Path) -> None:
    python = airflow_python()
    repo = GitRepo(tmp_path / "repo")
    repo.copy_sample()
    repo.commit("sample")
    engine = build_engine(settings_for(tmp_path, source(repo, subdir="dags")))
    engine.sync()
    served = {  # the format v1 DAGs, which the Airflow factory builds
        d.dag_id: d.spec for d in engine.served() if (d.spec or {}).get("format") is None
    }
    engine.close()
    assert len(served) == 10

    home = tmp_path / "airflow-home"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }
    airflow = python.parent / "airflow"
    migrate = subprocess.run(
        [str(airflow), "db", "migrate"], capture_output=True, text=True, env=env, timeout=600
    )
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    done = subprocess.run(
        [
            str(python),
            str(Path(__file__).parent / "airflow" / "check_dagbag.py"),
            str(engine.settings.database),
            str(home / "dags"),
            "warehouse_vacuum",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert report["import_errors"] == {}
    assert set(report["dags"]) == set(served)
    for dag_id, spec in served.items():
        dag = report["dags"][dag_id]
        assert dag["schedule"] == spec["schedule"]
        expected = {t["id"]: sorted(t["depends_on"]) for t in spec["tasks"]}
        for upstream in spec["depends_on_dags"]:
            expected[f"wait_for_{upstream}"] = []
            for t in spec["tasks"]:
                if not t["depends_on"]:
                    expected[t["id"]] = [f"wait_for_{upstream}"]
        assert dag["tasks"] == expected, dag_id
    operators = report["dags"]["daily_sales_etl"]["operators"]
    assert operators["wait_for_sales_files"] == "S3KeySensor"
    assert operators["extract"] == "BashOperator"
    assert operators["quality_checks"] == "PythonOperator"
    assert operators["notify"] == "HttpOperator"
    assert report["test_run"]["state"] == "success"
    assert set(report["test_run"]["tasks"].values()) == {"success"}
