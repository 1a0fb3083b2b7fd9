"""Real git repositories, real SQLite files: the fixtures every test builds on."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitdags.config import Settings, SourceConfig
from gitdags.engine import SyncEngine, build_engine

SAMPLE = Path(__file__).resolve().parent.parent / "sample_repo"

# Every process this test process starts inherits this mark (one per process, so xdist workers
# tell their own apart); a daemon that leaves the process tree (gpg-agent) still carries it.
MARK = "PYTEST_GITDAGS_RUN"
os.environ[MARK] = f"{os.getpid()}-{uuid.uuid4().hex}"
# Python's own helpers that live as long as the interpreter that started them
INTERPRETER_HELPERS = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")
# servers a module-scoped fixture started and stops (their children come and go with the
# server: Dagster's webserver starts a code server at each reload); the fixture adds its pid
LASTING_SERVERS: set[int] = set()


def _processes_of_this_run() -> dict[int, str]:
    """pid -> command line of every living process this test process started: its
    descendants, and the processes elsewhere that carry its mark (zombies left out)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X"):
            parents[int(stat.parent.name)] = int(fields[1])
    me, mark = os.getpid(), f"{MARK}={os.environ[MARK]}".encode()
    found: dict[int, str] = {}
    for pid in parents:
        if pid == me:
            continue
        up, chain = parents.get(pid), 0
        while up not in (None, 0, 1, me) and chain < 64 and up not in LASTING_SERVERS:
            up, chain = parents.get(up), chain + 1
        if up in LASTING_SERVERS or pid in LASTING_SERVERS:
            continue
        try:
            ours = up == me or mark in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # ended meanwhile, or another user's
            continue
        if ours and not any(helper in command for helper in INTERPRETER_HELPERS):
            found[pid] = command.strip()
    return found


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Fails the test that leaves a process running (a gpg-agent, a git daemon, a moto
    server, an Airflow parse, a gitdags daemon), after its own fixtures have stopped theirs.
    A process that is ending gets up to 5 s to be gone; what is left is killed."""
    before = set(_processes_of_this_run())
    yield
    deadline = time.monotonic() + 5
    while True:
        left = {p: c for p, c in _processes_of_this_run().items() if p not in before}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if left:
        shown = "; ".join(f"{pid}: {command[:200]}" for pid, command in sorted(left.items()))
        pytest.fail(f"the test left {len(left)} processes running: {shown}", pytrace=False)


ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_DATE": "2026-01-05T09:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-01-05T09:00:00+00:00",
    "HOME": "/nonexistent",
}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **ENV}
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class GitRepo:
    """A working repository in tmp_path; `commit` writes, deletes, renames and commits."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "--quiet", f"--initial-branch={branch}")

    def write(self, rel: str, content: str | bytes) -> None:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)

    def commit(
        self,
        message: str = "change",
        files: dict[str, str | bytes] | None = None,
        delete: list[str] | None = None,
        rename: dict[str, str] | None = None,
    ) -> str:
        for rel, content in (files or {}).items():
            self.write(rel, content)
        for rel in delete or []:
            git(self.path, "rm", "--quiet", rel)
        for old, new in (rename or {}).items():
            (self.path / new).parent.mkdir(parents=True, exist_ok=True)
            git(self.path, "mv", old, new)
        git(self.path, "add", "--all")
        git(self.path, "commit", "--quiet", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD")

    def copy_sample(self) -> None:
        shutil.copytree(SAMPLE / "dags", self.path / "dags", dirs_exist_ok=True)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


def settings_for(tmp_path: Path, *sources: SourceConfig, **extra: object) -> Settings:
    return Settings(database=tmp_path / "state" / "gitdags.db", sources=sources, **extra)  # type: ignore[arg-type]


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[object]:
    engines: list[SyncEngine] = []

    def make(*sources: SourceConfig, **extra: object) -> SyncEngine:
        engine = build_engine(settings_for(tmp_path, *sources, **extra))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def dag_yaml(dag_id: str, *tasks: str, deps: dict[str, list[str]] | None = None, **top: str) -> str:
    """A small valid YAML DAG: bash tasks in a chain unless `deps` says otherwise."""
    lines = [f"dag_id: {dag_id}", 'schedule: "@daily"']
    lines += [f"{k}: {v}" for k, v in top.items()]
    lines.append("tasks:")
    names = tasks or ("a", "b")
    for i, name in enumerate(names):
        lines += [f"  - id: {name}", "    type: bash", f"    config: {{command: echo {name}}}"]
        up = (deps or {}).get(name, [names[i - 1]] if i and deps is None else [])
        if up:
            lines.append(f"    depends_on: [{', '.join(up)}]")
    return "\n".join(lines) + "\n"


class Gate:
    """A fault point armed to wait (see gitdags.faults): `env` arms it for a subprocess,
    `wait_reached()` blocks until the process is there, `open()` lets it go on."""

    def __init__(self, path: Path, point: str) -> None:
        self.path = path
        self.env = {**os.environ, "GITDAGS_TEST_FAULTS": f"{point}=wait:{path}"}

    def wait_reached(
        self, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60
    ) -> None:
        import time

        reached = Path(f"{self.path}.reached")
        deadline = time.monotonic() + timeout
        while not reached.exists():
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the process ended (exit {proc.returncode}) before the gate")
            assert time.monotonic() < deadline, "the fault point was never reached"
            time.sleep(0.01)

    def open(self) -> None:
        self.path.touch()

    def start_sync(self, config: Path) -> subprocess.Popen[bytes]:
        """`gitdags sync` in a process of its own, armed with this gate."""
        return subprocess.Popen(
            [sys.executable, "-m", "gitdags", "--config", str(config), "sync"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
        )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def killed_at(point: str) -> dict[str, str]:
    """The environment of a process that SIGKILLs itself at fault point `point`."""
    return {**os.environ, "GITDAGS_TEST_FAULTS": f"{point}=kill"}


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    base = tmp_path / "served"
    base.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield base, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
