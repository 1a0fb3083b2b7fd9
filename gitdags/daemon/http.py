"""The daemon's HTTP listener: push webhooks, /healthz and Prometheus /metrics.

A webhook only triggers a sync of the named source; its body is never parsed or trusted.
With a secret configured, a request must carry GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of
the body) or GitLab's `X-Gitlab-Token`; otherwise it is refused with 401.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gitdags.config import Settings
from gitdags.daemon.metrics import DaemonMetrics
from gitdags.errors import ConfigError
from gitdags.model import ConsumerStatus, SourceRecord

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20
MAX_CLIENTS = 64  # requests served at once; more wait in the listen backlog


@dataclass(frozen=True, slots=True)
class Callbacks:
    """What the listener reads of the daemon and asks of it, as functions: it never holds
    the daemon itself."""

    settings: Callable[[], Settings]  # the running config (a reload replaces it)
    records: Callable[[], dict[str, SourceRecord]]  # each source's reconcile record
    attempted: Callable[[], set[str]]  # sources whose first sync ran in this process
    pending: Callable[[], set[str]]  # sources a reload added, not synced yet
    activity: Callable[[], dict[str, str]]  # what each source's worker does now, in words
    trigger: Callable[[str], bool]  # sync a source now; False when there is no such source
    metrics: DaemonMetrics
    consumers: Callable[[], list[ConsumerStatus]] = list  # each consumer at a glance


def signature_ok(secret: str, body: bytes, headers: Any) -> bool:
    github = headers.get("X-Hub-Signature-256", "")
    if github.startswith("sha256="):
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(github[len("sha256=") :], expected)
    gitlab = headers.get("X-Gitlab-Token")
    return gitlab is not None and hmac.compare_digest(gitlab, secret)


def health(calls: Callbacks) -> tuple[bool, dict[str, Any]]:
    """Ready once every configured source has synced (its first round in this process done
    and a commit served), a source added by a reload counting once its first sync ran; each
    source's reconcile record as the engine wrote it, and what its worker does now."""
    records = calls.records()
    attempted = calls.attempted()
    pending = calls.pending()
    activity = calls.activity()
    sources = []
    for config in calls.settings().sources:
        r = records.get(config.name)
        sources.append(
            {
                "source": config.name,
                "synced": config.name in attempted and r is not None and bool(r.served_commit),
                "newest_commit": r.newest_commit if r else None,
                "served_commit": r.served_commit if r else None,
                "last_error": r.last_error if r else None,
                "consecutive_failures": r.failures if r else 0,
                "pending": config.name in pending,
                "sandbox": config.sandbox_state,
                # what its worker does now or waits for: "syncing for 3s", "next sync in
                # 20s", "retrying in 40s after 4 failed syncs in a row"
                "activity": activity.get(config.name, "not started"),
            }
        )
    ready = all(s["synced"] or s["pending"] for s in sources)
    found: dict[str, Any] = {"ready": ready, "sources": sources}
    consumers = calls.consumers()
    if consumers:  # what the orchestrators have: never a reason to restart gitdags
        found["consumers"] = [c.to_dict() for c in consumers]
    return ready, found


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "gitdags"
    timeout = 5.0  # seconds a client may take per read: a trickling client is dropped

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        calls = self.server.calls
        path = self.path.split("?", 1)[0]  # a query string changes nothing (probes add them)
        if path == "/healthz":
            ready, detail = health(calls)
            self._send(200 if ready else 503, detail)
        elif path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            self._send(200, generate_latest(calls.metrics.registry).decode(), CONTENT_TYPE_LATEST)
        else:
            self._send(404, {"error": "not found; try /healthz, /metrics or POST /hooks/<source>"})

    def do_POST(self) -> None:
        calls = self.server.calls
        if not self.path.startswith("/hooks/"):
            self._send(404, {"error": "not found; webhooks go to POST /hooks/<source>"})
            return
        source = self.path[len("/hooks/") :].split("?")[0].strip("/")
        raw = (self.headers.get("Content-Length") or "0").strip()
        if not raw.isdigit():  # "abc", "-1": never read a body of unknown size
            self._send(400, {"error": "Content-Length must be a whole number of bytes"})
            return
        length = int(raw)
        if length > MAX_BODY:
            self._send(413, {"error": "body too large"})
            return
        body = self.rfile.read(length) if length else b""
        secret = calls.settings().webhook_secret
        if secret and not signature_ok(secret, body, self.headers):
            log.warning("webhook refused: bad or missing signature", extra={"source": source})
            self._send(401, {"error": "bad or missing signature"})
            return
        if not calls.trigger(source):
            self._send(404, {"error": f"no source named {source!r}"})
            return
        log.info("webhook: sync triggered", extra={"source": source})
        self._send(202, {"source": source, "triggered": True})


class _Server(ThreadingHTTPServer):
    """Bounded: at most MAX_CLIENTS requests at once, each with a read timeout; a burst of
    pushes waits in a deep listen backlog instead of being reset."""

    daemon_threads = True
    request_queue_size = 256
    calls: Callbacks

    def __init__(self, address: tuple[str, int], handler: type[_Handler]) -> None:
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.slots.acquire()  # the accept loop waits here; new clients queue in the backlog
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up, resets or times out is one line in the log, not a
        traceback."""
        import sys

        exc = sys.exc_info()[1]
        host = client_address[0] if isinstance(client_address, tuple) else client_address
        if isinstance(exc, OSError):  # BrokenPipe, ConnectionReset, TimeoutError
            log.info("http client %s went away: %s", host, type(exc).__name__)
        else:
            log.error("http request from %s failed: %s: %s", host, type(exc).__name__, exc)


class Listener:
    def __init__(self, server: _Server) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)

    @classmethod
    def start(cls, calls: Callbacks, listen: str) -> Listener:
        host, _, port = listen.rpartition(":")
        try:
            server = _Server((host or "127.0.0.1", int(port)), _Handler)
        except (ValueError, OSError) as exc:
            raise ConfigError(
                f"Cannot listen on {listen!r} ({exc}); set [daemon] listen to a free "
                'host:port, or "" to turn the listener off.'
            ) from exc
        server.calls = calls
        listener = cls(server)
        listener.thread.start()
        return listener

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
