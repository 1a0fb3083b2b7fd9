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


def test_doctor_refuses_a_missing_database_and_creates_none(tmp_path: Path) -> None:
    missing = tmp_path / "state" / "mistyped.db"
    config = tmp_path / "config.toml"
    config.write_text(f'[state]\ndatabase = "{missing}"\n')
    for more in ([], ["--repair"], ["--json"]):
        done = CliRunner().invoke(app, ["--config", str(config), "doctor", *more])
        assert done.exit_code == 1, done.output
        assert done.stderr.strip() == (
            f"error: Database {missing} does not exist; run `gitdags sync` or `gitdags demo` first."
        )
        assert "integrity check ok" not in done.output
    assert not missing.exists() and not missing.parent.exists()


def files_of(current: Path) -> list[str]:
    """The served files of a generation (gitdags' manifest aside)."""
    found = [str(p.relative_to(current)) for p in current.rglob("*") if p.is_file()]
    return [p for p in found if p != "manifest.json"]


def python_world(tmp_path: Path, repo: GitRepo, *more: str) -> tuple[Path, CliRunner]:
    """A source with YAML DAGs, an Airflow DAG file and a helper module, served to a deploy
    folder (and `more` config lines)."""
    airflow_dag = "from airflow.sdk import DAG\nfrom common.util import X\n\nDAG(dag_id='py')\n"
    repo.commit(
        "one",
        {
            **{f"d{i}.yaml": dag_yaml(f"d{i}") for i in range(3)},
            "py_dag.py": airflow_dag,
            "common/__init__.py": "",
            "common/util.py": "X = 1\n",
        },
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{tmp_path / "state" / "g.db"}"\n'
        f'[publish]\ndeploy_dir = "{tmp_path / "deploy"}"\n' + "".join(more) + "\n"
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
        'include = ["**/*.yaml", "**/*.py"]\n'
    )
    runner = CliRunner()
    done = runner.invoke(app, ["--config", str(config), "sync"])
    assert done.exit_code == 0, done.output
    return config, runner


def test_doctor_checks_every_file_s_content_names_extras_and_repairs_both(
    tmp_path: Path, repo: GitRepo
) -> None:
    config, runner = python_world(tmp_path, repo)
    current = (tmp_path / "deploy" / "current").resolve()
    assert doctor(runner, config)[0] == 0
    served = sorted(files_of(current))
    originals = {p: (current / p).read_bytes() for p in served}
    # edited in place, the same size: only the content says so
    (current / "d1.json").write_bytes(originals["d1.json"].replace(b'"d1"', b'"x1"'))
    (current / "common" / "util.py").write_text("X = 2\n")
    (current / "planted.py").write_text("import os\n")  # a DAG file nobody served
    outside = tmp_path / "d2.json"
    outside.write_bytes(originals["d2.json"])
    (current / "d2.json").unlink()
    (current / "d2.json").symlink_to(outside)  # the same bytes, through a link
    (current / "common" / "evil").mkdir()
    (current / "common" / "evil" / "x.py").write_text("")
    code, found = doctor(runner, config)
    assert code == 1
    detail = found["deploy folder"]["detail"]
    assert "3 files changed since written (common/util.py, d1.json, d2.json)" in detail, detail
    assert "2 files it does not serve (common/evil, planted.py)" in detail, detail
    assert "`gitdags doctor --repair` rewrites it" in detail
    code, found = doctor(runner, config, "--repair")
    assert code == 0 and found["deploy folder"]["repaired"], found
    current = (tmp_path / "deploy" / "current").resolve()
    now = sorted(files_of(current))
    assert now == served  # nothing planted, nothing missing
    assert {p: (current / p).read_bytes() for p in now} == originals
    assert doctor(runner, config)[0] == 0


def test_doctor_checks_the_served_branches_against_the_deploy_folder(
    tmp_path: Path, repo: GitRepo
) -> None:
    from tests.conftest import git

    branches = tmp_path / "served.git"
    config, runner = python_world(tmp_path, repo, f'git_repo = "{branches}"\n')
    code, found = doctor(runner, config)
    assert code == 0 and found["served branches"]["ok"], found
    # someone commits to served/all: one file edited, one added
    work = tmp_path / "work"
    git(tmp_path, "clone", "--quiet", "--branch", "served/all", str(branches), str(work))
    (work / "common" / "util.py").write_text("X = 3\n")
    (work / "planted.py").write_text("import os\n")
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", "tamper")
    git(work, "push", "--quiet", "origin", "served/all")
    code, found = doctor(runner, config)
    assert code == 1
    detail = found["served branches"]["detail"]
    assert "served/all: files 1 differ (common/util.py) and 1 are not served (planted.py)" in (
        detail
    ), detail
    assert found["served branches"]["ok"] is False and found["deploy folder"]["ok"]
    code, found = doctor(runner, config, "--repair")
    assert code == 0 and found["served branches"]["repaired"], found
    listed = git(branches, "ls-tree", "-r", "--name-only", "served/all").split("\n")
    assert "planted.py" not in listed and "common/util.py" in listed
    assert git(branches, "show", "served/all:common/util.py") == "X = 1"
    assert doctor(runner, config)[0] == 0


