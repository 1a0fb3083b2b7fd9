"""Rollback, pin, pause, source rollback, diff and the audit log on a real history."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gitdags.cli import app
from gitdags.engine import SyncEngine
from gitdags.errors import ActionError, NotFoundError
from tests.conftest import Gate, GitRepo, dag_yaml
from tests.test_sync import source

BROKEN = "dag_id: etl\ntasks: [{id: a, type: bash}]\n"  # bash without its command


@pytest.fixture
def history(repo: GitRepo, make_engine) -> tuple[SyncEngine, GitRepo, list[str]]:
    """etl: v1 good, v2 good, v3 broken, v4 good; `old` deleted and `new` added in v4."""
    engine = make_engine(
        source(repo),
    )
    commits = []
    for message, files, delete in [
        ("v1", {"etl.yaml": dag_yaml("etl", "a"), "old.yaml": dag_yaml("old")}, []),
        ("v2", {"etl.yaml": dag_yaml("etl", "a", "b")}, []),
        ("v3", {"etl.yaml": BROKEN}, []),
        (
            "v4",
            {"etl.yaml": dag_yaml("etl", "a", "b", "c"), "new.yaml": dag_yaml("new")},
            ["old.yaml"],
        ),
    ]:
        commits.append(repo.commit(message, files, delete=delete))
        (result,) = engine.sync()
        assert result.error is None
    assert [(v.version, v.valid) for v in engine.history("etl")] == [
        (4, True),
        (3, False),
        (2, True),
        (1, True),
    ]
    return engine, repo, commits


def sync_config(tmp_path: Path, engine: SyncEngine, repo: GitRepo) -> Path:
    """A config.toml for gitdags in another process, on the same database and repository."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{engine.settings.database}"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    return config


def served(engine: SyncEngine) -> dict[str, int]:
    return {d.dag_id: d.version for d in engine.served()}


def test_rollback_pins_until_unpin(history) -> None:
    engine, repo, _ = history
    result = engine.rollback("etl", "1", reason="v4 breaks the warehouse", actor="ops-ann")
    assert "now serves v1" in result.message
    dag = engine.dag("etl")
    assert (dag.status, dag.pinned, dag.served_version) == ("pinned", True, 1)
    repo.commit("v5", {"etl.yaml": dag_yaml("etl", "a", "b", "c", "d")})
    engine.sync()
    dag = engine.dag("etl")
    assert (dag.served_version, dag.newest_version, dag.status) == (1, 5, "pinned")
    engine.unpin("etl")
    dag = engine.dag("etl")
    assert (dag.served_version, dag.status, dag.pinned) == (5, "active", False)
    (unpin, rollback) = engine.audit("etl")
    assert (rollback.actor, rollback.action, rollback.reason) == (
        "ops-ann",
        "rollback",
        "v4 breaks the warehouse",
    )
    assert rollback.detail["from_version"] == 4 and rollback.detail["to_version"] == 1
    assert unpin.action == "unpin"


def test_until_change_lets_go_by_itself(history) -> None:
    engine, repo, _ = history
    engine.rollback("etl", "v1", until_change=True)
    repo.commit("docs", {"README.md": "unrelated"})
    engine.sync()
    assert engine.dag("etl").served_version == 1
    repo.commit("v5", {"etl.yaml": dag_yaml("etl", "x")})
    engine.sync()
    dag = engine.dag("etl")
    assert (dag.served_version, dag.pinned, dag.status) == (5, False, "active")
    assert engine.audit("etl")[0].actor == "gitdags"


def test_until_change_holds_while_the_new_commit_is_invalid(history) -> None:
    engine, repo, _ = history
    engine.rollback("etl", "1", until_change=True)
    repo.commit("v5 broken", {"etl.yaml": BROKEN + "# again\n"})
    engine.sync()
    assert (engine.dag("etl").served_version, engine.dag("etl").pinned) == (1, True)


def test_default_rollback_skips_invalid_versions(history) -> None:
    engine, _, _ = history
    engine.rollback("etl")
    assert engine.dag("etl").served_version == 2


