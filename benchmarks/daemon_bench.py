"""The daemon, as a real process: commit-to-served latency through the ref watch, and its
resident memory with every DAG of a repository served."""

from __future__ import annotations

import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from repo import commit_change, git

ROOT = Path(__file__).resolve().parent.parent


def _served_commit(db: Path) -> str | None:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            row = con.execute("SELECT served_commit FROM sources").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def _start(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gitdags", "--config", str(config), "daemon"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )


def _write_config(path: Path, database: Path, url: Path) -> None:
    path.write_text(
        f'[state]\ndatabase = "{database}"\n[daemon]\nlisten = ""\n'
        f'[[sources]]\nname = "bench"\nurl = "{url}"\ninterval = "1h"\n'
    )


def _wait(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.002)
    return False


def latency(work: Path, bare: Path, n: int, pushes: int, state: Path) -> dict[str, Any]:
    """Median time from a push to a local bare repository to the commit being served."""
    config, db = state / "latency.toml", state / "latency.db"
    _write_config(config, db, bare)
    proc = _start(config)
    try:
        head = git(bare, "rev-parse", "refs/heads/main")
        if not _wait(lambda: _served_commit(db) == head, 300):
            raise RuntimeError("the daemon did not serve the first commit")
        samples = []
        for round_ in range(pushes):
            commit_change(work, None, n, 1000 + round_, files=1, deletes=0)
            git(work, "push", "--quiet", str(bare), "main")
            pushed = time.perf_counter()
            head = git(bare, "rev-parse", "refs/heads/main")
            if not _wait(lambda h=head: _served_commit(db) == h, 30):
                raise RuntimeError("a push was not served within 30 s")
            samples.append((time.perf_counter() - pushed) * 1000)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return {
        "pushes": pushes,
        "min_ms": round(min(samples), 1),
        "median_ms": round(statistics.median(samples), 1),
        "max_ms": round(max(samples), 1),
    }


def memory(database: Path, url: Path, state: Path) -> dict[str, Any]:
    """Resident memory of a daemon serving an already synced database."""
    config = state / "memory.toml"
    _write_config(config, database, url)
    proc = _start(config)
    try:
        time.sleep(3)  # started, first (no-op) sync done, idle
        fields = {}
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return {"rss_mb": round(fields["VmRSS"], 1), "peak_rss_mb": round(fields["VmHWM"], 1)}


def list_json(database: Path, state: Path, reps: int) -> dict[str, Any]:
    config = state / "list.toml"
    config.write_text(f'[state]\ndatabase = "{database}"\n')
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "gitdags", "--config", str(config), "list", "--json"],
            capture_output=True,
            env={**os.environ},
        )
        samples.append((time.perf_counter() - start) * 1000)
        assert done.returncode == 0, done.stderr
    return {"min_ms": round(min(samples), 1), "median_ms": round(statistics.median(samples), 1)}


def cli_startup(engine_settings: Any, work: Path, bare: Path, n: int, reps: int) -> dict[str, Any]:
    """Commands as a user runs them, a fresh process each: `gitdags --help` (the interpreter
    and the CLI's own start-up), `gitdags list --json`, and `gitdags sync` of a commit changing
    10 files, at N DAGs. The targets are set beyond the time of `--help`."""
    from repo import commit_change

    config = work.parent / "cli.toml"
    source = engine_settings.sources[0]
    config.write_text(
        f'[state]\ndatabase = "{engine_settings.database}"\n[daemon]\nlisten = ""\n'
        f'[[sources]]\nname = "{source.name}"\nurl = "{source.url}"\n'
    )
    base = [sys.executable, "-m", "gitdags", "--config", str(config)]

    def run(*args: str) -> float:
        start = time.perf_counter()
        done = subprocess.run([*base, *args], capture_output=True)
        elapsed = (time.perf_counter() - start) * 1000
        assert done.returncode == 0, done.stderr
        return elapsed

    helps = [run("--help") for _ in range(reps)]
    lists = [run("list", "--json") for _ in range(reps)]
    syncs = []
    for round_ in range(reps):
        commit_change(work, bare, n, 500 + round_)
        syncs.append(run("sync"))
    help_ms = statistics.median(helps)
    return {
        "dags": n,
        "help_median_ms": round(help_ms, 1),
        "list_json_median_ms": round(statistics.median(lists), 1),
        "sync_incremental_median_ms": round(statistics.median(syncs), 1),
        "list_json_beyond_help_ms": round(statistics.median(lists) - help_ms, 1),
        "sync_beyond_help_ms": round(statistics.median(syncs) - help_ms, 1),
    }
