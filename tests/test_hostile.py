"""Hostile files: each is a coded error of its own file, through `validate` and through a real
sync where the other files still land (issue: one file must never stop a source)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitdags.checks.offline import check_paths
from tests.conftest import GitRepo, dag_yaml
from tests.test_sync import source, statuses

TASKS = "tasks: [{id: a, type: empty}]\n"
CORPUS = Path(__file__).parent / "data" / "hostile"
# Each file's name starts with the code it must get, or `ok` (valid, nothing served wrong).
CASES = sorted(p.name for p in CORPUS.iterdir())
INCLUDE = ("**/*.yaml", "**/*.yml", "**/*.json", "**/*.toml", "**/*.py")


def expected(name: str) -> str:
    return name.split("-")[0]


def codes_by_file(issues: list, prefix: str = "") -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for i in issues:
        found.setdefault(Path(i.file).name, set()).add((i.code, i.severity))
    return found  # type: ignore[return-value]


def check(name: str, found: set[tuple[str, str]]) -> None:
    code = expected(name)
    errors = {c for c, sev in found if sev == "error"}
    if code == "ok":
        assert not errors, (name, found)
    else:
        assert code in {c for c, _sev in found}, (name, found)


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("name", CASES)
def test_validate_gives_each_hostile_file_its_code(name: str) -> None:
    _files, issues = check_paths([str(CORPUS / name)])
    check(name, codes_by_file(issues).get(name, set()))


def test_hostile_files_never_stop_a_source(repo: GitRepo, make_engine) -> None:
    files = {f"dags/{name}": (CORPUS / name).read_bytes() for name in CASES}
    repo.commit("hostile and good", {**files, "dags/good.yaml": dag_yaml("good")})
    engine = make_engine(source(repo, include=INCLUDE))
    (result,) = engine.sync()
    assert result.error is None
    found = codes_by_file(list(result.issues))
    for name in CASES:
        check(name, found.get(name, set()))
    served = {d.dag_id for d in engine.served()}
    oks = {"good", "bom", "merged", "tdate", "unicode_dag", "esc", "wide", "net", "latin1_dag"}
    assert served == oks, served ^ oks  # nothing from a hostile file is served
    json.loads(json.dumps([d.to_dict() for d in engine.served()], allow_nan=False))
    repo.commit("more", {"dags/later.yaml": dag_yaml("later")})  # later commits still land
    (result,) = engine.sync()
    assert [(c.dag_id, c.change) for c in result.changes] == [("later", "added")]


def test_python_files_read_as_python_reads_them() -> None:
    """Each Python file of the corpus is an error exactly when a real interpreter (Airflow's,
    where it is installed) cannot compile it: coding declarations are honoured as Python does."""
    import os
    import subprocess
    import sys

    from gitdags.kinds import read

    venv = os.environ.get("GITDAGS_AIRFLOW_VENV")
    python = str(Path(venv) / "bin" / "python") if venv else sys.executable
    for name in (n for n in CASES if n.endswith(".py")):
        raw = (CORPUS / name).read_bytes()
        compiled = subprocess.run(
            [python, "-c", "import sys; compile(sys.stdin.buffer.read(), 'f', 'exec')"],
            input=raw,
            capture_output=True,
        )
        found = read(f"dags/{name}", raw)
        errors = [i for i in found.all_issues() if i.severity == "error"]
        assert bool(errors) == (compiled.returncode != 0), (name, errors, compiled.stderr)
        assert all(d.valid for d in found.dags) or not found.dags or errors, name


def test_every_parse_error_has_a_reason() -> None:
    from gitdags.formats import parse_error

    assert parse_error("a.yaml", None, "").message == (
        "The file cannot be parsed: the parser gave no reason."
    )
    _files, issues = check_paths([str(CORPUS)])
    for issue in issues:
        _head, colon, reason = issue.message.partition(": ")
        assert issue.message.strip() and not issue.message.rstrip(".").endswith(":"), issue
        assert reason.strip(" .") or not colon, issue


def test_a_dag_that_becomes_non_finite_keeps_its_last_good_version(
    repo: GitRepo, make_engine
) -> None:
    repo.commit("good", {"a.yaml": dag_yaml("a")})
    engine = make_engine(source(repo))
    engine.sync()
    repo.commit("inf", {"a.yaml": dag_yaml("a") + "params: {x: .inf}\n"})
    (result,) = engine.sync()
    assert [(c.dag_id, c.change) for c in result.changes] == [("a", "invalid")]
    assert engine.dag("a").served_version == 1
    exported = json.dumps([d.to_dict() for d in engine.served()], allow_nan=False)
    assert "Infinity" not in exported


def test_a_file_name_that_is_not_utf8_is_an_error_of_that_file(
    repo: GitRepo, make_engine, tmp_path: Path
) -> None:
    import os

    odd = os.fsdecode(b"caf\xe9.yaml")  # Latin-1 bytes: not UTF-8
    repo.commit("odd name", {"a.yaml": dag_yaml("a"), odd: dag_yaml("b")})
    engine = make_engine(source(repo))
    (result,) = engine.sync()
    assert result.error is None, result.error
    assert statuses(engine) == {"a": "active"}
    assert [(i.file, i.code) for i in result.issues] == [("caf\\xe9.yaml", "GD002")]
    repo.commit("edit", {"a.yaml": dag_yaml("a", "x", "y")})
    (result,) = engine.sync()
    assert result.error is None and [c.change for c in result.changes] == ["changed"]
    _files, issues = check_paths([str(repo.path)])
    assert [(Path(i.file).name, i.code) for i in issues] == [("caf\\xe9.yaml", "GD002")]


def test_a_mirror_replaced_by_a_file_is_made_again(repo: GitRepo, make_engine) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    engine = make_engine(source(repo))
    engine.sync()
    mirror = engine.settings.mirrors_dir / "main.git"
    import shutil

    shutil.rmtree(mirror)
    mirror.write_text("not a repository\n")
    repo.commit("two", {"b.yaml": dag_yaml("b")})
    (result,) = engine.sync()
    assert result.error is None, result.error
    assert statuses(engine) == {"a": "active", "b": "active"}


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 2 MiB tmpfs (mounting needs root; skipped otherwise), unmounted after the test."""
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "small"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_is_one_sentence_and_loses_nothing(
    tmp_path: Path, repo: GitRepo, small_disk: Path
) -> None:
    from gitdags.engine import build_engine
    from tests.conftest import settings_for

    database = small_disk / "gitdags.db"
    mirrors = tmp_path / "mirrors"  # the mirror lives on a roomy disk: the database fills up
    mirrors.mkdir()
    Path(f"{database}.mirrors").symlink_to(mirrors)
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    settings = settings_for(tmp_path, source(repo))
    settings = type(settings)(database=database, sources=settings.sources)
    engine = build_engine(settings)
    try:
        engine.sync()
        import os

        fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:  # take every free byte
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        many = {f"d{i}.yaml": dag_yaml(f"d{i}", *[f"t{j}" for j in range(9)]) for i in range(60)}
        repo.commit("many", many)
        (result,) = engine.sync()
        assert result.error is not None
        assert result.error.startswith(f"Disk full or I/O error on {database}")
        assert "cannot rollback" not in result.error and "Traceback" not in result.error
        (small_disk / "filler").unlink()
        assert statuses(engine) == {"a": "active"}  # nothing half-written, nothing lost
        (result,) = engine.sync()
        assert result.error is None and result.added == 60
    finally:
        engine.close()


