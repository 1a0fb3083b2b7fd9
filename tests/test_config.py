"""config.toml and GITDAGS_* overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitdags.config import load_settings, redact_url
from gitdags.errors import ConfigError

CONFIG = """
[state]
database = "state/gitdags.db"
[daemon]
interval = "1m"
[task_types]
spark_submit = ["application"]
[[sources]]
name = "sales-team"
url = "repos/sales"
subdir = "dags/"
"""


def write(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_relative_paths_follow_the_config_file(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path), env={})
    assert s.database == tmp_path / "state" / "gitdags.db"
    assert s.sources[0].url == str(tmp_path / "repos" / "sales")
    assert s.sources[0].subdir == "dags"
    assert s.interval == 60
    assert s.task_types["spark_submit"] == ("application",)


def test_environment_overrides_every_key(tmp_path: Path) -> None:
    env = {
        "GITDAGS_STATE_DATABASE": "/var/lib/gitdags/x.db",
        "GITDAGS_DAEMON_INTERVAL": "5s",
        "GITDAGS_DAEMON_WEBHOOK_SECRET": "hush",
        "GITDAGS_SOURCES_SALES_TEAM_BRANCH": "release",
        "GITDAGS_SOURCES_SALES_TEAM_INCLUDE": "**/*.yaml, **/*.json",
    }
    s = load_settings(write(tmp_path), env=env)
    assert s.database == Path("/var/lib/gitdags/x.db")
    assert s.interval == 5 and s.webhook_secret == "hush"
    assert s.sources[0].branch == "release"
    assert s.sources[0].include == ("**/*.yaml", "**/*.json")


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ("[state]\ndatabse = 'x'\n", {}, "did you mean 'database'"),
        ("[stat]\n", {}, "Unknown section [stat]"),
        ("[[sources]]\nname='a'\nurl='b'\nbrnach='x'\n", {}, "'brnach'"),
        ("", {"GITDAGS_DAEMON_INTERVL": "5s"}, "GITDAGS_DAEMON_INTERVL"),
        ("[daemon]\ninterval = 'soon'\n", {}, "not a duration"),
        ("[[sources]]\nname='a'\nurl='b'\n[[sources]]\nname='a'\nurl='c'\n", {}, "unique"),
        ("[state\n", {}, "not valid TOML"),
        ("[[sources]]\nname='a'\nurl='b'\norchestrator='luigi'\n", {}, "orchestrator = 'luigi'"),
        ("[[sources]]\nname='a'\nurl='b'\npython='prefect'\n", {}, "needs prefect_python"),
        ("[[sources]]\nname='a'\nurl='b'\norchestrator='airflow'\npython='x'\n", {}, "python"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, env: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text), env=env)
    assert needle in str(err.value)


def test_named_config_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})


def test_the_shipped_config_loads() -> None:
    s = load_settings(Path(__file__).parent.parent / "config.toml", env={})
    assert [src.name for src in s.sources] == ["sample"]


def test_redact_url() -> None:
    assert redact_url("https://bot:tok@github.com/o/r.git") == "https://bot:***@github.com/o/r.git"
    assert redact_url("https://tok@github.com/o/r.git") == "https://***@github.com/o/r.git"
    assert redact_url("git://host/r.git") == "git://host/r.git"


def test_a_source_fingerprint_holds_no_credentials() -> None:
    from gitdags.config import SourceConfig

    config = SourceConfig(name="web", url="https://ann:s3cret@git.example.com/dags.git")
    assert "s3cret" not in config.fingerprint()
    assert config.fingerprint().startswith("https://ann:***@git.example.com/dags.git|")
