"""What each consumer (an orchestrator's API) has of each served DAG, and its last poll."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from gitdags.history.rows import StoreRows
from gitdags.model import ConsumerDag, ConsumerStatus


class ConsumerTables(StoreRows):
    def served_ids(self) -> list[tuple[str, str, str, int]]:
        """(dag_id, source, path, served version) of each served DAG, without its spec."""
        return [
            (r[0], r[1], r[2], r[3])
            for r in self._tuples(
                "SELECT dag_id, source, path, served_version FROM dags WHERE deleted = 0 "
                "AND paused = 0 AND enabled = 1 AND served_version IS NOT NULL ORDER BY dag_id"
            )
        ]

    def consumer_dags(self, consumer: str | None = None) -> list[ConsumerDag]:
        sql = "SELECT * FROM consumer_dags" + (" WHERE consumer = ?" if consumer else "")
        rows = self._all(sql + " ORDER BY consumer, dag_id", [consumer] if consumer else [])
        return [_row(r) for r in rows]

    def consumer_dags_in(self, dag_ids: Iterable[str]) -> list[ConsumerDag]:
        """What each consumer has of these DAGs (one DAG, a page of the console's table)."""
        rows = self._all_in(
            "SELECT * FROM consumer_dags WHERE dag_id IN ({marks}) ORDER BY consumer", dag_ids
        )
        return [_row(r) for r in rows]

    def record_consumer(
        self,
        name: str,
        api_url: str,
        found: Iterable[ConsumerDag] | None,
        *,
        checked_at: str,
        error: str | None,
        requests: int,
    ) -> None:
        """A poll of consumer `name`: every DAG it judged (None: the poll failed, the DAGs'
        states stay as the last poll found them)."""
        if found is not None:
            self.conn.execute("DELETE FROM consumer_dags WHERE consumer = ?", [name])
            self.conn.executemany(
                "INSERT INTO consumer_dags (consumer, dag_id, state, version, since, parsed_at, "
                "bundle_version, paused, error, checked_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        name,
                        d.dag_id,
                        d.state,
                        d.version,
                        d.since,
                        d.parsed_at,
                        d.bundle_version,
                        None if d.paused is None else int(d.paused),
                        d.error,
                        d.checked_at,
                    )
                    for d in found
                ],
            )
        self.conn.execute(
            "INSERT INTO consumers (name, api_url, checked_at, error, requests) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET api_url = excluded.api_url, "
            "checked_at = excluded.checked_at, error = excluded.error, "
            "requests = excluded.requests",
            [name, api_url, checked_at, error, requests],
        )

    def consumer_counts(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(consumer, source) -> its DAGs of that source by state, and how long the oldest
        pending one has waited (`oldest_pending_s`)."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for r in self._all(
            "SELECT c.consumer, d.source, c.state, count(*) AS n, min(c.since) AS first "
            "FROM consumer_dags c JOIN dags d ON d.dag_id = c.dag_id "
            "GROUP BY c.consumer, d.source, c.state"
        ):
            entry = found.setdefault((r["consumer"], r["source"]), {})
            entry[r["state"]] = r["n"]
            if r["state"] == "pending":
                entry["oldest_pending_s"] = round(_age(r["first"]), 1)
        return found

    def consumer_statuses(self, names: Iterable[str]) -> list[ConsumerStatus]:
        """Each named consumer at a glance (one that was never asked: no counts, no answer)."""
        wanted = list(names)
        polls = {r["name"]: r for r in self._all("SELECT * FROM consumers")}
        counts: dict[str, dict[str, int]] = {}
        oldest: dict[str, str] = {}
        for r in self._all(
            "SELECT consumer, state, count(*) AS n, min(since) AS first FROM consumer_dags "
            "GROUP BY consumer, state"
        ):
            counts.setdefault(r["consumer"], {})[r["state"]] = r["n"]
            if r["state"] == "pending":
                oldest[r["consumer"]] = r["first"]
        found = []
        for name in wanted:
            poll = polls.get(name)
            first = oldest.get(name)
            found.append(
                ConsumerStatus(
                    name=name,
                    api_url=poll["api_url"] if poll else "",
                    counts=counts.get(name, {}),
                    oldest_pending=_age(first) if first else None,
                    checked_at=poll["checked_at"] if poll else None,
                    error=poll["error"] if poll else None,
                    requests=poll["requests"] if poll else 0,
                )
            )
        return found


def _age(stamp: str) -> float:
    try:
        return max(0.0, time.time() - datetime.fromisoformat(stamp).timestamp())
    except ValueError:
        return 0.0


def _row(r: sqlite3.Row) -> ConsumerDag:
    paused = r["paused"]
    return ConsumerDag(
        consumer=r["consumer"],
        dag_id=r["dag_id"],
        state=r["state"],
        version=r["version"],
        since=r["since"],
        parsed_at=r["parsed_at"],
        bundle_version=r["bundle_version"],
        paused=None if paused is None else bool(paused),
        error=r["error"],
        checked_at=r["checked_at"],
    )
