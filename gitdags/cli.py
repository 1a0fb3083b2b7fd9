"""The `gitdags` command line: one short function per command over the engine."""

from __future__ import annotations

import functools
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer

from gitdags import logs, render
from gitdags.config import CONFIG_TEMPLATE, Settings, load_settings
from gitdags.engine import SyncEngine, build_engine
from gitdags.errors import GitdagsError, UsageError, problem
from gitdags.model import ActionResult

app = typer.Typer(
    name="gitdags",
    help="Follow git repositories of DAG definitions: validate, version and serve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

F = TypeVar("F", bound=Callable[..., Any])
JsonOpt = typer.Option(False, "--json", help="Print JSON (a stable contract for scripts).")


class State:
    config: str | None = None
    verbose: int = 0


state = State()


def database_problem(exc: Exception) -> str:
    try:
        return problem(settings().database, exc)
    except GitdagsError:
        return problem("(unknown)", exc)


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def command(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """An app command whose GitdagsError becomes one sentence on stderr and exit 1."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*a: Any, **kw: Any) -> Any:
            try:
                return fn(*a, **kw)
            except UsageError as exc:
                raise fail(str(exc), 2) from None
            except GitdagsError as exc:
                raise fail(str(exc)) from None
            except sqlite3.DatabaseError as exc:  # read outside a transaction: a damaged file
                raise fail(database_problem(exc)) from None

        app.command(*args, **kwargs)(run)
        return fn

    return wrap


def settings() -> Settings:
    return load_settings(state.config)


@contextmanager
def engine(*, readonly: bool = False) -> Iterator[SyncEngine]:
    """The engine over the configured database; a command that only reads opens it read-only
    and never creates it."""
    eng = build_engine(settings(), readonly=readonly)
    try:
        yield eng
    finally:
        eng.close()


def out_json(value: Any) -> None:
    """Pretty JSON; a long array in one call of the fast C encoder (indentation is not)."""
    if isinstance(value, list) and len(value) > 50:
        typer.echo(json.dumps(value, default=str))
    else:
        typer.echo(json.dumps(value, indent=2, default=str))


def _print_version(value: bool) -> None:
    if value:
        from gitdags import __version__

        typer.echo(f"gitdags {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    config: str | None = typer.Option(
        None, "--config", "-c", help="config.toml to use (default: $GITDAGS_CONFIG, ./config.toml)."
    ),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output."),
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=lambda value: _print_version(value),
        help="Print the version of gitdags and exit.",
    ),
) -> None:
    state.config = config
    state.verbose = verbose
    logs.setup(verbose)


# -- syncing and validating ---------------------------------------------------------------------
@command()
def sync(
    source: str | None = typer.Option(None, "--source", "-s", help="Sync only this source."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; write nothing."),
    as_json: bool = JsonOpt,
) -> None:
    """Fetch each source and record what its new commits changed."""
    with engine() as eng:
        results = eng.sync(source, dry_run=dry_run)
    if as_json:
        out_json([r.to_dict() for r in results])
    else:
        for result in results:
            typer.echo(render.sync_result(result))
    if [r for r in results if r.error or r.publish_error]:
        raise typer.Exit(1)


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
    parse_timeout: float = typer.Option(30.0, "--parse-timeout", help="Seconds per file."),
) -> None:
    """Validate DAG files offline (for CI and pre-commit); exit 1 on errors."""
    from gitdags.offline import check_paths

    cfg = settings()
    files, issues = check_paths(
        paths,
        task_types=cfg.task_types,
        max_file_size=cfg.max_file_size,
        airflow_python=airflow_python or "",
        parse_timeout=parse_timeout,
    )
    errors = sum(1 for i in issues if i.severity == "error")
    if fmt is Format.json:
        out_json([i.to_dict() for i in issues])
    elif fmt is Format.github:
        if issues:
            typer.echo(render.github(issues))
    else:
        if issues:
            typer.echo(render.issues(issues))
        warnings = len(issues) - errors
        typer.echo(f"{len(files)} files checked: {errors} errors, {warnings} warnings.")
    if errors:
        raise typer.Exit(1)


# -- reading ------------------------------------------------------------------------------------
@command("list")
def list_(
    source: str | None = typer.Option(None, "--source", "-s", help="Only this source."),
    status: str | None = typer.Option(None, "--status", help="Only DAGs with this status."),
    as_json: bool = JsonOpt,
) -> None:
    """List the DAGs with their status and served version."""
    with engine(readonly=True) as eng:
        dags = eng.list_dags(source=source, status=status)
    if as_json:
        out_json([d.to_dict() for d in dags])
    elif dags:
        typer.echo(render.dags(dags))
    elif source or status:
        typer.echo("No DAGs match; `gitdags list` shows them all.")
    else:
        typer.echo("No DAGs yet; run `gitdags sync`.")


@command()
def show(
    dag_id: str = typer.Argument(..., metavar="DAG"),
    version: int | None = typer.Option(None, "--version", help="Show this version."),
    as_json: bool = JsonOpt,
) -> None:
    """Show a DAG: its state, the spec it serves and the issues to fix."""
    with engine(readonly=True) as eng:
        shown = eng.show(dag_id, version)
    if as_json:
        out_json(shown.to_dict())
    else:
        typer.echo(render.detail(shown))


@command()
def history(dag_id: str = typer.Argument(..., metavar="DAG"), as_json: bool = JsonOpt) -> None:
    """Every version of a DAG, newest first."""
    with engine(readonly=True) as eng:
        versions = eng.history(dag_id)
    if as_json:
        out_json([v.to_dict() for v in versions])
    else:
        typer.echo(render.history(versions))


@command()
def status(as_json: bool = JsonOpt) -> None:
    """For each source: the newest commit seen, the commit served, the last error."""
    with engine(readonly=True) as eng:
        sources = eng.status()
    if as_json:
        out_json([s.to_dict() for s in sources])
    else:
        typer.echo(render.status(sources))
    if any(s.last_error for s in sources):  # like `systemctl status`: scripts can check it
        raise typer.Exit(1)


@command()
def syncs(
    source: str | None = typer.Option(None, "--source", "-s", help="Only this source."),
    limit: int = typer.Option(50, "--limit", "-n", help="How many, newest first."),
    as_json: bool = JsonOpt,
) -> None:
    """The sync log, newest first."""
    with engine(readonly=True) as eng:
        results = eng.syncs(source=source, limit=limit)
        if source is not None and not results and source not in {s.source for s in eng.status()}:
            raise GitdagsError(
                f"There is no source named {source!r}; `gitdags status` lists the sources."
            )
    if as_json:
        out_json([r.to_dict() for r in results])
    else:
        typer.echo(render.syncs(results) if results else "No syncs yet.")


@command()
def export(as_json: bool = JsonOpt) -> None:
    """The served set (valid, enabled, unpaused DAGs with their specs) as JSON."""
    with engine(readonly=True) as eng:
        out_json([dag.to_dict() for dag in eng.served()])


@command()
def schema() -> None:
    """The JSON Schema of DAG definition files (format v1)."""
    from gitdags.schema import json_schema

    out_json(json_schema(settings().task_types))


# -- operator actions ---------------------------------------------------------------------------
ReasonOpt = typer.Option("", "--reason", "-r", help="Why: recorded in the audit log.")
ActorOpt = typer.Option(None, "--actor", help="Who (default: the OS user).")
ToOpt = typer.Option(None, "--to", help="A version (3 or v3) or a commit.")
UntilChangeOpt = typer.Option(
    False, "--until-change", help="Let go by itself when a newer commit changes the DAG."
)


def print_action(result: ActionResult, as_json: bool) -> None:
    if as_json:
        out_json(result.to_dict())
    else:
        typer.echo(result.message)


@command()
def rollback(
    dag_id: str | None = typer.Argument(None, metavar="[DAG]"),
    to: str | None = ToOpt,
    until_change: bool = UntilChangeOpt,
    source: str | None = typer.Option(None, "--source", "-s", help="Roll back a whole source."),
    reason: str = ReasonOpt,
    actor: str | None = ActorOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Serve an earlier valid version (default: the one before the served one) and pin it."""
    with engine() as eng:
        if source and dag_id is None:
            if not to:
                raise UsageError("A source rollback needs --to COMMIT.")
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
) -> None:
    """Release a pin: serve the newest valid version again."""
    with engine() as eng:
        if source and dag_id is None:
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
) -> None:
    """Retire the DAGs of a source removed from config.toml (their history is kept)."""
    with engine() as eng:
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
        return
    if not found.text:
        typer.echo(f"{dag_id}: v{found.from_version} and v{found.to_version} are identical.")
        return
    if color is None:  # a terminal, unless NO_COLOR is set (no-color.org)
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    use_color = color
    text = render.colored_diff(found.text) if use_color else found.text.rstrip("\n")
    typer.echo(text, color=use_color)


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
) -> None:
    """Who did what, when and why: the operator actions, newest first."""
    with engine(readonly=True) as eng:
        if dag_id is not None:
            eng.dag(dag_id)  # an unknown DAG is an error, not an empty log
        entries = eng.audit(dag_id, limit=limit)
    if as_json:
        out_json([e.to_dict() for e in entries])
    elif entries:
        typer.echo(render.audit(entries))
    else:
        typer.echo("No operator actions recorded.")


