"""The commands that sync sources and validate DAG files offline."""

from __future__ import annotations

import sys
import time
from enum import StrEnum

import typer

from gitdags import render
from gitdags.cli.common import (
    JsonOpt,
    command,
    configured,
    echo,
    engine,
    fail,
    out_json,
    settings,
    state,
)
from gitdags.engine import sources_to_sync


# -- syncing and validating ---------------------------------------------------------------------
@command()
def sync(
    source: str | None = typer.Option(None, "--source", "-s", help="Sync only this source."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; write nothing."),
    as_json: bool = JsonOpt,
) -> None:
    """Fetch each source and record what its new commits changed."""
    cfg = configured()
    sources_to_sync(cfg, source)  # no source to sync: said before a database is made
    with engine(cfg=cfg) as eng:
        shown = Progress() if sys.stderr.isatty() and not state.quiet else None
        results = eng.sync(source, dry_run=dry_run, progress=shown)
        if shown is not None:
            shown.done()
    if as_json:
        out_json([r.to_dict() for r in results])
    else:  # a failure on stderr, as every error is; what did sync on stdout
        for result in results:
            echo(render.sync_result(result, publish_error=False), err=bool(result.error))
            if result.publish_error:
                echo(render.not_published(result), err=True)
    if [r for r in results if r.error or r.publish_error]:
        raise typer.Exit(1)


@command()
def wait(
    dag_ids: list[str] = typer.Argument(None, metavar="[DAG]...", help="Wait for these DAGs."),
    commit: str | None = typer.Option(
        None, "--commit", help="The commit to wait for (default: the source's newest)."
    ),
    source: str | None = typer.Option(None, "--source", "-s", help="The source of the commit."),
    timeout: str = typer.Option("10m", "--timeout", help="Give up after this long (exit 2)."),
    as_json: bool = JsonOpt,
) -> None:
    """Wait until a commit is served and every DAG it changed has landed in each consumer.

    Exit 0 when landed, 1 when a DAG of it is invalid in gitdags or broken in a consumer,
    2 on timeout. For CI after a merge, as `argocd app wait`."""
    from gitdags.consumers.waiting import Waiter
    from gitdags.spec import parse_duration

    seconds = parse_duration(timeout)
    if seconds is None or seconds <= 0:
        raise fail(f"--timeout {timeout!r} is not a duration; write e.g. 90s, 10m or 1h.", 2)
    cfg = configured()
    deadline = time.monotonic() + seconds
    with engine(cfg=cfg) as eng:
        waiter = Waiter(
            cfg, eng.store, eng.git, source=source, commit=commit, dag_ids=tuple(dag_ids or ())
        )
        said = ""
        while True:
            if eng.consumers is not None:
                eng.consumers.poll()
            progress = waiter.check()
            if progress.line != said and not as_json:
                echo(progress.line, err=bool(progress.failed))
                said = progress.line
            if progress.done or progress.failed or time.monotonic() >= deadline:
                break
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    code = 0 if progress.done else 1 if progress.failed else 2
    if as_json:
        out_json(
            {
                "commit": waiter.commit or waiter.wanted,
                "source": waiter.config.name,
                "result": ("landed", "failed", "timeout")[code],
                "failed": list(progress.failed),
                "dags": progress.dags,
                "line": progress.line,
            }
        )
    elif code == 2:
        echo(f"error: timed out after {timeout}: {progress.line}", err=True)
    raise typer.Exit(code)


class Progress:
    """On a terminal, how far a long sync got: files checked, of how many, and the rate."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.shown = False

    def __call__(self, source: str, done: int, total: int) -> None:
        if total < 1000:  # a quick sync says nothing until its result
            return
        rate = done / max(time.perf_counter() - self.started, 1e-6)
        line = f"\r{source}: checked {done:,}/{total:,} files ({rate:,.0f}/s)"
        typer.echo(line, nl=False, err=True)
        self.shown = True

    def done(self) -> None:
        if self.shown:
            typer.echo("", err=True)


class Format(StrEnum):
    text = "text"
    json = "json"
    github = "github"


@command()
def validate(
    paths: list[str] = typer.Argument(..., help="DAG files or folders."),
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="text, json or github."),
    airflow_python: str | None = typer.Option(
        None, "--airflow-python", help="Also parse Airflow .py files with this interpreter."
    ),
    prefect_python: str | None = typer.Option(
        None, "--prefect-python", help="Also load Prefect flows with this interpreter."
    ),
    parse_timeout: float = typer.Option(30.0, "--parse-timeout", help="Seconds per file."),
    sandbox: str = typer.Option(
        "bwrap", "--sandbox", help='Where Airflow parses: "bwrap" (bubblewrap) or "none".'
    ),
    orchestrator: str = typer.Option(
        "airflow",
        "--orchestrator",
        help='Whose .py files these are: "airflow" or "dagster" (each folder a code location).',
    ),
) -> None:
    """Validate DAG files offline (for CI and pre-commit); exit 1 on errors."""
    from gitdags.checks.offline import check_paths

    cfg = settings()
    files, issues = check_paths(
        paths,
        task_types=cfg.task_types,
        max_file_size=cfg.max_file_size,
        airflow_python=airflow_python or "",
        parse_timeout=parse_timeout,
        sandbox=sandbox,
        orchestrator=orchestrator,
        prefect_python=prefect_python or "",
    )
    errors = sum(1 for i in issues if i.severity == "error")
    if fmt is Format.json:
        out_json([i.to_dict() for i in issues])
    elif fmt is Format.github:
        if issues:
            echo(render.github(issues))
    else:
        if issues:
            echo(render.issues(issues))
        warnings = len(issues) - errors
        echo(f"{len(files)} files checked: {errors} errors, {warnings} warnings.")
    if errors:
        raise typer.Exit(1)
