"""The last good tree as git branches: served/all and served/<source>, one commit per change
to what is served, never rewritten, readable over git daemon."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from gitdags.config import SourceConfig
from tests.conftest import GitRepo, dag_yaml, git

CYCLE = dag_yaml("etl", "a", "b", deps={"a": ["b"], "b": ["a"]})


def served_git(repo: Path, *args: str) -> str:
    return git(repo.parent, f"--git-dir={repo}", *args)


def tree_of(repo: Path, branch: str) -> dict[str, str]:
    out = served_git(repo, "ls-tree", "-r", branch)
    return {line.split("\t")[1]: line.split()[2] for line in out.splitlines()}


def test_served_branches_follow_what_is_served(
    tmp_path: Path, repo: GitRepo, make_engine, git_daemon
) -> None:
    base, port = git_daemon
    branches = base / "served.git"
    first = repo.commit("one", {"etl.yaml": dag_yaml("etl"), "report.yaml": dag_yaml("report")})
    deploy = tmp_path / "deploy"
    engine = make_engine(SourceConfig("main", str(repo.path)), deploy_dir=deploy, git_repo=branches)
    engine.sync()
    current = (deploy / "current").resolve()
    files = sorted(str(p.relative_to(current)) for p in current.rglob("*") if p.is_file())
    assert sorted(tree_of(branches, "served/all")) == files == ["etl.json", "report.json"]
    assert tree_of(branches, "served/main") == tree_of(branches, "served/all")
    one = served_git(branches, "rev-parse", "served/all")
    message = served_git(branches, "log", "-1", "--format=%B", one)
    assert f"Source-Commit: {first}" in message
    assert f"Served-Generation: {current.name}" in message  # gitdags' bookkeeping: not a file

    second = repo.commit(
        "break etl, change report", {"etl.yaml": CYCLE, "report.yaml": dag_yaml("report", "x", "y")}
    )
    engine.sync()
    two = served_git(branches, "rev-parse", "served/all")
    message = served_git(branches, "log", "-1", "--format=%B", two)
    assert "report changed v2" in message.splitlines()[0]
    assert "Held back" in message and "etl v2" in message
    assert f"Source-Commit: {second}" in message
    etl_blob = tree_of(branches, "served/all")["etl.json"]
    assert etl_blob == tree_of(branches, f"{one}")["etl.json"]  # the last good etl stays

    engine.rollback("report", to="1", reason="bad x")
    three = served_git(branches, "rev-parse", "served/all")
    assert served_git(branches, "rev-list", "--count", three) == "3"  # a new commit...
    assert served_git(branches, "merge-base", "--is-ancestor", two, three) == ""  # ...on top
    report = json.loads(served_git(branches, "show", f"{three}:report.json"))
    assert report["version"] == 1  # served at v1 again, by a new commit

    clone = tmp_path / "scheduler"
    subprocess.run(
        [
            "git",
            "clone",
            "--quiet",
            "--branch",
            "served/all",
            f"git://127.0.0.1:{port}/served.git",
            str(clone),
        ],
        check=True,
        capture_output=True,
    )
    assert sorted(p.name for p in clone.iterdir() if p.name != ".git") == [
        "etl.json",
        "report.json",
    ]


def test_a_served_branch_needs_no_deploy_folder(tmp_path: Path, repo: GitRepo, make_engine) -> None:
    repo.commit("one", {"etl.yaml": dag_yaml("etl")})
    branches = tmp_path / "served.git"
    engine = make_engine(SourceConfig("main", str(repo.path)), git_repo=branches)
    engine.sync()
    assert list(tree_of(branches, "served/all")) == ["etl.json"]
    repo.commit("a file the DAGs read", {"other.txt": "not counted"})
    engine.sync()
    assert list(tree_of(branches, "served/all")) == ["etl.json", "other.txt"]  # the tree
    engine.sync()
    assert (
        served_git(branches, "rev-list", "--count", "served/all") == "2"
    )  # nothing served changed the second time


BUNDLE = """
import json, logging, sys
logging.disable(logging.WARNING)
from airflow.providers.git.bundles.git import GitDagBundle
from airflow.dag_processing.dagbag import DagBag
bundle = GitDagBundle(name="gitdags", tracking_ref="served/all", repo_url=sys.argv[1])
bundle.initialize()
sys.path.insert(0, str(bundle.path))  # as Airflow's dag processor does for a bundle
bag = DagBag(dag_folder=str(bundle.path), bundle_path=bundle.path)
print(json.dumps({"version": str(bundle.get_current_version()), "dags": sorted(bag.dags),
                  "errors": {str(k): str(v)[-300:] for k, v in bag.import_errors.items()}}))
"""


def test_airflow_3_reads_the_served_branch_as_a_git_dag_bundle(
    tmp_path: Path, make_engine, git_daemon
) -> None:
    from tests.test_airflow import airflow_python

    python = airflow_python()
    base, port = git_daemon
    repo = GitRepo(tmp_path / "upstream")
    repo.copy_sample()
    repo.commit("sample")
    include = ("**/*.yaml", "**/*.yml", "**/*.json", "**/*.toml", "**/*.py")
    engine = make_engine(
        SourceConfig("sample", str(repo.path), subdir="dags", include=include),
        git_repo=base / "served.git",
        airflow_template=Path("builtin"),
    )
    engine.sync()
    served = {d.dag_id for d in engine.served()}

    def load() -> dict[str, object]:
        done = subprocess.run(
            [str(python), "-c", BUNDLE, f"git://127.0.0.1:{port}/served.git"],
            capture_output=True,
            text=True,
            timeout=300,
            env={
                "PATH": "/usr/bin:/bin",
                "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
                "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(tmp_path / "bundles"),
                "GITDAGS_STATE_DATABASE": str(engine.settings.database),
                "DO_NOT_TRACK": "1",
            },
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    before = load()
    assert before["errors"] == {} and set(before["dags"]) == served  # type: ignore[arg-type]
    repo.write("dags/airflow/nightly_backup.py", "from airflow.sdk import DAG\nDAG(dag_id='x'\n")
    repo.commit("break a DAG file")
    engine.sync()
    after = load()
    assert after["errors"] == {}  # the broken file is held back: its last good one is served
    assert set(after["dags"]) == served  # type: ignore[arg-type]


def test_a_generation_without_its_manifest_is_never_served_as_an_empty_tree(
    tmp_path: Path, repo: GitRepo, make_engine
) -> None:
    from gitdags.serve.deploy import manifest_path

    repo.commit("one", {"etl.yaml": dag_yaml("etl")})
    deploy, branches = tmp_path / "deploy", tmp_path / "served.git"
    make_engine(SourceConfig("main", str(repo.path)), deploy_dir=deploy).sync()
    manifest_path((deploy / "current").resolve()).unlink()
    later = make_engine(SourceConfig("main", str(repo.path)), deploy_dir=deploy, git_repo=branches)
    (result,) = later.sync()  # nothing new in git: the new served branch catches up
    assert result.publish_error is not None
    assert result.publish_error.startswith(
        f"The served-branch repository {branches} was not brought up to date (The generation"
    )
    assert "has no readable manifest beside it" in result.publish_error
    assert not branches.exists() or served_git(branches, "for-each-ref") == ""  # no empty commit