def test_refused_rollbacks(history) -> None:
    engine, _, _ = history
    with pytest.raises(ActionError, match="Version 3 of 'etl' is invalid"):
        engine.rollback("etl", "3")
    with pytest.raises(NotFoundError, match="no version 99"):
        engine.rollback("etl", "99")
    with pytest.raises(NotFoundError, match="There is no DAG"):
        engine.rollback("ghost")
    with pytest.raises(NotFoundError, match="not in source"):
        engine.rollback("etl", "deadbeefcafe")
    assert engine.dag("etl").served_version == 4 and engine.audit() == []


def test_rollback_to_a_commit(history) -> None:
    engine, _, commits = history
    engine.rollback("etl", commits[1][:8])
    assert engine.dag("etl").served_version == 2
    engine.unpin("etl")
    with pytest.raises(ActionError, match="already serves v1"):  # its only version
        engine.rollback("new", commits[3])


def test_rollback_restores_a_deleted_dag(history) -> None:
    engine, _, _ = history
    assert engine.dag("old").status == "deleted"
    engine.rollback("old")
    assert engine.dag("old").status == "pinned" and served(engine)["old"] == 1
    engine.unpin("old")
    assert engine.dag("old").status == "deleted" and "old" not in served(engine)


def test_source_rollback_restores_and_withdraws(history) -> None:
    engine, _, commits = history
    result = engine.rollback_source("main", commits[1])
    assert served(engine) == {"etl": 2, "old": 1}
    assert {c.dag_id: c.change for c in result.changes} == {
        "etl": "rollback",
        "old": "restored",
        "new": "withdrawn",
    }
    assert engine.status()[0].pinned_commit == commits[1]
    engine.unpin_source("main")
    assert served(engine) == {"etl": 4, "new": 1}
    assert engine.dag("old").status == "deleted"


def test_releasing_a_source_rollback_gives_each_dag_its_own_rollback_back(history) -> None:
    engine, _, commits = history
    engine.rollback("etl", to="1", reason="bad batch")  # its own decision, before
    engine.rollback("old", to="1", reason="still needed")  # a deleted DAG brought back
    assert served(engine) == {"etl": 1, "old": 1, "new": 1}
    engine.rollback_source("main", commits[1])
    engine.rollback_source("main", commits[0])  # a second one keeps what the first put aside
    result = engine.unpin_source("main", reason="incident over")
    assert served(engine) == {"etl": 1, "old": 1, "new": 1}  # not etl v4, not old deleted
    assert {d.dag_id: d.status for d in engine.list_dags()} == {
        "etl": "pinned",
        "old": "pinned",
        "new": "active",
    }
    assert "2 keep their own rollback or pin (etl, old)" in result.message
    (entry,) = [a for a in engine.audit() if a.action == "unpin-source"]
    assert entry.detail["kept"] == ["etl", "old"]
    assert {c["dag_id"]: c["change"] for c in entry.detail["changes"]} == {
        "etl": "pin kept",
        "old": "pin kept",
        "new": "unpin",
    }


def test_pinned_source_records_but_does_not_serve_new_commits(history) -> None:
    engine, repo, commits = history
    engine.rollback_source("main", commits[1])
    repo.commit("v5", {"etl.yaml": dag_yaml("etl", "z"), "later.yaml": dag_yaml("later")})
    engine.sync()
    assert served(engine) == {"etl": 2, "old": 1}
    assert engine.dag("etl").newest_version == 5
    engine.unpin_source("main")
    assert served(engine) == {"etl": 5, "new": 1, "later": 1}


def test_pause_and_resume(history) -> None:
    engine, _, _ = history
    engine.pause("etl", reason="incident 42")
    assert engine.dag("etl").status == "paused" and "etl" not in served(engine)
    assert "already paused" in engine.pause("etl").message
    engine.resume("etl")
    assert engine.dag("etl").status == "active" and served(engine)["etl"] == 4
    assert [e.action for e in engine.audit("etl")] == ["resume", "pause"]


