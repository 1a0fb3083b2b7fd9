"""The CLI's shared parts: the app, its global options, output helpers and error handling."""

from __future__ import annotations

import functools
import itertools
import json
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer

from gitdags import logs
from gitdags.config import Settings, load_settings, missing_config
from gitdags.engine import SyncEngine, build_engine
from gitdags.errors import GitdagsError, UsageError, problem

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


def streamed(rows: Callable[[], Iterable[Any]], as_json: bool, output: str | None) -> bool:
    """Stream the records as JSON when asked (`--json`, `-o json`); False otherwise (the
    caller shows them another way)."""
    fmt = "json" if as_json else (output or "text")
    if fmt != "json":
        return False
    out_json_rows(rows())
    return True


def out_json_rows(rows: Iterable[Any]) -> None:
    """A JSON array written as its rows come: the first at once, in constant memory. Up to 50
    rows print as `out_json` prints them (indented); more, in `json.dumps`' compact form."""
    rows = iter(rows)
    head = list(itertools.islice(rows, 51))
    if len(head) <= 50:
        out_json(head)
        return
    if state.quiet:
        return
    write = sys.stdout.write  # a page per call of the C encoder: its items joined by ", "
    write("[" + json.dumps(head, default=str)[1:-1])
    sys.stdout.flush()
    while page := list(itertools.islice(rows, 1000)):
        write(", " + json.dumps(page, default=str)[1:-1])
    write("]\n")
    sys.stdout.flush()


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
