"""Writes `gitdags.sqlite` and `expected.json` with the release before packed versions
(schema 4, commit d27ab28), for tests/test_packing.py:

    git archive d27ab28 gitdags | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python tests/data/schema4/make_fixture.py

A repository with three DAGs over five commits (a change, an invalid version, a Python file, a
deletion), a rollback and a pin; `expected.json` holds what that release showed of them
(history, show, diff, the served set), which the migrated database must show the same.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from gitdags.config import Settings, SourceConfig
from gitdags.engine import build_engine

HERE = Path(__file__).resolve().parent
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Ann",
    "GIT_AUTHOR_EMAIL": "ann@example.com",
    "GIT_COMMITTER_NAME": "Ann",
    "GIT_COMMITTER_EMAIL": "ann@example.com",
    "GIT_AUTHOR_DATE": "2026-01-02T03:04:05Z",
    "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z",
}


def yaml_dag(dag_id: str, *tasks: str, schedule: str = "@daily") -> str:
    lines = [f"dag_id: {dag_id}", f'schedule: "{schedule}"', "owner: data-team", "tasks:"]
    for i, name in enumerate(tasks):
        lines += [f"  - id: {name}", "    type: bash", f"    config: {{command: echo {name}}}"]
        if i:
            lines.append(f"    depends_on: [{tasks[i - 1]}]")
    return "\n".join(lines) + "\n"


PY = """from datetime import datetime

from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id="py_dag", schedule="@hourly", start_date=datetime(2024, 1, 1)):
    EmptyOperator(task_id="only")
"""

COMMITS: list[dict[str, str | None]] = [
    {"dags/etl.yaml": yaml_dag("etl", "extract", "load"), "dags/ml.yaml": yaml_dag("ml", "a")},
    {"dags/etl.yaml": yaml_dag("etl", "extract", "clean", "load"), "dags/py_dag.py": PY},
    {"dags/etl.yaml": "dag_id: etl\ntasks: [\n"},  # invalid: the served version stays
    {"dags/etl.yaml": yaml_dag("etl", "extract", "clean", "load", schedule="@hourly")},
    {"dags/ml.yaml": None},  # deleted: its history is kept
]


def main() -> None:
    root = Path(tempfile.mkdtemp())
    repo = root / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=ENV)
    settings = Settings(
        database=root / "state" / "gitdags.db",
        listen="",
        sources=(SourceConfig(name="main", url=str(repo), include=("**/*.py", "**/*.yaml")),),
    )
    engine = build_engine(settings)
    for number, files in enumerate(COMMITS, start=1):
        for rel, text in files.items():
            path = repo / rel
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=ENV)
        subprocess.run(["git", "commit", "-qm", f"commit {number}"], cwd=repo, check=True, env=ENV)
        engine.sync()
    engine.rollback("etl", "1", reason="v2 breaks the warehouse", actor="ops")
    engine.pin("py_dag", reason="freeze", actor="ops")
    dag_ids = ["etl", "ml", "py_dag"]
    expected = {
        "history": {d: [v.to_dict(full=True) for v in engine.history(d)] for d in dag_ids},
        "show": {d: engine.show(d).to_dict() for d in dag_ids},
        "diff": engine.actions.diff("etl", 1, 4).to_dict(),
        "served": [s.to_dict() for s in engine.served()],
        "list": [s.to_dict() for s in engine.list_dags()],
    }
    engine.close()
    db = sqlite3.connect(settings.database)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("PRAGMA journal_mode = DELETE")
    db.execute("VACUUM")
    db.close()
    shutil.copy(settings.database, HERE / "gitdags.sqlite")
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
