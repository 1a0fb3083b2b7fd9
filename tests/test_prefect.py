"""Prefect sources: deployments of prefect.yaml as DAGs, flow files and modules, the static
tier's checks, last good served (the generated prefect.yaml and the code at its last good
blob), rollback, and `gitdags validate` on a Prefect project."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from gitdags.checks.offline import check_paths
from gitdags.config import SourceConfig
from gitdags.engine import SyncEngine
from tests.conftest import SAMPLE, GitRepo

PROJECT = SAMPLE / "prefect"
INCLUDE = ("**/*.py", "**/*.yaml", "**/*.yml")


def prefect_source(repo: GitRepo, **kw: object) -> SourceConfig:
    return SourceConfig(  # type: ignore[arg-type]
        name="flows", url=str(repo.path), orchestrator="prefect", include=INCLUDE, **kw
    )


def sample(repo: GitRepo) -> str:
    shutil.copytree(PROJECT, repo.path, dirs_exist_ok=True)
    return repo.commit("the streaming project")


def served_tree(tmp_path: Path) -> Path:
    return tmp_path / "deploy" / "current"


def served_project(tmp_path: Path) -> dict:
    return yaml.safe_load((served_tree(tmp_path) / "prefect.yaml").read_text())


def by_id(engine: SyncEngine) -> dict[str, str]:
    """The deployments' statuses (their ids have a /)."""
    return {d.dag_id: d.status for d in engine.list_dags() if "/" in d.dag_id}


def flows(engine: SyncEngine) -> dict[str, str]:
    """The flows' statuses."""
    return {d.dag_id: d.status for d in engine.list_dags() if "/" not in d.dag_id}


def test_deployments_are_dags_named_as_prefect_names_them(
    tmp_path: Path, repo: GitRepo, make_engine
) -> None:
    head = sample(repo)
    engine = make_engine(prefect_source(repo), deploy_dir=tmp_path / "deploy")
    [result] = engine.sync()
    assert result.error is None and result.issues == ()
    assert by_id(engine) == {"event-pipeline/hourly": "active", "event-pipeline/backfill": "active"}
    assert flows(engine) == {
        "event-pipeline": "active",
        "extract-events": "active",
        "load-events": "active",
    }
    flow = engine.show("event-pipeline").spec
    assert flow["format"] == "prefect-flow" and flow["subflows"] == [
        "extract-events",
        "load-events",
    ]
    assert [p["name"] for p in flow["parameters"]] == ["source", "batch_size"]
    states = {d.dag_id: d for d in engine.list_dags()}
    assert states["event-pipeline/hourly"].schedule == "cron 5 * * * * Europe/Paris"
    assert states["event-pipeline/backfill"].schedule == "every 21600s UTC"
    spec = engine.show("event-pipeline/hourly").spec
    assert spec["flow_name"] == "event-pipeline" and spec["work_pool"] == "default-pool"
    assert spec["flow"]["subflows"] == ["extract-events", "load-events"]
    assert [t["id"] for t in spec["tasks"]] == ["extract", "load"]
    assert [c[0] for c in spec["code"]] == [
        "common/__init__.py",
        "common/batching.py",
        "flows/events.py",
    ]
    served = served_project(tmp_path)
    assert [d["name"] for d in served["deployments"]] == ["hourly", "backfill"]
    assert served["pull"][0]["prefect.deployments.steps.git_clone"]["branch"] == "served/all"
    current = served_tree(tmp_path)
    assert (current / "flows" / "events.py").read_text() == (
        PROJECT / "flows/events.py"
    ).read_text()
    assert (current / "common" / "batching.py").is_file()
    assert engine.show("event-pipeline/hourly").state.served_commit == head