# -- the service --------------------------------------------------------------------------------
@command("daemon")
def daemon_(
    log_format: str | None = typer.Option(
        None, "--log-format", help="text or json (default: [daemon] log_format)."
    ),
) -> None:
    """Keep every source synced: intervals, ref watch, webhooks, /healthz, /metrics."""
    from gitdags.daemon import Daemon

    cfg = settings()
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
        typer.echo(f"Published {generation.dags} DAGs to {generation.path}.")


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
    from gitdags.demo import run_demo

    cfg, steps = run_demo(folder)
    with engine_for(cfg) as eng:
        dags = eng.list_dags()
    typer.echo(render.demo_report(folder, cfg.database, steps, dags))


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

    database = settings().database
    pages = doctor_checks.backup(database, path)
    typer.echo(f"Backed up {database} to {path} ({pages} pages, integrity check ok).")


@command()
def doctor(
    repair: bool = typer.Option(
        False, "--repair", help="Fetch damaged mirrors again and rewrite the deploy folder."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Check the database, the mirrors and the deploy folder; exit 1 if something is wrong."""
    from gitdags import doctor as doctor_checks

    with engine() as eng:
        findings = doctor_checks.examine(eng, repair=repair)
    if as_json:
        out_json([f.to_dict() for f in findings])
    else:
        for f in findings:
            mark = "repaired" if f.repaired else "ok" if f.ok else "FAILED"
            typer.echo(f"{mark:<9} {f.check}: {f.detail}")
    if not all(f.ok for f in findings):
        raise typer.Exit(1)


@command()
def init(
    url: str = typer.Option("dags_repo", "--url", help="The first source's repository."),
    name: str = typer.Option("main", "--name", help="The first source's name."),
    path: Path = typer.Option(Path("config.toml"), "--path", help="Where to write the config."),
    database: str = typer.Option("gitdags.db", "--database", help="The state database."),
) -> None:
    """Write a starter config.toml."""
    if path.exists():
        raise GitdagsError(f"{path} already exists; edit it, or pass --path to write elsewhere.")
    text = CONFIG_TEMPLATE.format(name=name, url=url, database=database)
    path.write_text(text, encoding="utf-8")
    typer.echo(f"Wrote {path}; next: gitdags sync")


def main() -> None:
    try:
        app()
    except Exception as exc:  # a bug, not a user's mistake: one line, the trace with -v
        logging.getLogger("gitdags").debug("internal error", exc_info=True)
        typer.echo(f"error: internal error: {exc!r}; rerun with -v and report it.", err=True)
        sys.exit(1)
