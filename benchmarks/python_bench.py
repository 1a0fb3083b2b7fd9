"""Airflow Python DAG files: gitdags' static and Airflow tiers against Airflow's own DagBag.

N generated Airflow `.py` files (5-15 tasks, standard provider; one in ten imports the shared
helper module `common/helpers.py`), in a git repository with a bare remote. One run measures:
the static tier per file (a fresh process, median); the first sync with the static tier and
with the Airflow tier (a warm worker, forked child per file); an incremental commit of 10 DAG
files and a commit changing the helper (its importers are parsed again), both end to end with
the fetch; the parse worker's memory; and, in the same run, the baselines: Airflow's DagBag
over the whole folder (what its DAG processor redoes on every refresh) and a fresh-process
DagBag per changed file.

    python benchmarks/python_bench.py [--n 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from airflow_bench import airflow_python  # noqa: E402
from repo import WORK, commit_all, git  # noqa: E402

from gitdags.config import Settings, SourceConfig  # noqa: E402
from gitdags.engine import build_engine  # noqa: E402
from gitdags.orchestrators.airflow.parsing import ParseWorker  # noqa: E402

HELPER = 'def owner() -> str:\n    return "team-{rev}"\n'
OPERATORS = ["BashOperator", "EmptyOperator", "PythonOperator"]


def dag_file(i: int, rnd: random.Random, revision: int = 0) -> str:
    uses_helper = i % 10 == 0
    lines = [
        "from datetime import datetime",
        "",
        "from airflow.providers.standard.operators.bash import BashOperator",
        "from airflow.providers.standard.operators.empty import EmptyOperator",
        "from airflow.providers.standard.operators.python import PythonOperator",
        "from airflow.sdk import DAG",
    ]
    if uses_helper:
        lines.append("from common.helpers import owner")
    lines += [
        "",
        "",
        "def run():",
        f"    return {revision}",
        "",
        "",
        "with DAG(",
        f"    dag_id='py_{i:05}',",
        "    schedule='@daily',",
        "    start_date=datetime(2024, 1, 1),",
        "    catchup=False,",
        f"    tags=['generated', 'rev{revision}'],",
        f"    default_args={{'owner': {'owner()' if uses_helper else repr(f'team-{i % 17}')}}},",
        "):",
    ]
    names = []
    for t in range(rnd.randint(5, 15)):
        kind = OPERATORS[rnd.randrange(len(OPERATORS))]
        name = f"t{t:02}"
        if kind == "BashOperator":
            op = f"BashOperator(task_id={name!r}, bash_command='echo {i} {t}')"
        elif kind == "PythonOperator":
            op = f"PythonOperator(task_id={name!r}, python_callable=run)"
        else:
            op = f"EmptyOperator(task_id={name!r})"
        lines.append(f"    {name} = {op}")
        if names:
            lines.append(f"    {names[rnd.randrange(len(names))]} >> {name}")
        names.append(name)
    return "\n".join(lines) + "\n"


def make_repo(n: int) -> tuple[Path, Path]:
    base = WORK / f"py{n}"
    shutil.rmtree(base, ignore_errors=True)
    work, bare = base / "work", base / "remote.git"
    (work / "dags" / "common").mkdir(parents=True)
    rnd = random.Random(n)
    (work / "dags" / "common" / "__init__.py").write_text("")
    (work / "dags" / "common" / "helpers.py").write_text(HELPER.format(rev=0))
    for i in range(n):
        folder = work / "dags" / f"area{i % 20:02}"
        folder.mkdir(exist_ok=True)
        (folder / f"py_{i:05}.py").write_text(dag_file(i, rnd))
    commit_all(work, bare)
    return work, bare


def commit(work: Path, bare: Path, files: dict[str, str], message: str) -> None:
    for rel, text in files.items():
        (work / rel).write_text(text)
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", message)
    git(work, "push", "--quiet", str(bare), "main")


STATIC_TIMER = """
import json, statistics, sys, time
from gitdags import kinds
paths = json.loads(sys.stdin.read())
contents = [(p, open(p, "rb").read()) for p in paths]
kinds.read(*contents[0])
samples = []
for _ in range(3):
    for path, content in contents:
        start = time.perf_counter()
        kinds.read(path, content)
        samples.append(time.perf_counter() - start)