def test_a_helper_change_makes_new_versions_and_a_broken_flow_keeps_the_last_good(
    tmp_path: Path, repo: GitRepo, make_engine
) -> None:
    sample(repo)
    engine = make_engine(prefect_source(repo), deploy_dir=tmp_path / "deploy")
    engine.sync()
    good_flow = (served_tree(tmp_path) / "flows/events.py").read_text()

    helper = (PROJECT / "common/batching.py").read_text() + "\n\nSIZE = 10\n"
    repo.commit("batching: a default size", {"common/batching.py": helper})
    [result] = engine.sync()
    assert {(c.dag_id, c.change, c.version) for c in result.changes} == {
        ("event-pipeline/hourly", "changed", 2),
        ("event-pipeline/backfill", "changed", 2),
    }
    assert (served_tree(tmp_path) / "common/batching.py").read_text() == helper

    broken = good_flow.replace("def event_pipeline(", "def event_pipeline(:")
    repo.commit("events: oops", {"flows/events.py": broken})
    [result] = engine.sync()
    assert by_id(engine) == {
        "event-pipeline/hourly": "invalid",
        "event-pipeline/backfill": "invalid",
    }
    codes = {(i.file, i.code) for i in result.issues}
    assert ("flows/events.py", "GD401") in codes and ("prefect.yaml", "GD401") in codes
    assert (served_tree(tmp_path) / "flows/events.py").read_text() == good_flow
    assert engine.show("event-pipeline/hourly").state.served_version == 2

    assert set(flows(engine).values()) == {"invalid"}

    repo.commit("events: fixed", {"flows/events.py": good_flow + "\n# fixed\n"})
    engine.sync()
    assert set(by_id(engine).values()) == {"active"}
    assert set(flows(engine).values()) == {"active"}
    assert (served_tree(tmp_path) / "flows/events.py").read_text().endswith("# fixed\n")

    # a flow rolled back: its file is served at that version, its file mates held with it
    engine.rollback("event-pipeline", to="1", reason="the fix is slower")
    assert (served_tree(tmp_path) / "flows/events.py").read_text() == good_flow
    assert flows(engine) == {
        "event-pipeline": "pinned",
        "extract-events": "pinned",
        "load-events": "pinned",
    }


def test_a_deployment_broken_by_a_flow_change_holds_the_change_back(
    tmp_path: Path, repo: GitRepo, make_engine
) -> None:
    """The flow drops a parameter a deployment passes: Prefect would deploy it and fail the
    runs on the worker. The deployments stay at their last good version with the old code."""
    sample(repo)
    engine = make_engine(prefect_source(repo), deploy_dir=tmp_path / "deploy")
    engine.sync()
    good_flow = (PROJECT / "flows/events.py").read_text()
    changed = good_flow.replace(
        "def event_pipeline(source: str, batch_size: int = 1000)", "def event_pipeline(source: str)"
    ).replace("batch_size)", "100)")
    repo.commit("events: no batch size", {"flows/events.py": changed})
    [result] = engine.sync()
    issues = {(i.file, i.code, i.location) for i in result.issues}
    assert ("prefect.yaml", "GD103", "deployments.0.parameters.batch_size") in issues
    assert ("flows/events.py", "GD409", "") in issues
    assert set(by_id(engine).values()) == {"invalid"}
    assert (served_tree(tmp_path) / "flows/events.py").read_text() == good_flow


