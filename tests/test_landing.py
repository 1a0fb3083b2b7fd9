"""Has my commit landed? gitdags asks a real Airflow 3 (api-server and dag-processor, started
once for this module on 127.0.0.1) what it parsed of each served DAG: through the deploy
folder (a LocalDagBundle) and through the served branch (a GitDagBundle), side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gitdags.cli import app
from tests.airflow_server import PASSWORD, USER, AirflowServer
from tests.conftest import GitRepo, free_port, git
from tests.test_airflow import airflow_python
from tests.test_daemon import until

pytestmark = pytest.mark.xdist_group("airflow-api")  # one Airflow for the module, one worker


def dag_file(dag_id: str, *tasks: str, tail: str = "") -> str:
    body = "".join(f'    EmptyOperator(task_id="{t}")\n' for t in tasks)
    return (
        "from airflow.sdk import DAG\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n\n"
        f'with DAG("{dag_id}", schedule=None):\n{body}{tail}'
    )


class Setup:
    """One gitdags (its repository, config and database) that an Airflow consumer reads."""

    def __init__(self, root: Path, name: str, serve: str) -> None:
        self.root = root / name
        self.repo = GitRepo(self.root / "repo")
        self.config = self.root / "config.toml"
        self.serve = serve
        self.url = ""

    def write_config(self, url: str, daemon: str = "") -> None:
        self.url = url
        self.config.write_text(
            f'[state]\ndatabase = "state.db"\n[daemon]\n{daemon}\n'
            f"[publish]\n{self.serve}\n"
            f'[[sources]]\nname = "main"\nurl = "{self.repo.path}"\ninclude = ["**/*.py"]\n'
            f'[[consumers]]\nname = "airflow"\napi_url = "{url}"\nusername = "{USER}"\n'
            'interval = "2s"\nmissing_after = "2m"\n'
        )

    def run(self, *args: str) -> tuple[int, str, str]:
        env = {"GITDAGS_CONSUMERS_AIRFLOW_PASSWORD": PASSWORD}
        result = CliRunner().invoke(app, ["--config", str(self.config), *args], env=env)
        return result.exit_code, result.stdout, result.stderr

    def json(self, *args: str) -> object:
        code, out, err = self.run(*args, "--json")
        assert code == 0, err
        return json.loads(out)

    def push(self, files: dict[str, str], message: str = "change") -> str:
        sha = self.repo.commit(message, files)
        code, _out, err = self.run("sync")
        assert code == 0, err
        return sha


class World:
    def __init__(self, root: Path) -> None:
        self.folder = Setup(root, "folder", f'deploy_dir = "{root / "deploy"}"')
        self.branch = Setup(root, "branch", f'git_repo = "{root / "served.git"}"')
        for setup, dag_id in ((self.folder, "land_folder"), (self.branch, "land_branch")):
            setup.write_config("http://127.0.0.1:1")  # the port comes with the server
            setup.push({f"{dag_id}.py": dag_file(dag_id, "a")}, "first")
        bundles = [
            {
                "name": "dags-folder",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(root / "deploy" / "current"), "refresh_interval": 2},
            },
            {
                "name": "served",
                "classpath": "airflow.providers.git.bundles.git.GitDagBundle",
                "kwargs": {
                    "tracking_ref": "served/all",
                    "repo_url": str(root / "served.git"),
                    "refresh_interval": 2,
                    "git_conn_id": "gitdags_served",
                },
            },
        ]
        self.airflow = AirflowServer(airflow_python(), root / "airflow-home", bundles)
        self.airflow.env["AIRFLOW_CONN_GITDAGS_SERVED"] = json.dumps(
            {"conn_type": "git", "host": str(root / "served.git")}
        )
        for setup in (self.folder, self.branch):
            setup.write_config(self.airflow.url)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    found = World(tmp_path_factory.mktemp("landing"))
    found.airflow.start()
    try:
        yield found
    finally:
        found.airflow.stop()


def states(setup: Setup) -> dict[str, dict[str, object]]:
    listed = setup.json("list")
    assert isinstance(listed, list)
    return {d["dag_id"]: d["consumers"].get("airflow", {}) for d in listed}


def test_a_push_lands_from_the_deploy_folder(world: World) -> None:
    setup = world.folder
    sha = setup.push({"land_folder.py": dag_file("land_folder", "a", "b")}, "add b")
    code, out, err = setup.run("wait", "--timeout", "2m")
    assert code == 0, (out, err, world.airflow.logs())
    assert "landed" in out and sha[:12] in out
    state = states(setup)["land_folder"]
    assert state["state"] == "landed" and state["version"] == 2
    assert state["bundle_version"] is None and state["parsed_at"]


def test_a_push_lands_through_the_served_branch_bundle(world: World) -> None:
    setup = world.branch
    setup.push({"land_branch.py": dag_file("land_branch", "a", "b")}, "add b")
    code, out, err = setup.run("wait", "--timeout", "2m")
    assert code == 0, (out, err, world.airflow.logs())
    served = world.folder.root.parent / "served.git"
    tip = git(served, "--git-dir", str(served), "rev-parse", "served/all")
    state = states(setup)["land_branch"]
    assert state["state"] == "landed" and state["bundle_version"] == tip


def test_a_hostile_commit_stays_landed_on_the_last_good_version(world: World) -> None:
    setup = world.folder
    setup.push({"land_hostile.py": dag_file("land_hostile", "a")}, "good")
    assert setup.run("wait", "--timeout", "2m")[0] == 0
    sha = setup.push({"land_hostile.py": dag_file("land_hostile", "a") + "def broken(:\n"}, "bad")
    code, _out, err = setup.run("wait", "--commit", sha, "--timeout", "2m")
    assert code == 1 and "land_hostile is invalid in gitdags" in err, err
    setup.run("wait", "land_hostile", "--timeout", "2m")  # the consumer asked again
    state = states(setup)["land_hostile"]
    assert state["state"] == "landed" and state["version"] == 1


def test_a_served_file_airflow_cannot_import_is_broken(world: World) -> None:
    setup = world.folder
    tail = '\nimport json\njson.loads("{not json")\n'  # fails only when it runs
    sha = setup.push({"land_broken.py": dag_file("land_broken", "a", tail=tail)}, "broken")
    code, _out, err = setup.run("wait", "--commit", sha, "--timeout", "2m")
    assert code == 1 and "airflow cannot import it" in err and "JSONDecodeError" in err, err
    state = states(setup)["land_broken"]
    assert state["state"] == "broken" and "JSONDecodeError" in str(state["error"])
    status = setup.json("status")
    assert isinstance(status, list)
    assert status[0]["consumers"]["airflow"]["broken"] >= 1


def test_wait_times_out_on_a_commit_not_synced(world: World) -> None:
    setup = world.folder
    sha = setup.repo.commit("not synced", {"land_later.py": dag_file("land_later", "a")})
    started = time.monotonic()
    code, _out, err = setup.run("wait", "--commit", sha, "--timeout", "2s")
    assert code == 2 and "timed out" in err and "not synced yet" in err, err
    assert time.monotonic() - started < 60
    assert setup.run("sync")[0] == 0  # the next test starts from a synced source


def test_pause_reaches_airflow_and_a_pause_there_shows_here(world: World) -> None:
    setup = world.folder
    setup.push({"land_pause.py": dag_file("land_pause", "a")}, "pausable")
    assert setup.run("wait", "--timeout", "2m")[0] == 0
    code, out, err = setup.run("pause", "land_pause", "--reason", "maintenance")
    assert code == 0 and "paused in airflow too" in out, (out, err)
    assert world.airflow.get("/dags/land_pause")["is_paused"] is True
    audit = setup.json("audit", "land_pause")
    assert isinstance(audit, list)
    assert audit[0]["detail"]["consumers"]["land_pause"]["airflow"] == {"is_paused": True}
    code, out, err = setup.run("resume", "land_pause")
    assert code == 0 and world.airflow.get("/dags/land_pause")["is_paused"] is False
    # someone pauses land_folder in Airflow's UI: gitdags shows it, and leaves it so
    request = urllib.request.Request(
        f"{world.airflow.url}/api/v2/dags/land_folder?update_mask=is_paused",
        data=b'{"is_paused": true}',
        method="PATCH",
        headers={
            "Authorization": f"Bearer {world.airflow.token()}",
            "Content-Type": "application/json",
        },
    )
    urllib.request.urlopen(request, timeout=10).close()
    setup.run("wait", "land_folder", "--timeout", "2m")
    assert states(setup)["land_folder"]["paused"] is True
    assert world.airflow.get("/dags/land_folder")["is_paused"] is True


def test_the_daemon_asks_after_each_change_and_says_it_in_healthz_and_metrics(
    world: World,
) -> None:
    setup = world.folder
    port = free_port()
    setup.write_config(world.airflow.url, f'listen = "127.0.0.1:{port}"')
    env = {**os.environ, "GITDAGS_CONSUMERS_AIRFLOW_PASSWORD": PASSWORD}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "gitdags", "--config", str(setup.config), "daemon"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        health = until(lambda: _get(port, "/healthz").get("consumers"))
        assert health[0]["name"] == "airflow" and health[0]["error"] is None
        setup.repo.commit("daemon", {"land_daemon.py": dag_file("land_daemon", "a")})
        until(lambda: states(setup).get("land_daemon", {}).get("state") == "landed", 120)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        text = metrics.decode()
        assert 'gitdags_consumer_dags{consumer="airflow",state="landed"}' in text
        assert 'gitdags_consumer_lag_seconds{consumer="airflow"}' in text
        landed = _get(port, "/healthz")["consumers"][0]["counts"]["landed"]
        assert landed >= 2
    finally:
        daemon.terminate()
        _out, err = daemon.communicate(timeout=30)
        setup.write_config(world.airflow.url)
    assert daemon.returncode == 0, err.decode()[-2000:]


def _get(port: int, path: str) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return {}


async def test_the_console_shows_what_airflow_runs(world: World) -> None:
    from gitdags.config import load_settings
    from gitdags.engine import build_engine
    from gitdags.tui.app import GitdagsApp
    from tests.test_tui import on_screen, settle

    setup = world.folder
    assert setup.run("wait", "land_folder", "--timeout", "2m")[0] == 0
    engine = build_engine(load_settings(setup.config), readonly=True)
    app = GitdagsApp(engine)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot)
            lines = await on_screen(pilot, lambda ls: any("land_folder" in x for x in ls))
            header = next(x for x in lines if "DAG" in x and "status" in x)
            row = next(x for x in lines if "land_folder" in x)
            assert "landed" in header and "landed" in row, "\n".join(lines)
            await pilot.press("slash", *"land_folder", "enter", "enter")
            lines = await on_screen(pilot, lambda ls: any("in airflow:" in x for x in ls))
            said = next(x for x in lines if "in airflow:" in x)
            assert "landed" in said and "v2" in said and "parsed" in said, said
    finally:
        engine.close()
