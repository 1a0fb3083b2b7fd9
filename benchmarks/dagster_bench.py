"""Dagster code locations: the static tier per file, the sandboxed load against `dagster
definitions validate` run fresh, and commit to reloaded location through a real webserver.

One run measures, on the same machine:
1. the static tier per module: `kinds.read` of N generated asset modules (5 assets each, one in
   five with a job and a schedule), median per file, against `ast.parse` of the same bytes (the
   floor), and the whole location put together (`location.assemble`) once;
2. the sandboxed load of the sample location after a change (the source's worker: Dagster in
   bubblewrap, imported once, a forked child per load; and its first, cold load) against
   `dagster definitions validate -f definitions.py` run fresh (its own DAGSTER_HOME), 5 times;
3. commit to reloaded location: a dagster-webserver on 127.0.0.1 over the deploy folder; each
   of 10 commits changes one asset module, then `engine.sync()` (fetch, static tier, the
   sandboxed load, the deploy folder, the webserver's reload and its answer that the location
   loaded) is timed, with python = "static" and python = "dagster".

Needs Dagster in GITDAGS_DAGSTER_VENV (default <repo>/.venv-dagster; tests/test_dagster_live.py
builds it) and bubblewrap.

    python benchmarks/dagster_bench.py [--n 500]
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from gitdags.config import DagsterSettings, Settings, SourceConfig  # noqa: E402
from gitdags.engine import build_engine  # noqa: E402
from gitdags.kinds import ReadContext, read  # noqa: E402
from gitdags.orchestrators.dagster import location  # noqa: E402
from gitdags.orchestrators.dagster.graphql import Webserver  # noqa: E402
from gitdags.orchestrators.dagster.kind import read_module  # noqa: E402

SAMPLE = ROOT / "sample_repo" / "dagster"
ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def module_text(i: int) -> str:
    lines = ["from dagster import asset, define_asset_job, ScheduleDefinition", ""]
    for a in range(5):
        up = f"m{i}_a{a - 1}" if a else (f"m{i - 1}_a4" if i else "")
        lines += [
            "",
            f'@asset(group_name="g{i % 7}")',
            f"def m{i}_a{a}({up}):" if up else f"def m{i}_a{a}():",
            f"    return {a}",
            "",
        ]
    if i % 5 == 0:
        lines += [
            f'job_{i} = define_asset_job("job_{i}", selection=["m{i}_a0", "m{i}_a1"])',
            f'schedule_{i} = ScheduleDefinition(job=job_{i}, cron_schedule="0 {i % 24} * * *")',
        ]
    return "\n".join(lines) + "\n"


def static_tier(n: int) -> None:
    texts = {f"loc/m{i}.py": module_text(i).encode() for i in range(n)}
    ctx = ReadContext(orchestrator="dagster")
    ours, floor = [], []
    for _round in range(3):
        for path, raw in texts.items():
            started = time.perf_counter()
            ast.parse(raw)
            floor.append(time.perf_counter() - started)
            started = time.perf_counter()
            read(path, raw, ctx=ctx)
            ours.append(time.perf_counter() - started)
    modules = {p: m for p, raw in texts.items() if (m := read_module(p, raw)) is not None}
    started = time.perf_counter()
    loc = location.assemble(modules)
    location.job_specs(loc)
    location.group_specs(loc)
    whole = time.perf_counter() - started
    print(f"1. static tier, {n} asset modules (5 assets each):")
    print(
        f"   per file: median {statistics.median(ours) * 1000:.3f} ms "
        f"(target <= 1 ms); ast.parse alone {statistics.median(floor) * 1000:.3f} ms"
    )
    print(
        f"   the whole location put together (checks, job and group specs): {whole * 1000:.1f} ms"
    )


def dagster_python() -> Path:
    venv = Path(os.environ.get("GITDAGS_DAGSTER_VENV", ROOT / ".venv-dagster"))
    python = venv / "bin" / "python"
    if not python.exists():
        sys.exit(
            f"no Dagster at {python}: run tests/test_dagster_live.py once "
            "(it builds the venv), or set GITDAGS_DAGSTER_VENV"
        )
    return python


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, **ENV}
    )


def sandboxed_load(work: Path, python: Path) -> None:
    from gitdags.orchestrators.airflow.parse_client import ParseWorker
    from gitdags.orchestrators.dagster.tier import LOAD_WORKER

    folder = work / "location"
    shutil.copytree(SAMPLE, folder)
    config = SourceConfig("ml", str(folder), orchestrator="dagster", dagster_python=str(python))
    worker = ParseWorker(
        config.dagster_python,
        work / "scratch",
        readable=(folder,),
        private=(work / "state",),
        script=LOAD_WORKER,
        orchestrator="dagster",
    )
    loads = []
    try:
        started = time.perf_counter()
        (first,) = worker.parse(folder, ["definitions.py"], timeout=60, memory=2 << 30).values()
        cold = time.perf_counter() - started
        assert "dags" in first, first
        for i in range(5):
            # a changed module each time: the location is loaded again, never from a cache
            text = (SAMPLE / "pipeline" / "training.py").read_text()
            (folder / "pipeline" / "training.py").write_text(text + f"\nREVISION = {i}\n")
            started = time.perf_counter()
            (answer,) = worker.parse(
                folder, ["definitions.py"], timeout=60, memory=2 << 30
            ).values()
            loads.append(time.perf_counter() - started)
            assert "dags" in answer, answer
    finally:
        worker.close()
    home = work / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    fresh = []
    for _ in range(5):
        started = time.perf_counter()
        done = subprocess.run(
            [
                str(python.parent / "dagster"),
                "definitions",
                "validate",
                "-f",
                "definitions.py",
                "-d",
                str(folder),
            ],
            cwd=folder,
            capture_output=True,
            env={**os.environ, "DAGSTER_HOME": str(home)},
        )
        fresh.append(time.perf_counter() - started)
        assert done.returncode == 0, done.stderr[-500:]
    print("2. the sample location loaded after a change (5 times each):")
    print(
        f"   gitdags' sandboxed load (bubblewrap, warm worker, forked child per load): median "
        f"{statistics.median(loads):.2f} s, min {min(loads):.2f} s; the worker's first load "
        f"(bubblewrap and Dagster's import) {cold:.2f} s"
    )
    print(
        f"   dagster definitions validate, fresh: median {statistics.median(fresh):.2f} s, "
        f"min {min(fresh):.2f} s (ratio {statistics.median(loads) / statistics.median(fresh):.2f})"
    )


def commit_to_reload(work: Path, python: Path, mode: str) -> list[float]:
    import socket

    base = work / mode
    repo = base / "repo"
    shutil.copytree(SAMPLE, repo / "dagster")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "location")
    home = base / "home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    deploy = base / "deploy"
    (base / "workspace.yaml").write_text(
        f"load_from:\n  - python_file:\n      relative_path: {deploy}/current/definitions.py\n"
        f"      working_directory: {deploy}/current\n      location_name: ml\n"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            str(python.parent / "dagster-webserver"),
            "-w",
            str(base / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DAGSTER_HOME": str(home)},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)
        source = SourceConfig(
            "ml",
            str(repo),
            subdir="dagster",
            include=("**/*.py",),
            orchestrator="dagster",
            python=mode,
            dagster_python=str(python) if mode == "dagster" else "",
        )
        settings = Settings(
            database=base / "state" / "gitdags.db",
            sources=(source,),
            deploy_dir=deploy,
            dagster=DagsterSettings(url, "ml"),
        )
        engine = build_engine(settings)
        (first,) = engine.sync()
        assert first.error is None and first.publish_error is None, first
        web = Webserver(url)
        times = []
        training = (SAMPLE / "pipeline" / "training.py").read_text()
        for i in range(10):
            (repo / "dagster" / "pipeline" / "training.py").write_text(
                training.replace("return sum(features)", f"return {i} + sum(features)")
            )
            git(repo, "commit", "-qam", f"change {i}")
            started = time.perf_counter()
            (result,) = engine.sync()
            loaded, message, _jobs = web.location("ml")
            times.append(time.perf_counter() - started)
            assert result.error is None and result.publish_error is None, result
            assert loaded, message
        engine.close()
        return times
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    static_tier(args.n)
    python = dagster_python()
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/var/tmp")) as tmp:
        work = Path(tmp)
        sandboxed_load(work, python)
        print("3. commit to reloaded location (10 commits, one asset module each):")
        for mode in ("static", "dagster"):
            times = commit_to_reload(work, python, mode)
            print(
                f'   python = "{mode}": p50 {statistics.median(times):.2f} s, '
                f"max {max(times):.2f} s (target p50 <= 2 s)"
            )


if __name__ == "__main__":
    main()
