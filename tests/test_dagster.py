"""Dagster code locations, the static tier: jobs and asset groups as DAGs, the checks of one
module and of the whole location, the deploy folder as the location's files. Real git repos,
real SQLite, no Dagster (tests/test_dagster_live.py runs the real one)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gitdags.config import SourceConfig
from gitdags.engine import SyncEngine
from gitdags.kinds import ReadContext, read
from tests.conftest import SAMPLE, GitRepo, free_port
from tests.test_sync import statuses

JOBS = (SAMPLE / "dagster" / "pipeline" / "jobs.py").read_text()
TRAINING = (SAMPLE / "dagster" / "pipeline" / "training.py").read_text()
INGEST = (SAMPLE / "dagster" / "pipeline" / "ingest.py").read_text()


def dagster_source(repo: GitRepo, **kw: object) -> SourceConfig:
    return SourceConfig(  # type: ignore[arg-type]
        name="ml",
        url=str(repo.path),
        subdir="dagster",
        include=("**/*.py",),
        orchestrator="dagster",
        **kw,
    )


def copy_location(repo: GitRepo) -> None:
    shutil.copytree(SAMPLE / "dagster", repo.path / "dagster", dirs_exist_ok=True)


@pytest.fixture
def world(repo: GitRepo, make_engine, tmp_path: Path) -> tuple[SyncEngine, GitRepo, Path]:
    copy_location(repo)
    repo.commit("the ML location")
    deploy = tmp_path / "deploy"
    engine = make_engine(dagster_source(repo), deploy_dir=deploy)
    (result,) = engine.sync()
    assert result.error is None, result.error
    return engine, repo, deploy


def served(deploy: Path) -> dict[str, str]:
    root = deploy / "current"
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in sorted(root.rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def codes(engine: SyncEngine, dag_id: str) -> list[str]:
    return [i.code for i in engine.history(dag_id)[0].issues]


def test_jobs_and_unselected_asset_groups_are_dags(world) -> None:
    engine, _repo, deploy = world
    assert statuses(engine) == {"train_model": "active", "assets.ingest": "active"}
    job = engine.show("train_model")
    assert job.state.path == "dagster/pipeline/jobs.py"
    spec = job.spec
    assert spec["format"] == "dagster" and spec["job"] == "asset_job"
    assert spec["schedules"] == [{"name": "train_model_schedule", "cron": "0 3 * * *"}]
    assert spec["schedule"] == "0 3 * * *"
    tasks = {t["id"]: t["depends_on"] for t in spec["tasks"]}
    assert tasks == {"features": [], "model": ["features"], "model_report": ["model"]}
    group = engine.show("assets.ingest")
    assert group.state.path == "dagster/definitions.py"  # the Definitions module holds groups
    assert {t["id"]: t["depends_on"] for t in group.spec["tasks"]} == {
        "clean_events": ["raw_events"],
        "raw_events": [],
    }
    # the deploy folder holds the location's files at their paths under the subdir
    assert set(served(deploy)) == {
        "definitions.py",
        "pipeline/__init__.py",
        "pipeline/ingest.py",
        "pipeline/training.py",
        "pipeline/jobs.py",
    }


def test_a_schedule_in_another_module_makes_a_new_version_of_its_job(world) -> None:
    engine, repo, _deploy = world
    jobs = JOBS.replace(
        'nightly_training = ScheduleDefinition(job=train_model, cron_schedule="0 3 * * *")\n',
        "",
    ).replace(", ScheduleDefinition", "")
    schedules = (
        "from dagster import ScheduleDefinition\n\nfrom pipeline.jobs import train_model\n\n"
        'nightly_training = ScheduleDefinition(name="nightly", job=train_model, '
        'cron_schedule="0 4 * * *")\n'
    )
    defs = (SAMPLE / "dagster" / "definitions.py").read_text()
    defs = defs.replace(
        "from pipeline.jobs import nightly_training, train_model",
        "from pipeline.jobs import train_model\nfrom pipeline.schedules import nightly_training",
    )
    repo.commit(
        "schedules apart",
        {
            "dagster/pipeline/jobs.py": jobs,
            "dagster/pipeline/schedules.py": schedules,
            "dagster/definitions.py": defs,
        },
    )
    (result,) = engine.sync()
    assert not [i for i in result.issues if i.severity == "error"], result.issues
    assert engine.show("train_model").spec["schedules"] == [
        {"name": "nightly", "cron": "0 4 * * *"}
    ]
    # only the schedules module changes: the job gets a new version all the same
    repo.commit("later", {"dagster/pipeline/schedules.py": schedules.replace("0 4", "0 5")})
    (result,) = engine.sync()
    assert [(c.dag_id, c.change) for c in result.changes] == [("train_model", "changed")]
    assert engine.show("train_model").spec["schedules"] == [
        {"name": "nightly", "cron": "0 5 * * *"}
    ]


def test_a_bad_cron_string_keeps_the_last_good_job_file(world) -> None:
    engine, repo, deploy = world
    repo.commit("bad cron", {"dagster/pipeline/jobs.py": JOBS.replace("0 3 * * *", "0 25 * * *")})
    (result,) = engine.sync()
    assert [(c.dag_id, c.change) for c in result.changes] == [("train_model", "invalid")]
    assert codes(engine, "train_model") == ["GD105"]
    issue = engine.history("train_model")[0].issues[0]
    assert issue.line == 7 and "0 25 * * *" in issue.message
    assert served(deploy)["pipeline/jobs.py"] == JOBS


def test_a_broken_asset_module_is_held_back(world) -> None:
    engine, repo, deploy = world
    repo.commit("syntax", {"dagster/pipeline/training.py": TRAINING + "def oops(:\n"})
    (result,) = engine.sync()
    assert [i.code for i in result.issues] == ["GD401"]
    assert served(deploy)["pipeline/training.py"] == TRAINING
    assert statuses(engine)["train_model"] == "active"


@pytest.mark.parametrize(
    ("change", "code", "where"),
    [
        # an asset key defined by two modules: the changed one is refused
        (
            {
                "dagster/pipeline/extra.py": "from dagster import asset\n\n@asset\ndef model():\n"
                "    return 1\n"
            },
            "GD420",
            "dagster/pipeline/extra.py",
        ),
        # a cycle between assets of two modules
        (
            {
                "dagster/pipeline/ingest.py": INGEST.replace(
                    "def raw_events()", "def raw_events(model_report)"
                )
            },
            "GD204",
            "dagster/pipeline/ingest.py",
        ),
        # a job selecting an asset no module defines
        (
            {
                "dagster/pipeline/jobs.py": JOBS.replace(
                    'AssetSelection.groups("ml")', 'AssetSelection.assets("nowhere")'
                )
            },
            "GD202",
            "dagster/pipeline/jobs.py",
        ),
        # a job selecting a group without assets
        (
            {"dagster/pipeline/jobs.py": JOBS.replace('groups("ml")', 'groups("mll")')},
            "GD202",
            "dagster/pipeline/jobs.py",
        ),
        # a schedule of a job that does not exist
        (
            {
                "dagster/pipeline/more.py": "from dagster import ScheduleDefinition\n\n"
                's = ScheduleDefinition(job_name="nope", cron_schedule="@daily")\n'
            },
            "GD422",
            "dagster/pipeline/more.py",
        ),
        # module imports: a module of the location that does not exist, a name not defined
        (
            {"dagster/pipeline/extra.py": "import pipeline.gone\n"},
            "GD407",
            "dagster/pipeline/extra.py",
        ),
        (
            {"dagster/pipeline/extra.py": "from pipeline import nothere\n"},
            "GD407",
            "dagster/pipeline/extra.py",
        ),
        # a name another (unchanged) module imports is gone: the change is held back
        (
            {"dagster/pipeline/jobs.py": JOBS.replace("nightly_training =", "nightly =")},
            "GD423",
            "dagster/pipeline/jobs.py",
        ),
        # the Definitions module without Definitions(...)
        (
            {"dagster/definitions.py": "import dagster\n"},
            "GD421",
            "dagster/definitions.py",
        ),
    ],
)
def test_checks_across_the_location(world, change, code, where) -> None:
    engine, repo, deploy = world
    before = served(deploy)
    repo.commit("change", change)
    (result,) = engine.sync()
    found = [(i.code, i.file) for i in result.issues if i.severity == "error"]
    assert (code, where) in found, result.issues
    rel = where[len("dagster/") :]
    assert served(deploy).get(rel) == before.get(rel)  # held back (or never served)


def test_a_job_named_twice_across_modules(world) -> None:
    engine, repo, _deploy = world
    twice = 'from dagster import define_asset_job\n\nagain = define_asset_job("train_model")\n'
    repo.commit("twice", {"dagster/pipeline/again.py": twice})
    (result,) = engine.sync()
    assert ("GD301", "dagster/pipeline/again.py") in [(i.code, i.file) for i in result.issues]
    assert engine.show("train_model").state.path == "dagster/pipeline/jobs.py"


def test_forbidden_imports_and_an_asset_dep_naming_no_asset(repo, make_engine) -> None:
    copy_location(repo)
    repo.write(
        "dagster/pipeline/training.py",
        TRAINING.replace('deps=["model"]', 'deps=["model", "ext"]'),
    )
    repo.write("dagster/pipeline/extra.py", "import mycompany.jobs\n")
    repo.commit("imports")
    engine = make_engine(dagster_source(repo, forbidden_imports=("mycompany",)))
    (result,) = engine.sync()
    found = {(i.code, i.severity) for i in result.issues}
    assert ("GD405", "error") in found
    assert ("GD202", "warning") in found  # deps= naming no asset: an external asset to Dagster
    assert statuses(engine) == {"train_model": "active", "assets.ingest": "active"}


def test_op_jobs_graph_jobs_and_sensors_read_statically() -> None:
    text = """
