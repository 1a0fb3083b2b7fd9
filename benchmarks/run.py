"""gitdags benchmarks: incremental sync against a full rescan, measured side by side.

    python benchmarks/run.py            # N = 1,000 and 10,000
    python benchmarks/run.py --quick    # N = 1,000 only, fewer repetitions (< 1 minute)

Generates a git repository of N DAG files (5-20 tasks, depends_on, schedules, a few per
folder; YAML, JSON and TOML mixed), serves it as a bare remote over file://, and measures in
one run on one machine: the first sync, an incremental sync of a commit changing 10 files and
deleting 2 (fetch included), a poll with nothing new, and the naive baselines (a checksum
rescan that re-validates the changed files; a full re-validation). Prints a table, a line of
key ratios, and writes benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from gitdags.config import Settings, SourceConfig  # noqa: E402
from gitdags.engine import build_engine  # noqa: E402
from gitdags.validate import EmptyCatalog, check_across, check_file  # noqa: E402

WORK = HERE / ".work"
RESULTS = HERE / "results"
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
TYPES = [
    ("bash", {"command": "python jobs/run.py --date {{ ds }}"}),
    ("sql", {"conn_id": "warehouse", "sql": "sql/step.sql"}),
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


def dag_spec(i: int, rnd: random.Random, revision: int = 0) -> dict[str, Any]:
    n = rnd.randint(5, 20)
    tasks = []
    for t in range(n):
        kind, config = TYPES[rnd.randrange(len(TYPES))]
        task: dict[str, Any] = {"id": f"t{t:02}_{kind}", "type": kind, "config": dict(config)}
        if t:
            ups = {tasks[rnd.randrange(t)]["id"] for _ in range(rnd.randint(1, 2))}
            task["depends_on"] = sorted(ups)
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


def render(spec: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(spec, indent=2)
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(spec, sort_keys=False)
    lines = [f"{key} = {toml_value(value)}" for key, value in spec.items() if key != "tasks"]
    for task in spec["tasks"]:
        lines.append("\n[[tasks]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in task.items()]
    return "\n".join(lines) + "\n"


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


def path_of(i: int) -> str:
    fmt = ("yaml", "json", "toml")[i % 3]
    return f"dags/area{i // 400:02}/team{i // 8 % 50:02}/dag_{i:05}.{fmt}"


def make_repo(n: int) -> tuple[Path, Path]:
    """A working repository and its bare remote with N DAG files."""
    root = WORK / f"n{n}"
    shutil.rmtree(root, ignore_errors=True)
    work, bare = root / "work", root / "remote.git"
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
    return work, bare


def commit_change(work: Path, bare: Path, n: int, round_: int) -> None:
    """Change 10 files and delete 2, commit, push to the bare remote."""
    rnd = random.Random(round_ * 7919 + n)
    picks = rnd.sample(range(n), 12)
    for i in picks[:10]:
        path = work / path_of(i)
        if path.exists():
            path.write_text(render(dag_spec(i, rnd, revision=round_ + 1), path.suffix[1:]))
    for i in picks[10:]:
        if (work / path_of(i)).exists():
            git(work, "rm", "--quiet", path_of(i))
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", f"round {round_}")
    git(work, "push", "--quiet", str(bare), "main")


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "min_ms": round(min(samples), 2),
        "median_ms": round(statistics.median(samples), 2),
        "runs": len(samples),
    }


class Rescan:
    """The naive baseline: a checkout's files, checksummed (and re-validated) every time."""

    def __init__(self, checkout: Path) -> None:
        self.checkout = checkout
        self.hashes: dict[str, str] = {}

    def files(self) -> list[Path]:
        return sorted(p for p in (self.checkout / "dags").rglob("*") if p.is_file())

    def checksum(self) -> int:
        """Hash every file, re-validate the changed ones; returns how many were validated."""
        seen: dict[str, str] = {}
        changed = []
        for path in self.files():
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            seen[str(path)] = digest
            if self.hashes.get(str(path)) != digest:
                changed.append(check_file(str(path), data))
        check_across(changed, EmptyCatalog())
        self.hashes = seen
        return len(changed)

    def revalidate(self) -> int:
        checked = [check_file(str(p), p.read_bytes()) for p in self.files()]
        check_across(checked, EmptyCatalog())
        return len(checked)


