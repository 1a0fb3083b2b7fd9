"""Headless entry points load only what they need: never the console or CLI libraries, and the
read side (the registry, the Airflow factory) never the engine, git or validation."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

UI = ("textual", "typer", "rich")
WRITE_SIDE = (
    "gitdags.engine",
    "gitdags.git.source",
    "gitdags.sync",
    "networkx",
    "yaml",
    "croniter",
)


def loaded(module: str, candidates: tuple[str, ...]) -> list[str]:
    code = (
        f"import json, sys, {module};"
        f"print(json.dumps([m for m in {list(candidates)!r} if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    "module",
    ["gitdags", "gitdags.registry", "gitdags.airflow", "gitdags.engine", "gitdags.daemon.loop"],
)
def test_headless_entry_points_never_load_the_console_or_cli(module: str) -> None:
    assert loaded(module, UI) == []


@pytest.mark.parametrize("module", ["gitdags", "gitdags.registry", "gitdags.airflow"])
def test_the_read_side_never_loads_the_write_side(module: str) -> None:
    assert loaded(module, WRITE_SIDE) == []


def test_the_package_root_is_lazy_and_complete() -> None:
    import gitdags

    for name in gitdags.__all__:
        assert getattr(gitdags, name) is not None
