"""Change hooks: run a command or POST JSON after each change to what is served.

Each change is written to an outbox in the transaction that makes it (a sync's; an operator
action's right after its own), and one background thread delivers the outbox, so a slow or
failing hook never delays a sync and a process killed before delivering leaves the change for
the next one: every change is delivered at least once. Each delivery has a timeout and is
retried with exponential backoff; the outcome of each hook is recorded in the database
(`gitdags status` shows failures).

A command gets the change in its environment (GITDAGS_SOURCE, GITDAGS_COMMIT,
GITDAGS_CHANGED_DAGS: space-separated ids, GITDAGS_CHANGES: JSON) and the JSON on stdin.
An HTTP hook receives `{"source", "commit", "changes": [{"dag_id", "change", "version"}]}`,
signed with `X-Gitdags-Signature-256` (HMAC-SHA256) when the hook has a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitdags import faults
from gitdags.config import HookConfig, redact_url
from gitdags.history.store import HistoryStore
from gitdags.model import DagChange

log = logging.getLogger(__name__)


def payload(source: str, commit: str | None, changes: tuple[DagChange, ...]) -> dict[str, Any]:
    return {
        "source": source,
        "commit": commit,
        "changes": [
            {"dag_id": c.dag_id, "change": c.change, "version": c.version} for c in changes
        ],
    }


def deliver(hook: HookConfig, body: dict[str, Any]) -> None:
    """One attempt; raises OSError or RuntimeError with one sentence when it fails."""
    data = json.dumps(body).encode()
    if hook.command:
        env = {
            **os.environ,
            "GITDAGS_SOURCE": body["source"],
            "GITDAGS_COMMIT": body["commit"] or "",
            "GITDAGS_CHANGED_DAGS": " ".join(c["dag_id"] for c in body["changes"]),
            "GITDAGS_CHANGES": json.dumps(body["changes"]),
        }
        try:
            done = subprocess.run(
                hook.command,
                shell=True,
                input=data,
                capture_output=True,
                env=env,
                timeout=hook.timeout,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"command timed out after {hook.timeout:.0f}s") from None
        if done.returncode != 0:
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise RuntimeError(f"command exited {done.returncode}: {tail[0]}".rstrip(": "))
        return
    headers = {"Content-Type": "application/json", "User-Agent": "gitdags"}
    if hook.secret:
        digest = hmac.new(hook.secret.encode(), data, hashlib.sha256).hexdigest()
        headers["X-Gitdags-Signature-256"] = f"sha256={digest}"
    request = urllib.request.Request(hook.url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=hook.timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{redact_url(hook.url)} answered {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RuntimeError(f"{redact_url(hook.url)} unreachable: {reason}") from None


class HookRunner:
    """Delivers change events to every hook from one background thread."""

    def __init__(
        self,
        hooks: tuple[HookConfig, ...],
        database: Path,
        *,
        sleep: Callable[[float], None] = time.sleep,
        base_delay: float = 1.0,
    ) -> None:
        self.hooks = hooks
        self.database = database
        self.sleep = sleep
        self.base_delay = base_delay
        self.queue: queue.Queue[bool] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="hooks", daemon=True)
        self.thread.start()
        self.queue.put(True)  # what a killed process left in the outbox goes out first

    def __call__(self, source: str, commit: str | None, changes: tuple[DagChange, ...]) -> None:
        """Wake the runner: the change is in the outbox already (written with the change)."""
        if self.hooks and changes:
            self.queue.put(True)

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what is queued (within `timeout`), then stop."""
        self.queue.put(False)
        self.thread.join(timeout)

    def _run(self) -> None:
        store: HistoryStore | None = None
        while True:
            more = self.queue.get()
            if not more:
                break
            if store is None:
                store = HistoryStore(self.database)
            for delivery, body in store.pending_deliveries():
                for hook in self.hooks:
                    self._deliver(store, hook, body)
                with store.transaction():  # delivered (or given up after its retries)
                    store.delivered(delivery)
        if store is not None:
            store.close()

    def _deliver(self, store: HistoryStore, hook: HookConfig, body: dict[str, Any]) -> None:
        error = ""
        for attempt in range(hook.retries + 1):
            try:
                faults.point("in-hook")
                deliver(hook, body)
            except (RuntimeError, OSError) as exc:
                error = str(exc)
                log.warning(
                    "hook failed", extra={"hook": hook.name, "attempt": attempt + 1, "error": error}
                )
                if attempt < hook.retries:
                    self.sleep(self.base_delay * 2**attempt)
                continue
            log.info("hook delivered", extra={"hook": hook.name, "source": body["source"]})
            self._record(store, hook.name, None)
            return
        self._record(store, hook.name, error)

    def _record(self, store: HistoryStore, name: str, error: str | None) -> None:
        try:
            with store.transaction():
                store.record_hook(name, error)
        except Exception:  # a hook's bookkeeping never takes the runner down
            log.exception("cannot record the outcome of hook %s", name)