def reader_python() -> tuple[str, str]:
    """An interpreter uid 65534 may run, and the PYTHONPATH that finds gitdags and its
    libraries (this one lives under root's home, often: then the system's of the same
    version)."""
    import os
    import sysconfig

    import pytest

    path = os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent), sysconfig.get_paths()["purelib"]]
    )
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    for python in (sys.executable, system):
        try:
            done = subprocess.run(
                [python, "-c", "import gitdags.cli"],
                user=65534,
                group=65534,
                extra_groups=[],
                env={"PYTHONPATH": path},
                cwd="/",
                capture_output=True,
            )
        except OSError:
            continue
        if done.returncode == 0:
            return python, path
    pytest.skip("no Python interpreter here that uid 65534 may run")


def test_doctor_run_by_a_reader_who_owns_nothing_finds_no_false_failure(repo: GitRepo) -> None:
    """A user who may read the state but owns none of it (uid 65534, nobody): git's
    `dubious ownership` is no damaged mirror, and what that user may not do is said plainly."""
    import os
    import shutil
    import tempfile

    import pytest

    if os.geteuid() != 0:
        pytest.skip("running doctor as another user needs root")
    base = Path(tempfile.mkdtemp(prefix="gitdags-reader-"))  # pytest's own tmp is 0700
    try:
        config, _runner = world(base, repo)
        subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)

        python, path = reader_python()

        def as_nobody(*more: str) -> tuple[int, dict[str, dict]]:
            done = subprocess.run(
                [python, "-m", "gitdags", "--config", str(config), "doctor", "--json", *more],
                capture_output=True,
                text=True,
                user=65534,
                group=65534,
                extra_groups=[],
                cwd=base,
                env={"PATH": os.environ["PATH"], "HOME": str(base), "PYTHONPATH": path},
                timeout=120,
            )
            assert "Traceback" not in done.stderr, done.stderr
            return done.returncode, {f["check"]: f for f in json.loads(done.stdout)}

        code, found = as_nobody()
        assert code == 0, found
        assert found["mirror main"]["detail"].endswith(": intact")
        assert found["database"]["ok"] and found["deploy folder"]["ok"]

        mirror = base / "state" / "g.db.mirrors" / "main.git"
        packs = sorted((mirror / "objects" / "pack").glob("*.pack"))
        loose = [
            p for p in (mirror / "objects").rglob("*") if p.is_file() and "pack" not in p.parts
        ]
        for object_file in packs + loose:
            object_file.unlink()  # damaged: the objects are gone
        code, found = as_nobody()
        assert code == 1
        detail = found["mirror main"]["detail"]
        assert "`gitdags doctor --repair`, run as root (this user, uid 65534, cannot write" in (
            detail
        ), detail
        code, found = as_nobody("--repair")  # not tried: said whom to ask, nothing removed
        assert code == 1 and found["mirror main"]["detail"] == detail
        assert (mirror / "HEAD").is_file()

        mirror.chmod(0o700)  # a mirror this user may not read: not "damaged"
        code, found = as_nobody()
        assert code == 1
        assert found["mirror main"]["detail"] == (
            f"{mirror}: this user (uid 65534) cannot read {mirror}; run `gitdags doctor` as "
            "root, who owns it, or give this user read access"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_doctor_says_which_files_an_older_gitdags_left_without_a_hash(
    tmp_path: Path, repo: GitRepo
) -> None:
    config, runner = world(tmp_path, repo)
    from gitdags.serve.deploy import manifest_path

    current = (tmp_path / "deploy" / "current").resolve()
    manifest = json.loads(manifest_path(current).read_text())
    for entry in manifest["dags"]:
        del entry["sha256"]  # as the manifest of a generation written before hashes were kept
    manifest_path(current).write_text(json.dumps(manifest))
    code, found = doctor(runner, config)
    assert code == 0, found
    assert (
        "(30 files written by an older gitdags have no content hash to check"
        in (found["deploy folder"]["detail"])
    )
    code, found = doctor(runner, config, "--repair")  # nothing wrong: nothing rewritten
    assert code == 0 and not found["deploy folder"]["repaired"]
