"""The audit log, the hooks' delivery state and their outbox."""

from __future__ import annotations

import json
from typing import Any

from gitdags.history.rows import StoreRows, _where, dumps, loads, now
from gitdags.model import AuditEntry, HookState


class AuditTables(StoreRows):
    """The audit log and the hooks (their state and the outbox of deliveries)."""

    # -- the audit log ---------------------------------------------------------------------------
    def insert_audit(
        self,
        action: str,
        *,
        actor: str,
        dag_id: str | None = None,
        source: str | None = None,
        reason: str = "",
        detail: dict[str, Any] | None = None,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO audit (at, actor, action, dag_id, source, reason, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (now(), actor, action, dag_id, source, reason or "", dumps(detail or {})),
        )
        return int(cur.lastrowid or 0)

    def annotate_audit(self, audit_id: int, more: dict[str, Any]) -> None:
        """Add to an audit entry's detail what came of the action afterwards."""
        row = self._one("SELECT detail FROM audit WHERE id = ?", [audit_id])
        if row is not None:
            detail = {**(loads(row["detail"]) or {}), **more}
            self.conn.execute("UPDATE audit SET detail = ? WHERE id = ?", [dumps(detail), audit_id])

    def last_audit_detail(self, action: str, source: str) -> dict[str, Any]:
        """The detail of the newest audit entry of `action` on `source` ({} when none)."""
        row = self.conn.execute(
            "SELECT detail FROM audit WHERE action = ? AND source = ? ORDER BY id DESC LIMIT 1",
            (action, source),
        ).fetchone()
        return (loads(row["detail"]) or {}) if row else {}

    def audit(self, dag_id: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        where, params = _where(dag_id=dag_id or None)
        rows = self._all(f"SELECT * FROM audit{where} ORDER BY id DESC LIMIT ?", [*params, limit])
        return [
            AuditEntry(
                id=r["id"],
                at=r["at"],
                actor=r["actor"],
                action=r["action"],
                dag_id=r["dag_id"],
                source=r["source"],
                reason=r["reason"] or "",
                detail=loads(r["detail"]) or {},
            )
            for r in rows
        ]

    # -- hooks -----------------------------------------------------------------------------------
    def hooks(self) -> tuple[HookState, ...]:
        return tuple(
            HookState(
                name=r["name"],
                last_ok_at=r["last_ok_at"],
                last_error=r["last_error"],
                last_error_at=r["last_error_at"],
                failures=r["failures"] or 0,
                delivered=r["delivered"] or 0,
            )
            for r in self._all("SELECT * FROM hooks ORDER BY name")
        )

    def record_hook(self, name: str, error: str | None) -> None:
        at = now()
        if error is None:
            self.conn.execute(
                "INSERT INTO hooks (name, last_ok_at, failures, delivered) VALUES (?, ?, 0, 1) "
                "ON CONFLICT (name) DO UPDATE SET last_ok_at = excluded.last_ok_at, "
                "last_error = NULL, last_error_at = NULL, failures = 0, delivered = delivered + 1",
                (name, at),
            )
        else:
            self.conn.execute(
                "INSERT INTO hooks (name, last_error, last_error_at, failures) "
                "VALUES (?, ?, ?, 1) ON CONFLICT (name) DO UPDATE SET "
                "last_error = excluded.last_error, last_error_at = excluded.last_error_at, "
                "failures = failures + 1",
                (name, error, at),
            )

    # -- hook deliveries (the outbox) ------------------------------------------------------------
    def queue_delivery(self, body: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO outbox (body, created_at) VALUES (?, ?)", (json.dumps(body), now())
        )

    def pending_deliveries(self) -> list[tuple[int, dict[str, Any]]]:
        rows = self._tuples("SELECT id, body FROM outbox ORDER BY id")
        return [(int(i), json.loads(b)) for i, b in rows]

    def delivered(self, delivery: int) -> None:
        self.conn.execute("DELETE FROM outbox WHERE id = ?", (delivery,))
