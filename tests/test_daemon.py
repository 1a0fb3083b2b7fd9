"""The daemon as a real process: intervals, ref watch, backoff, webhooks, signals, systemd."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gitdags.daemon.loop import backoff
from tests.conftest import Gate, GitRepo, dag_yaml, free_port, git, killed_at

ROOT = Path(__file__).resolve().parent.parent


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def until(check: Callable[[], object], timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout}s: {check}")


class DaemonProcess:
    def __init__(
        self,
        tmp_path: Path,
        sources: str,
        daemon: str = "",
        env: dict | None = None,
        flags: tuple[str, ...] = (),
    ):
        self.port = free_port()
        self.db = tmp_path / "state" / "gitdags.db"
        self.config = tmp_path / "config.toml"
        self.write(sources, daemon)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gitdags", "--config", str(self.config), *flags, "daemon"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            cwd=tmp_path,
        )

    def write(self, sources: str, daemon: str = "") -> None:
        self.config.write_text(
            f'[state]\ndatabase = "{self.db}"\n'
            f'[daemon]\nlisten = "127.0.0.1:{self.port}"\nmax_backoff = "2s"\n{daemon}\n{sources}'
        )

    def query(self, sql: str) -> list[tuple]:
        if not self.db.exists():
            return []
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()

    def served(self, dag_id: str) -> int | None:
        rows = self.query(
            f"SELECT served_version FROM dags WHERE dag_id = '{dag_id}' AND deleted = 0"
        )
        return rows[0][0] if rows else None

    def http(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=body or None,
            method=method,
            headers=headers or {},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError:
            return None, ""

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _out, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, err.decode()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def make(
        sources: str, daemon: str = "", env: dict | None = None, flags: tuple[str, ...] = ()
    ) -> DaemonProcess:
        d = DaemonProcess(tmp_path, sources, daemon, env, flags)
        started.append(d)
        return d

    yield make
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


def source_toml(name: str, url: str, interval: str = "1s") -> str:
    return f'[[sources]]\nname = "{name}"\nurl = "{url}"\ninterval = "{interval}"\n'


def bare_remote(tmp_path: Path, repo: GitRepo) -> Path:
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "--bare", "--quiet", str(repo.path), str(bare))
    return bare


def test_interval_sync_sigterm_and_second_daemon(tmp_path: Path, repo: GitRepo, start) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    bare = bare_remote(tmp_path, repo)
    d = start(source_toml("main", f"file://{bare}", "1s"))
    until(lambda: d.served("a") == 1)
    repo.commit("two", {"a.yaml": dag_yaml("a", "x", "y")})
    git(repo.path, "push", "--quiet", str(bare), "main")
    until(lambda: d.served("a") == 2)

    second = subprocess.run(
        [sys.executable, "-m", "gitdags", "--config", str(d.config), "daemon"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 1
    assert f"Another gitdags daemon (PID {d.proc.pid})" in second.stderr

    code, err = d.stop()
    assert code == 0, err
    assert "daemon stopped" in err


def test_ref_watch_serves_a_push_without_waiting_for_the_interval(
    tmp_path: Path, repo: GitRepo, start
) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    bare = bare_remote(tmp_path, repo)
    d = start(source_toml("main", str(bare), "1h"))
    until(lambda: d.served("a") == 1)
    until(lambda: d.http("GET", "/healthz")[0] == 200)
    repo.commit("two", {"b.yaml": dag_yaml("b")})
    pushed = time.monotonic()
    git(repo.path, "push", "--quiet", str(bare), "main")
    until(lambda: d.served("b") == 1, timeout=10)
    # the interval is an hour: only the ref watch can have synced it
    assert time.monotonic() - pushed < 10
    assert d.stop()[0] == 0


def test_broken_remote_backs_off_keeps_serving_and_recovers(
    tmp_path: Path, repo: GitRepo, start
) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    bare = bare_remote(tmp_path, repo)
    d = start(source_toml("main", f"file://{bare}", "1s"))
    until(lambda: d.served("a") == 1)
    hidden = tmp_path / "hidden.git"
    bare.rename(hidden)
    until(lambda: (d.query("SELECT failures FROM sources") or [(0,)])[0][0] >= 3)
    ((error, since),) = d.query("SELECT last_error, last_error_at FROM sources")
    assert "not a git repository" in error or "does not exist" in error or "unreachable" in error
    assert since
    assert d.served("a") == 1  # the last good state is still served
    status = subprocess.run(
        [sys.executable, "-m", "gitdags", "--config", str(d.config), "status", "--json"],
        capture_output=True,
        text=True,
    )
    (src,) = json.loads(status.stdout)
    assert src["last_error"] == error and src["active"] == 1
    code, body = d.http("GET", "/metrics")
    assert code == 200 and metric(body, "gitdags_syncs_total", outcome="failure") >= 3
    assert metric(body, "gitdags_source_consecutive_failures", source="main") >= 3
    hidden.rename(bare)
    until(lambda: d.query("SELECT last_error FROM sources") == [(None,)], timeout=15)
    code, err = d.stop()
    assert code == 0 and "sync failed" in err


def test_backoff_doubles_and_caps() -> None:
    assert [backoff(5, n, 60) for n in range(7)] == [5, 5, 10, 20, 40, 60, 60]


def test_webhook_signature_health_and_metrics(tmp_path: Path, repo: GitRepo, start) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    bare = bare_remote(tmp_path, repo)
    d = start(source_toml("main", f"file://{bare}", "1h"), 'webhook_secret = "s3cret"')
    until(lambda: d.http("GET", "/healthz")[0] == 200)
    code, body = d.http("GET", "/healthz")
    assert json.loads(body)["sources"][0]["synced"] is True
    repo.commit("two", {"b.yaml": dag_yaml("b")})
    git(repo.path, "push", "--quiet", str(bare), "main")
    payload = b'{"ref": "refs/heads/main"}'
    bad = {"X-Hub-Signature-256": "sha256=" + "0" * 64}
    assert d.http("POST", "/hooks/main", payload, bad)[0] == 401
    assert d.http("POST", "/hooks/main", payload)[0] == 401
    good = "sha256=" + hmac.new(b"s3cret", payload, hashlib.sha256).hexdigest()
    code, body = d.http("POST", "/hooks/main", payload, {"X-Hub-Signature-256": good})
    assert code == 202 and json.loads(body)["triggered"] is True
    until(lambda: d.served("b") == 1, timeout=10)
    assert d.http("POST", "/hooks/nope", payload, {"X-Gitlab-Token": "s3cret"})[0] == 404
    code, metrics = d.http("GET", "/metrics")
    # two syncs, both with news: had a refused webhook triggered one, the signed one would
    # have found nothing new (interval 1h, no ref watch on a remote)
    assert metric(metrics, "gitdags_syncs_total", outcome="success") == 2
    assert metric(metrics, "gitdags_syncs_total", outcome="noop") == 0
    assert metric(metrics, "gitdags_dags", source="main", status="active") == 2
    assert metric(metrics, "gitdags_sync_duration_seconds_count", source="main") == 2
    assert metric(metrics, "gitdags_seconds_since_last_successful_sync", source="main") >= 0
    assert d.stop()[0] == 0


def test_sighup_adds_a_source(tmp_path: Path, start) -> None:
    one, two = GitRepo(tmp_path / "one"), GitRepo(tmp_path / "two")
    one.commit("one", {"a.yaml": dag_yaml("a")})
    two.commit("two", {"b.yaml": dag_yaml("b")})
    d = start(source_toml("one", str(one.path), "1h"))
    until(lambda: d.served("a") == 1)
    d.write(source_toml("one", str(one.path), "1h") + source_toml("two", str(two.path), "1h"))
    d.proc.send_signal(signal.SIGHUP)
    until(lambda: d.served("b") == 1)
    code, err = d.stop()
    assert code == 0 and "config reloaded" in err


def test_sighup_removing_a_source_retires_its_dags(tmp_path: Path, start) -> None:
    one, two = GitRepo(tmp_path / "one"), GitRepo(tmp_path / "two")
    one.commit("one", {"a.yaml": dag_yaml("a")})
    two.commit("two", {"b.yaml": dag_yaml("b")})
    both = source_toml("one", str(one.path), "1h") + source_toml("two", str(two.path), "1h")
    d = start(both)
    until(lambda: d.served("a") == 1 and d.served("b") == 1)
    d.write(source_toml("one", str(one.path), "1h"))
    d.proc.send_signal(signal.SIGHUP)
    until(lambda: d.served("b") is None)
    assert d.query("SELECT count(*) FROM versions WHERE dag_id = 'b'") == [(1,)]  # history
    assert d.query("SELECT name FROM sources") == [("one",)]
    health = json.loads(d.http("GET", "/healthz")[1])
    assert [s["source"] for s in health["sources"]] == ["one"]
    assert "two" not in d.http("GET", "/metrics")[1].split("gitdags_dags")[0]
    d.write(both)  # added again: its DAGs come back
    d.proc.send_signal(signal.SIGHUP)
    until(lambda: d.served("b") is not None)
    code, err = d.stop()
    assert code == 0 and "1 DAGs retired" in err


def test_sd_notify_ready_and_watchdog(tmp_path: Path, repo: GitRepo, start) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    try:
        d = start(
            source_toml("main", str(repo.path), "1h"),
            env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"},
        )
        seen: set[str] = set()
        deadline = time.monotonic() + 15
        while not {"READY=1", "WATCHDOG=1"} <= seen or not any(
            s.startswith("STATUS=synced main@") for s in seen
        ):
            assert time.monotonic() < deadline, seen
            seen.add(sock.recv(4096).decode())
        assert d.stop()[0] == 0
    finally:
        sock.close()


def test_unit_file_verifies() -> None:
    unit = (ROOT / "contrib" / "systemd" / "gitdags.service").read_text()
    for line in (
        "Type=notify",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/gitdags",
        "User=gitdags",
        "WatchdogSec=",
        "RestrictNamespaces=no",  # bubblewrap, for python = "airflow", makes namespaces
    ):
        assert line in unit
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; the unit was checked by parsing only")
    beside = Path(sys.executable).parent / "gitdags"
    exe = str(beside) if beside.exists() else sys.executable
    local = Path(os.environ.get("TMPDIR", "/tmp")) / f"gitdags-{os.getpid()}.service"
    local.write_text(unit.replace("/opt/gitdags/bin/gitdags", exe))
    try:
        done = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    finally:
        local.unlink()


def test_daemon_publishes_the_deploy_folder_on_push(tmp_path: Path, repo: GitRepo, start) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    bare = bare_remote(tmp_path, repo)
    deploy = tmp_path / "deploy"
    d = start(source_toml("main", str(bare), "1h"), f'[publish]\ndeploy_dir = "{deploy}"')

    def published() -> set[str]:
        return {p.stem for p in (deploy / "current").glob("*.json") if p.name != "manifest.json"}

    until(lambda: published() == {"a"})
    repo.commit("two", {"b.yaml": dag_yaml("b")})
    git(repo.path, "push", "--quiet", str(bare), "main")
    until(lambda: published() == {"a", "b"}, timeout=10)
    assert d.stop()[0] == 0


def test_verbose_reaches_the_daemon(tmp_path: Path, repo: GitRepo, start) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    d = start(source_toml("main", str(repo.path), "1h"), flags=("-v",))
    until(lambda: d.http("GET", "/healthz")[0] == 200)
    code, err = d.stop()
    assert code == 0 and " DEBUG " in err


def test_the_watchdog_is_not_fed_while_a_sync_hangs(tmp_path: Path, repo: GitRepo, start) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.1)
    gate = Gate(tmp_path / "gate", "after-plan")
    try:
        d = start(
            source_toml("main", str(repo.path), "1h"),
            'sync_timeout = "1s"',
            env={
                "NOTIFY_SOCKET": str(path),
                "WATCHDOG_USEC": "200000",
                "GITDAGS_TEST_FAULTS": gate.env["GITDAGS_TEST_FAULTS"],
            },
        )
        gate.wait_reached(d.proc)  # the first sync stops there: it hangs
        reached = time.monotonic()
        pings: list[float] = []
        while time.monotonic() - reached < 3.5:  # the sync is hung from 2 s (timeout + 1 s)
            try:
                if sock.recv(4096) == b"WATCHDOG=1":
                    pings.append(time.monotonic() - reached)
            except TimeoutError:
                pass
        assert pings and not [t for t in pings if t > 2.5], pings
        gate.open()
        deadline = time.monotonic() + 15
        while True:  # the sync goes on (past its deadline: it fails), and the pings come back
            assert time.monotonic() < deadline
            try:
                if sock.recv(4096) == b"WATCHDOG=1":
                    break
            except TimeoutError:
                pass
        code, err = d.stop()
        assert code == 0 and "sync hangs past [daemon] sync_timeout" in err
        assert "passed its deadline" in err
    finally:
        sock.close()


def test_webhooks_with_a_bad_content_length_are_refused(
    tmp_path: Path, repo: GitRepo, start
) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    d = start(source_toml("main", str(repo.path), "1h"))
    until(lambda: d.http("GET", "/healthz")[0] == 200)
    for length in ("abc", "-1", "1e9"):
        with socket.create_connection(("127.0.0.1", d.port), timeout=5) as conn:
            conn.sendall(
                f"POST /hooks/main HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()
            )
            answer = conn.recv(4096).decode()
        assert answer.startswith("HTTP/1.0 400") or answer.startswith("HTTP/1.1 400"), answer
    assert d.http("GET", "/healthz")[0] == 200  # still serving
    assert d.http("GET", "/healthz?verbose=1")[0] == 200  # a probe's query string is no 404
    assert d.http("GET", "/metrics?x")[0] == 200
    code, err = d.stop()
    assert code == 0 and "Traceback" not in err


def test_slow_clients_are_bounded_and_dropped_and_a_burst_is_queued(
    tmp_path: Path, repo: GitRepo, start
) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    d = start(source_toml("main", str(repo.path), "1h"))
    until(lambda: d.http("GET", "/healthz")[0] == 200)
    tasks = Path(f"/proc/{d.proc.pid}/task")
    base = len(list(tasks.iterdir()))
    slow = []
    for _ in range(100):  # each sends half a request line and then nothing
        conn = socket.create_connection(("127.0.0.1", d.port), timeout=30)
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x")
        slow.append(conn)
    try:
        peak = max(len(list(tasks.iterdir())) for _ in range(50))
        assert peak <= base + 64  # one thread per request served at once, no more
        assert slow[0].recv(4096) == b""  # dropped at the read timeout (the server closes it)
        assert d.http("GET", "/healthz")[0] == 200
    finally:
        for conn in slow:
            conn.close()

    def push(_: int) -> int:
        return d.http("POST", "/hooks/main")[0]

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(200) as pool:  # a burst of pushes: queued, never reset
        codes = list(pool.map(push, range(200)))
    assert codes == [202] * 200
    code, err = d.stop()
    assert code == 0 and "Traceback" not in err


def test_daemon_logs_name_what_broke_once_per_failure(tmp_path: Path, repo: GitRepo, start) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a"), "b.yaml": dag_yaml("b")})
    bad = tmp_path / "missing-repo"
    d = start(source_toml("main", str(repo.path), "1h") + source_toml("gone", str(bad), "1h"))
    until(lambda: d.served("a") == 1)
    repo.commit("break b", {"b.yaml": dag_yaml("b", deps={"a": ["nope"]})})
    d.http("POST", "/hooks/main")
    until(lambda: d.query("SELECT newest_version FROM dags WHERE dag_id = 'b'") == [(2,)])
    code, err = d.stop()
    assert code == 0
    (line,) = [ln for ln in err.splitlines() if "DAG invalid" in ln]
    for field in ("source=main", "dag_id=b", "path=b.yaml", "code=GD202", "line="):
        assert field in line, line
    failures = [ln for ln in err.splitlines() if "gone" in ln and "fail" in ln]
    assert len(failures) == 1, failures  # said once, by the daemon (not by the engine too)


def test_a_source_added_by_sighup_does_not_make_the_daemon_unready(
    tmp_path: Path, repo: GitRepo, start
) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    silent = socket.socket()  # a git server that accepts and never answers: a slow first sync
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    url = f"git://127.0.0.1:{silent.getsockname()[1]}/x.git"
    try:
        d = start(source_toml("main", str(repo.path), "1h"))
        until(lambda: d.http("GET", "/healthz")[0] == 200)
        d.write(source_toml("main", str(repo.path), "1h") + source_toml("slow", url, "1h"))
        d.proc.send_signal(signal.SIGHUP)

        def pending() -> bool:
            code, body = d.http("GET", "/healthz")
            slow = [s for s in json.loads(body or "{}").get("sources", []) if s["source"] == "slow"]
            return code == 200 and bool(slow) and slow[0]["pending"]

        until(pending)
        conn, _ = silent.accept()  # the new source's fetch is waiting on us now
        assert d.http("GET", "/healthz")[0] == 200
        conn.close()
    finally:
        silent.close()
    assert d.stop()[0] == 0


def test_log_lines_carry_journald_priorities_under_systemd(tmp_path: Path, monkeypatch) -> None:
    import logging

    from gitdags import logs

    out = tmp_path / "stderr"
    with open(out, "w") as stream:
        stat = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
        monkeypatch.setattr(sys, "stderr", stream)
        logs.setup(0, "text", default=logging.INFO)
        logging.getLogger("gitdags.test").warning("careful")
        logging.getLogger("gitdags.test").error("broken")
        logging.getLogger("gitdags.test").info("fine")
    lines = out.read_text().splitlines()
    assert [ln[:3] for ln in lines] == ["<4>", "<3>", "<6>"]
    logs.setup(0, "text")  # back to stderr for the other tests


def test_a_long_first_sync_shows_progress_in_the_status_line(
    tmp_path: Path, repo: GitRepo, start
) -> None:
    repo.commit("many", {f"d/{i:04}.yaml": dag_yaml(f"d{i:04}") for i in range(1200)})
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(20)
    try:
        d = start(source_toml("main", str(repo.path), "1h"), env={"NOTIFY_SOCKET": str(path)})
        seen: list[str] = []
        while not any(s.startswith("STATUS=synced main@") for s in seen):
            seen.append(sock.recv(4096).decode())
        assert "STATUS=main: checked 1,200/1,200 files" in seen, seen
        assert d.stop()[0] == 0
    finally:
        sock.close()


def healthz_activity(d: DaemonProcess, source: str = "main") -> str:
    code, body = d.http("GET", "/healthz")
    if code is None:
        return ""
    found = [s for s in json.loads(body or "{}").get("sources", []) if s["source"] == source]
    return found[0].get("activity", "") if found else ""


def test_a_daemon_killed_with_its_git_restarts_past_the_lock_git_left(
    tmp_path: Path, repo: GitRepo, start
) -> None:
    """A daemon SIGKILLed in a sync together with its git (a service manager kills the whole
    group; the sync's own deadline kills git too) leaves git's lock in the mirror: the
    restarted daemon must still reach the tip, and say what it cleared."""
    first = repo.commit("one", {"a.yaml": dag_yaml("a")})
    d = start(source_toml("main", str(repo.path), "1s"), env=killed_at("after-plan"))
    assert d.proc.wait(timeout=60) == -signal.SIGKILL
    mirror = d.db.with_name(d.db.name + ".mirrors") / "main.git"
    # its git, killed in the middle of updating the branch: a real git holding the ref's
    # lock (a prepared transaction) gets SIGKILL, and its lock stays behind
    held = subprocess.Popen(
        ["git", "-C", str(mirror), "update-ref", "--stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert held.stdin is not None
    held.stdin.write(f"start\nupdate refs/heads/main {first}\nprepare\n".encode())
    held.stdin.flush()
    until(lambda: (mirror / "refs" / "heads" / "main.lock").exists())
    held.kill()
    held.wait()
    held.stdin.close()
    assert (mirror / "refs" / "heads" / "main.lock").exists()
    tip = repo.commit("two", {"b.yaml": dag_yaml("b")})
    d2 = start(source_toml("main", str(repo.path), "1s"))
    until(lambda: d2.query("SELECT served_commit FROM sources") == [(tip,)], timeout=60)
    code, err = d2.stop()
    assert code == 0
    assert "removing a stale git lock" in err and "main.lock" in err


def test_a_restarted_daemon_says_the_failure_it_inherited_and_what_it_waits_for(
    tmp_path: Path, repo: GitRepo, start
) -> None:
    """The failures in a row are read back from the database: a daemon restarted on a
    failing source used to fail in silence (its count was not one of those logged) and wait
    out the backoff without a word."""
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    bare = bare_remote(tmp_path, repo)
    d = start(source_toml("main", f"file://{bare}", "1s"))
    until(lambda: d.served("a") == 1)
    bare.rename(tmp_path / "hidden.git")
    until(lambda: (d.query("SELECT failures FROM sources") or [(0,)])[0][0] >= 4, timeout=60)
    d.proc.kill()  # kill -9
    d.proc.wait()
    ((inherited,),) = d.query("SELECT failures FROM sources")
    d2 = start(source_toml("main", f"file://{bare}", "1s"))
    until(lambda: d2.query("SELECT failures FROM sources")[0][0] > inherited, timeout=60)
    activity = until(lambda: "retrying in" in healthz_activity(d2) and healthz_activity(d2))
    assert f"after {inherited + 1} failed syncs in a row" in str(activity)
    code, err = d2.stop()
    assert code == 0
    assert "source was failing before this start; syncing it now" in err
    assert f"failures={inherited}" in err
    (said,) = [ln for ln in err.splitlines() if "sync failed" in ln]
    assert f"failures={inherited + 1}" in said and "retry_in_s=" in said


def test_a_source_that_fails_and_recovers_is_said_to_recover(
    tmp_path: Path, repo: GitRepo, start
) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    bare = bare_remote(tmp_path, repo)
    d = start(source_toml("main", f"file://{bare}", "1s"))
    until(lambda: d.served("a") == 1)
    hidden = tmp_path / "hidden.git"
    bare.rename(hidden)
    until(lambda: (d.query("SELECT failures FROM sources") or [(0,)])[0][0] >= 2, timeout=60)
    hidden.rename(bare)
    until(lambda: d.query("SELECT failures, last_error FROM sources") == [(0, None)], timeout=60)
    status = subprocess.run(
        [sys.executable, "-m", "gitdags", "--config", str(d.config), "status"],
        capture_output=True,
        text=True,
    )
    (line,) = [ln for ln in status.stdout.splitlines() if "recovered" in ln]
    assert "recovered after" in line and "failed syncs" in line, status.stdout
    as_json = subprocess.run(
        [sys.executable, "-m", "gitdags", "--config", str(d.config), "status", "--json"],
        capture_output=True,
        text=True,
    )
    (src,) = json.loads(as_json.stdout)
    assert "recovered after" in src["recovered"]
    code, err = d.stop()
    assert code == 0
    (said,) = [ln for ln in err.splitlines() if "recovered after" in ln]
    assert " INFO " in said and "source main recovered after" in said
    assert "not a git repository" in said or "does not exist" in said  # the error it ended


def test_a_quiet_source_polled_successfully_is_not_reported_stale(
    tmp_path: Path, repo: GitRepo, start
) -> None:
    """gitdags_seconds_since_last_successful_sync counts a poll that found nothing new as a
    successful sync: on a quiet repository the alert on its age must not fire."""
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    bare = bare_remote(tmp_path, repo)
    d = start(source_toml("main", f"file://{bare}", "1s"))
    until(lambda: d.served("a") == 1)
    until(lambda: d.http("GET", "/metrics")[0] == 200)
    since = time.time()  # the first sync, with news, finished before this
    noop = metric(d.http("GET", "/metrics")[1], "gitdags_syncs_total", outcome="noop")

    def two_more_quiet_polls() -> str:
        code, body = d.http("GET", "/metrics")
        done = code == 200 and metric(body, "gitdags_syncs_total", outcome="noop") >= noop + 2
        return body if done else ""

    body = str(until(two_more_quiet_polls, timeout=60))
    age = metric(body, "gitdags_seconds_since_last_successful_sync", source="main")
    # the second quiet poll began after the first had been counted, after `since`: its age
    # is less than the time since then (before, the age was that of the first sync)
    assert 0 <= age < time.time() - since
    assert d.stop()[0] == 0


def test_a_mirror_held_by_another_process_is_waited_for_until_the_deadline_and_said(
    tmp_path: Path, repo: GitRepo, start
) -> None:
    """Another process holding a mirror's lock (a stuck `gitdags sync`) kept the daemon's
    sync waiting forever in silence; now it waits until the sync's deadline, says who holds
    the lock, and syncs once the lock is free."""
    tip = repo.commit("one", {"a.yaml": dag_yaml("a")})
    lock = tmp_path / "state" / "gitdags.db.mirrors" / "main.git.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            f"f = open({str(lock)!r}, 'a')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "f.write(f'{os.getpid()}\\n'); f.flush()\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline() == b"held\n"
        d = start(source_toml("main", str(repo.path), "1s"), 'sync_timeout = "3s"')
        until(lambda: (d.query("SELECT failures FROM sources") or [(0,)])[0][0] >= 1, timeout=60)
        ((error,),) = d.query("SELECT last_error FROM sources")
        assert f"is held by process {holder.pid}" in error, error
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    until(lambda: d.query("SELECT served_commit FROM sources") == [(tip,)], timeout=60)
    code, err = d.stop()
    assert code == 0
    said = [ln for ln in err.splitlines() if "waiting for the mirror lock" in ln]
    assert said and all(f"holder={holder.pid}" in ln for ln in said), err


def test_a_source_worker_that_cannot_start_retries_and_says_why(
    tmp_path: Path, repo: GitRepo, start
) -> None:
    """An error outside a sync (here the engine cannot be built: the Airflow template of the
    served branches cannot be read) ended the source's worker thread: the daemon logged
    "daemon started" and then never synced again. Now the worker says why and retries."""
    tip = repo.commit("one", {"a.yaml": dag_yaml("a")})
    template = tmp_path / "dag.py.tmpl"
    d = start(
        source_toml("main", str(repo.path), "1s"),
        f'[publish]\ngit_repo = "{tmp_path / "served.git"}"\nairflow_template = "{template}"',
    )
    until(lambda: "Airflow template" in healthz_activity(d), timeout=60)
    template.write_text("# $dag_id from $json_file\n")
    until(lambda: d.query("SELECT served_commit FROM sources") == [(tip,)], timeout=60)
    code, err = d.stop()
    assert code == 0
    (said, *_) = [ln for ln in err.splitlines() if "cannot sync this source; retrying" in ln]
    assert "source=main" in said and str(template) in said and "retry_in_s=" in said
