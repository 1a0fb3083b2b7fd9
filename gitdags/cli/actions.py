"""The operator actions: rollback, pin, unpin, prune, pause and resume, diff and audit."""

from __future__ import annotations

import os
import sys

import typer

from gitdags import render
from gitdags.cli.common import JsonOpt, OutputOpt, app, command, echo, emitted, engine, out_json
from gitdags.engine import SyncEngine
from gitdags.errors import GitdagsError, UsageError
from gitdags.model import ActionResult

# -- operator actions ---------------------------------------------------------------------------
ReasonOpt = typer.Option("", "--reason", "-r", help="Why: recorded in the audit log.")
ActorOpt = typer.Option(None, "--actor", help="Who (default: the OS user).")
ToOpt = typer.Option(None, "--to", help="A version (3 or v3) or a commit.")
UntilChangeOpt = typer.Option(
    False, "--until-change", help="Let go by itself when a newer commit changes the DAG."
)
YesOpt = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")


def confirmed(eng: SyncEngine, source: str, what: str, yes: bool) -> None:
    """An action on every DAG of a source asks first on a terminal (not with --yes, not in a
    script: stdin is not a terminal there)."""
    if yes or not sys.stdin.isatty():
        return
    count = sum(1 for d in eng.list_dags(source=source) if d.status != "deleted")
    if not count:  # nothing it could change: the action says so without a question
        return
    if not typer.confirm(f"{what} ({count} DAGs of source {source})?", default=False):
        raise GitdagsError("Nothing changed (not confirmed); pass --yes to skip the question.")


def print_action(result: ActionResult, as_json: bool) -> None:
    if as_json:
        out_json(result.to_dict())
    else:
        echo(result.message)


@command()
def rollback(
    dag_id: str | None = typer.Argument(None, metavar="[DAG]"),
    to: str | None = ToOpt,
    until_change: bool = UntilChangeOpt,
    source: str | None = typer.Option(None, "--source", "-s", help="Roll back a whole source."),
    reason: str = ReasonOpt,
    actor: str | None = ActorOpt,
    as_json: bool = JsonOpt,
    yes: bool = YesOpt,
) -> None:
    """Serve an earlier valid version (default: the one before the served one) and pin it."""
    with engine() as eng:
        if source and dag_id is None:
            if not to:
                raise UsageError("A source rollback needs --to COMMIT.")
            confirmed(eng, source, f"Roll back source {source} to {to}", yes)
            result = eng.rollback_source(source, to, reason=reason, actor=actor)
        elif dag_id and not source:
            result = eng.rollback(dag_id, to, until_change=until_change, reason=reason, actor=actor)
        else:
            raise UsageError("Name either a DAG or --source NAME, not both and not neither.")
    print_action(result, as_json)


@command()
def pin(
    dag_id: str = typer.Argument(..., metavar="DAG"),
    to: str | None = ToOpt,
    until_change: bool = UntilChangeOpt,
    reason: str = ReasonOpt,
    actor: str | None = ActorOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Hold the served version (or --to one); new commits are recorded, not served."""
    with engine() as eng:
        result = eng.pin(dag_id, to, until_change=until_change, reason=reason, actor=actor)
    print_action(result, as_json)


@command()
def unpin(
    dag_id: str | None = typer.Argument(None, metavar="[DAG]"),
    source: str | None = typer.Option(None, "--source", "-s", help="Release a source rollback."),
    reason: str = ReasonOpt,
    actor: str | None = ActorOpt,
    as_json: bool = JsonOpt,
    yes: bool = YesOpt,
) -> None:
    """Release a pin: serve the newest valid version again."""
    with engine() as eng:
        if source and dag_id is None:
            record = eng.source_record(source)
            if record is not None and record.pinned_commit:  # else there is nothing to release
                confirmed(eng, source, f"Release the rollback of source {source}", yes)
            result = eng.unpin_source(source, reason=reason, actor=actor)
        elif dag_id and not source:
            result = eng.unpin(dag_id, reason=reason, actor=actor)
        else:
            raise UsageError("Name either a DAG or --source NAME, not both and not neither.")
    print_action(result, as_json)


@command()
def prune(
    source: str = typer.Option(..., "--source", "-s", help="The source that left the config."),
    reason: str = ReasonOpt,
    actor: str | None = ActorOpt,
    as_json: bool = JsonOpt,
    yes: bool = YesOpt,
) -> None:
    """Retire the DAGs of a source removed from config.toml (their history is kept)."""
    with engine() as eng:
        confirmed(eng, source, f"Retire every DAG of source {source}", yes)
        print_action(eng.prune_source(source, reason=reason, actor=actor), as_json)


@command()
def pause(
    dag_id: str = typer.Argument(..., metavar="DAG"),
    reason: str = ReasonOpt,
    actor: str | None = ActorOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Keep a DAG registered and versioned, but stop serving it."""
    with engine() as eng:
        print_action(eng.pause(dag_id, reason=reason, actor=actor), as_json)


@command()
def resume(
    dag_id: str = typer.Argument(..., metavar="DAG"),
    reason: str = ReasonOpt,
    actor: str | None = ActorOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Serve a paused DAG again."""
    with engine() as eng:
        print_action(eng.resume(dag_id, reason=reason, actor=actor), as_json)


app.command("unpause", help="Serve a paused DAG again (the same as resume, as in Airflow).")(
    app.registered_commands[-1].callback  # type: ignore[arg-type]
)


@command()
def diff(
    dag_id: str = typer.Argument(..., metavar="DAG"),
    v1: str | None = typer.Argument(None, metavar="[V1]"),
    v2: str | None = typer.Argument(None, metavar="[V2]"),
    as_json: bool = JsonOpt,
    color: bool | None = typer.Option(None, "--color/--no-color", help="Default: on a terminal."),
) -> None:
    """Diff two versions' normalized specs (default: served vs newest)."""
    with engine(readonly=True) as eng:
        found = eng.diff(dag_id, version_number(v1), version_number(v2))
    if as_json:
        out_json(found.to_dict())
    elif not found.text:
        echo(f"{dag_id}: v{found.from_version} and v{found.to_version} are identical.")
    else:
        if color is None:  # a terminal, unless NO_COLOR is set (no-color.org)
            color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        text = render.colored_diff(found.text) if color else found.text.rstrip("\n")
        echo(text, color=color)
    if found.text:  # like diff(1) and `argocd app diff`: 1 when they differ
        raise typer.Exit(1)


def version_number(value: str | None) -> int | None:
    if value is None:
        return None
    digits = value.strip().lower().removeprefix("v")
    if not digits.isdigit():
        raise UsageError(f"{value!r} is not a version number; write 3 or v3.")
    return int(digits)


@command()
def audit(
    dag_id: str | None = typer.Argument(None, metavar="[DAG]"),
    limit: int = typer.Option(100, "--limit", "-n", help="How many, newest first."),
    as_json: bool = JsonOpt,
    output: str | None = OutputOpt,
) -> None:
    """Who did what, when and why: the operator actions, newest first."""
    with engine(readonly=True) as eng:
        if dag_id is not None:
            eng.dag(dag_id)  # an unknown DAG is an error, not an empty log
        entries = eng.audit(dag_id, limit=limit)
    if emitted(lambda: [e.to_dict() for e in entries], as_json, output):
        return
    if entries:
        echo(render.audit(entries))
    else:
        echo("No operator actions recorded.")
