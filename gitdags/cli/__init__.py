"""The `gitdags` command line: one short function per command over the engine."""

from __future__ import annotations

import functools
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer

from gitdags import logs, render
from gitdags.config import CONFIG_TEMPLATE, Settings, load_settings, missing_config
from gitdags.engine import SyncEngine, build_engine, sources_to_sync
from gitdags.errors import GitdagsError, UsageError, problem
from gitdags.model import ActionResult

app = typer.Typer(
    name="gitdags",
    help="Follow git repositories of DAG definitions: validate, version and serve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
    rich_markup_mode=None,
)

F = TypeVar("F", bound=Callable[..., Any])
JsonOpt = typer.Option(False, "--json", help="Print JSON (a stable contract for scripts).")
OutputOpt = typer.Option(
    None, "--output", "-o", help="text, json, yaml, or wide (more columns), as kubectl does."
)


class State:
    config: str | None = None
    verbose: int = 0
    quiet: bool = False


state = State()


def echo(
    message: Any = None, nl: bool = True, err: bool = False, color: bool | None = None
) -> None:
    """typer.echo, silent on stdout under --quiet (errors still go to stderr)."""
    if err or not state.quiet:
        typer.echo(message, nl=nl, err=err, color=color)


def database_problem(exc: Exception) -> str:
    try:
        return problem(settings().database, exc)
    except GitdagsError:
        return problem("(unknown)", exc)


def fail(message: str, code: int = 1) -> typer.Exit:
    echo(f"error: {message}", err=True)
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


def configured() -> Settings:
    """The settings of a command that uses the database. With no config.toml and no database
    yet, the missing config is said first, and no database is made."""
    cfg = settings()
    if cfg.config_path is None and not cfg.database.exists():
        raise missing_config()
    return cfg


@contextmanager
def engine(*, readonly: bool = False, cfg: Settings | None = None) -> Iterator[SyncEngine]:
    """The engine over the configured database; a command that only reads opens it read-only
    and never creates it."""
    eng = build_engine(cfg or configured(), readonly=readonly)
    try:
        yield eng
    finally:
        eng.close()


def emitted(records: Callable[[], Any], as_json: bool, output: str | None) -> bool:
    """Print the records as JSON or YAML when asked (`--json`, `-o json|yaml`); False when
    the text table is wanted (`-o text` or `-o wide`)."""
    fmt = "json" if as_json else (output or "text")
    if fmt not in ("text", "json", "yaml", "wide"):
        raise UsageError(f"-o {fmt!r} is not an output; use text, json, yaml or wide.")
    if fmt == "json":
        out_json(records())
    elif fmt == "yaml":
        import yaml

        echo(yaml.safe_dump(records(), sort_keys=False, allow_unicode=True).rstrip("\n"))
    return fmt in ("json", "yaml")


def out_json(value: Any) -> None:
    """Pretty JSON; a long array in one call of the fast C encoder (indentation is not)."""
    if isinstance(value, list) and len(value) > 50:
        echo(json.dumps(value, default=str))
    else:
        echo(json.dumps(value, indent=2, default=str))


def _print_version(value: bool) -> None:
    if value:
        from gitdags import __version__

        echo(f"gitdags {__version__}")
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    state.config = config
    state.verbose = verbose
    state.quiet = quiet
    logs.setup(verbose)


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
    parse_timeout: float = typer.Option(30.0, "--parse-timeout", help="Seconds per file."),
    sandbox: str = typer.Option(
        "bwrap", "--sandbox", help='Where Airflow parses: "bwrap" (bubblewrap) or "none".'
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
        dags = eng.list_dags(source=source, status=status)
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
    from gitdags.engine import airflow_dag_files
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


def main() -> None:
    try:
        app()
    except Exception as exc:  # a bug, not a user's mistake: one line, the trace with -v
        logging.getLogger("gitdags").debug("internal error", exc_info=True)
        echo(f"error: internal error: {exc!r}; rerun with -v and report it.", err=True)
        sys.exit(1)
