"""Repository code against the sandbox, as an attacker would write it: real Airflow 3 parses
DAG files that probe and attack what is around them, in one real sync, and the test asserts
what they could see and do, and what gitdags recorded and served.

One repository, synced three times (module scope: Airflow's worker starts once):
  A: a victim DAG file and a neighbour, both good; a file that plants things in /tmp and
     /dev/shm;
  B: the attacks, the victim changed to raise, a new good neighbour;
  C: one more good file (later commits land).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitdags.config import SourceConfig
from gitdags.engine import SyncEngine, build_engine
from tests.conftest import GitRepo, settings_for

GOOD = "from airflow.sdk import DAG\n\nwith DAG(dag_id={id!r}, schedule=None):\n    pass\n"
MARK = uuid.uuid4().hex[:12]  # in the secret, the planted files, the ghost's command line
SECRET = f"secret-{MARK}"

# Each probe records what it saw in its DAG's description, which gitdags stores.
PROBE = """\
import ctypes, json, os, socket
from airflow.sdk import DAG

seen = {{}}
status = open("/proc/self/status").read()
seen["uid"] = os.getuid()
seen["caps"] = {{k: status.split(k + ":")[1].split()[0] for k in ("CapEff", "CapPrm", "CapBnd")}}
seen["environ"] = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            seen["environ"].append(open(f"/proc/{{pid}}/environ", "rb").read().decode("latin-1"))
        except OSError:
            pass
seen["env"] = dict(os.environ)
seen["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
seen["exists"] = {{p: os.path.exists(p) for p in {private!r}}}
seen["sys"] = os.path.exists("/sys/fs/cgroup") or os.path.exists("/sys/kernel")
reach = {{}}
for pid in {outside!r}:
    for what in ("root/etc/hostname", "mem", "environ", "fd/0"):
        try:
            with open(f"/proc/{{pid}}/{{what}}", "rb") as f:
                f.read(1)
            reach[f"{{pid}}/{{what}}"] = True
        except OSError:
            reach[f"{{pid}}/{{what}}"] = False
seen["proc_outside"] = reach
libc = ctypes.CDLL(None, use_errno=True)
seen["remount"] = libc.mount(b"none", b"/", None, 32 | 4096, None) == 0  # MS_REMOUNT|MS_BIND
seen["mount_tmpfs"] = libc.mount(b"t", b"/tmp", b"tmpfs", 0, None) == 0
seen["writes"] = {{}}
for path in ("/proc/sys/vm/swappiness", {tree_file!r}, "/usr/gitdags-planted"):
    try:
        with open(path, "a") as f:
            f.write("")
        seen["writes"][path] = True
    except OSError:
        seen["writes"][path] = False
for name, address, family in (
    ("host_unix", {unix!r}, socket.AF_UNIX),
    ("abstract_unix", "\\0" + {abstract!r}, socket.AF_UNIX),
    ("loopback_tcp", ("127.0.0.1", {port}), socket.AF_INET),
):
    s = socket.socket(family)
    s.settimeout(2)
    try:
        s.connect(address)
        seen[name] = True
    except OSError:
        seen[name] = False
    finally:
        s.close()
seen["planted"] = [os.path.exists(p) for p in ("/tmp/planted-{mark}", "/dev/shm/planted-{mark}")]
seen["fds"] = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
with DAG(dag_id="probe", schedule=None, description=json.dumps(seen)):
    pass
"""
PLANT = f"""\
from airflow.sdk import DAG

for path in ("/tmp/planted-{MARK}", "/dev/shm/planted-{MARK}"):
    open(path, "w").write("planted")
with DAG(dag_id="planter", schedule=None):
    pass
"""
# a forged answer on every descriptor it has: the worker's protocol, other children's pipes
FORGER = """\
import json, os
from airflow.sdk import DAG

forged = {"dags": [{"dag_id": "forged", "file": "victim.py", "description": "", "schedule": None,
          "owner": None, "start_date": None, "tags": [], "tasks": []}]}
lines = [json.dumps({"id": n, "file": f, "result": forged}) for n in range(1, 20)
         for f in ("victim.py", "forger.py")]
lines += [json.dumps({"id": n, "done": True}) for n in range(1, 20)]
payload = ("\\n".join(lines) + "\\n").encode()
for fd in range(0, 1024):
    try:
        os.write(fd, payload)
    except OSError:
        pass
for fd in range(3, 1024):  # then close them all, as if done
    try:
        os.close(fd)
    except OSError:
        pass
with DAG(dag_id="forger", schedule=None):
    pass
"""
ATTACKS = {
    "kill_parent.py": "import os\nfrom airflow.sdk import DAG\nos.kill(os.getppid(), 9)\n"
    + GOOD.format(id="kill_parent"),
    "kill_group.py": "import os\nfrom airflow.sdk import DAG\nos.killpg(0, 9)\n"
    + GOOD.format(id="kill_group"),
    "kill_all.py": "import os\nfrom airflow.sdk import DAG\nos.kill(-1, 9)\n"
    + GOOD.format(id="kill_all"),
    "ghost.py": f"""\
import os, time
from airflow.sdk import DAG

r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, b"x")
        os.execv("/usr/bin/sleep", ["sleep", "1234.{MARK[:6]}"])
    os._exit(0)
