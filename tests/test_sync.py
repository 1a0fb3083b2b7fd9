"""Syncing real git repositories into a real SQLite file."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

from gitdags.config import SourceConfig
from gitdags.engine import SyncEngine
from tests.conftest import GitRepo, dag_yaml, git

GOOD_JSON = '{"dag_id": "beta", "schedule": "0 * * * *", "tasks": [{"id": "x", "type": "empty"}]}'
GOOD_TOML = 'dag_id = "gamma"\nschedule = "@weekly"\n[[tasks]]\nid = "x"\ntype = "empty"\n'
CYCLE = dag_yaml("delta", "a", "b", "c", deps={"a": ["c"], "b": ["a"], "c": ["b"]})


def source(repo: GitRepo | Path | str, name: str = "main", **kw: object) -> SourceConfig:
    url = str(repo.path if isinstance(repo, GitRepo) else repo)
    return SourceConfig(name=name, url=url, **kw)  # type: ignore[arg-type]


def statuses(engine: SyncEngine) -> dict[str, str]:
    return {d.dag_id: d.status for d in engine.list_dags()}


def db_dump(engine: SyncEngine) -> str:
    return hashlib.sha256("\n".join(engine.store.conn.iterdump()).encode()).hexdigest()


def test_first_sync_then_edit_delete_rename_break(repo: GitRepo, make_engine) -> None:
    first = repo.commit(
        "initial",
        {
            "dags/alpha.yaml": dag_yaml("alpha"),
            "dags/beta.json": GOOD_JSON,
            "dags/gamma.toml": GOOD_TOML,
            "dags/delta.yaml": CYCLE,
        },
    )
    engine = make_engine(source(repo))
    (result,) = engine.sync()
    assert (result.added, result.invalid, result.error) == (3, 1, None)
    assert statuses(engine) == {
        "alpha": "active",
        "beta": "active",
        "gamma": "active",
        "delta": "invalid",
    }
    shown = engine.show("delta")
    assert shown.state.served_version is None
    assert [i.code for i in shown.issues] == ["GD204"]
    assert "a -> b -> c -> a" in shown.issues[0].message

    second = repo.commit(
        "edit alpha, delete beta, rename gamma",
        {"dags/alpha.yaml": dag_yaml("alpha", "a", "b", "c")},
        delete=["dags/beta.json"],
        rename={"dags/gamma.toml": "dags/weekly/gamma.toml"},
    )
    (result,) = engine.sync()
    assert (result.from_commit, result.to_commit) == (first, second)
    changes = {c.dag_id: (c.change, c.version) for c in result.changes}
    assert changes == {"alpha": ("changed", 2), "beta": ("deleted", None), "gamma": ("renamed", 1)}
    assert (result.added, result.changed, result.deleted, result.invalid) == (0, 2, 1, 0)
    assert engine.dag("gamma").path == "dags/weekly/gamma.toml"
    assert statuses(engine)["beta"] == "deleted"
    assert len(engine.history("beta")) == 1  # history is kept

    third = repo.commit("break alpha", {"dags/alpha.yaml": "dag_id: alpha\ntasks: [{id: a}]\n"})
    (result,) = engine.sync()
    assert [(c.dag_id, c.change, c.version) for c in result.changes] == [("alpha", "invalid", 3)]
    alpha = engine.dag("alpha")
    assert (alpha.status, alpha.served_version, alpha.newest_version) == ("invalid", 2, 3)
    assert alpha.served_commit == second
    served = {d.dag_id: d.version for d in engine.served()}
    assert served == {"alpha": 2, "gamma": 1}
    history = engine.history("alpha")
    assert [(v.version, v.commit, v.valid, v.served) for v in history] == [
        (3, third, False, False),
        (2, second, True, True),
        (1, first, True, False),
    ]


def test_sync_without_new_commit_writes_nothing(repo: GitRepo, make_engine) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    engine = make_engine(source(repo))
    engine.sync()
    before = (db_dump(engine), engine.generation())
    (result,) = engine.sync()
    assert result.nothing_new and result.changes == ()
    assert (db_dump(engine), engine.generation()) == before


def test_dry_run_reports_and_writes_nothing(repo: GitRepo, make_engine) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    engine = make_engine(source(repo))
    engine.sync()
    before = db_dump(engine)
    repo.commit("two", {"b.yaml": dag_yaml("b")})
    (result,) = engine.sync(dry_run=True)
    assert result.dry_run and [c.dag_id for c in result.changes] == ["b"]
    assert db_dump(engine) == before
    (result,) = engine.sync()
    assert [c.change for c in result.changes] == ["added"]


def test_commit_touching_k_files_reads_exactly_k_blobs(repo: GitRepo, make_engine) -> None:
    repo.commit("many", {f"dags/d{i:03}.yaml": dag_yaml(f"d{i:03}") for i in range(60)})
    engine = make_engine(source(repo))
    (first,) = engine.sync()
    assert first.blobs_read == 60
    repo.commit(
        "three files",
        {
            "dags/d001.yaml": dag_yaml("d001", "x", "y"),
            "dags/d002.yaml": dag_yaml("d002", "x", "y"),
            "dags/new.yaml": dag_yaml("new"),
            "README.md": "not a DAG",
        },
        delete=["dags/d003.yaml"],
    )
    (result,) = engine.sync()
    assert result.blobs_read == 3
    assert (result.added, result.changed, result.deleted, result.unchanged) == (1, 2, 1, 57)


def test_force_push_is_diffed_against_the_database(repo: GitRepo, make_engine) -> None:
    base = repo.commit("base", {"a.yaml": dag_yaml("a"), "b.yaml": dag_yaml("b")})
    repo.commit("edit a", {"a.yaml": dag_yaml("a", "p", "q", "r")})
    engine = make_engine(source(repo))
    engine.sync()
    git(repo.path, "reset", "--hard", "--quiet", base)
    rewritten = repo.commit("rewritten", {"c.yaml": dag_yaml("c")}, delete=["b.yaml"])
    (result,) = engine.sync()
    assert result.forced and result.error is None and result.to_commit == rewritten
    changes = {c.dag_id: c.change for c in result.changes}
    assert changes == {"a": "changed", "b": "deleted", "c": "added"}
    assert engine.version("a").spec["tasks"][0]["id"] == "a"  # type: ignore[index]
    assert engine.syncs()[0].forced


def test_a_served_commit_the_mirror_no_longer_holds_is_a_force_push(
    repo: GitRepo, make_engine
) -> None:
    """The served commit was force-pushed away and is gone from a mirror made again: the
    ancestry check (one `git merge-base`, no `cat-file -e` before it) says no, and the sync
    compares with the files the database holds."""
    import shutil

    base = repo.commit("base", {"a.yaml": dag_yaml("a"), "b.yaml": dag_yaml("b")})
    repo.commit("edit a", {"a.yaml": dag_yaml("a", "p", "q")})
    engine = make_engine(source(repo))
    engine.sync()
    git(repo.path, "reset", "--hard", "--quiet", base)
    rewritten = repo.commit("rewritten", {"c.yaml": dag_yaml("c")})
    git(repo.path, "reflog", "expire", "--expire=now", "--all")
    git(repo.path, "gc", "--quiet", "--prune=now")
    shutil.rmtree(engine.settings.mirrors_dir / "main.git")
    (result,) = engine.sync()
    assert result.forced and result.error is None and result.to_commit == rewritten
    assert {c.dag_id: c.change for c in result.changes} == {"a": "changed", "c": "added"}


def test_unchanged_content_makes_no_new_version(repo: GitRepo, make_engine) -> None:
    repo.commit("one", {"x/a.yaml": dag_yaml("a")})
    engine = make_engine(source(repo))
    engine.sync()
    repo.commit("docs only", {"README.md": "hello"})
    (result,) = engine.sync()
    assert result.changes == () and result.error is None
    repo.commit("move", rename={"x/a.yaml": "y/a.yaml"})
    (result,) = engine.sync()
    assert [(c.change, c.version, c.old_path) for c in result.changes] == [
        ("renamed", 1, "x/a.yaml")
    ]
    assert len(engine.history("a")) == 1 and engine.dag("a").path == "y/a.yaml"


def test_deleted_dag_comes_back_with_its_history(repo: GitRepo, make_engine) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    engine = make_engine(source(repo))
    engine.sync()
    repo.commit("delete", delete=["a.yaml"])
    engine.sync()
    repo.commit("back", {"a.yaml": dag_yaml("a", "new")})
    (result,) = engine.sync()
    assert [(c.change, c.version) for c in result.changes] == [("restored", 2)]
    assert engine.dag("a").status == "active"


def test_file_level_rejections(repo: GitRepo, make_engine) -> None:
    repo.commit(
        "odd files",
        {
            "big.yaml": "dag_id: big\n" + "# padding\n" * 100,
            "bin.yaml": b"\x00\x01binary",
            "ok.yaml": dag_yaml("ok"),
        },
    )
    (repo.path / "link.yaml").symlink_to("ok.yaml")
    repo.commit("a symlink")
    engine = make_engine(source(repo), max_file_size=500)
    (result,) = engine.sync()
    assert result.blobs_read == 2  # ok.yaml and bin.yaml: never the oversized one or the link
    codes = {i.file: i.code for i in result.issues}
    assert codes == {"big.yaml": "GD001", "bin.yaml": "GD002", "link.yaml": "GD003"}
    # files that cannot be read define no DAG (never one named after the file) ...
    assert statuses(engine) == {"ok": "active"}
    (status,) = engine.status()
    assert status.file_errors == 3 and result.invalid == 3
    # ... but a DAG whose file becomes unreadable stays, invalid, its last good version served
    repo.commit("grow", {"ok.yaml": dag_yaml("ok") + "# padding\n" * 100})
    (result,) = engine.sync()
    assert [(c.dag_id, c.change) for c in result.changes] == [("ok", "invalid")]
    assert engine.dag("ok").status == "invalid" and engine.dag("ok").served_version == 1
    assert [i.code for i in engine.history("ok")[0].issues] == ["GD001"]


def test_a_file_that_is_not_a_dag_definition_defines_no_dag(repo: GitRepo, make_engine) -> None:
    repo.commit(
        "config beside the DAGs",
        {"a.yaml": dag_yaml("a"), "conf/settings.yaml": "retries: 3\nowner: team\n"},
    )
    engine = make_engine(source(repo))
    (result,) = engine.sync()
    assert statuses(engine) == {"a": "active"}
    assert [(i.file, i.code, i.severity) for i in result.issues] == [
        ("conf/settings.yaml", "GD007", "warning")
    ]
    # a DAG file that stops being one retires its DAG, like a deleted file
    repo.commit("not a DAG any more", {"a.yaml": "just: config\n"})
    (result,) = engine.sync()
    assert [(c.dag_id, c.change) for c in result.changes] == [("a", "deleted")]
    assert engine.dag("a").status == "deleted" and len(engine.history("a")) == 1


def test_subdir_include_and_exclude(repo: GitRepo, make_engine) -> None:
    repo.commit(
        "layout",
        {
            "dags/a.yaml": dag_yaml("a"),
            "dags/sub/b.json": GOOD_JSON,
            "dags/drafts/c.yaml": dag_yaml("c"),
            "other/d.yaml": dag_yaml("d"),
        },
    )
    engine = make_engine(source(repo, subdir="dags", exclude=("drafts/**",)))
    engine.sync()
    assert set(statuses(engine)) == {"a", "beta"}


def test_dag_ids_are_unique_across_sources_and_namespaces_hold(tmp_path: Path, make_engine) -> None:
    sales = GitRepo(tmp_path / "sales")
    ops = GitRepo(tmp_path / "ops")
    sales.commit("s", {"daily.yaml": dag_yaml("sales_daily"), "shared.yaml": dag_yaml("shared")})
    ops.commit("o", {"x.yaml": dag_yaml("sales_weekly"), "y.yaml": dag_yaml("shared")})
    engine = make_engine(source(sales, "sales", namespace="sales_"), source(ops, "ops"))
    s_result, o_result = engine.sync()
    assert s_result.added == 2
    assert sorted(i.code for i in o_result.issues) == ["GD301", "GD304"]
    assert o_result.invalid == 2 and o_result.added == 0
    assert {d.dag_id: d.source for d in engine.list_dags()} == {
        "sales_daily": "sales",
        "shared": "sales",
    }


def test_cross_dag_dependencies_are_checked_against_the_database(
    repo: GitRepo, make_engine
) -> None:
    repo.commit("base", {"up.yaml": dag_yaml("up")})
    engine = make_engine(source(repo))
    engine.sync()
    repo.commit(
        "deps",
        {
            "down.yaml": dag_yaml("down", depends_on_dags="[up]"),
            "lost.yaml": dag_yaml("lost", depends_on_dags="[ghost]"),
        },
    )
    engine.sync()
    assert statuses(engine) == {"up": "active", "down": "active", "lost": "invalid"}
    repo.commit("loop", {"up.yaml": dag_yaml("up", depends_on_dags="[down]")})
    (result,) = engine.sync()
    assert [i.code for i in result.issues] == ["GD303"]
    assert engine.dag("up").served_version == 1


def test_failing_source_is_recorded_and_recovers(tmp_path: Path, make_engine) -> None:
    missing = tmp_path / "not-yet"
    engine = make_engine(source(missing))
    (result,) = engine.sync()
    assert result.error and "does not exist" in result.error
    (status,) = engine.status()
    assert status.last_error == result.error and status.last_error_at
    GitRepo(missing).commit("now it exists", {"a.yaml": dag_yaml("a")})
    (result,) = engine.sync()
    assert result.error is None and result.added == 1
    assert engine.status()[0].last_error is None


def test_bare_remote_over_file_url(tmp_path: Path, repo: GitRepo, make_engine) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "--bare", "--quiet", str(repo.path), str(bare))
    engine = make_engine(source(f"file://{bare}"))
    (result,) = engine.sync()
    assert result.added == 1
    repo.commit("two", {"b.yaml": dag_yaml("b")})
    git(repo.path, "push", "--quiet", str(bare), "main")
    (result,) = engine.sync()
    assert [c.dag_id for c in result.changes] == ["b"] and not result.forced


def test_network_remote_served_by_git_daemon(
    git_daemon: tuple[Path, int], repo: GitRepo, make_engine
) -> None:
    base, port = git_daemon
    repo.copy_sample()
    repo.commit("sample")
    git(base, "clone", "--bare", "--quiet", str(repo.path), "dags.git")
    engine = make_engine(source(f"git://127.0.0.1:{port}/dags.git", subdir="dags"))
    (result,) = engine.sync()
    assert result.error is None and result.added == 12  # 10 format v1, 2 dag-factory
    repo.commit("edit", {"dags/sales/daily_sales_etl.yaml": dag_yaml("daily_sales_etl")})
    git(repo.path, "push", "--quiet", str(base / "dags.git"), "main")
    (result,) = engine.sync()
    assert [(c.dag_id, c.change) for c in result.changes] == [("daily_sales_etl", "changed")]


def test_unreachable_network_remote_is_an_error(make_engine) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = make_engine(source(f"git://127.0.0.1:{port}/nothing.git"))
    (result,) = engine.sync()
    assert result.error == (
        f"Source 'main': git://127.0.0.1:{port}/nothing.git refused the connection (nothing "
        "serves git at that host and port); check the URL's host and port, and that the git "
        "server runs."
    )


def test_credentials_never_reach_the_database(make_engine) -> None:
    engine = make_engine(source("https://bot:s3cret-token@127.0.0.1:9/repo.git"))
    (result,) = engine.sync()
    assert result.error and "s3cret" not in result.error
    assert "s3cret" not in "\n".join(engine.store.conn.iterdump())


def test_a_refused_duplicate_takes_over_when_the_id_is_freed(repo: GitRepo, make_engine) -> None:
    repo.commit("twins", {"a.yaml": dag_yaml("x"), "b.yaml": dag_yaml("x", "other")})
    engine = make_engine(source(repo))
    (result,) = engine.sync()
    assert sorted(i.code for i in result.issues) == ["GD301", "GD301"]
    assert engine.list_dags() == []
    repo.commit("drop one", delete=["b.yaml"])
    (result,) = engine.sync()
    assert [(c.dag_id, c.change, c.path) for c in result.changes] == [("x", "added", "a.yaml")]
    repo.commit("a second file claims x", {"c.yaml": dag_yaml("x", "third")})
    (result,) = engine.sync()
    assert [i.code for i in result.issues] == ["GD301"] and engine.dag("x").path == "a.yaml"
    repo.commit("the owner goes", delete=["a.yaml"])
    (result,) = engine.sync()
    assert [(c.dag_id, c.change, c.version) for c in result.changes] == [("x", "renamed", 2)]
    assert engine.dag("x").path == "c.yaml" and engine.dag("x").status == "active"
