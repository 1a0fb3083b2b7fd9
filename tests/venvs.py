"""The orchestrators' own environments (Airflow, Prefect, Dagster: never gitdags' dependencies),
made once for the tests at the top of the repository, or where a variable points, and reused
by later runs. Tests in parallel (xdist) take a lock: one of them builds it."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def venv_python(
    what: str, variable: str, default: str, packages: Sequence[str], *, with_gitdags: bool = False
) -> Path:
    """The python of the environment for `what` with `packages` (and gitdags itself, editable,
    with `with_gitdags`); a venv made for other packages gets them added."""
    venv = Path(os.environ.get(variable, ROOT / default))
    python = venv / "bin" / "python"
    ready = venv / ".gitdags-ready"
    wanted = " ".join(packages) + "\n"
    if python.exists() and ready.exists() and ready.read_text() == wanted:
        return python
    with open(f"{venv}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and ready.exists() and ready.read_text() == wanted:
            return python
        steps = [] if python.exists() else [[sys.executable, "-m", "venv", str(venv)]]
        steps.append([str(python), "-m", "pip", "install", "-q", *packages])
        if with_gitdags:
            steps.append([str(python), "-m", "pip", "install", "-q", "-e", str(ROOT)])
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=1200)
            if done.returncode != 0:
                pytest.fail(f"cannot install {what} into {venv}: {done.stderr[-2000:]}")
        ready.write_text(wanted)
    return python