def test_a_read_only_database_folder_is_read_and_refuses_writes_in_one_sentence(
    tmp_path: Path, repo: GitRepo, make_engine
) -> None:
    import os
    import subprocess

    from typer.testing import CliRunner

    from gitdags.cli import app

    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    engine = make_engine(source(repo))
    engine.sync()
    engine.close()
    view = tmp_path / "view"
    view.mkdir()
    state = engine.settings.database.parent
    if subprocess.run(["mount", "--bind", str(state), str(view)]).returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        config = tmp_path / "ro.toml"
        config.write_text(
            f'[state]\ndatabase = "{view / engine.settings.database.name}"\n'
            f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
        )
        runner = CliRunner()
        for command in (["list"], ["export"], ["show", "a"], ["history", "a"]):
            done = runner.invoke(app, ["--config", str(config), *command])
            assert done.exit_code == 0, (command, done.output)
            assert "a" in done.output
        done = runner.invoke(app, ["--config", str(config), "sync"])
        assert done.exit_code == 1
        assert f"The database folder {view} is read-only" in done.output
        assert "Traceback" not in done.output
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_validate_and_sync_agree_on_a_symlink_to_a_folder(
    repo: GitRepo, make_engine, tmp_path: Path
) -> None:
    (repo.path / "real").mkdir()
    (repo.path / "real" / "a.yaml").write_text(dag_yaml("a"))
    (repo.path / "x.yaml").symlink_to("real")
    repo.commit("link to a folder")
    (result,) = make_engine(source(repo)).sync()
    synced = {(i.file, i.code) for i in result.issues}
    _files, issues = check_paths([str(repo.path)])
    checked = {(str(Path(i.file).relative_to(repo.path)), i.code) for i in issues}
    assert synced == checked == {("x.yaml", "GD003")}