def test_static_checks_with_codes_and_lines(tmp_path: Path, repo: GitRepo, make_engine) -> None:
    flows = (
        "from prefect import flow, task\nimport mycompany.jobs\n\n"
        "@task\ndef step(x: int) -> int:\n    return x\n\n"
        "@flow(name='etl')\ndef main(day: str, retries: int = 1) -> None:\n    step(1)\n"
    )
    project = """\
deployments:
  - name: daily
    entrypoint: flows.py:main
    parameters: {day: today, colour: red}
    schedules:
      - cron: "0 2 * * *"
        timezone: Mars/Olympus
  - name: no-day
    entrypoint: flows.py:main
    schedules:
      - interval: soon
      - rrule: "FREQ=SOMETIMES"
      - cron: "61 * * * *"
  - name: a task
    entrypoint: flows.py:step
  - name: gone
    entrypoint: other.py:main
  - name: daily
    entrypoint: flows.py:main
    parameters: {day: today}
  - name: bad/name
    entrypoint: flows.py:main
    parameters: {day: today}
    colour: blue
"""
    repo.commit("project", {"flows.py": flows, "prefect.yaml": project})
    engine = make_engine(prefect_source(repo, forbidden_imports=("mycompany.jobs",)))
    [result] = engine.sync()
    found = {(i.code, i.location, i.line, i.severity) for i in result.issues}
    expected = {
        ("GD405", "", 2, "error"),
        ("GD103", "deployments.0.parameters.colour", 4, "error"),
        ("GD105", "deployments.0.schedules.0.timezone", 7, "error"),
        ("GD101", "deployments.1.parameters", 8, "error"),
        ("GD106", "deployments.1.schedules.0.interval", 11, "error"),
        ("GD105", "deployments.1.schedules.1.rrule", 12, "error"),
        ("GD105", "deployments.1.schedules.2.cron", 13, "error"),
        ("GD110", "deployments.2.entrypoint", 15, "error"),
        ("GD110", "deployments.3.entrypoint", 17, "error"),
        ("GD104", "deployments.5.name", 21, "error"),
        ("GD103", "deployments.5.colour", 24, "warning"),
    }
    assert expected <= found, sorted(found - expected)
    duplicates = [i for i in result.issues if i.code == "GD301"]
    assert {i.message.split("'")[1] for i in duplicates} == {"etl/daily"}
    messages = " ".join(i.message for i in result.issues)
    assert "names a @task, not a @flow of flows.py" in messages
    assert "other.py, which is not a file of the repository" in messages


def test_rollback_serves_the_older_block(tmp_path: Path, repo: GitRepo, make_engine) -> None:
    sample(repo)
    engine = make_engine(prefect_source(repo), deploy_dir=tmp_path / "deploy")
    engine.sync()
    text = (repo.path / "prefect.yaml").read_text().replace("batch_size: 500\n", "batch_size: 50\n")
    repo.commit("hourly: smaller batches", {"prefect.yaml": text})
    [result] = engine.sync()
    assert [(c.dag_id, c.change) for c in result.changes] == [("event-pipeline/hourly", "changed")]
    assert served_project(tmp_path)["deployments"][0]["parameters"]["batch_size"] == 50
    diff = engine.diff("event-pipeline/hourly", 1, 2).text
    assert "-    batch_size: 500\n" in diff and "+    batch_size: 50\n" in diff

    engine.rollback("event-pipeline/hourly", reason="too slow")
    served = served_project(tmp_path)
    assert served["deployments"][0]["parameters"]["batch_size"] == 500
    assert served["deployments"][1]["parameters"]["batch_size"] == 5000

    engine.pause("event-pipeline/backfill", reason="quiet week")
    assert [d["name"] for d in served_project(tmp_path)["deployments"]] == ["hourly"]


def test_a_flow_renamed_in_code_renames_its_deployments(
    tmp_path: Path, repo: GitRepo, make_engine
) -> None:
    sample(repo)
    engine = make_engine(prefect_source(repo))
    engine.sync()
    flow = (
        (PROJECT / "flows/events.py")
        .read_text()
        .replace("@flow(log_prints=True)", "@flow(name='events', log_prints=True)")
    )
    repo.commit("events: a name of its own", {"flows/events.py": flow})
    engine.sync()
    assert by_id(engine) == {
        "event-pipeline/hourly": "deleted",
        "event-pipeline/backfill": "deleted",
        "events/hourly": "active",
        "events/backfill": "active",
    }
    assert flows(engine) == {
        "event-pipeline": "deleted",
        "events": "active",
        "extract-events": "active",
        "load-events": "active",
    }


def test_validate_reads_a_prefect_project(tmp_path: Path) -> None:
    files, issues = check_paths([str(PROJECT)])
    assert issues == []
    [project] = [f for f in files if f.kind == "prefect"]
    assert sorted(d.dag_id for d in project.dags) == [
        "event-pipeline/backfill",
        "event-pipeline/hourly",
    ]
    bad = tmp_path / "project"
    shutil.copytree(PROJECT, bad)
    flow = (bad / "flows/events.py").read_text()
    (bad / "flows/events.py").write_text(flow.replace("batch_size: int = 1000", "size: int = 1"))
    _files, issues = check_paths([str(bad)])
    assert {(i.code, i.location) for i in issues} == {
        ("GD103", "deployments.0.parameters.batch_size"),
        ("GD103", "deployments.1.parameters.batch_size"),
    }


