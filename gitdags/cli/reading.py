"""The commands that only read: DAGs, versions, status, the sync log, the served set."""

from __future__ import annotations

import sys
import time
from typing import Any

import typer

from gitdags import render
from gitdags.cli.common import (
    JsonOpt,
    OutputOpt,
    command,
    echo,
    emitted,
    engine,
    out_json,
    out_json_rows,
    settings,
    streamed,
)
from gitdags.errors import GitdagsError


# -- reading ------------------------------------------------------------------------------------
@command("list")
def list_(
    source: str | None = typer.Option(None, "--source", "-s", help="Only this source."),
    status: str | None = typer.Option(None, "--status", help="Only DAGs with this status."),
    as_json: bool = JsonOpt,
    output: str | None = OutputOpt,
) -> None:
    """List the DAGs with their status and served version."""
    with engine(readonly=True) as eng:
        rows = eng.iter_dags(source=source, status=status)
        if streamed(lambda: (d.to_dict() for d in rows), as_json, output):
            return
        dags = list(rows)
    if emitted(lambda: [d.to_dict() for d in dags], as_json, output):
        return
    if dags:
        echo(render.dags(dags, wide=output == "wide"))
    elif source or status:
        echo("No DAGs match; `gitdags list` shows them all.")
    elif eng.settings.config_path is None and not eng.settings.sources:
        echo("No DAGs yet; write a config.toml with `gitdags init`, then run `gitdags sync`.")
    else:
        echo("No DAGs yet; run `gitdags sync`.")


@command()
def show(
    dag_id: str = typer.Argument(..., metavar="DAG"),
    version: int | None = typer.Option(None, "--version", help="Show this version."),
    as_json: bool = JsonOpt,
    output: str | None = OutputOpt,
) -> None:
    """Show a DAG: its state, the spec it serves and the issues to fix."""
    with engine(readonly=True) as eng:
        shown = eng.show(dag_id, version)
    if not emitted(shown.to_dict, as_json, output):
        echo(render.detail(shown))


@command()
def history(
    dag_id: str = typer.Argument(..., metavar="DAG"),
    as_json: bool = JsonOpt,
    output: str | None = OutputOpt,
) -> None:
    """Every version of a DAG, newest first."""
    with engine(readonly=True) as eng:
        versions = eng.history(dag_id)
    if not emitted(lambda: [v.to_dict() for v in versions], as_json, output):
        echo(render.history(versions))


@command()
def status(
    as_json: bool = JsonOpt,
    output: str | None = OutputOpt,
    watch: bool = typer.Option(False, "--watch", "-w", help="Show it again until ctrl-c."),
    interval: float = typer.Option(2.0, "--interval", help="Seconds between two --watch."),
) -> None:
    """For each source: the newest commit seen, the commit served, the last error."""
    try:
        sources = _status_rounds(as_json, output, watch, interval)
    except KeyboardInterrupt:  # ctrl-c ends --watch, wherever it lands
        return
    failing = any(t.get("error") for s in sources[:1] for t in s.publish.values())
    if failing or any(s.last_error for s in sources):  # like `systemctl status`: scripts check it
        raise typer.Exit(1)


def _status_rounds(as_json: bool, output: str | None, watch: bool, interval: float) -> list[Any]:
    """Show the status once, or again every `interval` seconds with `watch`."""
    while True:
        with engine(readonly=True) as eng:
            sources = eng.status()
        if watch and sys.stdout.isatty():
            echo("\x1b[H\x1b[2J", nl=False)  # from the top of a cleared screen
        if watch:
            echo(f"every {interval:g}s, ctrl-c to stop  ({render.when(render_now())})")
        records = [s.to_dict() for s in sources]
        if not emitted(lambda: records, as_json, output):  # noqa: B023 (used at once)
            echo(render.status(sources))
        if not watch:
            return sources
        sys.stdout.flush()
        time.sleep(max(interval, 0.1))


def render_now() -> str:
    from gitdags.history.store import now

    return now()


@command()
def syncs(
    source: str | None = typer.Option(None, "--source", "-s", help="Only this source."),
    limit: int = typer.Option(50, "--limit", "-n", help="How many, newest first."),
    as_json: bool = JsonOpt,
    output: str | None = OutputOpt,
) -> None:
    """The sync log, newest first."""
    with engine(readonly=True) as eng:
        results = eng.syncs(source=source, limit=limit)
        if source is not None and not results and source not in {s.source for s in eng.status()}:
            raise GitdagsError(
                f"There is no source named {source!r}; `gitdags status` lists the sources."
            )
    if not emitted(lambda: [r.to_dict() for r in results], as_json, output):
        echo(render.syncs(results, wide=output == "wide") if results else "No syncs yet.")


@command()
def export(as_json: bool = JsonOpt) -> None:
    """The served set (valid, enabled, unpaused DAGs with their specs) as JSON."""
    with engine(readonly=True) as eng:
        out_json_rows(dag.to_dict() for dag in eng.iter_served())


@command()
def schema() -> None:
    """The JSON Schema of DAG definition files (format v1)."""
    from gitdags.schema import json_schema

    out_json(json_schema(settings().task_types))
