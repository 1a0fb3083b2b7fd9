"""The judgement of what a consumer runs (a pure function of its API's answers), the
[[consumers]] config, and a consumer that cannot be reached. Against a real Airflow:
tests/test_landing.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitdags.config import load_settings
from gitdags.consumers.landing import Served, error_lines, judge, needs_import_errors
from gitdags.engine import build_engine
from gitdags.errors import ConfigError
from tests.conftest import GitRepo, dag_yaml, free_port

PUBLISHED = "2026-12-06T10:00:00.000+00:00"
T0 = 1796551200.0  # PUBLISHED as time.time()


def airflow(dag_id: str, parsed: str = "2026-12-06T10:00:01Z", **more: object) -> dict:
    return {
        "dag_id": dag_id,
        "is_paused": False,
        "is_stale": False,
        "last_parsed_time": parsed,
        "bundle_version": None,
        "relative_fileloc": f"{dag_id}.py",
        "has_import_errors": False,
        **more,
    }


def one(served: Served, found: dict, errors: dict | None = None, now: float = T0 + 5, **kw):
    judged = judge(
        "af",
        [served],
        found,
        errors or {},
        now=now,
        checked_at="x",
        missing_after=60,
        **kw,
    )
    return {d.dag_id: d for d in judged}


A = Served("a", 2, PUBLISHED, ("a.py",))


def test_parsed_after_the_publish_is_landed_before_it_pending() -> None:
    assert one(A, {"a": airflow("a")})["a"].state == "landed"
    early = airflow("a", parsed="2026-12-06T09:59:59Z")
    assert one(A, {"a": early})["a"].state == "pending"
    assert one(A, {"a": early}, now=T0 + 61)["a"].state == "drift"  # still the old one


def test_absent_is_pending_then_missing_and_an_import_error_is_broken() -> None:
    assert one(A, {})["a"].state == "pending"
    assert one(A, {}, now=T0 + 61)["a"].state == "missing"
    assert one(A, {"a": airflow("a", is_stale=True)}, now=T0 + 61)["a"].state == "missing"
    broken = one(A, {}, {"a.py": "ValueError: no"})["a"]
    assert broken.state == "broken" and broken.error == "ValueError: no"
    kept = one(A, {"a": airflow("a", has_import_errors=True)}, {"a.py": "SyntaxError: x"})
    assert kept["a"].state == "broken"  # Airflow keeps running the old one: still broken


def test_another_file_or_a_dag_gitdags_does_not_serve_is_drift() -> None:
    moved = one(A, {"a": airflow("a", relative_fileloc="other.py")})["a"]
    assert moved.state == "drift" and "other.py" in moved.error
    extra = one(A, {"a": airflow("a"), "z": airflow("z", relative_fileloc="a.py")})
    assert extra["z"].state == "drift" and extra["z"].version is None
    gone = one(A, {"a": airflow("a"), "z": airflow("z", relative_fileloc="a.py", is_stale=True)})
    assert "z" not in gone  # a stale DAG is not run


def test_a_bundle_is_landed_when_its_commit_holds_the_served_files() -> None:
    found = {"a": airflow("a", parsed="2026-12-06T09:00:00Z", bundle_version="c1")}
    holds = one(A, found, bundle_holds=lambda commit, files: commit == "c1")
    assert holds["a"].state == "landed" and holds["a"].bundle_version == "c1"
    older = one(A, found, bundle_holds=lambda commit, files: False)
    assert older["a"].state == "pending"


def test_import_errors_are_asked_for_only_when_needed() -> None:
    assert not needs_import_errors([A], {"a": airflow("a")})
    assert needs_import_errors([A], {})
    assert needs_import_errors([A], {"a": airflow("a", has_import_errors=True)})
    trace = "Traceback (most recent call last):\n  File x\nZeroDivisionError: division by zero\n"
    assert error_lines([{"filename": "a.py", "stack_trace": trace}]) == {
        "a.py": "ZeroDivisionError: division by zero"
    }


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ('name = "af"\n', "needs api_url"),
        ('api_url = "http://x"\nkind = "dagster-ish"\n', "kind = 'dagster-ish'"),
        ('api_url = "http://x"\nsources = ["nope"]\n', "names 'nope'"),
        ('api_url = "http://x"\npassword = "hunter2"\n', "GITDAGS_CONSUMERS_<NAME>_PASSWORD"),
    ],
)
def test_bad_consumer_config_is_one_sentence(tmp_path: Path, table: str, needle: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[[sources]]\nname = "main"\nurl = "r"\n[[consumers]]\n{table}')
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        load_settings(config, env={})


def test_a_consumer_that_cannot_be_reached_keeps_the_last_states(
    tmp_path: Path, repo: GitRepo
) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "state.db"\n[publish]\ndeploy_dir = "deploy"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
        f'[[consumers]]\nname = "af"\napi_url = "http://127.0.0.1:{free_port()}"\n'
    )
    engine = build_engine(load_settings(config, env={}))
    try:
        engine.sync()
        assert engine.consumers is not None
        (status,) = engine.consumers.poll()
        assert status.error is not None and "cannot be reached" in status.error
        assert "Connection refused" in status.error and status.requests == 1
        (source,) = engine.status()
        assert source.consumers["af"]["error"] == status.error
    finally:
        engine.close()


def test_wait_takes_the_dags_of_the_commit_itself_from_a_sync_of_several(
    tmp_path: Path, repo: GitRepo
) -> None:
    """Without consumers, `wait` waits until the commit is served; of a sync that took in
    several commits, it waits for the DAGs of the files that commit changed."""
    from typer.testing import CliRunner

    from gitdags.cli import app

    repo.commit("one", {"a.yaml": dag_yaml("a"), "b.yaml": dag_yaml("b")})
    config = tmp_path / "config.toml"
    config.write_text(f'[state]\ndatabase = "s.db"\n[[sources]]\nname = "m"\nurl = "{repo.path}"\n')

    def run(*args: str) -> tuple[int, str, str]:
        done = CliRunner().invoke(app, ["--config", str(config), *args])
        return done.exit_code, done.stdout, done.stderr

    assert run("sync")[0] == 0
    first = repo.commit("a", {"a.yaml": dag_yaml("a", "x", "y")})
    repo.commit("b", {"b.yaml": dag_yaml("b", "x", "y")})
    code, out, err = run("wait", "--commit", first[:10], "--timeout", "2s", "--json")
    assert code == 2 and "not synced yet" in out, (out, err)
    assert run("sync")[0] == 0
    code, out, _err = run("wait", "--commit", first[:10], "--json")
    assert code == 0 and json.loads(out)["dags"] == {"a": {}}, out
    bad = repo.commit("bad", {"b.yaml": "dag_id: b\ntasks: 3\n"})
    assert run("sync")[0] == 0
    code, _out, err = run("wait", "--commit", bad, "--timeout", "5s")
    assert code == 1 and f"b is invalid in gitdags at {bad[:12]} (GD" in err, err
