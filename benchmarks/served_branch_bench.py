"""The served branches at 10,000 DAGs: the cost of one commit per change to what is served.

A repository of N DAG files is synced with `[publish] git_repo`; then rounds of a 10-file
commit. Reported: the first commit of the branches (every file hashed), then the median of the
per-change branch commits (only changed files hashed, the index reused), against, in the same
run, hashing the whole tree again (`git add --all` of the deploy folder into a fresh index:
what a naive exporter does on every change).

    python benchmarks/served_branch_bench.py [--n 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from repo import WORK, commit_change, make_repo  # noqa: E402

from gitdags.config import Settings, SourceConfig  # noqa: E402
from gitdags.engine import build_engine  # noqa: E402
from gitdags.serve.branches import ServedBranches  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work, bare = make_repo(args.n)
    state = WORK / f"served{args.n}"
    shutil.rmtree(state, ignore_errors=True)
    settings = Settings(
        database=state / "g.db",
        listen="",
        deploy_dir=state / "deploy",
        git_repo=state / "served.git",
        sources=(SourceConfig("main", bare.as_uri(), subdir="dags"),),
    )
    engine = build_engine(settings)
    timings: list[float] = []
    original = ServedBranches.publish

    def timed(self: ServedBranches, *a: object, **kw: object) -> dict[str, str]:
        start = time.perf_counter()
        try:
            return original(self, *a, **kw)  # type: ignore[arg-type]
        finally:
            timings.append((time.perf_counter() - start) * 1000)

    ServedBranches.publish = timed  # type: ignore[method-assign]
    try:
        (first,) = engine.sync()
        assert first.error is None, first.error
        for round_ in range(args.rounds):
            commit_change(work, bare, args.n, round_)
            (result,) = engine.sync()
            assert result.error is None and result.changes, result
    finally:
        ServedBranches.publish = original  # type: ignore[method-assign]
        engine.close()
    current = (state / "deploy" / "current").resolve()
    naive = []
    for _ in range(3):
        index = state / "naive.index"
        index.unlink(missing_ok=True)
        env = {
            **os.environ,
            "GIT_DIR": str(state / "served.git"),
            "GIT_INDEX_FILE": str(index),
            "GIT_WORK_TREE": str(current),
        }
        start = time.perf_counter()
        subprocess.run(["git", "add", "--all", "."], cwd=current, env=env, check=True)
        subprocess.run(["git", "write-tree"], env=env, check=True, capture_output=True)
        naive.append((time.perf_counter() - start) * 1000)
    files = sum(1 for p in current.rglob("*") if p.is_file())
    commits = subprocess.run(
        ["git", f"--git-dir={state / 'served.git'}", "rev-list", "--count", "served/all"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"served branches at {args.n:,} DAGs ({files:,} files in current/)")
    print(f"first commit (every file hashed)          {timings[0]:.0f} ms")
    print(
        f"a 10-file change, median of {args.rounds}            "
        f"{statistics.median(timings[1:]):.0f} ms  (target <= 100 ms)"
    )
    print(f"baseline: hash the whole tree again        {statistics.median(naive):.0f} ms")
    print(f"commits on served/all                      {commits}")
    print(json.dumps({"first_ms": timings[0], "change_ms": timings[1:]}))


if __name__ == "__main__":
    main()
