"""Prefect for real: the sandboxed tier loads flows with Prefect's own loader (from a venv
built like .venv-airflow: GITDAGS_PREFECT_VENV, default <repo>/.venv-prefect), and the publish
target applies deployments to a real `prefect server start` on 127.0.0.1 (one per module):
a push creates them with their schedules and version, a broken flow keeps the last good, a
rollback updates, pause pauses, a retired deployment is removed, and only changed deployments
are sent."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitdags.config import PrefectSettings, SourceConfig
from gitdags.engine import SyncEngine
from tests.conftest import SAMPLE, GitRepo, free_port
from tests.venvs import venv_python

pytestmark = pytest.mark.xdist_group("prefect")  # one worker of -n starts the one server
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["prefect==3.9.1"]
PROJECT = SAMPLE / "prefect"
INCLUDE = ("**/*.py", "**/*.yaml")


def prefect_python() -> Path:
    return venv_python("Prefect", "GITDAGS_PREFECT_VENV", ".venv-prefect", PACKAGES)


def prefect_env(home: Path, api: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GITDAGS_"))},
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_API_URL": api,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server (SQLite) on 127.0.0.1; its API URL."""
    python = prefect_python()
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = open(home / "server.log", "w")  # noqa: SIM115  (open while the server runs)
    proc = subprocess.Popen(
        [
            str(python.parent / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-scheduler",
            "--no-ui",
            "--analytics-off",
        ],
        env=prefect_env(home, api),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=home,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)  # polling the health endpoint: the event is its answer
        pool = subprocess.run(
            [
                str(python.parent / "prefect"),
                "work-pool",
                "create",
                "default-pool",
                "--type",
                "process",
            ],
            env=prefect_env(home, api),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=home,
        )
        assert pool.returncode == 0, pool.stdout + pool.stderr
        yield api
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def api_get(api: str, path: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{api}{path}", timeout=10) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def deployment(api: str, dag_id: str) -> dict | None:
    return api_get(api, f"/deployments/name/{dag_id}")


def source(repo: GitRepo, name: str, **kw: object) -> SourceConfig:
    return SourceConfig(  # type: ignore[arg-type]
        name=name, url=str(repo.path), orchestrator="prefect", include=INCLUDE, **kw
    )


def sample(repo: GitRepo, name: str) -> str:
    """The sample project with its deployments renamed for this test (one server for all)."""
    shutil.copytree(PROJECT, repo.path, dirs_exist_ok=True)
    text = (repo.path / "prefect.yaml").read_text()
    text = text.replace("name: hourly", f"name: {name}-hourly")
    (repo.path / "prefect.yaml").write_text(
        text.replace("name: backfill", f"name: {name}-backfill")
    )
    return repo.commit("the streaming project")


def test_push_creates_deployments_and_a_broken_flow_keeps_the_last_good(
    tmp_path: Path, repo: GitRepo, make_engine, server: str
) -> None:
    head = sample(repo, "push")
    engine: SyncEngine = make_engine(
        source(repo, "push"),
        deploy_dir=tmp_path / "deploy",
        prefect=PrefectSettings(server, prefect_python()),
    )
    [result] = engine.sync()
    assert result.publish_error is None, result.publish_error
    hourly = deployment(server, "event-pipeline/push-hourly")
    backfill = deployment(server, "event-pipeline/push-backfill")
    assert hourly is not None and backfill is not None
    assert hourly["version"] == f"gitdags v1 {head[:12]}"
    assert hourly["entrypoint"] == "flows/events.py:event_pipeline"
    assert hourly["parameters"] == {"source": "clickstream", "batch_size": 500}
    assert hourly["work_pool_name"] == "default-pool"
    [cron] = hourly["schedules"]
    assert cron["schedule"]["cron"] == "5 * * * *"
    assert cron["schedule"]["timezone"] == "Europe/Paris"
    [interval] = backfill["schedules"]
    assert interval["schedule"]["interval"] == 21600.0
    assert hourly["pull_steps"][0]["prefect.deployments.steps.git_clone"]["branch"] == "served/all"
    assert engine.publisher.prefect.last == {"applied": 2, "removed": 0, "failed": {}}

    flow = (repo.path / "flows/events.py").read_text()
    repo.commit("events: oops", {"flows/events.py": flow.replace("def event_pipeline(", "def (")})
    [result] = engine.sync()
    assert result.publish_error is None
    assert deployment(server, "event-pipeline/push-hourly")["version"] == f"gitdags v1 {head[:12]}"

    text = (repo.path / "prefect.yaml").read_text().replace("batch_size: 500\n", "batch_size: 50\n")
    fixed = repo.commit(
        "hourly: smaller; events: fixed", {"prefect.yaml": text, "flows/events.py": flow}
    )
    [result] = engine.sync()
    assert result.publish_error is None
    hourly = deployment(server, "event-pipeline/push-hourly")
    # the fix changed the code of both deployments; only they are sent, each once
    assert hourly["version"] == f"gitdags v3 {fixed[:12]}"
    assert hourly["parameters"]["batch_size"] == 50
    assert engine.publisher.prefect.last["applied"] == 2

    engine.rollback("event-pipeline/push-hourly", to="1", reason="too slow")
    hourly = deployment(server, "event-pipeline/push-hourly")
    assert hourly["version"] == f"gitdags v1 {head[:12]}"
    assert hourly["parameters"]["batch_size"] == 500
    assert engine.publisher.prefect.last == {"applied": 1, "removed": 0, "failed": {}}

    engine.pause("event-pipeline/push-backfill", reason="quiet week")
    assert deployment(server, "event-pipeline/push-backfill")["paused"] is True
    engine.resume("event-pipeline/push-backfill")
    assert deployment(server, "event-pipeline/push-backfill")["paused"] is False

    text = (repo.path / "prefect.yaml").read_text()
    cut = text.index("  - name: push-backfill")
    repo.commit("retire the backfill", {"prefect.yaml": text[:cut]})
    [result] = engine.sync()
    assert result.publish_error is None
    assert deployment(server, "event-pipeline/push-backfill") is None
    assert engine.publisher.prefect.last == {"applied": 0, "removed": 1, "failed": {}}


def test_sandboxed_tier_loads_flows_with_prefects_loader(
    tmp_path: Path, repo: GitRepo, make_engine
) -> None:
    sample(repo, "load")
    engine: SyncEngine = make_engine(
        source(repo, "load", python="prefect", prefect_python=str(prefect_python())),
        deploy_dir=tmp_path / "deploy",
    )
    [result] = engine.sync()
    assert result.error is None and result.issues == ()
    good = (repo.path / "common/batching.py").read_text()

    # statically fine, but it fails when Prefect imports it
    repo.commit("batching: a new dependency", {"common/batching.py": "import kafka_magic\n" + good})
    [result] = engine.sync()
    found = {(i.file, i.code) for i in result.issues}
    assert ("prefect.yaml", "GD402") in found and ("common/batching.py", "GD409") in found
    assert "No module named 'kafka_magic'" in " ".join(i.message for i in result.issues)
    assert {d.status for d in engine.list_dags() if "/" in d.dag_id} == {"invalid"}
    assert (tmp_path / "deploy/current/common/batching.py").read_text() == good

    # a flow made at import time by a factory: the syntax tree sees no @flow there, Prefect's
    # loader does, and its parameter schema lacks the batch_size the deployments pass
    flow = (repo.path / "flows/events.py").read_text().replace(
        "def event_pipeline(", "def _old_pipeline("
    ) + (
        "\n\ndef _make():\n"
        "    def pipeline(source: str, size: int = 1000) -> int:\n"
        "        return size\n\n"
        "    return flow(name='event-pipeline')(pipeline)\n\n\n"
        "event_pipeline = _make()\n"
    )
    repo.commit("events: built at import", {"flows/events.py": flow, "common/batching.py": good})
    [result] = engine.sync()
    found = {(i.code, i.location) for i in result.issues}
    assert ("GD103", "deployments.0.parameters") in found
    assert ("GD110", "deployments.0.entrypoint") not in found  # the loader found the flow
    messages = [i.message for i in result.issues if i.code == "GD103"]
    assert "parameter schema Prefect builds for flow 'event-pipeline'" in messages[0]


def api_post(api: str, path: str, body: dict) -> dict | list:
    request = urllib.request.Request(
        f"{api}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def run_to_end(api: str, dag_id: str, timeout: float = 180) -> tuple[str, str]:
    """Start a flow run of a deployment and wait for its end: (final state, its logs)."""
    found = deployment(api, dag_id)
    assert found is not None
    run = api_post(api, f"/deployments/{found['id']}/create_flow_run", {})
    deadline = time.monotonic() + timeout
    while True:
        state = api_get(api, f"/flow_runs/{run['id']}")["state"]["type"]  # type: ignore[index]
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        assert time.monotonic() < deadline, f"flow run still {state} after {timeout}s"
        time.sleep(0.5)  # polling the run's state: the event is its answer
    while True:  # the run's logs arrive after its state: wait for its last line
        logs = api_post(api, "/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}})
        text = "\n".join(entry["message"] for entry in logs)  # type: ignore[union-attr]
        if "Finished in state" in text or time.monotonic() > deadline:
            return state, text
        time.sleep(0.5)


def test_a_worker_runs_the_last_good_code_from_the_served_branch(
    tmp_path: Path, repo: GitRepo, make_engine, server: str
) -> None:
    served = tmp_path / "served.git"
    sample(repo, "run")
    text = (repo.path / "prefect.yaml").read_text()
    text = text.replace("https://git.example.com/data/served.git", f"file://{served}")
    flow = (repo.path / "flows/events.py").read_text()
    good = flow.replace('print(f"loaded', 'print(f"v2 loaded')
    repo.commit("serve from gitdags", {"prefect.yaml": text, "flows/events.py": good})
    engine: SyncEngine = make_engine(
        source(repo, "run"),
        git_repo=served,
        prefect=PrefectSettings(server, prefect_python()),
    )
    [result] = engine.sync()
    assert result.publish_error is None, result.publish_error
    repo.commit(
        "events: oops", {"flows/events.py": good.replace("return loaded", "return loaded)")}
    )
    [result] = engine.sync()
    assert {d.status for d in engine.list_dags() if "/" in d.dag_id} == {"invalid"}

    python = prefect_python()
    home = tmp_path / "worker"
    home.mkdir()
    log = open(home / "worker.log", "w")  # noqa: SIM115  (open while the worker runs)
    worker = subprocess.Popen(
        [
            str(python.parent / "prefect"),
            "worker",
            "start",
            "--pool",
            "default-pool",
            "--type",
            "process",
        ],
        env={**prefect_env(home, server), "PATH": f"{python.parent}:{os.environ['PATH']}"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=home,
    )
    try:
        state, logs = run_to_end(server, "event-pipeline/run-hourly")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        log.close()
    assert state == "COMPLETED", (home / "worker.log").read_text()[-3000:]
    assert "v2 loaded 500 events from clickstream" in logs


def test_validate_loads_flows_with_prefect_python(tmp_path: Path) -> None:
    """`gitdags validate --prefect-python`: offline, Prefect's loader in the sandbox."""
    from typer.testing import CliRunner

    from gitdags.cli import app

    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    python = str(prefect_python())
    runner = CliRunner()
    done = runner.invoke(app, ["validate", str(project), "--prefect-python", python])
    assert done.exit_code == 0, done.output
    assert "0 errors" in done.output
    helper = project / "common" / "batching.py"
    helper.write_text("import kafka_magic\n" + helper.read_text())
    done = runner.invoke(
        app, ["validate", str(project), "--prefect-python", python, "--format", "github"]
    )
    assert done.exit_code == 1
    lines = done.output.splitlines()
    assert len(lines) == 2 and all(line.startswith("::error") for line in lines), done.output
    assert "title=GD402::Deployment 'hourly': Prefect cannot load" in lines[0]
    assert "No module named 'kafka_magic'" in lines[0]
