""" "Active" means Airflow loads it: one repository holding the shapes that broke on public
repositories (a helper that mentions airflow and dag, files the DAGs read at run time, guarded
imports, a missing provider, a moved name Airflow still imports, a DAG id in two files, a DAG
file failing for its own reason, dag-factory callables), synced once per tier; real Airflow's
DagBag over the served `current/` is the judge."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gitdags.config import SourceConfig
from gitdags.engine import SyncEngine, build_engine
from gitdags.model import SyncResult
from tests.conftest import GitRepo, settings_for

UTILS = '# shared defaults for our airflow dags\nDEFAULT_ARGS = {"owner": "airflow"}\n'
ETL = """\
import json
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from utils import DEFAULT_ARGS

HERE = Path(__file__).parent
CONFIG = json.loads((HERE / "config" / "etl.json").read_text())  # read when Airflow parses

with DAG(
    dag_id="etl",
    schedule=CONFIG["schedule"],
    default_args=DEFAULT_ARGS,
    template_searchpath=[str(HERE / "sql")],
):
    BashOperator(task_id="run", bash_command="query.sql")
"""
OPTIONAL = """\
from airflow.sdk import DAG

try:
    import gitdags_not_installed_pkg as k8s
except ImportError:
    k8s = None

if k8s:
    with DAG(dag_id="optional_dag", schedule=None):
        pass

with DAG(dag_id="always_dag", schedule=None):
    pass
"""
PRESENT = OPTIONAL.replace("import gitdags_not_installed_pkg as k8s", "import kubernetes as k8s")
PRESENT = PRESENT.replace("optional_dag", "present_dag").replace("always_dag", "also_dag")
KAFKA = """\
from airflow.providers.apache.kafka.operators.produce import ProduceToTopicOperator
from airflow.sdk import DAG

with DAG(dag_id="kafka_dag", schedule=None):
    ProduceToTopicOperator(task_id="send", topic="t", producer_function="x.y")
"""
EMAIL = """\
from airflow.operators.email import EmailOperator
from airflow.sdk import DAG

with DAG(dag_id="email_dag", schedule=None):
    EmailOperator(task_id="mail", to="a@example.com", subject="s", html_content="h")
"""
TWIN = (
    'from airflow.sdk import DAG\n\nwith DAG(dag_id="twin", schedule=None, tags=[{tag!r}]):\n'
    "    pass\n"
)
SHARED = "def greet() -> str:\n    return 'hello'\n"
GENERATED = """\
from pathlib import Path

from airflow.sdk import DAG

from shared_helper import greet

SETTINGS = (Path(__file__).parent / "generated.cfg").read_text()  # written at deploy time

with DAG(dag_id="needs_generated", schedule=None, description=greet()):
    pass
"""
USES_SHARED = """\
from airflow.sdk import DAG

from shared_helper import greet

with DAG(dag_id="uses_shared", schedule=None, description=greet()):
    pass
"""
RELATIVE = """\
from pathlib import Path

from airflow.sdk import DAG

SETTINGS = Path("config/etl.json").read_text()  # relative to the working directory

with DAG(dag_id="relative_read", schedule=None):
    pass
"""
CALLABLES = "def hello():\n    return 'hi'\n"
PIPELINES = """\
df_relative:
  schedule: null
  default_args: {start_date: 2024-01-01}
  tasks:
    say:
      operator: airflow.providers.standard.operators.python.PythonOperator
      python_callable_name: hello
      python_callable_file: callables.py
df_root_var:
  schedule: null
  default_args: {start_date: 2024-01-01}
  tasks:
    say:
      operator: airflow.providers.standard.operators.python.PythonOperator
      python_callable_name: hello
      python_callable_file: $CONFIG_ROOT_DIR/factory/callables.py