def test_publish_prefect_config(tmp_path: Path) -> None:
    from gitdags.config import load_settings
    from gitdags.errors import ConfigError

    config = tmp_path / "config.toml"
    config.write_text(
        '[publish.prefect]\napi_url = "http://127.0.0.1:4200/api"\n'
        'prefect_python = "venv/bin/python"\ntimeout = "30s"\n'
        '[[sources]]\nname = "flows"\nurl = "repo"\npython = "prefect"\n'
        'prefect_python = "venv/bin/python"\n'
    )
    settings = load_settings(str(config))
    assert settings.prefect is not None
    assert settings.prefect.api_url == "http://127.0.0.1:4200/api"
    assert settings.prefect.prefect_python == tmp_path / "venv/bin/python"
    assert settings.prefect.timeout == 30
    [src] = settings.sources
    assert src.orchestrator == "prefect" and src.prefect_python == str(tmp_path / "venv/bin/python")
    for text, needle in (
        ('[publish.prefect]\napi_ur = "x"\n', "Unknown key 'api_ur' in \\[publish.prefect\\]"),
        ("[publish.prefect]\ntimeout = '1m'\n", "needs api_url"),
    ):
        config.write_text(text)
        with pytest.raises(ConfigError, match=needle):
            load_settings(str(config))


@pytest.mark.parametrize(
    ("item", "accepted"),
    [  # what Prefect 3.9.1's prefect.yaml model (RawScheduleConfig) accepts, measured
        ({"interval": 3600}, True),
        ({"interval": "PT1H"}, True),
        ({"interval": "01:00:00"}, True),
        ({"interval": "1 day, 01:00:00"}, True),
        ({"interval": "2 days"}, True),
        ({"interval": "3600"}, False),
        ({"interval": "-PT1H"}, False),
        ({"cron": "0 2 * * *", "timezone": "America/New_York"}, True),
        ({"cron": "H * * * *"}, False),
        ({"cron": "0 2 * * *", "colour": "red"}, False),
        ({"rrule": "FREQ=WEEKLY;BYDAY=MO,WE"}, True),
        ({"rrule": '{"rrule": "FREQ=DAILY"}'}, True),
        ({"cron": "0 2 * * *", "interval": 60}, False),
    ],
)
def test_schedules_as_prefect_reads_them(item: dict, accepted: bool) -> None:
    from gitdags.orchestrators.prefect.schedules import check

    _summary, issues = check("prefect.yaml", ("schedules", 0), item, lambda _where: None)
    errors = [i for i in issues if i.severity == "error"]
    assert (not errors) == accepted, errors


def test_a_bad_deployment_does_not_hold_back_new_code_and_a_deleted_project_retires(
    tmp_path: Path, repo: GitRepo, make_engine
) -> None:
    """On the first sync a deployment with a bad schedule is invalid alone: the flow file
    has no older version to keep, so the deployment beside it runs the new code. Deleting
    prefect.yaml retires the deployments (the flows stay)."""
    shutil.copytree(PROJECT, repo.path, dirs_exist_ok=True)
    text = (repo.path / "prefect.yaml").read_text().replace("interval: 21600", "interval: -5")
    repo.commit("the streaming project, a bad interval", {"prefect.yaml": text})
    engine = make_engine(prefect_source(repo), deploy_dir=tmp_path / "deploy")
    [result] = engine.sync()
    assert by_id(engine) == {
        "event-pipeline/hourly": "active",
        "event-pipeline/backfill": "invalid",
    }
    assert [i.code for i in result.issues] == ["GD106"]
    assert (served_tree(tmp_path) / "flows/events.py").is_file()
    assert [d["name"] for d in served_project(tmp_path)["deployments"]] == ["hourly"]

    repo.commit("no deployments here any more", delete=["prefect.yaml"])
    engine.sync()
    assert set(by_id(engine).values()) == {"deleted"}
    assert set(flows(engine).values()) == {"active"}
    assert not (served_tree(tmp_path) / "prefect.yaml").exists()
