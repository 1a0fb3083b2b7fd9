"""Public DAG folders (vendored under tests/data/corpora/, each with a SOURCE saying where it
came from) synced by each tier, with real Airflow's DagBag as the judge: every active DAG is
in the DagBag over the served `current/`, the served folder raises no import error the
repository itself does not raise, and gitdags lists no DAG the files do not define."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gitdags.config import SourceConfig
from gitdags.engine import build_engine
from tests.conftest import GitRepo, git, settings_for
from tests.test_active_airflow import load_dagbag

CORPORA = Path(__file__).parent / "data" / "corpora"
NAMES = sorted(p.name for p in CORPORA.iterdir() if (p / "SOURCE").is_file())


@dataclass
class Outcome:
    """One corpus synced by one tier, and what Airflow makes of it and of the repository."""

    repo: GitRepo
    deploy: Path
    status: dict[str, str]
    served_bag: dict[str, object]
    own_bag: dict[str, object]
    defined: dict[str, str] = field(default_factory=dict)  # every DAG id a file defines -> path
    invalid: int = 0  # DAGs (or files of DAGs) the sync refused

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for status in self.status.values():
            found[status] = found.get(status, 0) + 1
        return found


def sync_corpus(name: str, tier: str, root: Path) -> Outcome:
    from tests.test_airflow import airflow_python

    repo = GitRepo(root / "repo")
    shutil.copytree(CORPORA / name / "dags", repo.path / "dags")
    repo.commit(f"{name} as vendored")
    deploy = root / "deploy"
    config = SourceConfig(
        name=name,
        url=str(repo.path),
        subdir="dags",
        include=("**/*.py",),
        python=tier,
        airflow_python=str(airflow_python()),
    )
    engine = build_engine(settings_for(root, config, deploy_dir=deploy, parsing_processes=2))
    try:
        (result,) = engine.sync()
        assert result.error is None, result.error
        status = {d.dag_id: d.status for d in engine.list_dags()}
        defined = {
            dag_id: path
            for path, dag_id in engine.store._tuples("SELECT path, dag_id FROM file_dags")
        }
    finally:
        engine.close()
    return Outcome(
        repo,
        deploy,
        status,
        load_dagbag(deploy / "current", root / "airflow-home"),
        load_dagbag(repo.path / "dags", root / "airflow-home"),  # as git-sync would serve it
        defined,
        result.invalid,
    )


@pytest.fixture(scope="module", params=[(n, t) for n in NAMES for t in ("static", "airflow")])
def outcome(request, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    name, tier = request.param
    return sync_corpus(name, tier, tmp_path_factory.mktemp(f"{name}-{tier}"))


def test_there_are_three_corpora_of_different_shapes() -> None:
    assert len(NAMES) >= 3
    for name in NAMES:
        assert "PyPI" in (CORPORA / name / "SOURCE").read_text()


def test_every_active_dag_is_in_the_dagbag_over_current(outcome: Outcome) -> None:
    active = {d for d, s in outcome.status.items() if s == "active"}
    missing = active - set(outcome.served_bag["dags"])  # type: ignore[arg-type]
    # a DAG file that fails in the repository itself fails where it is served: only the
    # static tier, which runs nothing, may list its DAGs active
    failing = set(outcome.own_bag["errors"])  # type: ignore[arg-type]
    assert {
        d for d in missing if outcome.defined.get(d, "")[len("dags/") :] not in failing
    } == set()


def test_the_served_folder_raises_no_import_error_of_its_own(outcome: Outcome) -> None:
    served_errors = set(outcome.served_bag["errors"])  # type: ignore[arg-type]
    assert served_errors <= set(outcome.own_bag["errors"]), outcome.served_bag["errors"]


def test_no_dag_is_listed_that_the_files_do_not_define(outcome: Outcome) -> None:
    own = outcome.own_bag["dags"]
    assert isinstance(own, dict)
    failing = set(outcome.own_bag["errors"])  # type: ignore[arg-type]
    for dag_id, status in outcome.status.items():
        path = outcome.defined[dag_id][len("dags/") :]
        assert dag_id in own or path in failing, (dag_id, status)
        if dag_id in own:
            assert own[dag_id] == path  # the file Airflow takes it from


def test_the_files_dags_read_at_run_time_are_served(outcome: Outcome) -> None:
    """SQL templates and the like are in `current/` as in the repository."""
    tree = outcome.repo.path / "dags"
    current = outcome.deploy / "current"
    others = [p for p in git(tree, "ls-files").splitlines() if not p.endswith(".py")]
    for rel in others:
        assert (current / rel).read_bytes() == (tree / rel).read_bytes(), rel
