"""`gitdags demo`: a git repository with a short, realistic history, synced after each commit.

The history: the initial import, an edit, a commit that breaks a DAG (a task cycle), the fix,
a deletion, a rename, a commit that breaks an Airflow Python DAG file, one that breaks one of
the two DAGs of a dag-factory file (the other moves on) and one that breaks the helper module
the Airflow files import: each is held back, its last good version served.
Everything lives in one folder (default `demo/`), which the default config.toml points at, so
`gitdags list`, `history` and `tui` work right after the demo.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import gitdags
from gitdags.config import DEFAULT_INCLUDE, PY_INCLUDE, Settings, SourceConfig
from gitdags.engine import build_engine
from gitdags.errors import GitdagsError
from gitdags.model import SyncResult

MARKER = ".gitdags-demo"
SOURCE = "sample"
AUTHORS = {
    "ana": ("Ana Pereira", "ana@example.com"),
    "bo": ("Bo Lindqvist", "bo@example.com"),
    "chidi": ("Chidi Okafor", "chidi@example.com"),
}


@dataclass(frozen=True)
class DemoStep:
    message: str
    author: str
    result: SyncResult


def sample_repo() -> Path:
    """The sample DAG files: inside the installed package, or at the top of a checkout."""
    here = Path(gitdags.__file__).resolve().parent
    for candidate in (here / "sample_repo", here.parent / "sample_repo"):
        if (candidate / "dags").is_dir():
            return candidate
    raise GitdagsError(
        "The sample repository is missing from this installation; reinstall gitdags."
    )


INCLUDE = (*DEFAULT_INCLUDE, PY_INCLUDE)


def demo_settings(folder: Path) -> Settings:
    source = SourceConfig(
        name=SOURCE, url=str(folder / "sample_repo"), subdir="dags", include=INCLUDE
    )
    return Settings(database=folder / "gitdags.db", listen="", sources=(source,))


DEMO_CONFIG = """\
# Written by `gitdags demo`: the demo's repository and database (safe to delete).
[state]
database = "{database}"

[daemon]
listen = "127.0.0.1:8765"

[[sources]]
name = "{source}"
url = "{url}"
branch = "main"
subdir = "dags"
include = {include}
"""


def leave_config(settings: Settings, here: Path) -> Path:
    """A config.toml for the commands after the demo: `./config.toml` when there is none (or
    it points at this demo already), else one inside the demo folder; the one that works."""
    source = settings.sources[0]
    text = DEMO_CONFIG.format(
        database=settings.database,
        source=source.name,
        url=source.url,
        include="[" + ", ".join(f'"{p}"' for p in source.include) + "]",
    )
    inside = settings.database.parent / "config.toml"
    inside.write_text(text, encoding="utf-8")
    mine = here / "config.toml"
    if not mine.exists() or mine.read_text(encoding="utf-8").startswith(text.splitlines()[0]):
        mine.write_text(text, encoding="utf-8")
        return mine
    try:
        from gitdags.config import load_settings

        if load_settings(str(mine)).database == settings.database:
            return mine  # a config of its own that points at the demo (the checkout's)
    except Exception:  # an unrelated or broken config.toml is left alone
        pass
    return inside


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    if old not in text:
        raise GitdagsError(f"The demo cannot edit {path.name}: the sample file changed.")
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _history(repo: Path) -> Iterator[tuple[str, str, Callable[[], None]]]:
    dags = repo / "dags"
    etl = dags / "sales" / "daily_sales_etl.yaml"
    events = dags / "ingestion" / "event_ingestion.json"
    cycle_edge = '    {"from": "ingest_events", "to": "dedupe"}\n'
    yield (
        "Import DAGs from the old scheduler",
        "ana",
        lambda: shutil.copytree(sample_repo(), repo, dirs_exist_ok=True),
    )
    yield (
        "daily_sales_etl: retry flaky warehouse loads 5 times",
        "bo",
        lambda: _edit(etl, "  retries: 3\n", "  retries: 5\n"),
    )
    yield (
        "event_ingestion: poll offsets again after dedupe",
        "chidi",
        lambda: _edit(
            events,
            cycle_edge,
            cycle_edge.rstrip("\n") + ',\n    {"from": "dedupe", "to": "poll_kafka_offsets"}\n',
        ),
    )
    yield (
        "event_ingestion: revert the re-poll, use bigger batches instead",
        "chidi",
        lambda: (
            _edit(events, ',\n    {"from": "dedupe", "to": "poll_kafka_offsets"}\n', "\n"),
            _edit(events, '"batch_size": 50000', '"batch_size": 100000'),
        ),
    )
    yield (
        "Retire the legacy finance report",
        "ana",
        lambda: (dags / "finance" / "legacy_finance_report.yaml").unlink(),
    )
    yield (
        "Move the streaming health monitor to the platform team",
        "bo",
        lambda: (dags / "monitoring" / "streaming_health_monitor.yaml").rename(
            dags / "platform" / "streaming_health_monitor.yaml"
        ),
    )
    backup = dags / "airflow" / "nightly_backup.py"
    yield (
        "nightly_backup: ship to the new bucket",
        "chidi",
        lambda: _edit(backup, 'bash_command="echo ship")', 'bash_command="echo ship s3://cold"'),
    )
    campaigns = dags / "marketing" / "campaigns.yml"
    yield (
        "marketing: newsletter on Mondays, attribution waits for a new model",
        "ana",
        lambda: (
            _edit(campaigns, 'schedule: "@weekly"', 'schedule: "0 6 * * 1"'),
            _edit(campaigns, "dependencies: [models]", "dependencies: [models, data_driven]"),
        ),
    )
    yield (
        "common.defaults: retry three times",
        "bo",
        lambda: _edit(dags / "common" / "defaults.py", "retries: int = 2)", "retries: int = 3"),
    )


def _git(repo: Path, *args: str, author: str = "ana") -> None:
    name, email = AUTHORS[author]
    env = dict(os.environ, GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email)
    env.update(GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email)
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, env=env)
    if done.returncode != 0:
        raise GitdagsError(f"git {args[0]} failed in {repo}: {done.stderr.decode().strip()}.")


def run_demo(folder: Path) -> tuple[Settings, list[DemoStep]]:
    folder = folder.resolve()
    """Build `folder` anew (only if it is a demo folder or empty) and sync each commit."""
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise GitdagsError(
            f"{folder} exists and is not a gitdags demo folder; choose another with --dir."
        )
    shutil.rmtree(folder, ignore_errors=True)
    repo = folder / "sample_repo"
    repo.mkdir(parents=True)
    (folder / MARKER).write_text("made by gitdags demo; safe to delete\n")
    _git(repo, "init", "--quiet", "--initial-branch=main")
    settings = demo_settings(folder)
    engine = build_engine(settings)
    steps = []
    try:
        for message, author, change in _history(repo):
            change()
            _git(repo, "add", "--all")
            _git(repo, "commit", "--quiet", "-m", message, author=author)
            result = engine.sync(SOURCE)[0]
            if result.error:
                raise GitdagsError(result.error)
            steps.append(DemoStep(message, AUTHORS[author][0], result))
    finally:
        engine.close()
    return settings, steps