"""
FILES = {
    "dags/utils.py": UTILS,
    "dags/etl.py": ETL,
    "dags/config/etl.json": '{"schedule": "@daily"}\n',
    "dags/sql/query.sql": "select 1;\n",
    "dags/README.md": "How our DAGs work.\n",
    "dags/optional.py": OPTIONAL,
    "dags/present.py": PRESENT,  # kubernetes is installed where Airflow runs
    "dags/kafka.py": KAFKA,
    "dags/email_dag.py": EMAIL,
    "dags/a_first.py": TWIN.format(tag="first"),
    "dags/b_second.py": TWIN.format(tag="second"),
    "dags/shared_helper.py": SHARED,
    "dags/needs_generated.py": GENERATED,
    "dags/uses_shared.py": USES_SHARED,
    "dags/relative_read.py": RELATIVE,
    "dags/factory/pipelines.yml": PIPELINES,
    "dags/factory/callables.py": CALLABLES,
    "dags/scripts/backfill.py": "# run by hand\nprint('backfill')\n",  # not counted: served
    "dags/scripts/old_dag.py": "from airflow.sdk import DAG\ndag = DAG('old')\n",  # not served
    "dags/blob_dag.py": b"from airflow.sdk import DAG\0\1dag = DAG('blob')\n",  # GD002: not served
}
INCLUDE = ("*.py", "config/**", "factory/**", "**/*.yml")


def load_dagbag(folder: Path, home: Path) -> dict[str, object]:
    """Airflow 3's DagBag over `folder` as Airflow's DAG processor reads a DAGs folder: the
    folder on sys.path, and nothing of gitdags in the environment."""
    from tests.test_airflow import airflow_python

    home.mkdir(parents=True, exist_ok=True)
    script = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "bag = DagBag(dag_folder=sys.argv[1])\n"
        "errors = {k.replace(sys.argv[1].rstrip('/') + '/', ''): v.strip().splitlines()[-1]\n"
        "          for k, v in bag.import_errors.items()}\n"
        "print(json.dumps({'dags': {d: bag.dags[d].fileloc.replace(sys.argv[1].rstrip('/')\n"
        "                  + '/', '') for d in bag.dags}, 'errors': errors}))\n"
    )
    done = subprocess.run(
        [str(airflow_python()), "-c", script, str(folder.resolve())],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=home,
        env={
            "AIRFLOW_HOME": str(home),
            "PATH": "/usr/bin:/bin",
            "DO_NOT_TRACK": "1",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        },
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


class World:
    def __init__(self, root: Path, tier: str) -> None:
        from tests.test_airflow import airflow_python

        self.tier = tier
        self.repo = GitRepo(root / "repo")
        self.repo.commit("dags", FILES)
        self.deploy = root / "deploy"
        config = SourceConfig(
            name="main",
            url=str(self.repo.path),
            subdir="dags",
            include=INCLUDE,
            python=tier,
            airflow_python=str(airflow_python()),
        )
        self.engine: SyncEngine = build_engine(settings_for(root, config, deploy_dir=self.deploy))
        (self.result,) = self.engine.sync()
        assert self.result.error is None, self.result.error
        self.status = {d.dag_id: d.status for d in self.engine.list_dags()}
        self.bag = load_dagbag(self.deploy / "current", root / "airflow-home")
        self.own = load_dagbag(self.repo.path / "dags", root / "airflow-home")  # as git-sync

    def issues(self, name: str) -> list[tuple[str, str]]:
        result: SyncResult = self.result
        return [(i.code, i.severity) for i in result.issues if i.file == f"dags/{name}"]

    def served(self, rel: str) -> Path:
        return self.deploy / "current" / rel


@pytest.fixture(scope="module")
def static(tmp_path_factory: pytest.TempPathFactory) -> World:
    world = World(tmp_path_factory.mktemp("static"), "static")
    yield world
    world.engine.close()


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory: pytest.TempPathFactory) -> World:
    world = World(tmp_path_factory.mktemp("airflow"), "airflow")
    yield world
    world.engine.close()


@pytest.fixture(scope="module")
def tiered(request: pytest.FixtureRequest) -> World:
    """The world of one tier, set up with the module's fixtures (before a test starts: its
    parse worker is not the test's to stop)."""
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("tiered", ["static", "dynamic"], indirect=True)
def test_a_helper_that_mentions_airflow_and_dag_is_served(tiered: World) -> None:
    """1. `utils.py` (no DAG, but the words) is a helper module: served, so `etl` loads."""
    world = tiered
    assert world.served("utils.py").read_text() == UTILS
    assert ("GD404", "warning") in world.issues("utils.py")
    assert world.status["etl"] == "active" and "etl" in world.bag["dags"]
    assert "utils.py" not in world.bag["errors"] and "etl.py" not in world.bag["errors"]


@pytest.mark.parametrize("tiered", ["static", "dynamic"], indirect=True)
def test_the_tree_is_served_as_at_the_served_commit(tiered: World) -> None:
    """2. SQL templates, configs read at parse time, docs: in `current/` as in git."""
    world = tiered
    assert world.served("config/etl.json").is_file() and world.served("sql/query.sql").is_file()
    assert world.served("README.md").read_text() == FILES["dags/README.md"]
    assert world.served("scripts/backfill.py").is_file()  # not counted, not a DAG file
    assert not world.served("scripts/old_dag.py").exists()  # not counted, looks like a DAG
    assert not world.served("blob_dag.py").exists()  # counted but unreadable (binary)
    assert not world.served("factory/pipelines.yml").exists()  # served through its loaders


def test_a_helper_is_not_blamed_for_an_importer_failing_on_its_own(dynamic: World) -> None:
    """3. `needs_generated.py` fails (a file written at deploy time); its helper is served."""
    assert [c for c, _s in dynamic.issues("needs_generated.py")] == ["GD402"]
    assert dynamic.issues("shared_helper.py") == []
    assert dynamic.served("shared_helper.py").read_text() == SHARED
    assert dynamic.status["uses_shared"] == "active" and "uses_shared" in dynamic.bag["dags"]
    assert "needs_generated" not in dynamic.status