print(json.dumps({"median_ms": round(statistics.median(samples) * 1000, 4)}))
"""

DAGBAG = """
import json, os, sys, time, contextlib, io
sys.path.insert(0, sys.argv[1])
from airflow.dag_processing.dagbag import DagBag
start = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    bag = DagBag(dag_folder=sys.argv[2] if len(sys.argv) > 2 else sys.argv[1])
print(json.dumps({"ms": (time.perf_counter() - start) * 1000, "dags": len(bag.dags),
                  "errors": len(bag.import_errors)}))
"""


def dagbag(python: Path, folder: Path, target: Path | None = None) -> tuple[float, dict[str, Any]]:
    """Wall time of a fresh Airflow process loading `target` (default: the whole folder)."""
    home = WORK / "airflow_home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "AIRFLOW_HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    args = [str(python), "-c", DAGBAG, str(folder)] + ([str(target)] if target else [])
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=1800)
    wall = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return wall, json.loads(done.stdout.strip().splitlines()[-1])


def daemon_latency(work: Path, bare: Path, config: SourceConfig, n: int) -> dict[str, Any]:
    """Push a one-file change of an Airflow file to the bare repository a daemon follows (its
    ref watch), and time until the daemon serves the commit; python = "airflow"."""
    import signal
    import sqlite3

    state = WORK / f"py{n}" / "daemon"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    toml = state / "config.toml"
    toml.write_text(
        f'[state]\ndatabase = "{state / "g.db"}"\n[daemon]\nlisten = ""\n'
        f'[[sources]]\nname = "py"\nurl = "{bare}"\nsubdir = "dags"\ninclude = ["**/*.py"]\n'
        f'interval = "1h"\npython = "airflow"\nairflow_python = "{config.airflow_python}"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitdags", "--config", str(toml), "daemon"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def served() -> str | None:
        try:
            db = sqlite3.connect(f"file:{state / 'g.db'}?mode=ro", uri=True)
            row = db.execute("SELECT served_commit FROM sources").fetchone()
            db.close()
            return row[0] if row else None
        except sqlite3.Error:
            return None

    def wait(head: str, limit: float) -> None:
        deadline = time.monotonic() + limit
        while served() != head:
            if time.monotonic() > deadline:
                raise RuntimeError("the daemon did not serve the commit")
            time.sleep(0.005)

    samples = []
    try:
        wait(git(bare, "rev-parse", "main"), 600)  # the first sync: every file parsed
        for round_ in range(10):
            i = 1 + round_ * 37
            rel = f"dags/area{i % 20:02}/py_{i:05}.py"
            commit(work, bare, {rel: dag_file(i, random.Random(i), 100 + round_)}, f"one {i}")
            pushed = time.perf_counter()
            wait(git(bare, "rev-parse", "main"), 60)
            samples.append((time.perf_counter() - pushed) * 1000)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return {"median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1)}


def timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def worker_peak_kb() -> int:
    """The peak resident size of the parse worker (inside the sandbox: found by its command)."""
    peaks = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            cmdline = (status.parent / "cmdline").read_bytes()
            if b"parse_worker.py" in cmdline and b"bwrap" not in cmdline:
                text = status.read_text()
                peaks.append(
                    int(next(ln.split()[1] for ln in text.splitlines() if ln.startswith("VmHWM")))
                )
        except (OSError, StopIteration):
            continue
    return max(peaks, default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--no-install", action="store_true", help="Skip when Airflow is absent.")
    args = parser.parse_args()
    n = args.n
    python = airflow_python(install=not args.no_install)
    print(f"== {n:,} Airflow Python DAG files ==", flush=True)
    work, bare = make_repo(n)
    dags = work / "dags"
    files = sorted(str(p) for p in dags.rglob("py_*.py"))
    done = subprocess.run(
        [sys.executable, "-c", STATIC_TIMER],
        input=json.dumps(files[:300]),
        capture_output=True,
        text=True,
        cwd=HERE.parent,
    )
    static_file = json.loads(done.stdout)["median_ms"]
    include = ("**/*.py",)
    out: dict[str, Any] = {"n": n, "static_per_file_median_ms": static_file}

    state = WORK / f"py{n}" / "state-static"
    static = SourceConfig(name="py", url=f"file://{bare}", subdir="dags", include=include)
    engine = build_engine(Settings(database=state / "gitdags.db", listen="", sources=(static,)))
    out["first_sync_static_ms"] = round(timed(engine.sync), 1)
    engine.close()
    if python is None:
        print(json.dumps(out, indent=2))
        return

    dynamic = SourceConfig(
        name="py",
        url=f"file://{bare}",
        subdir="dags",
        include=include,
        python="airflow",
        airflow_python=str(python),
    )
    state = WORK / f"py{n}" / "state-airflow"
    engine = build_engine(Settings(database=state / "gitdags.db", listen="", sources=(dynamic,)))
    worker = engine.parse_worker(dynamic)
    out["worker_start_ms"] = round(timed(lambda: worker.missing(["json"])), 1)
    out["sandbox"] = dynamic.sandbox
    bare_worker = ParseWorker(
        str(python), WORK / f"py{n}" / "scratch-none", sandbox="none", readable=(dags,)
    )
    out["worker_start_unsandboxed_ms"] = round(timed(lambda: bare_worker.missing(["json"])), 1)
    out["sandbox_start_cost_ms"] = round(
        out["worker_start_ms"] - out["worker_start_unsandboxed_ms"], 1
    )
    # the same 100 files, parsed by the sandboxed worker and by one without bubblewrap
    sample = [str(Path(f).relative_to(dags)) for f in files[:100]]
    boxed = ParseWorker(str(python), WORK / f"py{n}" / "scratch-boxed", readable=(dags,))
    boxed.missing(["json"])
    per_file = {}
    for name, w in (("bwrap", boxed), ("none", bare_worker)):
        per_file[name] = round(
            timed(lambda w=w: w.parse(dags, sample, timeout=30, memory=2 << 30)) / 100, 1
        )
        w.close()
    out["parse_per_file_ms_sandboxed_vs_not"] = per_file
    first = timed(engine.sync)
    (result,) = engine.syncs(limit=1)
    out["first_sync_airflow_ms"] = round(first, 1)
    out["airflow_tier_per_file_ms"] = round(first / n, 2)
    out["first_sync_airflow_invalid"] = result.invalid

    rnd = random.Random(7)
    incremental = []
    for round_ in range(3):
        picks = rnd.sample(range(1, n), 10)
        changed = {
            f"dags/area{i % 20:02}/py_{i:05}.py": dag_file(i, random.Random(i), round_ + 1)
            for i in picks
        }
        commit(work, bare, changed, f"ten files, round {round_}")
        incremental.append(timed(engine.sync))
    out["incremental_10_files_ms"] = {
        "median": round(statistics.median(incremental), 1),
        "min": round(min(incremental), 1),
    }
    commit(work, bare, {"dags/common/helpers.py": HELPER.format(rev=1)}, "helper")
    out["helper_change_ms"] = round(timed(engine.sync), 1)
    (result,) = engine.syncs(limit=1)
    out["helper_change_versions"] = result.changed
    peak = worker_peak_kb()
    if peak:
        out["worker_peak_rss_mb"] = round(peak / 1024, 1)
    out["child_peak_rss_mb"] = round(worker.children_peak_kb / 1024, 1)
    engine.close()
    out["commit_to_served"] = daemon_latency(work, bare, dynamic, n)

    checkout = WORK / f"py{n}" / "checkout"
    shutil.rmtree(checkout, ignore_errors=True)
    git(checkout.parent, "clone", "--quiet", str(bare), str(checkout))
    wall, full = dagbag(python, checkout / "dags")
    out["baseline_dagbag_full_folder_ms"] = round(full["ms"], 1)
    out["baseline_dagbag_full_folder_wall_ms"] = round(wall, 1)
    out["baseline_dagbag_dags"] = full["dags"]
    per_file = [
        dagbag(python, checkout / "dags", checkout / "dags" / "area01" / f"py_{i:05}.py")[0]
        for i in (1, 21, 41)
    ]
    out["baseline_fresh_process_per_file_ms"] = round(statistics.median(per_file), 1)
    inc = out["incremental_10_files_ms"]["median"]
    out["ratios"] = {
        "static_per_file_ms (<= 1)": static_file,
        "airflow_tier_per_file_ms (<= 25)": out["airflow_tier_per_file_ms"],
        "incremental_10_ms (<= 500)": inc,
        "incremental_vs_full_dagbag (<= 0.1)": round(inc / full["ms"], 3),
        "commit_to_served_median_ms (<= 1000)": out["commit_to_served"]["median_ms"],
    }
    print(json.dumps(out, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "python.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
