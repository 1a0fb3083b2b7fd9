"""Generated DAG repositories for the benchmarks: N files of 5-20 tasks with depends_on and
schedules, a few per folder, YAML, JSON and TOML mixed, served as a packed bare remote."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
TYPES = [
    ("bash", {"command": "python jobs/run.py --date {{ ds }}"}),
    ("sql", {"conn_id": "warehouse", "sql": "SELECT 1"}),
    ("python", {"callable": "pipelines.steps:run"}),
    ("empty", {}),
    ("http", {"url": "https://api.internal/hook", "method": "POST"}),
]
SCHEDULES = ["@daily", "@hourly", "0 2 * * *", "*/15 * * * *", "0 */6 * * *", "@weekly"]


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=GIT_ENV)
    if done.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed: {done.stderr}")
    return done.stdout.strip()


def commit_all(work: Path, bare: Path) -> None:
    """`work` made a git repository with one commit, cloned bare to `bare` (the remote)."""
    git(work.parent, "init", "--quiet", "--initial-branch=main", str(work))
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", "generated")
    git(work.parent, "clone", "--quiet", "--bare", str(work), str(bare))


def dag_spec(i: int, rnd: random.Random, revision: int = 0) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = []
    for t in range(rnd.randint(5, 20)):
        kind, config = TYPES[rnd.randrange(len(TYPES))]
        task: dict[str, Any] = {"id": f"t{t:02}_{kind}", "type": kind, "config": dict(config)}
        if t:
            task["depends_on"] = sorted({tasks[rnd.randrange(t)]["id"] for _ in range(2)})
        tasks.append(task)
    return {
        "dag_id": f"dag_{i:05}",
        "description": f"generated pipeline {i} revision {revision}",
        "schedule": SCHEDULES[i % len(SCHEDULES)],
        "start_date": "2024-01-01",
        "owner": f"team-{i % 17}",
        "tags": ["generated", f"group{i % 50}"],
        "default_args": {"retries": 2, "retry_delay": "5m"},
        "tasks": tasks,
    }


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def render(spec: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(spec, indent=2)
    if fmt == "yaml":
        return yaml.safe_dump(spec, sort_keys=False)
    lines = [f"{key} = {toml_value(value)}" for key, value in spec.items() if key != "tasks"]
    for task in spec["tasks"]:
        lines.append("\n[[tasks]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in task.items()]
    return "\n".join(lines) + "\n"


def path_of(i: int) -> str:
    fmt = ("yaml", "json", "toml")[i % 3]
    return f"dags/area{i // 400:02}/team{i // 8 % 50:02}/dag_{i:05}.{fmt}"


def make_repo(n: int) -> tuple[Path, Path]:
    """A working repository and its packed bare remote with N DAG files (cached per N)."""
    root = WORK / f"n{n}"
    work, bare = root / "work", root / "remote.git"
    stamp = root / "generated"
    if stamp.exists():
        shutil.rmtree(root / "state", ignore_errors=True)
        return work, bare
    shutil.rmtree(root, ignore_errors=True)
    work.mkdir(parents=True)
    git(work, "init", "--quiet", "--initial-branch=main")
    rnd = random.Random(n)
    for i in range(n):
        path = work / path_of(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(dag_spec(i, rnd), path.suffix[1:]))
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", f"{n} DAGs")
    git(root, "clone", "--bare", "--quiet", str(work), str(bare))
    git(bare, "gc", "--quiet")  # a served repository is packed, as on any git server
    stamp.write_text("ok\n")
    return work, bare


def commit_change(
    work: Path, bare: Path | None, n: int, round_: int, files: int = 10, deletes: int = 2
) -> None:
    """Change `files` files and delete `deletes`, commit, push to the bare remote."""
    round_ += int(git(work, "rev-list", "--count", "HEAD")) * 1000  # new content every run
    rnd = random.Random(round_ * 7919 + n)
    picks = rnd.sample(range(n), files + deletes)
    for i in picks[:files]:
        path = work / path_of(i)
        path.parent.mkdir(parents=True, exist_ok=True)  # (a file deleted by an earlier round
        path.write_text(render(dag_spec(i, rnd, revision=round_ + 1), path.suffix[1:]))  # returns)
    for i in picks[files:]:
        if (work / path_of(i)).exists():
            git(work, "rm", "--quiet", path_of(i))
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", f"round {round_}")
    if bare is not None:
        git(work, "push", "--quiet", str(bare), "main")


def airflow_file(spec: dict[str, Any]) -> str:
    """The same DAG written as an Airflow Python file, the way teams write them by hand."""
    lines = [
        "from datetime import datetime, timedelta",
        "",
        "from airflow.sdk import DAG",
        "from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator",
        "from airflow.providers.http.operators.http import HttpOperator",
        "from airflow.providers.standard.operators.bash import BashOperator",
        "from airflow.providers.standard.operators.empty import EmptyOperator",
        "from airflow.providers.standard.operators.python import PythonOperator",
        "",
        "",
        "def run(**context):",
        "    return None",
        "",
        "",
        "with DAG(",
        f"    dag_id={spec['dag_id']!r},",
        f"    description={spec['description']!r},",
        f"    schedule={spec['schedule']!r},",
        "    start_date=datetime(2024, 1, 1),",
        "    catchup=False,",
        f"    tags={spec['tags']!r},",
        f"    default_args={{'owner': {spec['owner']!r}, 'retries': 2,"
        " 'retry_delay': timedelta(minutes=5)},",
        ") as dag:",
    ]
    for task in spec["tasks"]:
        name, kind, config = task["id"], task["type"], task["config"]
        if kind == "bash":
            op = f"BashOperator(task_id={name!r}, bash_command={config['command']!r})"
        elif kind == "sql":
            op = f"SQLExecuteQueryOperator(task_id={name!r}, conn_id='warehouse', sql='SELECT 1')"
        elif kind == "python":
            op = f"PythonOperator(task_id={name!r}, python_callable=run)"
        elif kind == "http":
            op = f"HttpOperator(task_id={name!r}, endpoint={config['url']!r}, method='POST')"
        else:
            op = f"EmptyOperator(task_id={name!r})"
        lines.append(f"    {name} = {op}")
    for task in spec["tasks"]:
        for up in task.get("depends_on", []):
            lines.append(f"    {up} >> {task['id']}")
    return "\n".join(lines) + "\n"