def corrupt_pages(database: Path, table: str) -> None:
    """Overwrite the leaf pages of one table with garbage (found with SQLite's dbstat)."""
    import sqlite3

    conn = sqlite3.connect(database)
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = [
        p
        for (p,) in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf'", (table,)
        )
    ]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert pages, f"no leaf pages of {table}"
    with open(database, "r+b") as raw:
        for page in pages:
            raw.seek((page - 1) * size + 8)
            raw.write(b"\xde\xad" * (size // 4))


def test_a_damaged_database_is_one_sentence_in_cli_and_console(
    tmp_path: Path, repo: GitRepo, make_engine
) -> None:
    from typer.testing import CliRunner

    from gitdags.cli import app

    repo.commit("many", {f"d{i}.yaml": dag_yaml(f"d{i}") for i in range(300)})
    engine = make_engine(source(repo))
    engine.sync()
    engine.close()
    database = engine.settings.database
    corrupt_pages(database, "dags")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[state]\ndatabase = "{database}"\n[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    repo.commit("more", {f"d{i}.yaml": dag_yaml(f"d{i}", "x") for i in range(300)})
    runner = CliRunner()
    for command in (["sync"], ["list"]):
        done = runner.invoke(app, ["--config", str(config), *command])
        assert done.exit_code == 1, (command, done.output)
        assert f"The database {database} is damaged" in done.output, done.output
        assert "Traceback" not in done.output and "internal error" not in done.output.lower()


# -- the corpus's cases that live in git, not in a file --------------------------------------------
def test_symlinks_submodules_and_odd_names(repo: GitRepo, make_engine, tmp_path: Path) -> None:
    from tests.conftest import git

    outside = tmp_path / "outside.yaml"
    outside.write_text(dag_yaml("outside"))
    for name, target in {
        "passwd.yaml": "/etc/passwd",
        "outside.yaml": str(outside),
        "loop.yaml": "loop.yaml",
    }.items():
        (repo.path / name).symlink_to(target)
    odd = {
        "new\nline.yaml": "nl",
        "ünïcödé.yaml": "uni",
        "-dash.yaml": "dash",
        "..dots.yaml": "dots",
    }
    repo.commit("links and names", {n: dag_yaml(d) for n, d in odd.items()})
    sub = repo.head()
    git(repo.path, "update-index", "--add", "--cacheinfo", f"160000,{sub},vendored")  # a submodule
    git(repo.path, "commit", "--quiet", "-m", "submodule")
    engine = make_engine(source(repo))
    (result,) = engine.sync()
    assert result.error is None, result.error
    assert statuses(engine) == dict.fromkeys(odd.values(), "active")
    links = {i.file: i.code for i in result.issues}
    assert links == dict.fromkeys(["loop.yaml", "outside.yaml", "passwd.yaml"], "GD003")


def test_files_just_under_and_over_the_size_limit(repo: GitRepo, make_engine) -> None:
    limit = 4096
    body = dag_yaml("under")
    under = body + "#" * (limit - len(body) - 1) + "\n"
    over = dag_yaml("over") + "#" * limit + "\n"
    assert len(under.encode()) == limit
    repo.commit("sizes", {"under.yaml": under, "over.yaml": over})
    engine = make_engine(source(repo), max_file_size=limit)
    (result,) = engine.sync()
    assert statuses(engine) == {"under": "active"}
    assert [(i.file, i.code) for i in result.issues] == [("over.yaml", "GD001")]


def test_case_only_rename_and_rename_with_edit_keep_history(repo: GitRepo, make_engine) -> None:
    repo.commit("one", {"Sales.yaml": dag_yaml("sales"), "etl.yaml": dag_yaml("etl")})
    engine = make_engine(source(repo))
    engine.sync()
    repo.commit("case", rename={"Sales.yaml": "sales.yaml"})
    (result,) = engine.sync()
    assert [(c.dag_id, c.change) for c in result.changes] == [("sales", "renamed")]
    repo.commit(  # one commit moves the file and edits it
        "move and edit", {"team/etl.yaml": dag_yaml("etl", "a", "b", "c")}, delete=["etl.yaml"]
    )
    (result,) = engine.sync()
    assert [(c.dag_id, c.change) for c in result.changes] == [("etl", "renamed")]
    assert [v.version for v in engine.history("etl")] == [2, 1]
    assert engine.dag("etl").path == "team/etl.yaml"


def test_a_deleted_branch_and_a_vanished_remote_keep_what_is_served(
    tmp_path: Path, repo: GitRepo, make_engine
) -> None:
    import shutil

    from tests.conftest import git

    repo.commit("one", {"a.yaml": dag_yaml("a")})
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "--bare", "--quiet", str(repo.path), str(bare))
    engine = make_engine(source(bare.as_uri()))
    engine.sync()
    git(bare, "branch", "-m", "main", "other")  # the branch is gone on the remote
    (result,) = engine.sync()
    assert result.error is not None and "branch 'main'" in result.error
    assert "\n" not in result.error and statuses(engine) == {"a": "active"}
    shutil.rmtree(bare)  # the remote is gone
    (result,) = engine.sync()
    assert result.error is not None and "\n" not in result.error
    assert statuses(engine) == {"a": "active"} and engine.dag("a").served_version == 1


def test_a_truncated_database_is_one_sentence(tmp_path: Path, repo: GitRepo, make_engine) -> None:
    from typer.testing import CliRunner

    from gitdags.cli import app

    repo.commit("one", {f"d{i}.yaml": dag_yaml(f"d{i}") for i in range(100)})
    engine = make_engine(source(repo))
    engine.sync()
    engine.close()
    database = engine.settings.database
    data = database.read_bytes()
    database.write_bytes(data[: len(data) // 3])
    config = tmp_path / "t.toml"
    config.write_text(
        f'[state]\ndatabase = "{database}"\n[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    for command in (["list"], ["sync"], ["doctor"]):
        done = CliRunner().invoke(app, ["--config", str(config), *command])
        assert done.exit_code == 1, (command, done.output)
        assert "damaged" in done.output and "Traceback" not in done.output, done.output
