"""The suite's own hygiene: a test that leaves a process running fails (see conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_test_that_leaves_a_daemon_running_fails(tmp_path: Path) -> None:
    """A process that leaves the tree as gpg-agent does (its parent exits) is still found,
    named in the failure, and killed."""
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import no_process_left_behind  # noqa: F401\n"
    )
    (tmp_path / "test_leak.py").write_text(
        "import subprocess\n\n\n"
        "def test_leaves_one() -> None:\n"
        "    subprocess.run(['sh', '-c', 'sleep 3607 >/dev/null 2>&1 &'], check=True)\n\n\n"
        "def test_leaves_none() -> None:\n"
        "    subprocess.run(['sh', '-c', 'sleep 0'], check=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout
    assert "ERROR at teardown of test_leaves_one" in done.stdout
    assert "the test left 1 processes running:" in done.stdout and "sleep 3607" in done.stdout
    assert "2 passed, 1 error" in done.stdout
    left = subprocess.run(["pgrep", "-f", "sleep 3607"], capture_output=True, text=True)
    assert left.stdout == ""  # and it was killed
