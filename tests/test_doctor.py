"""`gitdags backup` and `gitdags doctor`: real databases, mirrors and deploy folders, broken on
purpose, checked, repaired where git and the database can make them again."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from gitdags.cli import app
from tests.conftest import GitRepo, dag_yaml
from tests.test_hostile import corrupt_pages


def world(tmp_path: Path, repo: GitRepo) -> tuple[Path, CliRunner]:
    repo.commit("one", {f"d{i}.yaml": dag_yaml(f"d{i}") for i in range(30)})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{tmp_path / "state" / "g.db"}"\n'
        f'[publish]\ndeploy_dir = "{tmp_path / "deploy"}"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    runner = CliRunner()
    assert runner.invoke(app, ["--config", str(config), "sync"]).exit_code == 0
    return config, runner


def doctor(runner: CliRunner, config: Path, *more: str) -> tuple[int, dict[str, dict]]:
    done = runner.invoke(app, ["--config", str(config), "doctor", "--json", *more])
    return done.exit_code, {f["check"]: f for f in json.loads(done.stdout)}


def test_a_backup_is_a_whole_copy_taken_online(tmp_path: Path, repo: GitRepo) -> None:
    config, runner = world(tmp_path, repo)
    from gitdags.config import load_settings
    from gitdags.engine import build_engine

    engine = build_engine(load_settings(str(config)))  # a writer holds the database open
    try:
        with engine.store.transaction():
            done = runner.invoke(app, ["--config", str(config), "backup", str(tmp_path / "b.db")])
    finally:
        engine.close()
    assert done.exit_code == 0, done.output
    assert "integrity check ok" in done.stdout
    copy = tmp_path / "copy.toml"
    copy.write_text(f'[state]\ndatabase = "{tmp_path / "b.db"}"\n')
    listed = json.loads(runner.invoke(app, ["--config", str(copy), "list", "--json"]).stdout)
    assert len(listed) == 30
    done = runner.invoke(app, ["--config", str(config), "backup", str(tmp_path / "b.db")])
    assert done.exit_code == 1 and "exists" in done.stderr  # never overwrites


def test_doctor_finds_and_repairs_a_broken_mirror_and_deploy_folder(
    tmp_path: Path, repo: GitRepo
) -> None:
    config, runner = world(tmp_path, repo)
    code, found = doctor(runner, config)
    assert code == 0 and all(f["ok"] for f in found.values()), found
    mirror = tmp_path / "state" / "g.db.mirrors" / "main.git"
    for pack in (mirror / "objects").rglob("*"):
        if pack.is_file():
            pack.unlink()  # every object gone
    current = (tmp_path / "deploy" / "current").resolve()
    (current / "d3.json").unlink()
    code, found = doctor(runner, config)
    assert code == 1
    assert not found["mirror main"]["ok"] and "--repair" in found["mirror main"]["detail"]
    assert (
        not found["deploy folder"]["ok"]
        and "lacks 1 files (d3.json)" in found["deploy folder"]["detail"]
    )
    code, found = doctor(runner, config, "--repair")
    assert code == 0, found
    assert found["mirror main"]["repaired"] and found["deploy folder"]["repaired"]
    assert doctor(runner, config)[0] == 0


def test_a_damaged_database_is_found_and_the_daemon_will_not_write_to_it(
    tmp_path: Path, repo: GitRepo
) -> None:
    config, runner = world(tmp_path, repo)
    database = tmp_path / "state" / "g.db"
    corrupt_pages(database, "versions")
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    code, found = doctor(runner, config)
    assert code == 1 and list(found) == ["database"]
    assert "restore it from a backup" in found["database"]["detail"]
    daemon = subprocess.run(
        [sys.executable, "-m", "gitdags", "--config", str(config), "daemon"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert daemon.returncode == 1
    assert "is damaged" in daemon.stderr and "will not write to it" in daemon.stderr
    assert "Traceback" not in daemon.stderr
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before  # never overwritten
