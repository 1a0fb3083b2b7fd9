"""gitdags at scale: one source of N DAG files (N = 100,000 by default), each figure beside the
same figure at 10,000, measured in the same run.

    python benchmarks/scale.py                 # N = 100,000 and 10,000 (generators cached)
    python benchmarks/scale.py --n 30000       # another N
    python benchmarks/scale.py --no-console --no-daemon

Measured per N, as a user runs gitdags (a fresh CLI process for each command, on the packed
file:// remote `repo.py` generates): the first sync (wall time, peak RSS, and against the naive
read + parse + validate of the same files on one core, in this process); an incremental sync
of a commit changing 10 files and deleting 2; a sync with nothing new (and `--help`, the
interpreter's own start); `list --json` (first byte, total, peak RSS, bytes); the state
database against the packed repository; the console's first paint and one filter keystroke;
the daemon's resident memory serving every DAG; at 10,000 the commit-to-served latency
through the daemon's ref watch. Prints a table; writes benchmarks/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from repo import WORK, commit_change, make_repo  # noqa: E402

from gitdags.checks.crosscheck import EmptyCatalog, check_across  # noqa: E402
from gitdags.kinds import check_file  # noqa: E402

RESULTS = HERE / "results"
TARGETS = {  # issue 29
    "first_sync_10k_s": 2.0,
    "first_sync_100k_s": 10.0,
    "first_sync_vs_naive": 3.0,
    "database_vs_packed_repository": 3.0,
    "commit_to_served_10k_median_ms": 50.0,
}


# `python -m gitdags`, saying its own peak RSS on exit: a forked child's ru_maxrss starts from
# its parent's (this process's) memory, so wait4 would report this process's peak instead
_GITDAGS = """
import atexit, runpy, sys
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            sys.stderr.write("\\nPEAK_KB " + line.split()[1] + "\\n")
atexit.register(_peak)
sys.argv[0] = "gitdags"
runpy.run_module("gitdags", run_name="__main__", alter_sys=True)
"""


def run(command: list[str], *, first_byte: bool = False) -> dict[str, Any]:
    """A fresh process: wall time, CPU time (with its children), its peak RSS, the time to
    its first byte of output and how many bytes it wrote."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    first = None
    size = 0
    while chunk := proc.stdout.read1(1 << 16) if first_byte else proc.stdout.read():
        if first is None:
            first = time.perf_counter() - start
        size += len(chunk)
    stderr = proc.stderr.read() if proc.stderr else b""
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[3:])} failed: {stderr.decode()[-2000:]}")
    peak = [line for line in stderr.decode().splitlines() if line.startswith("PEAK_KB ")]
    return {
        "s": round(elapsed, 3),
        "first_byte_s": round(first, 3) if first is not None else None,
        "peak_rss_mb": round(int(peak[-1].split()[1]) / 1024, 1) if peak else None,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "bytes": size,
    }


def naive(work: Path) -> tuple[float, float]:
    """Read, parse and validate every file of the checkout on one core (the floor): wall
    and CPU seconds."""
    files = sorted(p for p in (work / "dags").rglob("*") if p.is_file())
    start, cpu = time.perf_counter(), time.process_time()
    checked = [check_file(str(p), p.read_bytes()) for p in files]
    check_across(checked, EmptyCatalog())
    return time.perf_counter() - start, time.process_time() - cpu


def size_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6, 1)


