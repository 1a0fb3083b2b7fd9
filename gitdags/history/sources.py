"""The sources and syncs tables: each source's reconcile record, and the syncs it ran."""

from __future__ import annotations

import sqlite3

from gitdags.history.rows import StoreRows, _issues, _where, dumps_large, loads, now
from gitdags.model import DagChange, SourceRecord, SyncResult


def _source(r: sqlite3.Row) -> SourceRecord:
    return SourceRecord(**{k: r[k] for k in r.keys()})  # noqa: SIM118 - sqlite3.Row


class SourceTables(StoreRows):
    """Sources (the reconcile record) and their syncs."""

    # -- sources: the reconcile record -----------------------------------------------------------
    def source_record(self, name: str) -> SourceRecord | None:
        row = self._one("SELECT * FROM sources WHERE name = ?", (name,))
        return _source(row) if row else None

    def source_records(self) -> dict[str, SourceRecord]:
        return {r["name"]: _source(r) for r in self._all("SELECT * FROM sources ORDER BY name")}

    def record_synced(
        self, name: str, url: str, branch: str, fingerprint: str, commit: str
    ) -> None:
        """A successful sync: the commit is fetched, attempted and served."""
        at = now()
        self.conn.execute(
            "INSERT INTO sources (name, url, branch, fingerprint, newest_commit, served_commit, "
            "last_sync_at, last_attempt_at, last_error, last_error_at, failures) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, 0) ON CONFLICT (name) DO UPDATE SET "
            "url = excluded.url, branch = excluded.branch, fingerprint = excluded.fingerprint, "
            "newest_commit = excluded.newest_commit, served_commit = excluded.served_commit, "
            "last_sync_at = excluded.last_sync_at, last_attempt_at = excluded.last_attempt_at, "
            "last_error = NULL, last_error_at = NULL, failures = 0",
            (name, url, branch, fingerprint, commit, commit, at, at),
        )

    def record_failed(
        self, name: str, url: str, branch: str, newest: str | None, message: str
    ) -> SourceRecord:
        """A failed sync: the commit it attempted (if the fetch got one), the error, one more
        failure in a row. The served commit stays."""
        at = now()
        self.conn.execute(
            "INSERT INTO sources (name, url, branch, newest_commit, last_attempt_at, last_error, "
            "last_error_at, failures) VALUES (?, ?, ?, ?, ?, ?, ?, 1) "
            "ON CONFLICT (name) DO UPDATE SET url = excluded.url, branch = excluded.branch, "
            "newest_commit = COALESCE(excluded.newest_commit, newest_commit), "
            "last_attempt_at = excluded.last_attempt_at, last_error = excluded.last_error, "
            "last_error_at = CASE WHEN last_error IS NULL THEN excluded.last_error_at "
            "ELSE last_error_at END, failures = failures + 1",
            (name, url, branch, newest, at, message, at),
        )
        record = self.source_record(name)
        assert record is not None
        return record

    def set_source_pin(self, name: str, commit: str | None) -> None:
        self.conn.execute(
            "UPDATE sources SET pinned_commit = ?, pinned_at = ? WHERE name = ?",
            (commit, now() if commit else None, name),
        )

    def forget_source(self, source: str) -> None:
        """A source pruned from the config: its files and reconcile record go; its DAGs'
        rows and versions, its syncs and the audit stay (history is kept)."""
        self.conn.execute("DELETE FROM files WHERE source = ?", (source,))
        self.conn.execute("DELETE FROM file_dags WHERE source = ?", (source,))
        self.conn.execute("DELETE FROM sources WHERE name = ?", (source,))

    # -- syncs -----------------------------------------------------------------------------------
    def insert_sync(self, result: SyncResult) -> None:
        self.conn.execute(
            "INSERT INTO syncs (source, started_at, from_commit, to_commit, added, changed, "
            "deleted, invalid, unchanged, duration_ms, forced, error, changes, issues, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                result.source,
                result.started_at,
                result.from_commit,
                result.to_commit,
                result.added,
                result.changed,
                result.deleted,
                result.invalid,
                result.unchanged,
                round(result.duration_ms, 1),
                int(result.forced),
                result.error,
                dumps_large([c.to_dict() for c in result.changes]),
                dumps_large([i.to_dict() for i in result.issues]),
                result.note or None,
            ),
        )

    def last_sync_note(self, source: str) -> tuple[str, str] | None:
        """(started_at, note) of the source's last sync, without its list of changes."""
        row = self._tuples(
            "SELECT started_at, note FROM syncs WHERE source = ? ORDER BY id DESC LIMIT 1",
            (source,),
        )
        return (row[0][0] or "", row[0][1] or "") if row else None

    def syncs(self, *, source: str | None = None, limit: int = 50) -> list[SyncResult]:
        where, params = _where(source=source or None)
        rows = self._all(f"SELECT * FROM syncs{where} ORDER BY id DESC LIMIT ?", [*params, limit])
        return [
            SyncResult(
                source=r["source"],
                from_commit=r["from_commit"],
                to_commit=r["to_commit"],
                added=r["added"],
                changed=r["changed"],
                deleted=r["deleted"],
                invalid=r["invalid"],
                unchanged=r["unchanged"],
                duration_ms=r["duration_ms"],
                forced=bool(r["forced"]),
                error=r["error"],
                started_at=r["started_at"],
                changes=tuple(DagChange(**c) for c in loads(r["changes"]) or []),
                issues=_issues(r["issues"]),
                note=r["note"] or "",
            )
            for r in rows
        ]