def bench_n(n: int, reps: int) -> dict[str, Any]:
    print(f"\n== N = {n:,} DAG files ==", flush=True)
    t0 = time.perf_counter()
    work, bare = make_repo(n)
    print(f"   generated the repository in {time.perf_counter() - t0:.1f}s", flush=True)
    state = WORK / f"n{n}" / "state"
    settings = Settings(
        database=state / "gitdags.db",
        listen="",
        sources=(SourceConfig(name="bench", url=f"file://{bare}"),),
    )
    engine = build_engine(settings)
    first_ms = timed(lambda: engine.sync())
    dags = len(engine.list_dags())
    out: dict[str, Any] = {
        "n": n,
        "first_sync": {
            "ms": round(first_ms, 1),
            "dags": dags,
            "dags_per_s": round(dags / first_ms * 1000),
        },
    }

    polls = [timed(lambda: engine.sync()) for _ in range(reps * 2)]
    out["poll_nothing_new"] = summary(polls)

    checkout = WORK / f"n{n}" / "checkout"
    git(WORK / f"n{n}", "clone", "--quiet", str(bare), str(checkout))
    rescan = Rescan(checkout)
    rescan.checksum()  # warm: the baseline knows every hash already

    incremental, checksum, revalidate = [], [], []
    for round_ in range(reps):
        commit_change(work, bare, n, round_)
        start = time.perf_counter()
        (result,) = engine.sync()
        incremental.append((time.perf_counter() - start) * 1000)
        assert result.error is None and result.blobs_read <= 10, result
        git(checkout, "pull", "--quiet", "--ff-only")
        checksum.append(timed(rescan.checksum))
        revalidate.append(timed(rescan.revalidate))
    out["incremental_10_files"] = summary(incremental)
    out["baseline_checksum_rescan"] = summary(checksum)
    out["baseline_full_revalidation"] = summary(revalidate)
    engine.close()
    return out


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'measure':<44}" + "".join(f"{'N=' + format(r['n'], ','):>22}" for r in rows))
    first = [f"{r['first_sync']['ms']:.0f} ms ({r['first_sync']['dags_per_s']}/s)" for r in rows]
    print(f"{'first sync':<44}" + "".join(f"{v:>22}" for v in first))
    for key, label in [
        ("incremental_10_files", "incremental sync, 10 files (fetch incl.)"),
        ("poll_nothing_new", "poll with nothing new"),
        ("baseline_checksum_rescan", "baseline: warm checksum rescan"),
        ("baseline_full_revalidation", "baseline: full re-validation"),
    ]:
        cells = [f"{r[key]['min_ms']:.1f} / {r[key]['median_ms']:.1f} ms" for r in rows]
        print(f"{label + ' (min/median)':<44}" + "".join(f"{c:>22}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1,000 only, fewer repetitions.")
    args = parser.parse_args()
    sizes = [1000] if args.quick else [1000, 10000]
    reps = 3 if args.quick else 7
    rows = [bench_n(n, reps) for n in sizes]
    print_table(rows)
    big = rows[-1]
    inc = big["incremental_10_files"]["median_ms"]
    ratios = {
        "incremental_vs_checksum_rescan": inc / big["baseline_checksum_rescan"]["median_ms"],
        "incremental_vs_full_revalidation": inc / big["baseline_full_revalidation"]["median_ms"],
    }
    if len(rows) > 1:
        ratios["incremental_n10k_vs_n1k"] = inc / rows[0]["incremental_10_files"]["median_ms"]
    ratios = {k: round(v, 3) for k, v in ratios.items()}
    print(
        f"\nkey ratios (N={big['n']:,}, medians): "
        + "  ".join(f"{k} = {v}x" for k, v in ratios.items())
    )
    RESULTS.mkdir(exist_ok=True)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "results": rows,
        "ratios": ratios,
    }
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
