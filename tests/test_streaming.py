"""Commands that stream: `list --json` and `export` write rows as they read them, a page at a
time, and print what they printed before."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gitdags.cli import app
from gitdags.cli.common import out_json_rows
from tests.conftest import GitRepo, dag_yaml


def test_rows_are_written_before_the_rest_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    read = 0
    written_when: list[int] = []

    def rows() -> Iterator[dict[str, int]]:
        nonlocal read
        for i in range(5000):
            read += 1
            if i == 60:
                written_when.append(len(out.getvalue()))
            yield {"i": i}

    out_json_rows(rows())
    assert written_when[0] > 0  # the first rows were out before the 61st was read
    assert json.loads(out.getvalue()) == [{"i": i} for i in range(5000)]
    assert out.getvalue() == json.dumps([{"i": i} for i in range(5000)]) + "\n"


def test_list_json_and_export_stream_the_same_output(tmp_path: Path, repo: GitRepo) -> None:
    n = 120  # over 50: the compact form, streamed
    repo.commit("many", {f"d{i:03}.yaml": dag_yaml(f"d{i:03}") for i in range(n)})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "state.db"\n[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    runner = CliRunner()
    assert runner.invoke(app, ["--config", str(config), "sync"]).exit_code == 0
    listed = runner.invoke(app, ["--config", str(config), "list", "--json"])
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [r["dag_id"] for r in rows] == [f"d{i:03}" for i in range(n)]
    assert listed.stdout == json.dumps(rows) + "\n"
    exported = runner.invoke(app, ["--config", str(config), "export"])
    assert exported.exit_code == 0
    served = json.loads(exported.stdout)
    assert len(served) == n and served[7]["spec"]["dag_id"] == "d007"
    few = runner.invoke(app, ["--config", str(config), "list", "-o", "json", "-s", "main"])
    assert json.loads(few.stdout) == rows
    one = runner.invoke(app, ["--config", str(config), "list", "--json", "--status", "paused"])
    assert one.exit_code == 0 and one.stdout == "[]\n"  # up to 50 rows: as before (indented)