import dagster as dg

@dg.op
def extract():
    return 1

@dg.op
def load(rows):
    return rows

@dg.job(description="copy")
def copy_job():
    load(extract())

@dg.graph
def nightly():
    rows = extract()
    load(rows)

nightly_job = nightly.to_job(name="nightly_job")

@dg.sensor(job=copy_job)
def new_file(context):
    return None

@dg.schedule(cron_schedule="@hourly", job=nightly_job)
def hourly(context):
    return {}
"""
    found = read("ops.py", text.encode(), ctx=ReadContext(orchestrator="dagster"))
    assert found.kind == "dagster" and not found.issues
    specs = {d.dag_id: d.spec for d in found.dags}
    assert set(specs) == {"copy_job", "nightly_job"}
    assert specs["copy_job"]["tasks"] == [
        {"id": "extract", "type": "op", "depends_on": []},
        {"id": "load", "type": "op", "depends_on": ["extract"]},
    ]
    assert specs["copy_job"]["sensors"] == ["new_file"]
    assert specs["copy_job"]["description"] == "copy"
    assert specs["nightly_job"]["job"] == "graph_job"
    assert specs["nightly_job"]["schedules"] == [{"name": "hourly", "cron": "@hourly"}]
    assert [t["id"] for t in specs["nightly_job"]["tasks"]] == ["extract", "load"]


def test_multi_assets_keys_and_collisions_in_one_module() -> None:
    text = """
