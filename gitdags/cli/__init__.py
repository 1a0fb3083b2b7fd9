"""The `gitdags` command line: one short function per command over the engine.

The app and its shared helpers live in `common`; each command module registers its commands
on import, in the order `--help` lists them."""

from __future__ import annotations

import logging
import sys

# Each module registers its commands on import, in this order: the order of --help.
# isort: off
from gitdags.cli import syncing  # noqa: F401
from gitdags.cli import reading  # noqa: F401
from gitdags.cli import actions  # noqa: F401
from gitdags.cli import admin  # noqa: F401

# isort: on
from gitdags.cli.common import app, echo

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except Exception as exc:  # a bug, not a user's mistake: one line, the trace with -v
        logging.getLogger("gitdags").debug("internal error", exc_info=True)
        echo(f"error: internal error: {exc!r}; rerun with -v and report it.", err=True)
        sys.exit(1)
