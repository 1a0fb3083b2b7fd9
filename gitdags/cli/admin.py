"""Running and setting up: the daemon, publish, pull, the console, demo, backup, doctor, init."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from gitdags import logs, render
from gitdags.cli.common import JsonOpt, command, configured, echo, engine, out_json, settings, state
from gitdags.config import CONFIG_TEMPLATE, Settings, missing_config
from gitdags.engine import SyncEngine, build_engine
from gitdags.errors import GitdagsError, UsageError


# -- the service --------------------------------------------------------------------------------
@command("daemon")
def daemon_(
    log_format: str | None = typer.Option(
        None, "--log-format", help="text or json (default: [daemon] log_format)."
    ),
) -> None:
    """Keep every source synced: intervals, ref watch, webhooks, /healthz, /metrics."""
    from gitdags.daemon.loop import Daemon

    cfg = settings()
    if cfg.config_path is None:  # its sources can only come from a config file
        raise missing_config()
    fmt = log_format or cfg.log_format
    if fmt not in ("text", "json"):
        raise UsageError(f"--log-format must be text or json, not {fmt!r}.")
    logs.setup(state.verbose, fmt, default=logging.INFO)
    Daemon(settings).run()


@command()
def publish(as_json: bool = JsonOpt) -> None:
    """Write the deploy folder now (a new generation of the served set)."""
    with engine() as eng:
        generation = eng.publish(force=True)
    if as_json:
        out_json(
            {"generation": generation.name, "path": str(generation.path), "dags": generation.dags}
        )
    else:
        echo(f"Published {generation.dags} DAGs to {generation.path}.")


@command()
def pull(
    url: str = typer.Argument(..., help="s3://BUCKET/PREFIX, as [publish.s3] writes it."),
    into: Path = typer.Option(..., "--into", help="The local folder: DIR/current is served."),
    source: str | None = typer.Option(None, "--source", "-s", help="The source to follow."),
    interval: str = typer.Option("30s", "--interval", help="How often to look."),
    once: bool = typer.Option(False, "--once", help="Pull once and exit (1 on failure)."),
    keep: int = typer.Option(5, "--keep", help="Local generations kept."),
    as_json: bool = JsonOpt,
) -> None:
    """The scheduler side: follow the S3 pointer into DIR/current, atomically, verified."""
    from gitdags.serve.s3 import Puller, PullResult, pull_loop
    from gitdags.spec import parse_duration

    seconds = parse_duration(interval)
    if seconds is None:
        raise UsageError(f"--interval {interval!r} is not a duration; use 30s, 5m, 1h.")
    puller = Puller(url, into, source=source, keep=keep)

    def report(result: PullResult) -> None:
        if as_json:
            echo(json.dumps(result.to_dict()))
        elif result.error:
            echo(f"error: {result.error}", err=True)
        elif result.downloaded or result.linked:
            echo(
                f"{into}/current is {result.generation}: {result.downloaded} downloaded, "
                f"{result.linked} kept ({result.requests} requests)."
            )

    try:
        code = pull_loop(puller, seconds, once, report)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


@command()
def tui() -> None:
    """The operator console (Textual): DAGs, history, diffs, actions; live."""
    from gitdags.tui.app import run

    with engine() as eng:
        run(eng)


# -- getting started ----------------------------------------------------------------------------
@command()
def demo(
    folder: Path = typer.Option(Path("demo"), "--dir", help="Folder to build the demo in."),
) -> None:
    """Build a git repository with a short history from sample_repo/ and sync each commit."""
    from gitdags.demo import leave_config, run_demo

    cfg, steps = run_demo(folder)
    with engine_for(cfg) as eng:
        dags = eng.list_dags()
    config = leave_config(cfg, Path.cwd())
    echo(render.demo_report(folder, cfg.database, steps, dags, config))


@contextmanager
def engine_for(cfg: Settings) -> Iterator[SyncEngine]:
    eng = build_engine(cfg)
    try:
        yield eng
    finally:
        eng.close()


@command()
def backup(
    path: Path = typer.Argument(..., help="The new file to copy the database to."),
) -> None:
    """Copy the database while the daemon runs (SQLite's online backup), checked."""
    from gitdags import doctor as doctor_checks

    database = configured().database
    pages = doctor_checks.backup(database, path)
    echo(f"Backed up {database} to {path} ({pages} pages, integrity check ok).")


@command()
def doctor(
    repair: bool = typer.Option(
        False, "--repair", help="Fetch damaged mirrors again and rewrite the deploy folder."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Check the database, the mirrors and the deploy folder; exit 1 if something is wrong."""
    from gitdags import doctor as doctor_checks

    with engine(readonly=True) as eng:  # never creates a database: a missing one is refused
        findings = doctor_checks.examine(eng, repair=repair)
    if as_json:
        out_json([f.to_dict() for f in findings])
    else:
        for f in findings:
            mark = "repaired" if f.repaired else "ok" if f.ok else "FAILED"
            echo(f"{mark:<9} {f.check}: {f.detail}")
    if not all(f.ok for f in findings):
        raise typer.Exit(1)


@command()
def init(
    url: str = typer.Option("dags_repo", "--url", help="The first source's repository."),
    name: str = typer.Option("main", "--name", help="The first source's name."),
    branch: str = typer.Option("main", "--branch", help="The branch to follow."),
    subdir: str = typer.Option("", "--subdir", help="The folder of the DAG files in it."),
    include: list[str] | None = typer.Option(
        None,
        "--include",
        help="A glob of the files that count (repeat it); default: YAML, JSON and TOML, and "
        "**/*.py when the repository holds Airflow DAG files.",
    ),
    path: Path = typer.Option(Path("config.toml"), "--path", help="Where to write the config."),
    database: str = typer.Option("gitdags.db", "--database", help="The state database."),
) -> None:
    """Write a starter config.toml."""
    from gitdags.config import DEFAULT_INCLUDE, PY_INCLUDE
    from gitdags.orchestrators.airflow.discover import airflow_dag_files
    from gitdags.spec import ID_RE

    if path.exists():
        raise GitdagsError(f"{path} already exists; edit it, or pass --path to write elsewhere.")
    if not ID_RE.fullmatch(name):
        raise UsageError(f"--name {name!r}: a source name uses letters, digits, '_', '.', '-'.")
    found: list[str] = []
    if not include:  # a local repository with Airflow files: count them (url as the config has it)
        local = url if "://" in url else str(path.parent / Path(url).expanduser())
        found = airflow_dag_files(local, branch, subdir)
        include = [*DEFAULT_INCLUDE, PY_INCLUDE] if found else list(DEFAULT_INCLUDE)
    text = CONFIG_TEMPLATE.format(
        name=json.dumps(name),
        url=json.dumps(url),
        branch=json.dumps(branch),
        subdir=json.dumps(subdir.strip("/")),
        include=json.dumps(include),
        database=database,
    )
    path.write_text(text, encoding="utf-8")
    if found:
        echo(
            f"Wrote {path}; {url} holds Airflow DAG files ({', '.join(found)}), so its include "
            f"has {PY_INCLUDE}; next: gitdags sync"
        )
    else:
        echo(f"Wrote {path}; next: gitdags sync")
