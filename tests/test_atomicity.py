"""A sync is one transaction: killed at any moment, the database is as before or after it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import GitRepo, dag_yaml


def test_killed_sync_leaves_before_or_after(tmp_path: Path, repo: GitRepo) -> None:
    n = 600
    repo.commit("many", {f"d/{i:04}.yaml": dag_yaml(f"d{i:04}", "a", "b", "c") for i in range(n)})
    config = tmp_path / "config.toml"
    config.write_text(f'[state]\ndatabase = "s.db"\n[[sources]]\nname = "m"\nurl = "{repo.path}"\n')
    cmd = [sys.executable, "-m", "gitdags", "--config", str(config), "sync"]
    outcomes = set()
    for delay in (0.3, 0.5, 0.7, 0.9, 1.2):
        (tmp_path / "s.db").unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{tmp_path / 's.db'}{suffix}").unlink(missing_ok=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if not (tmp_path / "s.db").exists():
            outcomes.add("no database")
            continue
        db = sqlite3.connect(tmp_path / "s.db")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "versions" not in tables:  # killed before the schema's own transaction committed
            assert tables <= {"sqlite_sequence"}
            outcomes.add("before")
            db.close()
            continue
        versions = db.execute("SELECT count(*) FROM versions").fetchone()[0]
        dags = db.execute("SELECT count(*) FROM dags").fetchone()[0]
        files = db.execute("SELECT count(*) FROM files").fetchone()[0]
        synced = db.execute("SELECT count(*) FROM sources WHERE served_commit IS NOT NULL")
        assert (versions, dags, files) in ((0, 0, 0), (n, n, n))
        assert synced.fetchone()[0] == (1 if versions else 0)
        outcomes.add("after" if versions else "before")
        db.close()
    assert outcomes  # every kill left a consistent state


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
