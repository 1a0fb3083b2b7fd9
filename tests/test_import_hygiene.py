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


def test_the_import_paths_of_before_the_layout_still_work_and_say_where_to() -> None:
    """For one release: each old path is the module at its new path, with a warning."""
    code = (
        "import importlib, json, warnings\n"
        "from gitdags.moved import MOVED\n"
        "out = {}\n"
        "for old, new in MOVED.items():\n"
        "    with warnings.catch_warnings(record=True) as seen:\n"
        "        warnings.simplefilter('always')\n"
        "        module = importlib.import_module(old)\n"
        "    out[old] = [module is importlib.import_module(new),\n"
        "                any(new in str(w.message) for w in seen)]\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found and all(v == [True, True] for v in found.values()), found
