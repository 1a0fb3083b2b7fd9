"""Installed, not cloned: the wheel built from this tree, installed in a fresh virtualenv,
used from an empty folder as a newcomer would: demo, list, show, rollback, the console."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONSOLE = textwrap.dedent(
    """
    import asyncio, sys
    from gitdags.config import load_settings
    from gitdags.engine import build_engine
    from gitdags.tui.app import GitdagsApp

    async def main():
        engine = build_engine(load_settings("config.toml"))
        app = GitdagsApp(engine)
        async with app.run_test(size=(100, 30)) as pilot:
            for _ in range(50):
                await pilot.pause(0.05)
                if getattr(app.screen, "shown", None):
                    break
            print("rows", len(app.screen.shown))
            await pilot.press("enter")
            await pilot.pause(0.5)
            print("screen", type(app.screen).__name__)
        engine.close()

    asyncio.run(main())
    """
)


def run(venv: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "gitdags"), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_wheel_installed_in_a_fresh_venv_works_from_an_empty_folder(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("gitdags-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    empty = tmp_path / "newcomer"
    empty.mkdir()

    for command in ("list", "status", "sync"):  # what is missing first: the config
        before = run(venv, empty, command)
        assert before.returncode == 1 and before.stdout == "", before.stdout
        assert "There is no config.toml in" in before.stderr and "gitdags init" in before.stderr
    assert list(empty.iterdir()) == []  # and no command made a database

    demo = run(venv, empty, "demo")
    assert demo.returncode == 0, demo.stderr
    assert "./config.toml points at the demo" in demo.stdout
    assert (empty / "config.toml").exists()
    listed = json.loads(run(venv, empty, "list", "--json").stdout)
    assert len(listed) == 17
    shown = run(venv, empty, "show", "campaign_attribution")
    assert shown.returncode == 0 and "GD202" in shown.stdout
    back = run(venv, empty, "rollback", "daily_sales_etl", "--reason", "newcomer test")
    assert back.returncode == 0 and "now serves v1" in back.stdout, back.stderr
    audit = json.loads(run(venv, empty, "audit", "--json").stdout)
    assert audit[0]["reason"] == "newcomer test"

    console = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CONSOLE],
        cwd=empty,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert console.returncode == 0, console.stderr[-3000:]
    assert "rows 17" in console.stdout and "screen DagScreen" in console.stdout
