"""What history records is true: who changed each version, dependents checked again, the
reconcile record of each source, and migrations that keep every history."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from gitdags.history.store import MIGRATIONS, HistoryStore
from tests.conftest import GitRepo, dag_yaml, git
from tests.test_sync import source, statuses


def commit_as(repo: GitRepo, author: str, message: str, files: dict[str, str]) -> str:
    for rel, content in files.items():
        repo.write(rel, content)
    git(repo.path, "add", "--all")
    git(repo.path, "-c", f"user.name={author}", "commit", "--quiet", "-m", message)
    git(repo.path, "commit", "--quiet", "--amend", "--no-edit", f"--author={author} <a@x>")
    return repo.head()


def test_each_version_names_the_commit_that_changed_its_file(repo: GitRepo, make_engine) -> None:
    repo.commit("start", {"a.yaml": dag_yaml("a"), "b.yaml": dag_yaml("b")})
    engine = make_engine(source(repo))
    engine.sync()
    first = commit_as(repo, "Ann", "a: one more task", {"a.yaml": dag_yaml("a", "x", "y", "z")})
    second = commit_as(repo, "Bo", "b: one more task", {"b.yaml": dag_yaml("b", "x", "y", "z")})
    third = commit_as(repo, "Cy", "docs only", {"README.md": "hello\n"})
    (result,) = engine.sync()  # three commits in one sync
    assert result.to_commit == third
    a, b = engine.history("a")[0], engine.history("b")[0]
    assert (a.commit, a.author, a.message) == (first, "Ann", "a: one more task")
    assert (b.commit, b.author, b.message) == (second, "Bo", "b: one more task")


def test_a_first_sync_names_the_commit_that_last_changed_each_file(
    repo: GitRepo, make_engine
) -> None:
    old = commit_as(repo, "Ann", "add a", {"a.yaml": dag_yaml("a")})
    commit_as(repo, "Bo", "add b", {"b.yaml": dag_yaml("b")})
    engine = make_engine(source(repo))
    engine.sync()
    assert (engine.history("a")[0].commit, engine.history("a")[0].author) == (old, "Ann")
    assert engine.history("b")[0].author == "Bo"


def test_deleting_a_dag_others_depend_on_invalidates_them_in_the_same_sync(
    repo: GitRepo, make_engine
) -> None:
    repo.commit(
        "chain",
        {"up.yaml": dag_yaml("up"), "down.yaml": dag_yaml("down", depends_on_dags="[up]")},
    )
    engine = make_engine(source(repo))
    engine.sync()
    gone = repo.commit("retire up", delete=["up.yaml"])
    (result,) = engine.sync()
    assert sorted((c.dag_id, c.change) for c in result.changes) == [
        ("down", "invalid"),
        ("up", "deleted"),
    ]
    down = engine.history("down")[0]
    assert (down.version, down.valid, down.commit) == (2, False, gone)
    assert [i.code for i in down.issues] == ["GD302"]
    assert engine.dag("down").served_version == 1  # the last good version is still served
    repo.commit("bring it back", {"up.yaml": dag_yaml("up")})
    (result,) = engine.sync()
    assert statuses(engine) == {"up": "active", "down": "active"}
    assert engine.dag("down").served_version == 3


def test_a_duplicate_of_another_sources_id_takes_over_when_it_is_released(
    tmp_path: Path, make_engine
) -> None:
    one, two = GitRepo(tmp_path / "one"), GitRepo(tmp_path / "two")
    one.commit("x here", {"x.yaml": dag_yaml("x")})
    two.commit("x there too", {"x.yaml": dag_yaml("x", "other")})
    engine = make_engine(source(one, "one"), source(two, "two"))
    engine.sync()
    assert engine.dag("x").source == "one"
    one.commit("x leaves one", delete=["x.yaml"])
    first, second = engine.sync()
    assert [(c.dag_id, c.change) for c in first.changes] == [("x", "deleted")]
    assert [(c.dag_id, c.change) for c in second.changes] == [("x", "restored")]
    x = engine.dag("x")
    assert (x.source, x.status, x.newest_version) == ("two", "active", 2)


def test_a_dag_that_leaves_a_file_that_stays_is_retired(repo: GitRepo, make_engine) -> None:
    repo.commit("one", {"etl.yaml": dag_yaml("etl_old")})
    engine = make_engine(source(repo))
    engine.sync()
    repo.commit("rename the DAG", {"etl.yaml": dag_yaml("etl_new")})
    (result,) = engine.sync()
    assert sorted((c.dag_id, c.change) for c in result.changes) == [
        ("etl_new", "added"),
        ("etl_old", "deleted"),
    ]


def test_a_failed_sync_keeps_the_commit_it_attempted_apart_from_the_served_one(
    repo: GitRepo, make_engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = repo.commit("one", {"a.yaml": dag_yaml("a")})
    engine = make_engine(source(repo))
    engine.sync()
    newest = repo.commit("two", {"b.yaml": dag_yaml("b")})
    monkeypatch.setenv("GITDAGS_TEST_FAULTS", "after-fetch=raise")
    (result,) = engine.sync()
    assert result.error and "fault injected at after-fetch" in result.error
    engine.sync()
    (status,) = engine.status()
    assert (status.newest_commit, status.served_commit) == (newest, served)
    assert status.failures == 2 and status.last_error == result.error
    monkeypatch.delenv("GITDAGS_TEST_FAULTS")
    engine.sync()
    (status,) = engine.status()
    assert (status.newest_commit, status.served_commit, status.failures) == (newest, newest, 0)
    assert status.last_error is None


def test_a_sync_past_its_deadline_fails_and_writes_nothing(repo: GitRepo, make_engine) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    engine = make_engine(source(repo), sync_timeout=1e-9)
    (result,) = engine.sync()
    assert result.error and "passed its deadline" in result.error
    assert engine.list_dags() == []


def _v2_database(path: Path, repo: GitRepo, commit: str) -> None:
    """A database as gitdags 0.1 (schema 2) left it: one DAG per file in `files.dag_id`."""
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        db.executescript(script)
    db.execute("PRAGMA user_version = 2")
    config = source(repo)
    db.execute(
        "INSERT INTO sources (name, url, branch, fingerprint, newest_commit, served_commit) "
        "VALUES ('main', ?, 'main', ?, ?, ?)",
        (config.url, config.fingerprint(), commit, commit),
    )
    blob = git(repo.path, "rev-parse", f"{commit}:a.yaml")
    db.execute("INSERT INTO files VALUES ('main', 'a.yaml', ?, 'a', '[]')", (blob,))
    db.execute(
        "INSERT INTO dags (dag_id, source, path, status, served_version, newest_version, "
        "newest_valid, enabled, tags, depends_on_dags, served_commit) "
        "VALUES ('a', 'main', 'a.yaml', 'active', 1, 1, 1, 1, '[]', '[]', ?)",
        (commit,),
    )
    db.execute(
        "INSERT INTO versions (dag_id, version, source, commit_sha, author, path, content_hash, "
        "valid, issues, spec) VALUES ('a', 1, 'main', ?, 'Ann', 'a.yaml', 'h', 1, '[]', ?)",
        (commit, json.dumps({"dag_id": "a", "tasks": []})),
    )
    db.commit()
    db.close()


def test_migration_3_keeps_every_history(tmp_path: Path, repo: GitRepo, make_engine) -> None:
    commit = repo.commit("one", {"a.yaml": dag_yaml("a")})
    database = tmp_path / "state" / "gitdags.db"
    database.parent.mkdir()
    _v2_database(database, repo, commit)
    store = HistoryStore(database, readonly=True)  # a reader upgrades it once, then reads
    assert store.schema_version() == len(MIGRATIONS)
    assert store.file_defines("main", "a.yaml", "a")
    store.close()
    engine = make_engine(source(repo))
    assert [(v.version, v.author) for v in engine.history("a")] == [(1, "Ann")]
    repo.commit("retire a", delete=["a.yaml"])
    (result,) = engine.sync()
    assert [(c.dag_id, c.change) for c in result.changes] == [("a", "deleted")]
    assert len(engine.history("a")) == 1


def test_new_checks_check_every_file_again(repo: GitRepo, make_engine) -> None:
    repo.commit("two", {"legacy_a.yaml": dag_yaml("legacy_a"), "b.yaml": dag_yaml("b")})
    make_engine(source(repo)).sync()
    engine = make_engine(source(repo, dag_id_pattern="(?!legacy_).*"))
    (result,) = engine.sync()  # no new commit: the new pattern alone re-checks the files
    assert [(c.dag_id, c.change) for c in result.changes] == [("legacy_a", "invalid")]
    assert [i.code for i in engine.history("legacy_a")[0].issues] == ["GD306"]
    same = make_engine(source(f"file://{repo.path}", dag_id_pattern="(?!legacy_).*"))
    (result,) = same.sync()  # another URL of the same repository: nothing to check again
    assert result.changes == () and result.blobs_read == 0