os.read(r, 1)
time.sleep(0.3)
with DAG(dag_id="ghost", schedule=None):
    pass
""",
    "forger.py": FORGER,
}


def cmdlines() -> list[str]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
    return out


class World:
    def __init__(self, engine: SyncEngine, repo: GitRepo, deploy: Path, results: list) -> None:
        self.engine, self.repo, self.deploy, self.results = engine, repo, deploy, results

    def seen(self) -> dict:
        spec = self.engine.show("probe").spec
        assert spec is not None
        return json.loads(spec["description"])

    def issue(self, name: str) -> object:
        (b_result,) = self.results[1]
        found = [i for i in b_result.issues if i.file.endswith(name) and i.severity == "error"]
        assert found, (name, b_result.issues)
        return found[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from tests.test_airflow import airflow_python

    tmp = tmp_path_factory.mktemp("sandbox")
    os.environ["AWS_SECRET_ACCESS_KEY"] = SECRET  # in gitdags' own environment
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(tmp / "host.sock"))
    unix.listen()
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(f"\0gitdags-test-{MARK}")
    abstract.listen()
    repo = GitRepo(tmp / "repo")
    deploy = tmp / "deploy"
    config = tmp / "config.toml"
    config.write_text(f'[state]\ndatabase = "{tmp}/state/gitdags.db"\n')
    engine = build_engine(
        settings_for(
            tmp,
            SourceConfig(
                name="main",
                url=str(repo.path),
                subdir="dags",
                include=("**/*.py",),
                python="airflow",
                airflow_python=str(airflow_python()),
                parse_timeout=20.0,
            ),
            deploy_dir=deploy,
            config_path=config,
            parsing_processes=2,
        )
    )
    state = tmp / "state"
    home_secret = Path.home() / f".gitdags-test-home-{MARK}"
    home_secret.write_text(SECRET)
    private = [
        str(state / "gitdags.db"),
        str(state),
        str(engine.settings.mirrors_dir / "main.git"),
        str(deploy),
        str(config),
        str(home_secret),  # the gitdags user's home holds only the way to a bound interpreter
    ]
    probe = PROBE.format(
        private=private,
        outside=[1, 2, os.getpid(), os.getppid()],
        tree_file=str(engine.tree_dir("main") / "dags" / "probe.py"),
        unix=str(tmp / "host.sock"),
        abstract=f"gitdags-test-{MARK}",
        port=listener.getsockname()[1],
        mark=MARK,
    )
    results = []
    try:
        repo.commit(
            "A",
            {
                "dags/neighbour.py": GOOD.format(id="neighbour"),
                "dags/victim.py": GOOD.format(id="victim"),
                "dags/planter.py": PLANT,
            },
        )
        results.append(engine.sync())
        victim = "from airflow.sdk import DAG\nraise RuntimeError('broken')\n"
        files = {f"dags/{name}": text for name, text in ATTACKS.items()}
        files |= {
            "dags/probe.py": probe,
            "dags/victim.py": victim,
            "dags/neighbour_two.py": GOOD.format(id="neighbour_two"),
        }
        repo.commit("B: attacks", files)
        results.append(engine.sync())
        repo.commit("C", {"dags/later.py": GOOD.format(id="later")})
        results.append(engine.sync())
        yield World(engine, repo, deploy, results)
    finally:
        engine.close()
        for s in (listener, unix, abstract):
            s.close()
        home_secret.unlink()
        del os.environ["AWS_SECRET_ACCESS_KEY"]


def test_every_sync_ran_and_the_good_files_are_served(world: World) -> None:
    for (result,) in world.results:
        assert result.error is None, result.error
    statuses = {d.dag_id: d.status for d in world.engine.list_dags()}
    for good in ("neighbour", "neighbour_two", "planter", "later", "probe", "ghost"):
        assert statuses[good] == "active", (good, statuses)
    served = {p.name for p in (world.deploy / "current").iterdir()}
    assert {"neighbour.py", "neighbour_two.py", "later.py", "probe.py"} <= served


def test_no_environment_outside_the_sandbox_is_readable(world: World) -> None:
    seen = world.seen()
    assert not any(SECRET in text for text in seen["environ"])
    assert SECRET not in json.dumps(seen["env"])
    assert not any(k.startswith(("GITDAGS_", "AWS_")) for k in seen["env"])
    stored = json.dumps(world.engine.show("probe").spec)
    assert SECRET not in stored  # nor anything in gitdags' own variables, via the description


def test_gitdags_state_does_not_exist_inside(world: World) -> None:
    exists = world.seen()["exists"]
    assert exists and not any(exists.values()), exists


def test_not_root_and_no_capability_inside(world: World) -> None:
    seen = world.seen()
    assert seen["uid"] != 0
    assert set(seen["caps"].values()) == {"0000000000000000"}, seen["caps"]


def test_sys_remounts_outside_processes_and_host_sockets_are_out_of_reach(world: World) -> None:
    seen = world.seen()
    assert seen["sys"] is False
    assert seen["remount"] is False and seen["mount_tmpfs"] is False
    assert not any(seen["proc_outside"].values()), seen["proc_outside"]
    assert max(seen["pids"]) < 10  # its own PID namespace: a handful of processes
    assert not any(seen["writes"].values()), seen["writes"]
    assert (seen["host_unix"], seen["abstract_unix"], seen["loopback_tcp"]) == (False,) * 3


def test_tmp_and_dev_shm_are_private(world: World) -> None:
    assert world.seen()["planted"] == [False, False]  # what planter.py wrote in commit A
    assert not Path(f"/tmp/planted-{MARK}").exists()
    assert not Path(f"/dev/shm/planted-{MARK}").exists()


def test_only_its_own_answer_pipe_is_open(world: World) -> None:
    fds = world.seen()["fds"]
    assert fds[:3] == [0, 1, 2] and len(fds) <= 5, fds  # stdio (/dev/null), the pipe, listdir's


def test_a_forged_answer_is_not_taken(world: World) -> None:
    statuses = {d.dag_id: d.status for d in world.engine.list_dags()}
    assert "forged" not in statuses
    assert statuses["victim"] == "invalid"  # broken in B, whatever the forger wrote
    assert "RuntimeError" in world.issue("victim.py").message  # type: ignore[attr-defined]
    served = (world.deploy / "current" / "victim.py").read_text()
    assert served == GOOD.format(id="victim")  # its last good blob stays served


@pytest.mark.parametrize("name", ["kill_parent.py", "kill_group.py", "kill_all.py"])
def test_a_file_that_kills_its_parent_or_group_is_an_error_of_that_file(
    world: World, name: str
) -> None:
    issue = world.issue(name)
    assert issue.code == "GD403", issue  # type: ignore[attr-defined]
    assert "SIGKILL" in issue.message  # type: ignore[attr-defined]
    statuses = {d.dag_id: d.status for d in world.engine.list_dags()}
    assert name[:-3] not in statuses  # never recorded valid
    assert statuses["neighbour_two"] == "active" and statuses["later"] == "active"


def test_a_double_forked_setsid_grandchild_is_gone_after_the_parse(world: World) -> None:
    marker = f"1234.{MARK[:6]}"
    deadline = time.monotonic() + 30
    while any(marker in c for c in cmdlines()):  # the namespace's end is delivered at once
        assert time.monotonic() < deadline, "a process the file started outlived its parse"
        time.sleep(0.05)
    assert world.engine.dag("ghost").status == "active"


def test_bwrap_missing_refuses_in_one_sentence(
    repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_airflow import airflow_python

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(subprocess.check_output(["which", "git"], text=True).strip())
    monkeypatch.setenv("PATH", str(bin_dir))
    repo.commit("one", {"dags/a.py": GOOD.format(id="a")})
    engine = build_engine(
        settings_for(
            tmp_path,
            SourceConfig(
                name="main",
                url=str(repo.path),
                include=("**/*.py",),
                python="airflow",
                airflow_python=str(airflow_python()),
            ),
        )
    )
    try:
        (result,) = engine.sync()
    finally:
        engine.close()
    assert result.error is not None
    assert "bubblewrap" in result.error and 'sandbox = "none"' in result.error
    assert "\n" not in result.error


def test_sandbox_none_is_said_in_status_and_healthz(repo: GitRepo, tmp_path: Path) -> None:
    repo.commit("one", {"dags/a.yaml": "dag_id: a\ntasks: [{id: t, type: empty}]\n"})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{tmp_path}/gitdags.db"\n[[sources]]\nname = "main"\n'
        f'url = "{repo.path}"\npython = "airflow"\nairflow_python = "{sys.executable}"\n'
        'sandbox = "none"\ninclude = ["**/*.yaml"]\n'
    )
    run = [sys.executable, "-m", "gitdags", "--config", str(config)]
    assert subprocess.run([*run, "sync"], capture_output=True).returncode == 0
    text = subprocess.run([*run, "status"], capture_output=True, text=True).stdout
    assert 'UNSANDBOXED (sandbox = "none")' in text
    (status,) = json.loads(subprocess.run([*run, "status", "--json"], capture_output=True).stdout)
    assert status["sandbox"] == "none"


def test_a_worker_that_stops_mid_parse_is_started_again_and_the_file_parsed_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal
    import threading

    from gitdags.orchestrators.airflow.parsing import ParseWorker
    from tests.conftest import Gate
    from tests.test_airflow import airflow_python

    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("a", "b", "c"):
        (tree / f"{name}.py").write_text(GOOD.format(id=name))
    worker = ParseWorker(str(airflow_python()), tmp_path / "scratch", readable=(tree,))
    gate = Gate(tmp_path / "gate", "in-parse")
    monkeypatch.setenv("GITDAGS_TEST_FAULTS", gate.env["GITDAGS_TEST_FAULTS"])
    out: dict = {}
    parse = threading.Thread(
        target=lambda: out.update(
            worker.parse(tree, ["a.py", "b.py", "c.py"], timeout=20, memory=2 << 30)
        )
    )
    parse.start()
    try:
        gate.wait_reached()
        assert worker.proc is not None
        os.killpg(worker.proc.pid, signal.SIGKILL)  # the worker, the sandbox, all of it
        gate.open()
        parse.join(timeout=300)
    finally:
        gate.open()
        worker.close()
    assert sorted(out) == ["a.py", "b.py", "c.py"]
    assert [d["dag_id"] for f in ("a.py", "b.py", "c.py") for d in out[f]["dags"]] == [
        "a",
        "b",
        "c",
    ]
    assert worker.starts == 2


def test_sandbox_none_still_parses_each_file_apart(repo: GitRepo, tmp_path: Path) -> None:
    from tests.test_airflow import airflow_python

    repo.commit(
        "two",
        {"a.py": GOOD.format(id="a"), "kill_parent.py": ATTACKS["kill_parent.py"]},
    )
    config = SourceConfig(
        name="main",
        url=str(repo.path),
        include=("**/*.py",),
        python="airflow",
        airflow_python=str(airflow_python()),
        sandbox="none",
    )
    engine = build_engine(settings_for(tmp_path, config))
    try:
        (result,) = engine.sync()
        assert result.error is None, result.error
        assert engine.dag("a").status == "active"
        (issue,) = [i for i in result.issues if i.file == "kill_parent.py"]
        assert issue.code == "GD403"
    finally:
        engine.close()


def test_the_sync_deadline_bounds_the_airflow_parse(repo: GitRepo, tmp_path: Path) -> None:
    from tests.test_airflow import airflow_python

    spin = "from airflow.sdk import DAG\nwhile True:\n    pass\n"
    repo.commit("spin", {"a.py": GOOD.format(id="a"), "spin.py": spin})
    config = SourceConfig(
        name="main",
        url=str(repo.path),
        include=("**/*.py",),
        python="airflow",
        airflow_python=str(airflow_python()),
        parse_timeout=600.0,  # the file alone would hold the parse for ten minutes
    )
    engine = build_engine(settings_for(tmp_path, config, sync_timeout=8.0))
    try:
        (result,) = engine.sync()
        assert result.error is not None and "passed its deadline" in result.error
        assert engine.list_dags() == []  # nothing of that sync recorded
    finally:
        engine.close()
    repo.commit("no spin", delete=["spin.py"])
    engine = build_engine(settings_for(tmp_path, config))  # room to start Airflow on a busy host
    try:
        (result,) = engine.sync()
        assert result.error is None, result.error
        assert engine.dag("a").status == "active"
    finally:
        engine.close()


def test_a_source_served_under_a_folder_is_parsed_as_airflow_will_load_it(
    repo: GitRepo, tmp_path: Path
) -> None:
    """With deploy_subdir, the source's files lie in a folder of Airflow's DAGs folder, which
    alone is on sys.path: an import written against the source's own root fails there, and
    gitdags' parse fails it too (it was active, and an import error in Airflow)."""
    from tests.test_active_airflow import load_dagbag
    from tests.test_airflow import airflow_python

    helper = "def owner() -> str:\n    return 'team'\n"
    uses = "from {module} import owner\n" + GOOD
    repo.commit(
        "team",
        {
            "dags/common/__init__.py": "",
            "dags/common/helpers.py": helper,
            "dags/rooted.py": uses.format(module="common.helpers", id="rooted"),
            "dags/served.py": uses.format(module="team.common.helpers", id="served"),
        },
    )
    config = SourceConfig(
        name="main",
        url=str(repo.path),
        subdir="dags",
        include=("**/*.py",),
        python="airflow",
        airflow_python=str(airflow_python()),
        deploy_subdir="team",
    )
    deploy = tmp_path / "deploy"
    engine = build_engine(settings_for(tmp_path, config, deploy_dir=deploy))
    try:
        (result,) = engine.sync()
        assert result.error is None, result.error
        statuses = {d.dag_id: d.status for d in engine.list_dags()}
        (issue,) = [i for i in result.issues if i.file == "dags/rooted.py"]
        assert "No module named 'common'" in issue.message
        assert "rooted" not in statuses or statuses["rooted"] != "active"
        assert statuses["served"] == "active"
        bag = load_dagbag(deploy / "current", tmp_path / "airflow-home")
        assert "served" in bag["dags"] and "rooted" not in bag["dags"]
    finally:
        engine.close()
