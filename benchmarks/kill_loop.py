"""A bounded kill -9 loop: `gitdags sync` killed at random fault points, again and again, and
what it must never leave behind counted (all must be 0).

Each round commits a random change (edits, a broken file, a deletion, a new file) to a
40-DAG repository, runs `gitdags sync` armed to SIGKILL itself at one random named point
(gitdags/faults.py), checks what a kill may leave (the database whole, the deploy folder one
complete generation), then runs a clean sync and checks what must hold after it: the same
served versions as a reference database synced from scratch at the same commit (a DAG
broken at that commit may serve its last good version), no version recorded
twice, the deploy folder exactly the served set, every version delivered to the hook at least
once, the outbox empty.

    python benchmarks/kill_loop.py [--kills 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from repo import WORK, git  # noqa: E402

from gitdags.faults import POINTS, VARIABLE  # noqa: E402
from gitdags.serve.deploy import read_manifest  # noqa: E402

N = 40


def dag(i: int, revision: int, broken: bool = False) -> str:
    deps = "[b]" if broken else "[a]"  # broken: a cycle a -> b -> c -> a
    first = "[c]" if broken else "[]"
    return (
        f"dag_id: k{i:03}\nschedule: '@daily'\ndescription: rev {revision}\ntasks:\n"
        f"  - {{id: a, type: bash, config: {{command: echo {revision}}}, depends_on: {first}}}\n"
        f"  - {{id: b, type: empty, depends_on: {deps}}}\n"
        "  - {id: c, type: empty, depends_on: [b]}\n"
    )


def config(root: Path, name: str, repo: Path, hooks: Path | None) -> Path:
    path = root / f"{name}.toml"
    text = f'[state]\ndatabase = "{root / name / "g.db"}"\n'
    text += f'[publish]\ndeploy_dir = "{root / name / "deploy"}"\n'
    text += f'[[sources]]\nname = "main"\nurl = "{repo}"\n'
    if hooks is not None:
        text += f'[[hooks]]\nname = "log"\ncommand = "cat >> {hooks}; echo >> {hooks}"\n'
    path.write_text(text)
    return path


def sync(cfg: Path, fault: str | None = None) -> int:
    env = dict(os.environ)
    env.pop(VARIABLE, None)
    if fault:
        env[VARIABLE] = f"{fault}=kill"
    cmd = [sys.executable, "-m", "gitdags", "--config", str(cfg), "sync"]
    return subprocess.run(cmd, capture_output=True, env=env, timeout=300).returncode


def whole(database: Path) -> bool:
    conn = sqlite3.connect(database)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()


def one_generation(deploy: Path) -> bool:
    """`current` names one generation whose manifest lists only files that are there."""
    current = deploy / "current"
    if not current.is_symlink():
        return not current.exists()  # before the first publish there is none
    target = current.resolve()
    manifest = read_manifest(target)  # beside the generation
    if not manifest:
        return False
    files = [f for d in manifest.get("dags", []) for f in d.get("files", [])]
    return all((target / f).is_file() for f in files)


def served(database: Path) -> dict[str, str]:
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute(
            "SELECT d.dag_id, v.content_hash FROM dags d JOIN versions v ON v.dag_id = d.dag_id "
            "AND v.version = d.served_version WHERE d.deleted = 0"
        ).fetchall()
        return dict(rows)
    finally:
        conn.close()


def doubled(database: Path) -> int:
    """Versions that repeat the one before them (the same content and validity)."""
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute(
            "SELECT dag_id, version, content_hash, valid FROM versions ORDER BY dag_id, version"
        ).fetchall()
    finally:
        conn.close()
    return sum(
        1
        for before, after in itertools.pairwise(rows)
        if before[0] == after[0] and before[2:] == after[2:]
    )


def undelivered(database: Path, log: Path) -> int:
    conn = sqlite3.connect(database)
    try:
        versions = set(conn.execute("SELECT dag_id, version FROM versions").fetchall())
        waiting = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    finally:
        conn.close()
    seen = set()
    if log.exists():
        for line in log.read_text().splitlines():
            if line.strip():
                for c in json.loads(line)["changes"]:
                    seen.add((c["dag_id"], c["version"]))
    # a version is announced by its change; deletions carry no version
    return len({v for v in versions if v not in seen}) + waiting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    root = WORK / "kill-loop"
    shutil.rmtree(root, ignore_errors=True)
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(root, "init", "--quiet", "--initial-branch=main", str(repo))
    for i in range(N):
        (repo / f"k{i:03}.yaml").write_text(dag(i, 0))
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "start")
    log = root / "hooks.log"
    cfg = config(root, "state", repo, log)
    assert sync(cfg) == 0

    kills = rounds = 0
    counts = {"inconsistent database": 0, "partial deploy folder": 0, "served set differs": 0}
    counts |= {"version recorded twice": 0, "deploy folder not the served set": 0}
    by_point: dict[str, int] = dict.fromkeys(POINTS, 0)
    started = time.perf_counter()
    while kills < args.kills:
        rounds += 1
        for _ in range(rnd.randint(1, 4)):
            i = rnd.randrange(N + 5)
            path = repo / f"k{i:03}.yaml"
            roll = rnd.random()
            if roll < 0.1 and path.exists():
                path.unlink()
            else:
                path.write_text(dag(i, rounds, broken=roll < 0.25))
        git(repo, "add", "--all")
        git(repo, "commit", "--quiet", "--allow-empty", "-m", f"round {rounds}")
        point = rnd.choice(POINTS)
        code = sync(cfg, point)
        if code == -signal.SIGKILL:
            kills += 1
            by_point[point] += 1
        database = root / "state" / "g.db"
        counts["inconsistent database"] += not whole(database)
        counts["partial deploy folder"] += not one_generation(root / "state" / "deploy")
        assert sync(cfg) == 0  # the clean sync after it
        reference = config(root, f"ref{rounds}", repo, None)
        assert sync(reference) == 0
        mine, fresh = served(database), served(root / f"ref{rounds}" / "g.db")
        present = {p.stem for p in repo.glob("k*.yaml")}  # a broken file keeps its last good
        counts["served set differs"] += any(mine.get(d) != h for d, h in fresh.items()) or bool(
            set(mine) - set(fresh) - present
        )
        shutil.rmtree(root / f"ref{rounds}")
        reference.unlink()
        counts["version recorded twice"] += doubled(database) > 0
        from gitdags.config import load_settings
        from gitdags.engine import build_engine

        engine = build_engine(load_settings(str(cfg)))
        try:
            folder = engine.publisher.folder if engine.publisher else None
            counts["deploy folder not the served set"] += (
                folder is None or folder.mismatch(engine.store) is not None
            )
        finally:
            engine.close()
    missing = undelivered(root / "state" / "g.db", log)
    seconds = time.perf_counter() - started
    print(f"kill -9 loop: {kills} kills in {rounds} rounds, {seconds:.0f} s (seed {args.seed})")
    print("kills by point: " + ", ".join(f"{p} {n}" for p, n in by_point.items()))
    for what, n in {**counts, "hook deliveries missing": missing}.items():
        print(f"  {what:<34} {n}")
    if any(counts.values()) or missing:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
