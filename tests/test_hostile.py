"""Hostile files: each is a coded error of its own file, through `validate` and through a real
sync where the other files still land (issue: one file must never stop a source)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitdags.offline import check_paths
from tests.conftest import GitRepo, dag_yaml
from tests.test_sync import source, statuses

TASKS = "tasks: [{id: a, type: empty}]\n"


def alias_bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "dag_id: bomb\n" + TASKS + "params:\n" + "".join(f"  {line}\n" for line in lines)


HOSTILE = {
    "recursive.yaml": ("dag_id: rec\nparams: &a {x: *a}\n" + TASKS, "GD004"),
    "recursive_list.yaml": ("dag_id: rec2\nconfig: &c {k: [*c]}\n" + TASKS, "GD004"),
    "binary.yaml": ("dag_id: bin\nparams: {b: !!binary aGVsbG8=}\n" + TASKS, "GD004"),
    "set.yaml": ("dag_id: st\nparams: {s: !!set {a, b}}\n" + TASKS, "GD004"),
    "huge_int.json": (
        '{"dag_id": "big", "params": {"n": ' + "9" * 5000 + "}, "
        '"tasks": [{"id": "a", "type": "empty"}]}',
        "GD004",
    ),
    "bomb.yaml": (alias_bomb(), "GD004"),
    "deep.yaml": ("a: " + "[" * 50_000 + "]" * 50_000 + "\n", "GD004"),
    "deep_block.yaml": ("- " * 50_000 + "x\n", "GD004"),
    "deep.json": ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "GD004"),
    "inf.yaml": ("dag_id: inf\nparams: {x: .inf}\n" + TASKS, "GD108"),
    "nan.json": ('{"dag_id": "nan", "params": {"x": NaN}, "tasks": []}', "GD108"),
    "inf.toml": ('dag_id = "tinf"\nx = inf\n[[tasks]]\nid = "a"\ntype = "empty"\n', "GD108"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_validate_gives_each_hostile_file_its_code(tmp_path: Path, name: str) -> None:
    text, code = HOSTILE[name]
    path = tmp_path / name
    path.write_text(text)
    _files, issues = check_paths([str(path)])
    assert [i.code for i in issues if i.severity == "error"] == [code], issues


def test_hostile_files_never_stop_a_source(repo: GitRepo, make_engine) -> None:
    files = {f"dags/{name}": text for name, (text, _code) in HOSTILE.items()}
    repo.commit("hostile and good", {**files, "dags/good.yaml": dag_yaml("good")})
    engine = make_engine(source(repo))
    (result,) = engine.sync()
    assert result.error is None
    assert statuses(engine) == {"good": "active"}
    codes = {i.file.rsplit("/", 1)[-1]: i.code for i in result.issues if i.severity == "error"}
    assert codes == {name: code for name, (_text, code) in HOSTILE.items()}
    json.loads(json.dumps([d.to_dict() for d in engine.served()], allow_nan=False))
    repo.commit("more", {"dags/later.yaml": dag_yaml("later")})  # later commits still land
    (result,) = engine.sync()
    assert [(c.dag_id, c.change) for c in result.changes] == [("later", "added")]


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
