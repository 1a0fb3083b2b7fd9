"""Dagster code locations against real Dagster: the sandboxed tier loads the location with
Dagster 1.13 (from GITDAGS_DAGSTER_VENV, default <repo>/.venv-dagster, built once), and a real
dagster-webserver on 127.0.0.1 serves the deploy folder as a code location, reloaded by each
publish through its GraphQL API; pause and resume reach its schedules."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitdags.config import DagsterSettings, SourceConfig
from gitdags.engine import SyncEngine, build_engine
from gitdags.orchestrators.dagster.graphql import Webserver
from tests.conftest import LASTING_SERVERS, SAMPLE, GitRepo, free_port, settings_for
from tests.test_sync import statuses
from tests.venvs import venv_python

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dagster==1.13.28", "dagster-webserver==1.13.28")
TRAINING = (SAMPLE / "dagster" / "pipeline" / "training.py").read_text()
INGEST = (SAMPLE / "dagster" / "pipeline" / "ingest.py").read_text()
JOBS = (SAMPLE / "dagster" / "pipeline" / "jobs.py").read_text()

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap"),
    pytest.mark.xdist_group("dagster"),  # one webserver for the module, one worker
]


def dagster_python() -> Path:
    """The python of a venv with Dagster, built once."""
    return venv_python("Dagster", "GITDAGS_DAGSTER_VENV", ".venv-dagster", PACKAGES)


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 120) -> None:
    """Until `url` answers 200 (the webserver is up), or the process ended."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver ended: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)  # polling a server that is starting: the event is its first answer
    pytest.fail(f"dagster-webserver did not answer in {seconds} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def dagster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A dagster-webserver over <tmp>/deploy/current, as the README's workspace.yaml says."""
    python = dagster_python()
    tmp = tmp_path_factory.mktemp("dagster")
    home = tmp / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    deploy = tmp / "deploy"
    (tmp / "workspace.yaml").write_text(
        "load_from:\n"
        "  - python_file:\n"
        f"      relative_path: {deploy}/current/definitions.py\n"
        f"      working_directory: {deploy}/current\n"
        "      location_name: ml\n"
        "  - python_file:\n"
        f"      relative_path: {tmp}/static-deploy/current/definitions.py\n"
        f"      working_directory: {tmp}/static-deploy/current\n"
        "      location_name: ml_static\n"
    )
    port = free_port()
    log = tmp / "webserver.log"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(python.parent / "dagster-webserver"),
                *("-w", str(tmp / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its code servers are its children: the group ends
        )
    LASTING_SERVERS.add(proc.pid)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/server_info", proc, log)
        yield {"url": url, "deploy": deploy, "python": python, "tmp": tmp, "log": log}
    finally:
        LASTING_SERVERS.discard(proc.pid)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def world(dagster: dict[str, Any]) -> Iterator[tuple[SyncEngine, GitRepo, Webserver]]:
    repo = GitRepo(dagster["tmp"] / "repo")
    shutil.copytree(SAMPLE / "dagster", repo.path / "dagster")
    repo.commit("the ML location")
    source = SourceConfig(  # type: ignore[arg-type]
        name="ml",
        url=str(repo.path),
        subdir="dagster",
        include=("**/*.py",),
        orchestrator="dagster",
        python="dagster",
        dagster_python=str(dagster["python"]),
    )
    settings = settings_for(
        dagster["tmp"],
        source,
        deploy_dir=dagster["deploy"],
        dagster=DagsterSettings(dagster["url"], "ml"),
    )
    engine = build_engine(settings)
    try:
        (result,) = engine.sync()
        assert result.error is None and result.publish_error is None, result
        yield engine, repo, Webserver(dagster["url"])
    finally:
        engine.close()


@pytest.fixture(scope="module")
def static_world(dagster: dict[str, Any]) -> Iterator[tuple[SyncEngine, GitRepo, Webserver]]:
    """The location ml_static of the same webserver, from a source with python = "static"."""
    repo = GitRepo(dagster["tmp"] / "static-repo")
    shutil.copytree(SAMPLE / "dagster", repo.path / "dagster")
    repo.commit("the ML location")
    source = SourceConfig(  # type: ignore[arg-type]
        name="ml_static",
        url=str(repo.path),
        subdir="dagster",
        include=("**/*.py",),
        orchestrator="dagster",
    )
    settings = settings_for(
        dagster["tmp"] / "static",
        source,
        deploy_dir=dagster["tmp"] / "static-deploy",
        dagster=DagsterSettings(dagster["url"]),  # the location named after the source
    )
    engine = build_engine(settings)
    try:
        sync(engine)
        yield engine, repo, Webserver(dagster["url"])
    finally:
        engine.close()


def sync(engine: SyncEngine) -> Any:
    (result,) = engine.sync()
    assert result.error is None and result.publish_error is None, result
    return result


def test_after_a_push_the_location_loads_with_the_new_job(world) -> None:
    engine, repo, web = world
    loaded, message, jobs = web.location("ml")
    assert loaded, message
    assert "train_model" in jobs
    ingest_job = (
        'from dagster import define_asset_job\n\ningest_job = define_asset_job("ingest_job", '
        'selection="group:ingest")\n'
    )
    defs = (SAMPLE / "dagster" / "definitions.py").read_text()
    defs = defs.replace(
        "from pipeline.jobs import",
        "from pipeline.ingest_job import ingest_job\nfrom pipeline.jobs import",
    ).replace("jobs=[train_model]", "jobs=[train_model, ingest_job]")
    repo.commit(
        "an ingest job",
        {"dagster/pipeline/ingest_job.py": ingest_job, "dagster/definitions.py": defs},
    )
    result = sync(engine)
    assert ("ingest_job", "added") in {(c.dag_id, c.change) for c in result.changes}
    # the webserver never watches files: the new job is there because the publish reloaded it
    loaded, message, jobs = web.location("ml")
    assert loaded, message
    assert {"ingest_job", "train_model"} <= set(jobs)
    assert statuses(engine)["ingest_job"] == "active"


def test_a_module_that_breaks_the_location_is_held_back(world, dagster) -> None:
    engine, repo, web = world
    broken = TRAINING + '\nraise RuntimeError("the feature store is down")\n'
    also = INGEST.replace('e["clicks"] > 0', 'e["clicks"] > 1')
    repo.commit(
        "two modules, one broken",
        {"dagster/pipeline/training.py": broken, "dagster/pipeline/ingest.py": also},
    )
    result = sync(engine)
    issues = [(i.code, i.file, i.line) for i in result.issues if i.severity == "error"]
    line = len(TRAINING.splitlines()) + 2  # the raise, after a blank line
    assert issues == [("GD402", "dagster/pipeline/training.py", line)]
    assert "the feature store is down" in result.issues[0].message
    current = dagster["deploy"] / "current" / "pipeline"
    assert (current / "training.py").read_text() == TRAINING  # the last good version
    assert (current / "ingest.py").read_text() == also  # the good change is served
    loaded, message, jobs = web.location("ml")
    assert loaded, message  # Dagster never sees the broken module
    assert "train_model" in jobs


def test_a_load_error_that_names_no_file_holds_back_the_changed_files(world, dagster) -> None:
    """A selection the syntax tree cannot resolve names an asset that does not exist: Dagster
    fails inside its own code; the changed file is held back all the same."""
    engine, repo, web = world
    bad = JOBS.replace(
        'AssetSelection.groups("ml")',
        'AssetSelection.assets("nowhere") - AssetSelection.assets("model_report")',
    )
    repo.commit("a selection of nothing", {"dagster/pipeline/jobs.py": bad})
    result = sync(engine)
    (issue,) = [i for i in result.issues if i.severity == "error"]
    assert (issue.code, issue.file) == ("GD402", "dagster/pipeline/jobs.py")
    assert "nowhere" in issue.message and "every file this sync changed is held" in issue.message
    served = (dagster["deploy"] / "current" / "pipeline" / "jobs.py").read_text()
    assert "nowhere" not in served
    loaded, message, _jobs = web.location("ml")
    assert loaded, message


def test_pause_and_resume_reach_the_jobs_schedule(world) -> None:
    engine, _repo, web = world
    state = lambda: schedule_state(web)  # noqa: E731
    web.set_running("ml", {"train_model"}, True)
    assert state() == "RUNNING"
    result = engine.pause("train_model", reason="maintenance")
    assert result.changes
    assert state() == "STOPPED"
    assert statuses(engine)["train_model"] == "paused"
    loaded, message, _jobs = web.location("ml")
    assert loaded, message  # the paused job's file stays in the location
    engine, repo = world[0], world[1]
    repo.commit("while paused", {"dagster/pipeline/ingest.py": INGEST + "\n# later\n"})
    sync(engine)  # the location reloaded: the job stays stopped
    assert state() == "STOPPED"
    engine.resume("train_model")
    assert state() == "RUNNING"
    web.set_running("ml", {"train_model"}, False)


def schedule_state(web: Webserver) -> str:
    from gitdags.orchestrators.dagster.graphql import REPOSITORY, TRIGGERS

    selector = {"repositoryName": REPOSITORY, "repositoryLocationName": "ml"}
    found = web.query(TRIGGERS, {"sel": selector})["repositoryOrError"]
    (schedule,) = [s for s in found["schedules"] if s["pipelineName"] == "train_model"]
    return str(schedule["scheduleState"]["status"])


def test_the_specs_hold_what_dagster_found(world) -> None:
    """A selection the syntax tree cannot resolve: the job's assets are Dagster's own."""
    engine, repo, _web = world
    spec = engine.show("train_model").spec
    assert spec["loaded_by"] == "dagster 1.13.28"
    assert {t["id"] for t in spec["tasks"]} == {"features", "model", "model_report"}
    jobs = JOBS.replace(
        'AssetSelection.groups("ml")',
        'AssetSelection.groups("ml") - AssetSelection.assets("model_report")',
    )
    repo.commit("no report in the job", {"dagster/pipeline/jobs.py": jobs})
    sync(engine)
    spec = engine.show("train_model").spec
    assert spec["selection"]["resolved"] is False  # what the syntax tree says
    assert {t["id"]: t["depends_on"] for t in spec["tasks"]} == {
        "features": [],
        "model": ["features"],
    }
    assert spec["schedules"] == [{"name": "train_model_schedule", "cron": "0 3 * * *"}]
    # the report no job selects now: in its group's DAG
    assert "model_report" in {t["id"] for t in engine.show("assets.ml").spec["tasks"]}


def test_a_location_that_does_not_load_is_a_publish_error(static_world) -> None:
    """The static tier cannot see an error raised at import: the webserver's reload does, and
    the sync says so in one sentence (the next sync tries again)."""
    engine, repo, web = static_world
    loaded, message, _jobs = web.location("ml_static")
    assert loaded, message
    broken = TRAINING + '\nraise RuntimeError("the feature store is down")\n'
    repo.commit("broken at import", {"dagster/pipeline/training.py": broken})
    (result,) = engine.sync()
    assert result.error is None and not result.issues
    assert result.publish_error is not None
    assert "Dagster cannot load code location 'ml_static'" in result.publish_error
    assert "the feature store is down" in result.publish_error
    (status,) = engine.status()
    assert "the feature store is down" in status.publish["dagster"]["error"]  # status says it
    repo.commit("fixed", {"dagster/pipeline/training.py": TRAINING})
    sync(engine)
    loaded, message, _jobs = web.location("ml_static")
    assert loaded, message
    (status,) = engine.status()
    assert status.publish["dagster"]["error"] is None
