"""A page of the DAGs at a time, filtered, sorted and counted by SQLite: the console's table
reads what is on screen, never every row."""

from __future__ import annotations

from typing import Any

from gitdags.errors import GitdagsError
from gitdags.history.dags import _DAG_STATE_SQL, _dag_state
from gitdags.history.rows import StoreRows
from gitdags.model import DAG_SORTS, STATUSES, DagPage, DagQuery, DagState

# what each sort orders by: never NULL, so that a position is one comparison (the console
# used to sort None with "")
_ORDER = {
    "dag_id": "dag_id",
    "status": "status",
    "updated_at": "coalesce(updated_at, '')",
    "source": "source",
    "owner": "coalesce(owner, '')",
    "served_version": "coalesce(served_version, -1)",
    "newest_version": "coalesce(newest_version, -1)",
}
assert set(_ORDER) == set(DAG_SORTS)
# the needle in a tag: in JSON's text first (cheap), in each tag only where that finds it (the
# text escapes quotes, backslashes and letters beyond ASCII: those needles look at each tag).
# LIKE is case-insensitive for ASCII letters, as SQLite's lower() is, and twice as fast.
_IN_TAG = "EXISTS (SELECT 1 FROM json_each(tags) WHERE value LIKE :like ESCAPE '\\')"
_IN_DAG = "(dag_id LIKE :like ESCAPE '\\' OR owner LIKE :like ESCAPE '\\' OR ({tags}))"


def like(text: str) -> str:
    """A LIKE pattern that finds `text` anywhere (its % _ and \\ taken as themselves)."""
    return "%" + "".join("\\" + c if c in "%_\\" else c for c in text) + "%"


def _where(query: DagQuery) -> tuple[str, dict[str, Any]]:
    """The WHERE clause (with its leading space, or empty) and parameters of a query.
    Case-insensitive as SQLite's LIKE is: for ASCII letters (others match as typed)."""
    if query.status is not None and query.status not in STATUSES:
        raise GitdagsError(f"Unknown status {query.status!r}; use one of {', '.join(STATUSES)}.")
    if query.sort not in _ORDER:
        raise GitdagsError(f"Unknown sort {query.sort!r}; use one of {', '.join(DAG_SORTS)}.")
    terms, params = [], {}
    needle = query.needle.strip()  # LIKE folds ASCII letters; others match as typed
    if needle:
        plain = needle.isascii() and '"' not in needle and "\\" not in needle
        tags = f"tags LIKE :like ESCAPE '\\' AND {_IN_TAG}" if plain else _IN_TAG
        terms.append(_IN_DAG.format(tags=tags))
        params["like"] = like(needle)
    if query.status is not None:
        terms.append("status = :status")
        params["status"] = query.status
    return (" WHERE " + " AND ".join(terms) if terms else ""), params


class DagPages(StoreRows):
    """The DAGs a page at a time, as a query finds and orders them."""

    def status_counts(self) -> dict[str, int]:
        """status -> DAGs (from the index on the status)."""
        return dict(self._tuples("SELECT status, count(*) FROM dags GROUP BY status"))

    def dag_count(self, query: DagQuery) -> int:
        where, params = _where(query)
        return int(self._tuples(f"SELECT count(*) FROM dags{where}", params)[0][0])

    def dag_rows(
        self, query: DagQuery, offset: int, limit: int, *, total: int | None = None
    ) -> list[DagState]:
        """`limit` DAGs from `offset` in the query's order; given the `total` the query finds,
        a window in the second half is read from the end (an OFFSET steps over its rows)."""
        where, params = _where(query)
        order = _ORDER[query.sort]
        offset, limit = max(offset, 0), max(limit, 0)
        backwards = total is not None and offset > total // 2
        if backwards:
            assert total is not None
            limit = max(min(limit, total - offset), 0)
            offset, by = max(total - offset - limit, 0), f"{order} DESC, dag_id DESC"
        else:
            by = f"{order}, dag_id"
        rows = self._tuples(
            f"{_DAG_STATE_SQL}{where} ORDER BY {by} LIMIT :limit OFFSET :offset",
            {**params, "limit": limit, "offset": offset},
        )
        found = [_dag_state(r) for r in rows]
        return found[::-1] if backwards else found

    def dag_position(self, query: DagQuery, dag_id: str) -> int | None:
        """Where a DAG is in the query's order (None: the query does not find it)."""
        where, params = _where(query)
        order = _ORDER[query.sort]
        found = self._tuples(
            f"SELECT {order} FROM dags{where}{' AND' if where else ' WHERE'} dag_id = :dag_id",
            {**params, "dag_id": dag_id},
        )
        if not found:
            return None
        before = f"({order} < :value OR ({order} = :value AND dag_id < :dag_id))"
        rows = self._tuples(
            f"SELECT count(*) FROM dags{where}{' AND' if where else ' WHERE'} {before}",
            {**params, "dag_id": dag_id, "value": found[0][0]},
        )
        return int(rows[0][0])

    def dag_page(
        self, query: DagQuery, limit: int, *, around: str | None = None, at: int = 0
    ) -> DagPage:
        """`limit` DAGs of the query, centred on DAG `around` when the query finds it, else
        on position `at`; with the counts a table shows."""
        counts = self.status_counts()
        every = sum(counts.values())
        if query.needle.strip():
            total = self.dag_count(query)
        else:
            total = counts.get(query.status, 0) if query.status else every
        position = self.dag_position(query, around) if around is not None and total else None
        centre = position if position is not None else min(max(at, 0), max(total - 1, 0))
        offset = max(0, min(centre - limit // 2, total - limit))
        rows = tuple(self.dag_rows(query, offset, limit, total=total)) if total else ()
        return DagPage(total, every, counts, offset, rows, position)

    def find_dags(self, letters: str, whole: str, limit: int) -> list[DagState]:
        """At most `limit` DAGs whose id holds `letters` in this order (a fuzzy match's
        candidates): those whose id holds `whole` first, then the shortest ids."""
        escaped = ["\\" + c if c in "%_\\" else c for c in letters.lower() if not c.isspace()]
        rows = self._tuples(
            f"{_DAG_STATE_SQL} WHERE lower(dag_id) LIKE :like ESCAPE '\\' "
            "ORDER BY instr(lower(dag_id), :whole) = 0, length(dag_id), dag_id LIMIT :limit",
            {"like": "%" + "%".join(escaped) + "%", "whole": whole.lower(), "limit": limit},
        )
        return [_dag_state(r) for r in rows]
