"""The command line through typer's CliRunner, against real repositories and databases."""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gitdags.cli import app
from gitdags.config import load_settings as settings_of
from tests.conftest import SAMPLE, GitRepo, dag_yaml

BAD = Path(__file__).parent / "data" / "bad"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write_config(tmp_path: Path, repo: GitRepo, extra: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "state.db"\n{extra}\n'
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    return config


def run(runner: CliRunner, config: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_sync_list_show_history_status_syncs_json(tmp_path: Path, repo: GitRepo, runner) -> None:
    cycle = dag_yaml("loop", "a", "b", deps={"a": ["b"], "b": ["a"]})
    repo.commit(
        "one per format",
        {
            "a.yaml": dag_yaml("a"),
            "b.json": '{"dag_id": "b", "tasks": [{"id": "t", "type": "empty"}]}',
            "c.toml": 'dag_id = "c"\n[[tasks]]\nid = "t"\ntype = "empty"\n',
            "loop.yaml": cycle,
        },
    )
    config = write_config(tmp_path, repo)
    code, out, _ = run(runner, config, "sync")
    assert code == 0 and "+3 added" in out and "!1 invalid" in out
    code, out, _ = run(runner, config, "list", "--json")
    listed = json.loads(out)
    assert sorted((d["dag_id"], d["status"]) for d in listed) == [
        ("a", "active"),
        ("b", "active"),
        ("c", "active"),
        ("loop", "invalid"),
    ]
    for field in (
        "dag_id",
        "source",
        "path",
        "status",
        "paused",
        "pinned",
        "served_version",
        "newest_version",
        "served_commit",
    ):
        assert field in listed[0]
    code, out, _ = run(runner, config, "show", "loop", "--json")
    shown = json.loads(out)
    assert shown["issues"][0]["code"] == "GD204" and "a -> b -> a" in shown["issues"][0]["message"]
    assert set(shown["issues"][0]) == {"code", "severity", "file", "location", "line", "message"}
    code, out, _ = run(runner, config, "show", "loop")
    assert code == 0 and "GD204" in out
    code, out, _ = run(runner, config, "history", "a", "--json")
    (version,) = json.loads(out)
    assert (
        version["version"] == 1 and version["served"] is True and version["commit"] == repo.head()
    )
    code, out, _ = run(runner, config, "status", "--json")
    (status,) = json.loads(out)
    assert status["newest_commit"] == status["served_commit"] == repo.head()
    assert status["active"] == 3 and status["invalid"] == 1 and status["last_error"] is None
    code, out, _ = run(runner, config, "syncs", "--json")
    (sync,) = json.loads(out)
    assert (sync["added"], sync["invalid"], sync["forced"], sync["error"]) == (3, 1, False, None)
    code, out, _ = run(runner, config, "export")
    assert sorted(d["dag_id"] for d in json.loads(out)) == ["a", "b", "c"]
    code, out, _ = run(runner, config, "sync")
    assert code == 0 and "no changes" in out


def test_validate_exit_codes_and_formats(runner) -> None:
    result = runner.invoke(app, ["validate", str(SAMPLE)])
    assert result.exit_code == 0 and "0 errors" in result.stdout
    result = runner.invoke(app, ["validate", str(BAD), "--format", "github"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert all(line.startswith(("::error file=", "::warning file=")) for line in lines)
    assert any(",line=" in line and "title=GD204" in line for line in lines)
    result = runner.invoke(app, ["validate", str(BAD / "GD204-cycle.yaml"), "--format", "json"])
    (issue,) = json.loads(result.stdout)
    assert issue["code"] == "GD204" and issue["line"] == 2


def test_user_errors_are_one_sentence_on_stderr(tmp_path: Path, repo: GitRepo, runner) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = write_config(tmp_path, repo)
    code, out, err = run(runner, config, "list")  # reading never creates the database
    assert code == 1 and out == "" and "does not exist; run `gitdags sync`" in err
    assert not (tmp_path / "state.db").exists()
    assert run(runner, config, "sync")[0] == 0
    code, out, err = run(runner, config, "show", "nope")
    assert code == 1 and out == ""
    assert err.strip() == "error: There is no DAG 'nope'; `gitdags list` shows the DAGs."
    code, _, err = run(runner, config, "sync", "--source", "ghost")
    assert code == 1 and "no source named 'ghost'" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(runner, config, "validate", str(tmp_path / "missing.yaml"))
    assert code == 1 and "does not exist" in err


def test_without_a_config_the_config_is_named_first_and_no_database_is_made(
    tmp_path: Path, runner, monkeypatch
) -> None:
    """A newcomer in an empty folder: every command that needs the database says that
    config.toml is missing (not that the database is), and none of them makes a database."""
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("GITDAGS_")]:
        monkeypatch.delenv(var)
    commands = [["list"], ["status"], ["sync"], ["tui"], ["daemon"], ["backup", "b.db"]]
    commands += [["syncs"], ["rollback", "a"], ["pause", "a"]]
    for args in commands:
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr == (
            f"error: There is no config.toml in {tmp_path}; write one with `gitdags init`, or "
            "name yours with --config PATH (or GITDAGS_CONFIG).\n"
        ), args
        assert list(tmp_path.iterdir()) == [], args
    # a database left by an older gitdags: sync still names the missing config
    runner.invoke(app, ["--config", str(tmp_path / "c.toml"), "init", "--path", "c.toml"])
    runner.invoke(app, ["--config", "c.toml", "sync"])
    (tmp_path / "c.toml").unlink()
    monkeypatch.setenv("GITDAGS_STATE_DATABASE", str(tmp_path / "gitdags.db"))
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 1 and "There is no config.toml in" in result.stderr
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0 and "gitdags init" in result.stdout


def test_a_config_without_sources_makes_no_database(tmp_path: Path, runner) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[state]\ndatabase = "state.db"\n')
    code, out, err = run(runner, config, "sync")
    assert code == 1 and out == ""
    assert err == f"error: No sources are configured; add a [[sources]] table to {config}.\n"
    assert not (tmp_path / "state.db").exists()


def test_sync_says_failures_on_stderr_one_designed_sentence_each(
    tmp_path: Path, repo: GitRepo, runner, monkeypatch
) -> None:
    """A refused connection (git:// and http://), a connection that times out and a host
    that does not resolve each get one sentence of gitdags' own, on stderr; what synced is
    on stdout."""
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    silent = socket.socket()  # accepts the connection and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    slow = silent.getsockname()[1]
    monkeypatch.setenv("GIT_HTTP_LOW_SPEED_LIMIT", "1000")  # git's own timeout, in 1 s
    monkeypatch.setenv("GIT_HTTP_LOW_SPEED_TIME", "1")
    sources = {
        "good": str(repo.path),
        "git": f"git://127.0.0.1:{port}/x.git",
        "http": f"http://127.0.0.1:{port}/x.git",
        "slow": f"http://127.0.0.1:{slow}/x.git",
        "dns": "https://no-such-host.invalid/x.git",
    }
    config = tmp_path / "config.toml"
    config.write_text(
        '[state]\ndatabase = "state.db"\n'
        + "".join(f'[[sources]]\nname = "{n}"\nurl = "{u}"\n' for n, u in sources.items())
    )
    try:
        code, out, err = run(runner, config, "sync")
    finally:
        silent.close()
    assert code == 1
    assert out.startswith("good: - -> ") and "FAILED" not in out
    refused = "refused the connection (nothing serves git at that host and port); check the "
    refused += "URL's host and port, and that the git server runs."
    assert err.splitlines() == [
        f"git: FAILED: Source 'git': {sources['git']} {refused}",
        f"http: FAILED: Source 'http': {sources['http']} {refused}",
        f"slow: FAILED: Source 'slow': {sources['slow']} did not answer in time (the connection "
        "timed out); check the URL, the network and any firewall on the way.",
        f"dns: FAILED: Source 'dns': {sources['dns']} is unreachable; check the URL and the "
        "network.",
    ]


def test_syncs_shows_the_files_that_status_counts_as_errors(
    tmp_path: Path, repo: GitRepo, runner
) -> None:
    """`status` says "`gitdags syncs` shows why": the text log names each file and its error
    under the sync that found it (five, and how many more; `-o wide` all of them)."""
    broken = {f"b{i}.yaml": "a: [\n" for i in range(7)}
    repo.commit("broken", {"a.yaml": dag_yaml("a"), "bin.json": b"\x00\x01", **broken})
    config = write_config(tmp_path, repo)
    assert run(runner, config, "sync")[0] == 0
    _, out, _ = run(runner, config, "status")
    assert "files with errors:  8" in out and "`gitdags syncs` shows why" in out
    _, out, _ = run(runner, config, "syncs")
    lines = out.splitlines()
    assert lines[0].startswith("STARTED") and lines[1].split()[2] == "main"
    assert lines[2:] == [
        "    b0.yaml:2: error GD004 The file cannot be parsed: while parsing a flow node did not "
        "find expected node content.",
        *[lines[i] for i in range(3, 7)],
        "    and 3 more errors (`-o wide` shows them)",
    ]
    _, out, _ = run(runner, config, "syncs", "-o", "wide")
    named = {line.split(":")[0].strip() for line in out.splitlines()[2:]}
    assert named == {"bin.json", *broken}
    assert "bin.json: error GD002 The file is binary" in out


def test_unknown_config_key_names_the_key(tmp_path: Path, repo: GitRepo, runner) -> None:
    config = write_config(tmp_path, repo, extra="[daemon]\nintreval = '5s'\n")
    code, _, err = run(runner, config, "list")
    assert code == 1 and "'intreval'" in err and "did you mean 'interval'" in err


def test_usage_error_exits_2(runner) -> None:
    result = runner.invoke(app, ["list", "--no-such-flag"])
    assert result.exit_code == 2


def test_schema_is_json_schema(runner) -> None:
    result = runner.invoke(app, ["schema"])
    schema = json.loads(result.stdout)
    assert schema["type"] == "object" and "tasks" in schema["properties"]
    assert "bash" in schema["properties"]["tasks"]["items"]["properties"]["type"]["enum"]


def test_init_writes_a_config_that_loads(tmp_path: Path, runner) -> None:
    target = tmp_path / "config.toml"
    result = runner.invoke(app, ["init", "--path", str(target), "--url", "/srv/dags"])
    assert result.exit_code == 0 and target.exists()
    result = runner.invoke(app, ["--config", str(target), "status", "--json"])
    assert result.exit_code == 1 and "does not exist; run `gitdags sync`" in result.stderr
    assert settings_of(target).sources[0].name == "main"
    result = runner.invoke(app, ["init", "--path", str(target)])
    assert result.exit_code == 1 and "already exists" in result.stderr


AIRFLOW_DAG = 'from airflow import DAG\n\nwith DAG("hourly_report"):\n    pass\n'


def test_init_counts_airflow_files_and_takes_branch_subdir_include(
    tmp_path: Path, repo: GitRepo, runner, monkeypatch
) -> None:
    """A newcomer whose repository holds Airflow DAG files gets an include with **/*.py, and
    `gitdags sync` finds them without editing TOML; --branch, --subdir and --include are
    written as given."""
    repo.commit("airflow", {"dags/hourly.py": AIRFLOW_DAG, "dags/common/util.py": "X = 1\n"})
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("GITDAGS_")]:
        monkeypatch.delenv(var)
    done = runner.invoke(app, ["init", "--url", "repo", "--subdir", "dags"])
    assert done.exit_code == 0, done.output
    assert done.stdout == (
        "Wrote config.toml; repo holds Airflow DAG files (dags/hourly.py), so its include has "
        "**/*.py; next: gitdags sync\n"
    )
    (written,) = settings_of(tmp_path / "config.toml").sources
    assert written.include == ("**/*.yaml", "**/*.yml", "**/*.json", "**/*.toml", "**/*.py")
    assert (written.url, written.branch, written.subdir) == (str(repo.path), "main", "dags")
    assert runner.invoke(app, ["sync"]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["list", "--json"]).stdout)
    assert [(d["dag_id"], d["path"], d["status"]) for d in listed] == [
        ("hourly_report", "dags/hourly.py", "active")
    ]

    args = ["init", "--path", "other.toml", "--url", "https://git.example.com/dags.git"]
    args += ["--branch", "release", "--subdir", "/flows/", "--include", "**/*.yaml"]
    done = runner.invoke(app, [*args, "--include", "**/*.py", "--name", 'my "team"'])
    assert done.exit_code == 2 and "a source name uses letters" in done.stderr
    assert not (tmp_path / "other.toml").exists()
    done = runner.invoke(app, [*args, "--include", "**/*.py", "--name", "team"])
    assert done.exit_code == 0 and done.stdout == "Wrote other.toml; next: gitdags sync\n"
    (given,) = settings_of(tmp_path / "other.toml").sources
    assert (given.name, given.branch, given.subdir) == ("team", "release", "flows")
    assert given.include == ("**/*.yaml", "**/*.py")
    done = runner.invoke(app, ["init", "--path", "plain.toml", "--url", "repo", "--branch", "x"])
    assert done.exit_code == 0  # no branch x: nothing to look at, the default include
    (plain,) = settings_of(tmp_path / "plain.toml").sources
    assert "**/*.py" not in plain.include


def test_demo_runs_in_a_subprocess(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gitdags", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "invalid event_ingestion v2" in done.stdout
    assert "deleted legacy_finance_report" in done.stdout
    assert "renamed streaming_health_monitor" in done.stdout
    assert "invalid campaign_attribution v2  GD202" in done.stdout  # one of a dag-factory file
    assert "changed newsletter_send v2" in done.stdout  # its neighbour moves on
    assert "Now: 17 DAGs (14 active, 1 deleted, 2 invalid)." in done.stdout
    assert "held back dags/common/defaults.py  GD401" in done.stdout
    assert "./config.toml points at the demo" in done.stdout  # and it does: it was written
    listed = subprocess.run(
        [sys.executable, "-m", "gitdags", "list", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 17
    again = subprocess.run(
        [sys.executable, "-m", "gitdags", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert again.returncode == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep me")
    refused = subprocess.run(
        [sys.executable, "-m", "gitdags", "demo", "--dir", str(tmp_path / "mine")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert refused.returncode == 1 and "not a gitdags demo folder" in refused.stderr


def test_usage_mistakes_of_operator_commands_exit_2(tmp_path: Path, repo: GitRepo, runner) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = write_config(tmp_path, repo)
    assert run(runner, config, "sync")[0] == 0
    code, _, err = run(runner, config, "rollback")
    assert code == 2 and "Name either a DAG or --source NAME" in err
    code, _, err = run(runner, config, "rollback", "a", "--to", " ")
    assert code == 2 and "--to is empty" in err
    code, _, err = run(runner, config, "diff", "a", "three")
    assert code == 2 and "not a version number" in err


def test_cli_logs_redact_credentials(tmp_path: Path, runner) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{tmp_path / "s.db"}"\n'
        '[[sources]]\nname = "web"\nurl = "http://ann:s3cret@127.0.0.1:9/dags.git"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "gitdags", "--config", str(config), "-vv", "sync"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    # the log line went through gitdags' own handler (which redacts), not logging's default
    assert re.search(r"^\d{4}-\d\d-\d\dT\S+Z DEBUG +sync of source web failed", done.stderr, re.M)
    assert "s3cret" not in done.stderr + done.stdout


def test_version_unpause_no_match_and_a_failing_status(
    tmp_path: Path, repo: GitRepo, runner
) -> None:
    from gitdags import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"gitdags {__version__}"
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = write_config(tmp_path, repo)
    assert run(runner, config, "sync")[0] == 0
    assert run(runner, config, "pause", "a")[0] == 0
    code, out, _ = run(runner, config, "unpause", "a")
    assert code == 0 and "resumed" in out
    code, out, _ = run(runner, config, "list", "--status", "paused")
    assert code == 0 and out.strip() == "No DAGs match; `gitdags list` shows them all."
    assert run(runner, config, "status")[0] == 0
    (repo.path / ".git").rename(tmp_path / "gone.git")  # the source breaks
    assert run(runner, config, "sync")[0] == 1
    code, out, _ = run(runner, config, "status")
    assert code == 1 and "last error" in out


def test_diff_honours_no_color(tmp_path: Path, repo: GitRepo, runner) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = write_config(tmp_path, repo)
    assert run(runner, config, "sync")[0] == 0
    repo.commit("two", {"a.yaml": dag_yaml("a", "x", "y", "z")})
    assert run(runner, config, "sync")[0] == 0
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [
            "script",
            "-qec",
            f"{sys.executable} -m gitdags --config {config} diff a 1 2",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert "+- id: z" in done.stdout and "\x1b[3" not in done.stdout


def test_prune_retires_the_dags_of_a_source_that_left_the_config(
    tmp_path: Path, repo: GitRepo, runner
) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = tmp_path / "config.toml"
    database = tmp_path / "state" / "gitdags.db"
    config.write_text(
        f'[state]\ndatabase = "{database}"\n[[sources]]\nname = "old"\nurl = "{repo.path}"\n'
    )
    assert runner.invoke(app, ["--config", str(config), "sync"]).exit_code == 0
    done = runner.invoke(app, ["--config", str(config), "prune", "--source", "old"])
    assert done.exit_code == 1 and "still in the config" in done.stderr
    config.write_text(f'[state]\ndatabase = "{database}"\n')
    done = runner.invoke(app, ["--config", str(config), "prune", "--source", "old"])
    assert done.exit_code == 0, done.output
    assert "1 DAGs retired" in done.stdout
    listed = json.loads(runner.invoke(app, ["--config", str(config), "list", "--json"]).stdout)
    assert [(d["dag_id"], d["status"]) for d in listed] == [("a", "deleted")]
    status = runner.invoke(app, ["--config", str(config), "status", "--json"])
    assert json.loads(status.stdout) == []
    assert not (tmp_path / "state" / "gitdags.db.mirrors" / "old.git").exists()
    done = runner.invoke(app, ["--config", str(config), "prune", "--source", "old"])
    assert done.exit_code == 0 and done.stdout == (
        "Source old is already pruned: its 1 DAGs are retired and keep their history; "
        "nothing to do.\n"
    )
    done = runner.invoke(app, ["--config", str(config), "prune", "--source", "never"])
    assert done.exit_code == 1 and "no source named 'never'" in done.stderr
    audit = runner.invoke(app, ["--config", str(config), "audit", "--json"]).stdout
    assert [e["action"] for e in json.loads(audit)] == ["prune-source"]  # once


def test_prune_after_the_daemon_pruned_on_sighup_agrees(tmp_path: Path, runner) -> None:
    """The daemon prunes a source removed from the config on SIGHUP; `prune` by hand then
    says it is pruned already (its DAG is still listed, deleted, as history) and changes
    nothing."""
    one, two = GitRepo(tmp_path / "one"), GitRepo(tmp_path / "two")
    one.commit("one", {"a.yaml": dag_yaml("a")})
    two.commit("two", {"b.yaml": dag_yaml("b")})
    config, database = tmp_path / "config.toml", tmp_path / "gitdags.db"
    head = f'[state]\ndatabase = "{database}"\n[daemon]\nlisten = ""\n'
    sources = {"main": one.path, "other": two.path}
    config.write_text(
        head + "".join(f'[[sources]]\nname = "{n}"\nurl = "{u}"\n' for n, u in sources.items())
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "gitdags", "--config", str(config), "daemon"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_log(daemon, "synced source=other")
        config.write_text(head + f'[[sources]]\nname = "main"\nurl = "{one.path}"\n')
        daemon.send_signal(signal.SIGHUP)
        wait_for_log(daemon, "config reloaded")
    finally:
        daemon.terminate()
        daemon.communicate(timeout=30)
    listed = json.loads(run(runner, config, "list", "--json")[1])
    assert [(d["dag_id"], d["source"], d["status"]) for d in listed] == [
        ("a", "main", "active"),
        ("b", "other", "deleted"),
    ]
    code, out, err = run(runner, config, "prune", "--source", "other")
    assert (code, err) == (0, "") and "already pruned" in out
    audit = json.loads(run(runner, config, "audit", "--json")[1])
    assert [(e["action"], e["actor"]) for e in audit] == [("prune-source", "gitdags")]


def wait_for_log(proc: subprocess.Popen[str], text: str) -> None:
    """Read the daemon's log until a line holds `text` (the log is the event waited on)."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if text in line:
            return
    raise AssertionError(f"the daemon ended (exit {proc.wait()}) before logging {text!r}")


def test_unpin_source_of_a_source_not_rolled_back_does_nothing(
    tmp_path: Path, repo: GitRepo, runner
) -> None:
    first = repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = write_config(tmp_path, repo)
    assert run(runner, config, "sync")[0] == 0
    for _ in range(2):
        code, out, _ = run(runner, config, "unpin", "--source", "main", "--yes")
        assert (code, out) == (0, "Source main is not rolled back; nothing to do.\n")
    assert json.loads(run(runner, config, "audit", "--json")[1]) == []  # no audit row
    assert run(runner, config, "rollback", "--source", "main", "--to", first, "--yes")[0] == 0
    code, out, _ = run(runner, config, "unpin", "--source", "main", "--yes")
    assert code == 0 and "is unpinned; 1 DAGs serve their newest" in out
    audit = json.loads(run(runner, config, "audit", "--json")[1])
    assert [e["action"] for e in audit] == ["unpin-source", "rollback-source"]


def test_backup_into_a_missing_folder_is_refused(tmp_path: Path, repo: GitRepo, runner) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = write_config(tmp_path, repo)
    assert run(runner, config, "sync")[0] == 0
    target = tmp_path / "nonexistent" / "dir" / "b.db"
    code, out, err = run(runner, config, "backup", str(target))
    assert (code, out) == (1, "")
    assert err == (
        f"error: The folder {target.parent} does not exist; create it first, or give a path "
        "in a folder that exists.\n"
    )
    assert not (tmp_path / "nonexistent").exists()
    code, out, _ = run(runner, config, "backup", str(tmp_path / "b.db"))
    assert code == 0 and "integrity check ok" in out


def test_the_systemd_path_one_database_and_the_person_behind_sudo(
    tmp_path: Path, repo: GitRepo, runner
) -> None:
    """The unit gave the database only by Environment=: `gitdags --config ... list` read
    another one. `init --database` names it in the config; sudo's caller is the actor."""
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    state = tmp_path / "var-lib-gitdags"
    target = tmp_path / "etc" / "config.toml"
    target.parent.mkdir()
    done = runner.invoke(
        app,
        ["init", "--path", str(target), "--url", str(repo.path), "--database", f"{state}/g.db"],
    )
    assert done.exit_code == 0
    assert settings_of(target).database == state / "g.db"
    assert runner.invoke(app, ["--config", str(target), "sync"]).exit_code == 0
    done = runner.invoke(
        app, ["--config", str(target), "pause", "a", "--reason", "x"], env={"SUDO_USER": "alice"}
    )
    assert done.exit_code == 0
    audit = json.loads(runner.invoke(app, ["--config", str(target), "audit", "--json"]).stdout)
    assert audit[0]["actor"].startswith("alice (sudo as ")
    unit = (Path(__file__).parent.parent / "contrib/systemd/gitdags.service").read_text()
    assert "Environment=GITDAGS_STATE_DATABASE" not in unit and "ReadWritePaths=" in unit


def test_unknown_names_are_errors_and_a_deleted_dag_serves_nothing(
    tmp_path: Path, repo: GitRepo, runner
) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a"), "b.yaml": dag_yaml("b")})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{tmp_path / "g.db"}"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    run = functools.partial(runner.invoke, app)
    assert run(["--config", str(config), "sync"]).exit_code == 0
    done = run(["--config", str(config), "audit", "nope"])
    assert done.exit_code == 1 and "There is no DAG 'nope'" in done.stderr
    done = run(["--config", str(config), "syncs", "--source", "bogus"])
    assert done.exit_code == 1 and "There is no source named 'bogus'" in done.stderr
    assert run(["--config", str(config), "syncs", "--source", "main"]).exit_code == 0
    repo.commit("drop b", delete=["b.yaml"])
    assert run(["--config", str(config), "sync"]).exit_code == 0
    listed = json.loads(run(["--config", str(config), "list", "--json"]).stdout)
    b = next(d for d in listed if d["dag_id"] == "b")
    assert (b["status"], b["served_version"], b["served_commit"]) == ("deleted", None, None)
    assert b["last_served_version"] == 1
    text = run(["--config", str(config), "list"]).stdout
    (row,) = [ln for ln in text.splitlines() if ln.startswith("b ")]
    assert row.split()[:4] == ["b", "deleted", "-", "v1"]


def test_times_for_people_say_their_zone() -> None:
    from gitdags.render import when

    assert when("2026-12-01T22:40:45+02:00") == "2026-12-01 20:40:45Z"  # a git author's zone
    assert when("2026-12-01T20:40:45.740+00:00") == "2026-12-01 20:40:45Z"
    assert when(None) == "-"


def test_every_json_record_has_time_and_commit_under_the_same_names(
    tmp_path: Path, repo: GitRepo, runner
) -> None:
    head = repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{tmp_path / "g.db"}"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    run = functools.partial(runner.invoke, app)
    assert run(["--config", str(config), "pause", "a"]).exit_code == 1  # no DAG yet
    synced = json.loads(run(["--config", str(config), "sync", "--json"]).stdout)
    assert run(["--config", str(config), "pause", "a"]).exit_code == 0
    records = {
        "sync": synced[0],
        "list": json.loads(run(["--config", str(config), "list", "--json"]).stdout)[0],
        "history": json.loads(run(["--config", str(config), "history", "a", "--json"]).stdout)[0],
        "status": json.loads(run(["--config", str(config), "status", "--json"]).stdout)[0],
        "audit": json.loads(run(["--config", str(config), "audit", "--json"]).stdout)[0],
    }
    for name, record in records.items():
        assert record["time"].endswith("+00:00"), name
        if name != "audit":
            assert record["commit"] == head, name


def test_kubectl_and_argocd_conventions(tmp_path: Path, repo: GitRepo, runner) -> None:
    import yaml

    repo.commit("one", {"a.yaml": dag_yaml("a", tags="[t1]")})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{tmp_path / "g.db"}"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    run = functools.partial(runner.invoke, app)
    quiet = run(["--config", str(config), "--quiet", "sync"])
    assert quiet.exit_code == 0 and quiet.stdout == ""
    as_yaml = yaml.safe_load(run(["--config", str(config), "list", "-o", "yaml"]).stdout)
    assert as_yaml[0]["dag_id"] == "a" and as_yaml[0]["time"]
    wide = run(["--config", str(config), "list", "-o", "wide"]).stdout
    assert wide.splitlines()[0].split()[-3:] == ["PATH", "SCHEDULE", "TAGS"] and "t1" in wide
    assert json.loads(run(["--config", str(config), "status", "-o", "json"]).stdout)[0]["source"]
    bad = run(["--config", str(config), "list", "-o", "xml"])
    assert bad.exit_code == 2 and "use text, json, yaml or wide" in bad.stderr
    # typer finds the shell from the process tree: run it from bash, as a user would
    shown = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m gitdags --show-completion; exit $?"],
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0 and "complete" in shown.stdout, shown.stderr


def test_status_watch_repeats_until_ctrl_c(tmp_path: Path, repo: GitRepo) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{tmp_path / "g.db"}"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    base = [sys.executable, "-m", "gitdags", "--config", str(config)]
    subprocess.run([*base, "sync"], check=True, capture_output=True)
    watch = subprocess.Popen(
        [*base, "status", "--watch", "--interval", "0.1"],
        stdout=subprocess.PIPE,
        text=True,
        # ctrl-c as in a terminal: a pytest-xdist worker ignores SIGINT, and a child would
        # inherit that (Python then never raises KeyboardInterrupt)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert watch.stdout is not None
    seen = 0
    for line in watch.stdout:  # real output, read as it comes
        seen += line.startswith("every 0.1s")
        if seen == 3:
            break
    watch.send_signal(signal.SIGINT)
    assert watch.wait(timeout=30) == 0


def test_a_source_wide_action_asks_on_a_terminal(tmp_path: Path, repo: GitRepo) -> None:
    import pty

    first = repo.commit("one", {"a.yaml": dag_yaml("a")})
    repo.commit("two", {"a.yaml": dag_yaml("a", "x", "y")})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{tmp_path / "g.db"}"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    base = [sys.executable, "-m", "gitdags", "--config", str(config)]
    subprocess.run([*base, "sync"], check=True, capture_output=True)
    leader, follower = pty.openpty()  # nothing to release: no question
    unasked = subprocess.Popen(
        [*base, "unpin", "--source", "main"], stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    said = b""
    while not said.endswith(b"\n") and b"?" not in said:  # a line, or a question
        said += os.read(leader, 1024)
    if b"?" in said:
        os.write(leader, b"n\n")
    assert said == b"Source main is not rolled back; nothing to do.\r\n"
    assert unasked.wait(timeout=30) == 0
    os.close(leader)
    leader, follower = pty.openpty()
    asked = subprocess.Popen(
        [*base, "rollback", "--source", "main", "--to", first],
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    said = b""
    while b"?" not in said:
        said += os.read(leader, 1024)
    assert b"Roll back source main" in said and b"(1 DAGs of source main)" in said
    os.write(leader, b"n\n")
    assert asked.wait(timeout=30) == 1
    os.close(leader)
    sure = subprocess.run(
        [*base, "rollback", "--source", "main", "--to", first, "--yes"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert sure.returncode == 0 and "as of" in sure.stdout


def test_a_long_first_sync_shows_progress_on_a_terminal(tmp_path: Path, repo: GitRepo) -> None:
    import pty

    repo.commit("many", {f"d/{i:04}.yaml": dag_yaml(f"d{i:04}") for i in range(1500)})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{tmp_path / "g.db"}"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    leader, follower = pty.openpty()
    done = subprocess.Popen(
        [sys.executable, "-m", "gitdags", "--config", str(config), "sync"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    said = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        said += chunk
    assert done.wait(timeout=60) == 0
    os.close(leader)
    text = said.decode(errors="replace")
    assert "main: checked 1,500/1,500 files (" in text and "/s)" in text
    assert "+1500 added" in text
    quiet = subprocess.run(  # not a terminal (a script, a pipe): no progress lines
        [sys.executable, "-m", "gitdags", "--config", str(config), "sync"],
        capture_output=True,
        text=True,
    )
    assert "checked" not in quiet.stderr
