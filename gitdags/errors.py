"""Errors raised by gitdags.

Every error carries one sentence that says what is wrong and what to do::

    GitdagsError
    ├── UsageError       a command was called the wrong way (exit 2)
    ├── ConfigError      config.toml or a GITDAGS_* variable is wrong
    ├── SourceError      a git source cannot be fetched or read
    ├── StoreError       the SQLite database cannot be opened or written
    ├── PublishError     a publish target (deploy folder, served branch, S3) was not written
    └── ActionError      an operator action (rollback, pin, ...) is refused

Invalid DAG files are not errors: validation returns a list of `Issue`.
"""

from __future__ import annotations


class GitdagsError(Exception):
    """Base of every error gitdags raises on purpose."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip() if self.hint else self.message


class UsageError(GitdagsError):
    """A command was called the wrong way: the CLI exits 2, as for its own usage errors."""


class ConfigError(GitdagsError):
    """The configuration is invalid."""


class SourceError(GitdagsError):
    """A git source could not be fetched, diffed or read."""


class StoreError(GitdagsError):
    """The state database could not be used."""


class PublishError(GitdagsError):
    """A publish target was not brought up to date; the message names each one that failed."""


class ConsumerError(GitdagsError):
    """A consumer (an orchestrator's API) could not be asked or did not answer as expected."""


class ActionError(GitdagsError):
    """An operator action was refused."""


class NotFoundError(ActionError):
    """A DAG, version, source or commit does not exist."""


def damaged(database: object, exc: BaseException) -> str:
    return f"The database {database} is damaged ({exc}); restore it from a backup."


def problem(database: object, exc: BaseException) -> str:
    """What went wrong, in one sentence for a person: a gitdags error as it is, a database
    SQLite cannot read as damaged, anything else as an internal error to report."""
    import sqlite3

    if isinstance(exc, GitdagsError):
        return str(exc)
    if isinstance(exc, sqlite3.DatabaseError):
        return damaged(database, exc)
    return f"Internal error ({type(exc).__name__}: {exc}); please report it."