def test_diff_text_and_structure(history) -> None:
    engine, _, _ = history
    found = engine.diff("etl", 1, 2)
    assert found.text.startswith("--- etl v1")
    assert "+- id: b\n" in found.text
    assert found.changes["tasks_added"] == ["b"]
    assert found.changes["tasks_removed"] == [] and found.changes["fields_changed"] == []
    assert engine.diff("etl").text == ""  # served == newest
    engine.rollback("etl", "2")
    default = engine.diff("etl")
    assert (default.from_version, default.to_version) == (2, 4)
    assert default.changes["tasks_added"] == ["c"]


def test_cli_diff_rollback_audit(tmp_path: Path, history) -> None:
    engine, repo, _ = history
    config = sync_config(tmp_path, engine, repo)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, ["--config", str(config), *args])

    plain = run("diff", "etl", "1", "2")  # they differ: exit 1, as diff(1) and argocd say
    assert plain.exit_code == 1 and "\x1b[" not in plain.stdout and "+- id: b" in plain.stdout
    same = run("diff", "etl", "4", "4")
    assert same.exit_code == 0 and "identical" in same.stdout
    assert "\x1b[32m" in run("diff", "etl", "v1", "v2", "--color").stdout
    structured = run("diff", "etl", "1", "4", "--json")
    assert structured.exit_code == 1 and '"tasks_added"' in structured.stdout
    done = run("rollback", "etl", "--to", "2", "--reason", "bad load", "--actor", "ann")
    assert done.exit_code == 0 and "now serves v2" in done.stdout
    refused = run("rollback", "etl", "--to", "3")
    assert refused.exit_code == 1 and "invalid" in refused.stderr
    log = run("audit", "etl")
    assert "ann" in log.stdout and "bad load" in log.stdout and "v4 -> v2" in log.stdout


def test_an_action_racing_a_sync_is_serialized(tmp_path: Path, history) -> None:
    """A pause lands between a sync's plan and its record: the sync records the new version
    of the paused DAG and keeps it paused (the plan is only a read; the record re-reads)."""
    engine, repo, _ = history
    files = {f"bulk/{i:04}.yaml": dag_yaml(f"bulk{i:04}") for i in range(50)}
    repo.commit("many", {**files, "etl.yaml": dag_yaml("etl", "a", "b", "c", "d")})
    config = sync_config(tmp_path, engine, repo)
    gate = Gate(tmp_path / "gate", "after-plan")
    proc = gate.start_sync(config)
    gate.wait_reached(proc)  # the sync has planned; it has not written anything yet
    engine.pause("etl", reason="during a sync")
    gate.open()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    etl = engine.dag("etl")
    assert (etl.status, etl.newest_version) == ("paused", 5)
    assert len(engine.list_dags()) == 53


def test_an_action_waits_for_a_sync_holding_the_write_lock(tmp_path: Path, history) -> None:
    engine, repo, _ = history
    repo.commit("etl v5", {"etl.yaml": dag_yaml("etl", "a", "b", "c", "d")})
    config = sync_config(tmp_path, engine, repo)
    gate = Gate(tmp_path / "gate", "in-record")
    proc = gate.start_sync(config)
    gate.wait_reached(proc)  # inside the sync's transaction: it holds the write lock
    done: list[str] = []
    pausing = threading.Thread(target=lambda: done.append(engine.pause("etl").action))
    pausing.start()
    gate.open()
    pausing.join(timeout=60)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert done == ["pause"]
    etl = engine.dag("etl")
    assert (etl.status, etl.newest_version, etl.served_version) == ("paused", 5, 5)
    assert [e.action for e in engine.audit("etl")][:1] == ["pause"]


def test_a_rollback_to_the_served_version_is_refused(history) -> None:
    """It used to pin v4 as a 'rollback' from v4 to v4 (the console did so from its table)."""
    engine, _, _ = history
    with pytest.raises(ActionError, match="already serves v4"):
        engine.rollback("etl", to="4")
    with pytest.raises(ActionError, match="invalid"):
        engine.rollback_target("etl", "3")
    assert engine.rollback_target("etl", "2").version == 2
    assert not engine.dag("etl").pinned
    assert engine.pin("etl").changes[0].version == 4  # holding it is a pin