def measure(n: int, reps: int, console: bool, daemon: bool) -> dict[str, Any]:
    print(f"\n== N = {n:,} ==", flush=True)
    started = time.perf_counter()
    work, bare = make_repo(n)
    print(f"   repository ready in {time.perf_counter() - started:.0f} s", flush=True)
    state = WORK / f"n{n}" / "scale"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    database = state / "gitdags.db"
    config = state / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{database}"\n[daemon]\nlisten = ""\n'
        f'[[sources]]\nname = "bench"\nurl = "file://{bare}"\n'
    )
    cli = [sys.executable, "-c", _GITDAGS, "--config", str(config)]
    out: dict[str, Any] = {"n": n}
    wall, cpu = naive(work)
    out["naive_read_parse_validate_s"], out["naive_cpu_s"] = round(wall, 2), round(cpu, 2)
    out["first_sync"] = run([*cli, "sync"])
    out["first_sync_vs_naive"] = round(
        out["first_sync"]["s"] / out["naive_read_parse_validate_s"], 2
    )
    print(
        f"   first sync {out['first_sync']['s']} s (naive {out['naive_read_parse_validate_s']} s)"
    )
    incremental = []
    for round_ in range(reps):
        commit_change(work, bare, n, round_)
        incremental.append(run([*cli, "sync"])["s"])
    out["incremental_s"] = round(statistics.median(incremental), 3)
    out["no_op_s"] = round(statistics.median(run([*cli, "sync"])["s"] for _ in range(reps)), 3)
    out["help_s"] = round(statistics.median(run([*cli, "--help"])["s"] for _ in range(reps)), 3)
    lists = [run([*cli, "list", "--json"], first_byte=True) for _ in range(reps)]
    out["list_json"] = min(lists, key=lambda r: r["s"])
    con = sqlite3.connect(database)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    tables = dict(con.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    con.close()
    out["database_mb"] = round(database.stat().st_size / 1e6, 1)
    out["versions_mb"] = round(tables.get("versions", 0) / 1e6, 1)
    out["packed_repository_mb"] = size_mb(bare / "objects")
    out["database_vs_packed_repository"] = round(
        out["database_mb"] / out["packed_repository_mb"], 2
    )
    print(
        f"   database {out['database_mb']} MB, packed repository {out['packed_repository_mb']} MB"
    )
    if console:
        import console_bench

        from gitdags.config import load_settings
        from gitdags.engine import build_engine

        engine = build_engine(load_settings(config), readonly=True)
        try:
            every = sum(n for counts in engine.store.dag_counts().values() for n in counts.values())
            out["console"] = console_bench.measure(engine, every)
        finally:
            engine.close()
    if daemon:
        import daemon_bench

        out["daemon_memory"] = daemon_bench.memory(database, bare, state)
        if n <= 10_000:
            out["commit_to_served"] = daemon_bench.latency(work, bare, n, reps * 5, state)
    return out


ROWS = [
    ("naive read+parse+validate, one core (s)", lambda r: r["naive_read_parse_validate_s"]),
    ("first sync, fresh CLI (s)", lambda r: r["first_sync"]["s"]),
    ("  vs naive (x)", lambda r: r["first_sync_vs_naive"]),
    (
        "  CPU, all processes, vs naive's CPU (x)",
        lambda r: round(r["first_sync"]["cpu_s"] / r["naive_cpu_s"], 2),
    ),
    ("  peak RSS (MB)", lambda r: r["first_sync"]["peak_rss_mb"]),
    ("incremental 10 files + 2 deletes (s)", lambda r: r["incremental_s"]),
    ("sync with nothing new (s)", lambda r: r["no_op_s"]),
    ("  --help, for reference (s)", lambda r: r["help_s"]),
    ("list --json total (s)", lambda r: r["list_json"]["s"]),
    ("  first byte (s)", lambda r: r["list_json"]["first_byte_s"]),
    ("  peak RSS (MB)", lambda r: r["list_json"]["peak_rss_mb"]),
    ("  output (MB)", lambda r: round(r["list_json"]["bytes"] / 1e6, 1)),
    ("database (MB)", lambda r: r["database_mb"]),
    ("  of which versions (MB)", lambda r: r["versions_mb"]),
    ("packed repository (MB)", lambda r: r["packed_repository_mb"]),
    ("  database / repository (x)", lambda r: r["database_vs_packed_repository"]),
    ("console first paint (ms)", lambda r: r["console"]["first_paint_ms"]),
    ("console filter keystroke (ms)", lambda r: r["console"]["filter_keystroke_ms"]),
    ("daemon RSS serving all (MB)", lambda r: r["daemon_memory"]["rss_mb"]),
    ("commit-to-served median (ms)", lambda r: r["commit_to_served"]["median_ms"]),
]


def table(results: list[dict[str, Any]]) -> str:
    head = f"{'measure':<42}" + "".join(f"{r['n']:>12,}" for r in results)
    lines = [head, "-" * len(head)]
    for name, get in ROWS:
        cells = []
        for r in results:
            try:
                cells.append(f"{get(r):>12}")
            except (KeyError, TypeError):
                cells.append(f"{'-':>12}")
        if any(c.strip() != "-" for c in cells):
            lines.append(f"{name:<42}" + "".join(cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="DAG files (default 100,000)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-console", action="store_true")
    parser.add_argument("--no-daemon", action="store_true")
    args = parser.parse_args()
    sizes = sorted({10_000, args.n})
    results = []
    RESULTS.mkdir(exist_ok=True)
    for n in sizes:  # written after each N: a long run keeps what it measured
        results.append(measure(n, args.reps, not args.no_console, not args.no_daemon))
        report = {"cpus": os.cpu_count(), "targets": TARGETS, "results": results}
        (RESULTS / "scale.json").write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(results))
    print(f"\nwritten to {RESULTS / 'scale.json'}")


if __name__ == "__main__":
    main()