def test_a_helper_change_is_held_back_only_when_it_breaks_a_good_importer(
    tmp_path: Path,
) -> None:
    """3. A later change of the helper: still not blamed for the importer that never
    worked; blamed (held back) when it breaks one that was good."""
    world = World(tmp_path, "airflow")
    try:
        world.repo.commit("helper v2", {"dags/shared_helper.py": SHARED + "# v2\n"})
        (result,) = world.engine.sync()
        assert not [i for i in result.issues if i.file == "dags/shared_helper.py"]
        assert world.served("shared_helper.py").read_text() == SHARED + "# v2\n"
        world.repo.commit("helper v3", {"dags/shared_helper.py": "def greet(:\n"})
        world.repo.commit("helper v4", {"dags/shared_helper.py": "x = 1\n"})
        (result,) = world.engine.sync()
        blamed = [i for i in result.issues if i.file == "dags/shared_helper.py"]
        assert [i.code for i in blamed] == ["GD402"] and "uses_shared" in blamed[0].message
        assert "needs_generated" not in blamed[0].message
        assert world.served("shared_helper.py").read_text() == SHARED + "# v2\n"
    finally:
        world.engine.close()


def test_guarded_imports_follow_what_python_does(static: World, dynamic: World) -> None:
    """4. A `try/except ImportError` import is no error; the DAG under `if k8s:` is not
    listed by the static tier, and not by Airflow's when the package is absent."""
    assert [c for c, s in dynamic.issues("optional.py") if s == "error"] == []
    for world in (static, dynamic):
        assert world.status["always_dag"] == "active"
        assert "optional_dag" not in world.status and "optional_dag" not in world.bag["dags"]
    assert ("GD404", "warning") in static.issues("optional.py")  # it says why
    for world in (static, dynamic):  # the static tier asks airflow_python: kubernetes is there
        assert world.status["present_dag"] == "active" and "present_dag" in world.bag["dags"]


@pytest.mark.parametrize("tiered", ["static", "dynamic"], indirect=True)
def test_a_provider_missing_where_airflow_runs_is_gd407(tiered: World) -> None:
    """5. `airflow.providers.apache.kafka` is not installed where Airflow runs: GD407 (not a
    GD402 after a parse), for the static tier too when it knows that interpreter."""
    world = tiered
    assert [c for c, s in world.issues("kafka.py") if s == "error"] == ["GD407"]
    message = next(i.message for i in world.result.issues if i.file == "dags/kafka.py")
    assert "airflow.providers.apache.kafka" in message
    assert "kafka_dag" not in world.status and not world.served("kafka.py").exists()


def test_a_moved_name_airflow_still_imports_is_a_warning(static: World) -> None:
    """6. ruff's AIR302 on EmailOperator: Airflow 3.3 imports it, so the DAG is active."""
    assert ("GD408", "warning") in static.issues("email_dag.py")
    assert ("GD408", "error") not in static.issues("email_dag.py")
    assert static.status["email_dag"] == "active" and "email_dag" in static.bag["dags"]


@pytest.mark.parametrize("tiered", ["static", "dynamic"], indirect=True)
def test_a_dag_id_in_two_files_follows_airflow(tiered: World) -> None:
    """7. The file Airflow parses first keeps the id (served, active); the other's is GD301."""
    world = tiered
    assert world.status["twin"] == "active"
    assert world.engine.dag("twin").path == "dags/a_first.py"
    assert ("GD301", "error") in world.issues("b_second.py")
    assert world.served("a_first.py").is_file() and not world.served("b_second.py").exists()
    assert world.bag["dags"]["twin"] == "a_first.py"


def test_the_parse_runs_where_airflow_runs_not_in_the_dags_folder(dynamic: World) -> None:
    """8. Airflow's processor does not run in the DAGs folder: a file that opens a path
    relative to the working directory fails there, and so in gitdags' parse."""
    assert [c for c, _s in dynamic.issues("relative_read.py")] == ["GD402"]
    assert "relative_read" not in dynamic.status and "relative_read.py" in dynamic.own["errors"]


def test_dag_factory_callables_resolve_in_the_served_tree(dynamic: World) -> None:
    """8. Relative and `$CONFIG_ROOT_DIR/` callable files resolve where Airflow loads them."""
    for dag_id in ("df_relative", "df_root_var"):
        assert dynamic.status[dag_id] == "active", dynamic.engine.show(dag_id).issues
        assert dag_id in dynamic.bag["dags"]


@pytest.mark.parametrize("tiered", ["static", "dynamic"], indirect=True)
def test_every_active_dag_loads_and_the_served_folder_adds_no_import_error(
    tiered: World,
) -> None:
    world = tiered
    tier = world.tier
    active = {d for d, s in world.status.items() if s == "active"}
    # the static tier cannot know that a file reads a config written at deploy time: its
    # DAG is active, and fails in Airflow as it fails in the repository itself
    unknowable = {"needs_generated", "relative_read"} if tier == "static" else set()
    assert active - unknowable <= set(world.bag["dags"]), world.bag
    assert set(world.bag["dags"]) <= set(world.status)  # nothing listed the files do not define
    assert set(world.bag["errors"]) <= set(world.own["errors"]), world.bag["errors"]
    static = {"needs_generated.py", "relative_read.py"}
    assert set(world.bag["errors"]) == (static if tier == "static" else set())
