"""Shared by the store's tables: time and JSON helpers, WHERE and IN builders, row readers."""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from gitdags.model import Issue

CHUNK = 500  # values per `IN (...)`: well under SQLite's limit on parameters


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def loads(value: str | bytes | None) -> Any:
    if isinstance(value, bytes):  # a large value, stored compressed (`dumps_large`)
        return json.loads(zlib.decompress(value))
    return json.loads(value) if value else None


LARGE = 4096


def dumps_large(value: Any) -> str | bytes:
    """JSON, compressed when large (a first sync's list of 100,000 changes): `loads` reads
    both."""
    text = dumps(value)
    return zlib.compress(text.encode(), 1) if len(text) > LARGE else text


def _where(**equal: str | bool | None) -> tuple[str, list[Any]]:
    """` WHERE a = ? AND b = ?` for the arguments given (None: any)."""
    where, params = [], []
    for column, value in equal.items():
        if value is not None:
            where.append(f"{column} = ?")
            params.append(int(value) if isinstance(value, bool) else value)
    return (" WHERE " + " AND ".join(where) if where else ""), params


def _issues(value: str | bytes | None) -> tuple[Issue, ...]:
    return tuple(Issue.from_dict(i) for i in loads(value) or ())


class StoreRows:
    """The row readers over the store's connection: the base of the table mixins."""

    conn: sqlite3.Connection

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def _tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows as plain tuples: for the hot paths that read thousands of rows."""
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return cursor.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def _all_in(self, sql: str, values: Iterable[Any], *params: Any) -> list[sqlite3.Row]:
        """Rows for `... IN ({marks})` over many values, in chunks SQLite accepts."""
        ordered = list(values)
        found: list[sqlite3.Row] = []
        for start in range(0, len(ordered), CHUNK):
            chunk = ordered[start : start + CHUNK]
            found += self._all(sql.format(marks=",".join("?" * len(chunk))), [*params, *chunk])
        return found
