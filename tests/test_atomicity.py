"""A sync is one transaction: killed at any moment, the database is as before or after it."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Gate, GitRepo, dag_yaml, killed_at


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ("after-fetch", "before"),
        ("after-plan", "before"),
        ("in-record", "before"),  # inside the transaction: rolled back
        ("after-commit", "after"),  # committed, not yet published
    ],
)
def test_a_sync_killed_at_each_point_leaves_before_or_after(
    tmp_path: Path, repo: GitRepo, point: str, expected: str
) -> None:
    n = 450  # enough for the worker processes of a large sync
    repo.commit("many", {f"d/{i:04}.yaml": dag_yaml(f"d{i:04}", "a", "b", "c") for i in range(n)})
    config = tmp_path / "config.toml"
    config.write_text(f'[state]\ndatabase = "s.db"\n[[sources]]\nname = "m"\nurl = "{repo.path}"\n')
    cmd = [sys.executable, "-m", "gitdags", "--config", str(config), "sync"]
    done = subprocess.run(cmd, capture_output=True, env=killed_at(point), timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    db = sqlite3.connect(tmp_path / "s.db")
    versions = db.execute("SELECT count(*) FROM versions").fetchone()[0]
    dags = db.execute("SELECT count(*) FROM dags").fetchone()[0]
    files = db.execute("SELECT count(*) FROM files").fetchone()[0]
    synced = db.execute("SELECT count(*) FROM sources WHERE served_commit IS NOT NULL")
    synced = synced.fetchone()[0]
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    assert (versions, dags, files) == ((0, 0, 0) if expected == "before" else (n, n, n))
    assert synced == (1 if expected == "after" else 0)
    # and the next sync completes the work
    done = subprocess.run(cmd, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("SELECT count(*), max(version) FROM versions").fetchone() == (n, 1)
    db.close()


def test_two_syncs_at_once_record_each_version_once(tmp_path: Path, repo: GitRepo) -> None:
    n = 500
    repo.commit("many", {f"d/{i:04}.yaml": dag_yaml(f"d{i:04}") for i in range(n)})
    config = tmp_path / "config.toml"
    config.write_text(f'[state]\ndatabase = "s.db"\n[[sources]]\nname = "m"\nurl = "{repo.path}"\n')
    cmd = [sys.executable, "-m", "gitdags", "--config", str(config), "sync"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for proc in (first, second):
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("SELECT count(*), max(version) FROM versions").fetchone() == (n, 1)
    assert db.execute("SELECT count(*) FROM syncs WHERE error IS NULL").fetchone() == (1,)
    db.close()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def test_workers_of_a_killed_sync_die_with_it(tmp_path: Path, repo: GitRepo) -> None:
    n = 450  # over PARALLEL_MIN: the files are read in worker processes
    repo.commit("many", {f"d/{i:04}.yaml": dag_yaml(f"d{i:04}") for i in range(n)})
    config = tmp_path / "config.toml"
    config.write_text(f'[state]\ndatabase = "s.db"\n[[sources]]\nname = "m"\nurl = "{repo.path}"\n')
    gate = Gate(tmp_path / "gate", "in-check")
    proc = gate.start_sync(config)
    gate.wait_reached(proc)  # a worker is reading files
    workers = _children(proc.pid)
    assert workers
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 30
    while alive := {pid for pid in workers if _alive(pid)}:
        assert time.monotonic() < deadline, f"workers {sorted(alive)} outlived their parent"
        time.sleep(0.02)


def test_a_sync_killed_before_it_published_is_published_by_the_next(
    tmp_path: Path, repo: GitRepo
) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "s.db"\n[publish]\ndeploy_dir = "deploy"\n'
        f'[[sources]]\nname = "m"\nurl = "{repo.path}"\n'
    )
    cmd = [sys.executable, "-m", "gitdags", "--config", str(config), "sync"]
    assert subprocess.run(cmd, capture_output=True, timeout=120).returncode == 0
    repo.commit("two", {"b.yaml": dag_yaml("b")})
    done = subprocess.run(cmd, capture_output=True, env=killed_at("after-commit"), timeout=120)
    assert done.returncode == -signal.SIGKILL
    current = tmp_path / "deploy" / "current"
    assert not (current / "b.json").exists()  # committed, not published
    done = subprocess.run(cmd, capture_output=True, timeout=120)  # nothing new to sync
    assert done.returncode == 0, done.stderr
    assert (current / "b.json").exists()


def test_a_change_is_delivered_to_hooks_at_least_once_across_a_kill(
    tmp_path: Path, repo: GitRepo
) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    log = tmp_path / "hook.log"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "s.db"\n[[sources]]\nname = "m"\nurl = "{repo.path}"\n'
        f'[[hooks]]\nname = "log"\ncommand = "cat >> {log}; echo >> {log}"\n'
    )
    cmd = [sys.executable, "-m", "gitdags", "--config", str(config), "sync"]
    done = subprocess.run(cmd, capture_output=True, env=killed_at("after-commit"), timeout=120)
    assert done.returncode == -signal.SIGKILL  # committed, not yet delivered
    assert not log.exists()
    done = subprocess.run(cmd, capture_output=True, timeout=120)  # nothing new in git
    assert done.returncode == 0, done.stderr
    delivered = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert [(c["dag_id"], c["change"]) for d in delivered for c in d["changes"]] == [("a", "added")]
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
    db.close()


@pytest.mark.parametrize("point", ["in-check", "in-record"])
def test_a_sync_past_its_deadline_fails_cleanly_wherever_it_is(
    tmp_path: Path, repo: GitRepo, point: str
) -> None:
    """`[daemon] sync_timeout` bounds the whole sync, not only git: held at a fault point
    while reading files or inside its transaction until the deadline is past, the sync fails
    in one sentence, writes nothing and the last good state stays served."""
    import json

    timeout = 4.0
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "s.db"\n[daemon]\nsync_timeout = "{timeout:g}s"\n'
        f'[publish]\ndeploy_dir = "deploy"\n[[sources]]\nname = "m"\nurl = "{repo.path}"\n'
    )
    cmd = [sys.executable, "-m", "gitdags", "--config", str(config)]
    assert subprocess.run([*cmd, "sync"], capture_output=True, timeout=120).returncode == 0
    generation = (tmp_path / "deploy" / "current").resolve()
    listed = subprocess.run([*cmd, "list", "--json"], capture_output=True, timeout=120).stdout
    repo.commit("two", {"a.yaml": dag_yaml("a", "x", "y"), "b.yaml": dag_yaml("b")})
    gate = Gate(tmp_path / "gate", point)
    proc = gate.start_sync(config)
    gate.wait_reached(proc)
    time.sleep(timeout)  # the deadline was set before the gate was reached: it is past now
    gate.open()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    message = (out + err).decode().strip()  # (issue 23.13 moves it from stdout to stderr)
    assert "Source 'm': the sync passed its deadline; raise [daemon] sync_timeout" in message
    assert "\n" not in message and "Traceback" not in message
    assert subprocess.run([*cmd, "list", "--json"], capture_output=True).stdout == listed
    assert (tmp_path / "deploy" / "current").resolve() == generation  # nothing published
    syncs = json.loads(subprocess.run([*cmd, "syncs", "--json"], capture_output=True).stdout)
    assert "passed its deadline" in syncs[0]["error"]
    done = subprocess.run([*cmd, "sync"], capture_output=True, timeout=120)  # no gate: lands
    assert done.returncode == 0, done.stderr
    dags = json.loads(subprocess.run([*cmd, "list", "--json"], capture_output=True).stdout)
    assert {(d["dag_id"], d["served_version"]) for d in dags} == {("a", 2), ("b", 1)}
