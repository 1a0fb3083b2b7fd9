"""Prefect sources: the static tier per flow file, the sandboxed load per changed file against
Prefect's own `load_flow_from_entrypoint` in a fresh process, a 10-file commit to served, and
the deployment API calls a commit makes (only for the deployments it changed).

A generated project: N flow files (a flow with a subflow and three retrying tasks, importing a
helper module of the repository: 2N flow DAGs), a prefect.yaml with two deployments per flow
(cron and interval schedules), in a git repository with a bare remote. One run measures:
  - the static tier of one flow file (`orchestrators.prefect.read`, warm, in-process; median);
  - a deployment resolved against its flow (`project.resolve` of the project file / 2N);
  - the sandboxed load of the flows of a 10-file commit (the warm worker, per file), and the
    baseline: Prefect's `load_flow_from_entrypoint(..., use_placeholder_flow=False)` in a
    fresh `prefect_python` process (median of 5, per file);
  - a 10-file commit to served, end to end (fetch, read, resolve, load, record, deploy folder),
    static and sandboxed;
  - with a Prefect server (started here on 127.0.0.1 unless --no-server): the first publish
    (2N deployments) and the 10-file commit's publish, with how many deployments each sent.

    python benchmarks/prefect_bench.py [--flows 100] [--no-server]
    (GITDAGS_PREFECT_VENV, default <repo>/.venv-prefect: the environment with Prefect)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from repo import WORK, commit_all, git  # noqa: E402

from gitdags.checks.validate import content_hash  # noqa: E402
from gitdags.config import PrefectSettings, Settings, SourceConfig  # noqa: E402
from gitdags.engine import build_engine  # noqa: E402
from gitdags.kinds import ReadContext  # noqa: E402
from gitdags.orchestrators import prefect  # noqa: E402
from gitdags.orchestrators.prefect.project import ProjectTree, resolve  # noqa: E402

VENV = Path(os.environ.get("GITDAGS_PREFECT_VENV", HERE.parent / ".venv-prefect"))
PYTHON = VENV / "bin" / "python"


def flow_file(i: int, revision: int = 0) -> str:
    return f'''"""Generated flow {i} (revision {revision})."""

from prefect import flow, task

from common.util import chunks


@task(retries=2, retry_delay_seconds=5)
def extract_{i}(day: str) -> list[int]:
    return list(range(10))


@task
def transform_{i}(rows: list[int]) -> list[int]:
    return [r * {revision + 2} for r in rows]


@task(retries=3)
def load_{i}(rows: list[int]) -> int:
    return len(rows)


@flow(name="sub-{i:03}")
def sub_{i}(rows: list[int]) -> int:
    return sum(load_{i}(c) for c in chunks(rows, 4))


@flow(name="flow-{i:03}")
def flow_{i}(day: str, region: str = "eu", limit: int = 100) -> int:
    rows = transform_{i}(extract_{i}(day))
    return sub_{i}(rows[:limit])
'''


def project_file(n: int) -> str:
    lines = ["name: bench", "deployments:"]
    for i in range(n):
        lines += [
            f"  - name: hourly-{i:03}",
            f"    entrypoint: flows/f{i:03}.py:flow_{i}",
            "    parameters: {day: today, region: eu}",
            "    schedules:",
            f'      - cron: "{i % 60} * * * *"',
            "        timezone: Europe/Paris",
            "    work_pool: {name: bench-pool}",
            f"  - name: backfill-{i:03}",
            f"    entrypoint: flows/f{i:03}.py:flow_{i}",
            "    parameters: {day: yesterday, limit: 1000}",
            "    schedules:",
            "      - interval: 21600",
            "    work_pool: {name: bench-pool}",
        ]
    return "\n".join(lines) + "\n"


def make_project(n: int) -> tuple[Path, Path]:
    root = WORK / f"prefect-{n}"
    shutil.rmtree(root, ignore_errors=True)
    work = root / "work"
    (work / "flows").mkdir(parents=True)
    (work / "common").mkdir()
    (work / "common" / "__init__.py").write_text("")
    (work / "common" / "util.py").write_text(
        "def chunks(rows, size):\n"
        "    return [rows[i : i + size] for i in range(0, len(rows), size)]\n"
    )
    for i in range(n):
        (work / "flows" / f"f{i:03}.py").write_text(flow_file(i))
    (work / "prefect.yaml").write_text(project_file(n))
    bare = root / "remote.git"
    commit_all(work, bare)
    return work, bare


def commit_ten(work: Path, bare: Path, n: int, revision: int) -> None:
    for i in range(0, n, max(n // 10, 1))[:10]:
        (work / "flows" / f"f{i:03}.py").write_text(flow_file(i, revision))
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", f"ten flows, revision {revision}")
    git(work, "push", "--quiet", str(bare), "main")


def static_tier(work: Path, n: int) -> tuple[float, float]:
    ctx = ReadContext(orchestrator="prefect")
    times = []
    for i in range(n):
        raw = (work / "flows" / f"f{i:03}.py").read_bytes()
        started = time.perf_counter()
        prefect.read(f"flows/f{i:03}.py", raw, content_hash(raw), ctx)
        times.append(time.perf_counter() - started)
    raw = (work / "prefect.yaml").read_bytes()
    blobs = {
        p.relative_to(work).as_posix(): content_hash(p.read_bytes()) for p in work.rglob("*.py")
    }
    found = prefect.read("prefect.yaml", raw, content_hash(raw), ctx)
    assert found is not None and len(found.dags) == 2 * n

    def read(paths: list[str]) -> dict[str, bytes]:
        return {p: (work / p).read_bytes() for p in paths}

    started = time.perf_counter()
    resolved = resolve(found, ProjectTree(blobs, read))
    per_deployment = (time.perf_counter() - started) / (2 * n)
    assert all(d.valid for d in resolved.dags), [i for d in resolved.dags for i in d.issues][:3]
    return statistics.median(times) * 1000, per_deployment * 1000


def fresh_load(work: Path, i: int) -> float:
    code = (
        "from prefect.flows import load_flow_from_entrypoint;"
        f"load_flow_from_entrypoint('flows/f{i:03}.py:flow_{i}', use_placeholder_flow=False)"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(WORK),
        "PREFECT_HOME": str(WORK / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": "http://127.0.0.1:9/api",
    }
    started = time.perf_counter()
    subprocess.run([str(PYTHON), "-c", code], cwd=work, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    proc = subprocess.Popen(
        [str(VENV / "bin" / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
         str(port), "--no-scheduler", "--no-ui", "--analytics-off"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2):
                break
        except OSError:
            time.sleep(0.2)
    subprocess.run(
        [str(VENV / "bin" / "prefect"), "work-pool", "create", "bench-pool", "--type", "process"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return proc, api


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=100)
    parser.add_argument("--no-server", action="store_true")
    args = parser.parse_args()
    n = args.flows
    if not PYTHON.exists():
        sys.exit(f"No Prefect environment at {VENV}: set GITDAGS_PREFECT_VENV.")
    work, bare = make_project(n)
    static_ms, resolve_ms = static_tier(work, n)
    print(f"static tier, per flow file (median, warm)             {static_ms:.3f} ms  (<= 1 ms)")
    print(f"a deployment resolved against its flow (mean)         {resolve_ms:.3f} ms")

    fresh = [fresh_load(work, i) for i in range(5)]
    baseline_ms = statistics.median(fresh) * 1000
    print(f"baseline: load_flow_from_entrypoint, fresh process    {baseline_ms:.0f} ms per file")

    results = {}
    server, api = (None, "") if args.no_server else start_server(WORK / f"prefect-{n}" / "home")
    try:
        runs = [("static", False), ("prefect", False)] + ([("static", True)] if api else [])
        for mode, published in runs:
            state = WORK / f"prefect-{n}" / f"state-{mode}-{published}"
            shutil.rmtree(state, ignore_errors=True)
            extra = {"prefect_python": str(PYTHON)} if mode == "prefect" else {}
            config = SourceConfig(  # type: ignore[arg-type]
                name="bench", url=str(bare), orchestrator="prefect", python=mode,
                include=("**/*.py", "**/*.yaml"), **extra,
            )  # fmt: skip
            publish = PrefectSettings(api, PYTHON) if published else None
            engine = build_engine(
                Settings(
                    database=state / "g.db", sources=(config,), deploy_dir=state / "deploy",
                    prefect=publish,
                )
            )  # fmt: skip
            started = time.perf_counter()
            [first] = engine.sync()
            first_s = time.perf_counter() - started
            assert first.error is None and first.added == 4 * n, (first.error, first.issues[:3])
            if publish is not None:
                results["first publish"] = (first_s, dict(engine.publisher.prefect.last))
            commit_ten(work, bare, n, revision=len(results) + 1)
            started = time.perf_counter()
            [ten] = engine.sync()
            ten_s = time.perf_counter() - started
            # the ten flow files (2 flows each) and their 20 deployments
            assert ten.error is None and ten.changed == 40, (ten.error, ten.changed, ten.issues[:3])
            if not published:
                results[mode] = (first_s, ten_s)
            if publish is not None:
                results["ten publish"] = (ten_s, dict(engine.publisher.prefect.last))
            if mode == "prefect":
                worker = engine.parse_worker(config)
                tree = engine.settings.mirrors_dir / "bench.tree"
                files = [f"\tflows/f{i:03}.py:flow_{i}" for i in range(0, n, max(n // 10, 1))[:10]]
                started = time.perf_counter()
                loaded = worker.parse(tree, files, timeout=30, memory=2 << 30)
                per_file = (time.perf_counter() - started) / len(files) * 1000
                assert all("flows" in r for r in loaded.values()), loaded
                results["load per file"] = (per_file, worker.started_in)
            engine.close()
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    per_file, start = results["load per file"]
    print(
        f"sandboxed load, per changed file (warm worker)        {per_file:.1f} ms  "
        f"({per_file / baseline_ms:.3f}x the fresh-process baseline; worker start {start:.2f} s)"
    )
    for mode in ("static", "prefect"):
        first_s, ten_s = results[mode]
        print(
            f"python = {mode:8} first sync ({2 * n} deployments, {n} flow files) {first_s:.2f} s; "
            f"10-file commit to served {ten_s * 1000:.0f} ms  (<= 1 s)"
        )
    if "ten publish" in results:
        for what in ("first publish", "ten publish"):
            seconds, last = results[what]
            print(
                f"{what:14} (sync + Prefect API)                 {seconds:.2f} s, "
                f"{last.get('applied')} deployments sent, {last.get('removed')} removed"
            )


if __name__ == "__main__":
    main()
