"""Has my commit landed? Commit to `landed` through the daemon and a local Airflow 3.

A repository of N Airflow DAG files, served by `gitdags daemon` (the ref watch syncs each
commit) into a deploy folder that a real Airflow api-server and dag-processor read (127.0.0.1,
SQLite, the settings of tests/airflow_server.py: DAG processor refresh 2 s). Each of K rounds
commits a change to one DAG file and times, from the commit: when gitdags serves it (the
daemon's part), when Airflow parsed it (its `last_parsed_time`: Airflow's part) and when
gitdags recorded it `landed` (after the poll that saw it). The requests gitdags sends to
Airflow's API are counted from the api-server's own access log: per idle poll, and per change.

    python benchmarks/landing_bench.py [--n 20] [--rounds 10]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from airflow_bench import airflow_python  # noqa: E402

from tests.airflow_server import PASSWORD, USER, AirflowServer  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def dag(dag_id: str, tasks: int) -> str:
    body = "".join(f'    EmptyOperator(task_id="t{i}")\n' for i in range(tasks))
    return (
        "from airflow.sdk import DAG\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n\n"
        f'with DAG("{dag_id}", schedule=None):\n{body}'
    )


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b"}
    env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def stamp(text: str | None) -> float:
    return datetime.fromisoformat(text).timestamp() if text else 0.0


def api_requests(log: Path) -> int:
    text = log.read_text(errors="replace") if log.exists() else ""
    return sum(
        1
        for line in text.splitlines()
        if "request finished" in line and ("path=/api/v2" in line or "path=/auth/token" in line)
    )


def served_at_least(db: sqlite3.Connection, dag_id: str, version: int) -> bool:
    row = db.execute("SELECT served_version FROM dags WHERE dag_id = ?", (dag_id,)).fetchone()
    return bool(row and row[0] and row[0] >= version)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    python = airflow_python(install=True)
    assert python is not None
    root = Path(tempfile.mkdtemp(prefix="gitdags-landing-"))
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "--initial-branch=main")
    for i in range(args.n):
        (repo / f"d{i:03d}.py").write_text(dag(f"d{i:03d}", 3))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")
    bundles = [
        {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(root / "deploy" / "current"), "refresh_interval": 2},
        }
    ]
    airflow = AirflowServer(python, root / "airflow-home", bundles)
    port = free_port()
    config = root / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "state.db"\n[daemon]\nlisten = "127.0.0.1:{port}"\n'
        f'[publish]\ndeploy_dir = "deploy"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo}"\ninclude = ["**/*.py"]\n'
        f'[[consumers]]\nname = "airflow"\napi_url = "{airflow.url}"\nusername = "{USER}"\n'
        'interval = "10s"\n'
    )
    env = {**os.environ, "GITDAGS_CONSUMERS_AIRFLOW_PASSWORD": PASSWORD}
    sync = [sys.executable, "-m", "gitdags", "--config", str(config)]
    subprocess.run([*sync, "sync"], env=env, check=True, capture_output=True)
    started = time.monotonic()
    airflow.start()
    print(f"Airflow api-server + dag-processor up in {time.monotonic() - started:.1f} s")
    daemon = subprocess.Popen([*sync, "daemon"], env=env, stderr=subprocess.DEVNULL)
    db = sqlite3.connect(root / "state.db", timeout=30)
    log = airflow.home / "api-server.log"

    def landed(dag_id: str, version: int) -> tuple[str, str] | None:
        row = db.execute(
            "SELECT parsed_at, checked_at FROM consumer_dags WHERE dag_id = ? AND version = ? "
            "AND state = 'landed'",
            (dag_id, version),
        ).fetchone()
        return row

    def until(check, timeout: float = 120.0):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.02)
        raise SystemExit(f"not within {timeout} s: {check}")

    try:
        until(
            lambda: (
                db.execute("SELECT count(*) FROM consumer_dags WHERE state = 'landed'").fetchone()[
                    0
                ]
                == args.n
            )
        )
        print(f"{args.n} DAGs landed in Airflow {time.monotonic() - started:.1f} s after its start")
        before = api_requests(log)
        time.sleep(10.5)  # one idle interval
        idle = api_requests(log) - before
        rows = []
        for r in range(args.rounds):
            dag_id = f"d{r % args.n:03d}"
            (repo / f"{dag_id}.py").write_text(dag(dag_id, 4 + r))
            before = api_requests(log)
            committed = time.time()
            git(repo, "commit", "-qam", f"round {r}")
            version = r // args.n + 2
            until(functools.partial(served_at_least, db, dag_id, version))
            served = time.time()
            found = until(functools.partial(landed, dag_id, version))
            recorded = time.time()
            time.sleep(0.5)
            rows.append(
                {
                    "served_ms": (served - committed) * 1000,
                    "parsed_ms": (stamp(found[0]) - served) * 1000,
                    "recorded_ms": (recorded - committed) * 1000,
                    "requests": api_requests(log) - before,
                }
            )

        def p50(key: str) -> float:
            return statistics.median(row[key] for row in rows)

        result = {
            "dags": args.n,
            "rounds": args.rounds,
            "commit_to_served_p50_ms": round(p50("served_ms"), 1),
            "served_to_parsed_by_airflow_p50_ms": round(p50("parsed_ms"), 1),
            "commit_to_landed_recorded_p50_ms": round(p50("recorded_ms"), 1),
            "requests_per_idle_interval": idle,
            "requests_per_change_p50": p50("requests"),
            "requests_per_change_max": max(row["requests"] for row in rows),
        }
        print(json.dumps(result, indent=2))
        out = HERE / "results" / "landing.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps({"rows": rows, **result}, indent=2) + "\n")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        airflow.stop()


if __name__ == "__main__":
    main()