from dagster import AssetKey, AssetOut, AssetSpec, asset, multi_asset

@multi_asset(outs={"a": AssetOut(), "b": AssetOut(key=AssetKey(["warehouse", "b"]))})
def both():
    return 1, 2

@multi_asset(specs=[AssetSpec("c", deps=["a"])])
def third():
    pass

@asset(key_prefix="warehouse", name="b")
def again():
    pass
"""
    found = read("m.py", text.encode(), ctx=ReadContext(orchestrator="dagster"))
    assert [(i.code, i.line) for i in found.issues] == [("GD420", 13)]
    assert "warehouse/b" in found.issues[0].message


def test_the_configuration_of_a_dagster_source(tmp_path: Path) -> None:
    from gitdags.config import load_settings
    from gitdags.errors import ConfigError

    base = """
[publish]
deploy_dir = "deploy"
{publish}
[[sources]]
name = "ml"
url = "repo"
include = ["**/*.py"]
{source}
"""

    def load(publish: str = "", source: str = "") -> object:
        path = tmp_path / "config.toml"
        path.write_text(base.format(publish=publish, source=source))
        return load_settings(path, env={})

    settings = load(
        '[publish.dagster]\nurl = "http://127.0.0.1:3000"\ntimeout = "5s"\n',
        'python = "dagster"\ndagster_python = "venv/bin/python"\n',
    )
    (config,) = settings.sources  # type: ignore[attr-defined]
    assert config.orchestrator == "dagster"  # python = "dagster" implies it
    assert config.dagster_python == str(tmp_path / "venv/bin/python")
    assert config.dagster_module == "definitions.py"
    assert settings.dagster.url == "http://127.0.0.1:3000"  # type: ignore[attr-defined]
    assert settings.dagster.timeout == 5.0  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="needs dagster_python"):
        load(source='python = "dagster"\n')
    with pytest.raises(ConfigError, match=r"\[publish.dagster\] .* needs url"):
        load('[publish.dagster]\nlocation = "ml"\n')
    with pytest.raises(ConfigError, match="Unknown key 'urll'"):
        load('[publish.dagster]\nurll = "x"\n')
    with pytest.raises(ConfigError, match='use "static" or "dagster"'):
        load(source='orchestrator = "dagster"\npython = "airflow"\n')


HOSTILE = Path(__file__).parent / "data" / "hostile"


def test_hostile_modules_never_break_the_reader(repo, make_engine) -> None:
    """The hostile Python files, and Dagster-shaped ones: each is an error of its file (or
    fine), never an internal error, and the location is still put together."""
    ctx = ReadContext(orchestrator="dagster")
    chain = " | ".join(f'AssetSelection.assets("a{i}")' for i in range(3000))
    files = {p.name: p.read_bytes() for p in sorted(HOSTILE.glob("*.py"))}
    files["deep_selection.py"] = (
        f"from dagster import AssetSelection, define_asset_job\nj = define_asset_job('j', "
        f"selection={chain})\n"
    ).encode()
    files["ring.py"] = (
        "from dagster import asset\n"
        + "".join(
            f"@asset(deps=['r{(i + 1) % 2000}'])\ndef r{i}():\n    pass\n" for i in range(2000)
        )
    ).encode()
    files["odd.py"] = (
        b"from dagster import asset, multi_asset, AssetOut, define_asset_job, job\n"
        b"@asset(key=f'{1}', key_prefix=None, deps=[x for x in y])\ndef a(*args, **kw): ...\n"
        b"@multi_asset(outs={**more, 'b': AssetOut(key_prefix=compute())})\ndef m(): ...\n"
        b"define_asset_job(name=compute(), selection=lambda: 1)\n"
        b"@job\ndef j():\n    [o() for o in ops]\n    a(b(c(d())), *rest, **kw)\n"
    )
    for name, raw in files.items():
        found = read(f"loc/{name}", raw, ctx=ctx)
        assert not any(i.code == "GD004" for i in found.all_issues()), (name, found.issues)
    for name, raw in files.items():
        repo.write(f"dagster/{name}", raw)
    copy_location(repo)
    repo.commit("hostile")
    engine = make_engine(dagster_source(repo))
    (result,) = engine.sync()
    assert result.error is None, result.error
    codes = {(i.code, i.file.rsplit("/", 1)[-1]) for i in result.issues}
    assert ("GD204", "ring.py") in codes  # the ring of 2000 assets is a cycle
    assert ("GD401", "deep_selection.py") in codes or ("GD202", "deep_selection.py") in codes


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_a_dagster_python_without_dagster_is_the_sources_error(repo, make_engine) -> None:
    import sys

    copy_location(repo)
    repo.commit("location")
    engine = make_engine(dagster_source(repo, python="dagster", dagster_python=sys.executable))
    (result,) = engine.sync()
    assert result.error is not None
    assert "The Dagster parse worker did not start with" in result.error
    assert "check that Dagster is installed there" in result.error
    assert engine.list_dags() == []  # nothing recorded from a sync that could not judge


def test_validate_checks_a_folder_as_a_code_location(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from gitdags.cli import app

    folder = tmp_path / "location"
    shutil.copytree(SAMPLE / "dagster", folder)
    runner = CliRunner()
    (tmp_path / "config.toml").write_text('[state]\ndatabase = "state.db"\n')
    env = {"GITDAGS_CONFIG": str(tmp_path / "config.toml")}
    done = runner.invoke(app, ["validate", "--orchestrator", "dagster", str(folder)], env=env)
    assert done.exit_code == 0, done.output
    (folder / "pipeline" / "jobs.py").write_text(JOBS.replace("0 3 * * *", "0 3 * *"))
    (folder / "pipeline" / "extra.py").write_text("from pipeline.jobs import nothing\n")
    done = runner.invoke(
        app, ["validate", "--orchestrator", "dagster", "--format", "json", str(folder)], env=env
    )
    assert done.exit_code == 1
    found = {(i["code"], Path(i["file"]).name, i["line"]) for i in json.loads(done.stdout)}
    assert found == {("GD105", "jobs.py", 7), ("GD407", "extra.py", 1)}


BAD = Path(__file__).parent / "data" / "bad"


def test_the_dagster_bad_files_give_their_codes(repo, make_engine, tmp_path: Path) -> None:
    from gitdags.checks.offline import check_paths

    for name in ("GD420-asset-key-collision.py", "GD422-unknown-job-target.py"):
        _files, issues = check_paths([str(BAD / name)], orchestrator="dagster")
        assert name[:5] in {i.code for i in issues}, (name, issues)
    # GD421: the file as the location's dagster_module; GD423: the file as pipeline/jobs.py
    copy_location(repo)
    repo.write("dagster/entry.py", (BAD / "GD421-no-definitions.py").read_text())
    repo.commit("location")
    engine = make_engine(dagster_source(repo, dagster_module="entry.py"))
    (result,) = engine.sync()
    assert ("GD421", "dagster/entry.py") in {(i.code, i.file) for i in result.issues}
    bad = (BAD / "GD423-location-broken-elsewhere.py").read_text()
    repo.commit("renamed", {"dagster/pipeline/jobs.py": bad})
    (result,) = engine.sync()
    assert ("GD423", "dagster/pipeline/jobs.py") in {(i.code, i.file) for i in result.issues}


def test_rollback_and_pause_of_a_job_act_on_its_file(world) -> None:
    engine, repo, deploy = world
    repo.commit("later", {"dagster/pipeline/jobs.py": JOBS.replace("0 3 * * *", "0 4 * * *")})
    engine.sync()
    assert "0 4 * * *" in served(deploy)["pipeline/jobs.py"]
    engine.rollback("train_model", reason="the 4 o'clock run collides")
    assert served(deploy)["pipeline/jobs.py"] == JOBS  # the job's file at the earlier blob
    assert statuses(engine)["train_model"] == "pinned"
    engine.unpin("train_model")
    engine.pause("train_model")
    # paused in Dagster (its schedules stopped): the file stays, the location needs it
    assert "0 4 * * *" in served(deploy)["pipeline/jobs.py"]
    assert statuses(engine)["train_model"] == "paused"


def test_an_unreachable_webserver_is_a_publish_error(repo, make_engine, tmp_path: Path) -> None:

    from gitdags.config import DagsterSettings

    port = free_port()  # a port nothing listens on
    copy_location(repo)
    repo.commit("location")
    engine = make_engine(
        dagster_source(repo),
        deploy_dir=tmp_path / "deploy",
        dagster=DagsterSettings(f"http://127.0.0.1:{port}", "ml", timeout=5),
    )
    (result,) = engine.sync()
    assert result.error is None
    assert result.publish_error is not None
    assert f"Dagster's webserver http://127.0.0.1:{port}" in result.publish_error
    assert "cannot be reached" in result.publish_error
    assert statuses(engine) == {"train_model": "active", "assets.ingest": "active"}  # recorded
    assert "definitions.py" in served(tmp_path / "deploy")  # and the deploy folder written


def test_pausing_a_job_leaves_the_other_jobs_of_its_file(world) -> None:
    engine, repo, _deploy = world
    more = JOBS + '\nreport_job = define_asset_job("report_job", selection=["model_report"])\n'
    repo.commit("a second job", {"dagster/pipeline/jobs.py": more})
    engine.sync()
    result = engine.pause("train_model")
    assert [c.dag_id for c in result.changes] == ["train_model"]
    assert statuses(engine)["report_job"] == "active"


def test_a_held_back_job_file_stays_held_when_another_module_changes(world) -> None:
    engine, repo, deploy = world
    bad = JOBS.replace('AssetSelection.groups("ml")', 'AssetSelection.assets("nowhere")')
    repo.commit("a selection of nothing", {"dagster/pipeline/jobs.py": bad})
    engine.sync()
    assert codes(engine, "train_model") == ["GD202"]
    # an unrelated change: jobs.py is read again (its job's spec) and judged again, alone
    repo.commit("later", {"dagster/pipeline/ingest.py": INGEST + "\n# later\n"})
    (result,) = engine.sync()
    assert not [i for i in result.issues if i.severity == "error"], result.issues
    assert served(deploy)["pipeline/jobs.py"] == JOBS
    assert served(deploy)["pipeline/ingest.py"] == INGEST + "\n# later\n"
    assert statuses(engine)["train_model"] == "invalid"
