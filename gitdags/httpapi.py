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
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from gitdags.errors import ConfigError
from gitdags.store import HistoryStore

if TYPE_CHECKING:
    from gitdags.daemon import Daemon

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20


def signature_ok(secret: str, body: bytes, headers: Any) -> bool:
    github = headers.get("X-Hub-Signature-256", "")
    if github.startswith("sha256="):
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(github[len("sha256=") :], expected)
    gitlab = headers.get("X-Gitlab-Token")
    return gitlab is not None and hmac.compare_digest(gitlab, secret)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(daemon: Daemon) -> str:
    from gitdags.daemon import BUCKETS

    lines: list[str] = []

    def header(name: str, kind: str, text: str) -> None:
        lines.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])

    with daemon.lock:
        states = [
            (
                s.name,
                dict(s.syncs),
                list(s.buckets),
                s.duration_sum,
                s.duration_count,
                s.last_success,
                s.served_commit,
                s.failures,
            )
            for s in daemon.states.values()
        ]
    header("gitdags_syncs_total", "counter", "Syncs by source and outcome.")
    for name, syncs, *_ in states:
        for outcome, n in syncs.items():
            lines.append(f'gitdags_syncs_total{{source="{_label(name)}",outcome="{outcome}"}} {n}')
    header("gitdags_sync_duration_seconds", "histogram", "Duration of syncs, fetch included.")
    for name, _s, buckets, total, count, *_ in states:
        src = f'source="{_label(name)}"'
        for bound, n in zip(BUCKETS, buckets, strict=True):
            lines.append(f'gitdags_sync_duration_seconds_bucket{{{src},le="{bound}"}} {n}')
        lines.append(f'gitdags_sync_duration_seconds_bucket{{{src},le="+Inf"}} {count}')
        lines.append(f"gitdags_sync_duration_seconds_sum{{{src}}} {total:.6f}")
        lines.append(f"gitdags_sync_duration_seconds_count{{{src}}} {count}")
    header(
        "gitdags_seconds_since_last_successful_sync", "gauge", "Age of the last successful sync."
    )
    now = time.time()
    for name, *_rest, last, _commit, _f in states:
        if last is not None:
            lines.append(
                f'gitdags_seconds_since_last_successful_sync{{source="{_label(name)}"}} '
                f"{now - last:.3f}"
            )
    header("gitdags_served_commit_info", "gauge", "The commit each source serves (as a label).")
    for name, *_rest, commit, _f in states:
        if commit:
            lines.append(
                f'gitdags_served_commit_info{{source="{_label(name)}",commit="{commit}"}} 1'
            )
    header("gitdags_source_consecutive_failures", "gauge", "Failed syncs in a row.")
    for name, *_rest, failures in states:
        lines.append(f'gitdags_source_consecutive_failures{{source="{_label(name)}"}} {failures}')
    header("gitdags_dags", "gauge", "DAGs by source and status.")
    store = HistoryStore(daemon.settings.database, readonly=True)
    try:
        for row in store.rows(
            "SELECT source, status, count(*) AS n FROM dags GROUP BY source, status"
        ):
            lines.append(
                f'gitdags_dags{{source="{_label(row["source"])}",status="{row["status"]}"}} '
                f"{row['n']}"
            )
    finally:
        store.close()
    return "\n".join(lines) + "\n"


def health(daemon: Daemon) -> tuple[bool, dict[str, Any]]:
    with daemon.lock:
        sources = [
            {
                "source": s.name,
                "synced": s.attempted and s.served_commit is not None,
                "served_commit": s.served_commit,
                "last_error": s.last_error,
                "consecutive_failures": s.failures,
            }
            for s in daemon.states.values()
        ]
    names = {s.name for s in daemon.settings.sources}
    ready = all(any(s["source"] == n and s["synced"] for s in sources) for n in names)
    return ready, {"ready": ready, "sources": sources}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "gitdags"

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
        daemon = self.server.daemon
        if self.path == "/healthz":
            ready, detail = health(daemon)
            self._send(200 if ready else 503, detail)
        elif self.path == "/metrics":
            self._send(200, metrics(daemon), "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._send(404, {"error": "not found; try /healthz, /metrics or POST /hooks/<source>"})

    def do_POST(self) -> None:
        daemon = self.server.daemon
        if not self.path.startswith("/hooks/"):
            self._send(404, {"error": "not found; webhooks go to POST /hooks/<source>"})
            return
        source = self.path[len("/hooks/") :].split("?")[0].strip("/")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"error": "body too large"})
            return
        body = self.rfile.read(length) if length else b""
        secret = daemon.settings.webhook_secret
        if secret and not signature_ok(secret, body, self.headers):
            log.warning("webhook refused: bad or missing signature", extra={"source": source})
            self._send(401, {"error": "bad or missing signature"})
            return
        if not daemon.trigger(source):
            self._send(404, {"error": f"no source named {source!r}"})
            return
        log.info("webhook: sync triggered", extra={"source": source})
        self._send(202, {"source": source, "triggered": True})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    daemon: Daemon


class Listener:
    def __init__(self, server: _Server) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)

    @classmethod
    def start(cls, daemon: Daemon, listen: str) -> Listener:
        host, _, port = listen.rpartition(":")
        try:
            server = _Server((host or "127.0.0.1", int(port)), _Handler)
        except (ValueError, OSError) as exc:
            raise ConfigError(
                f"Cannot listen on {listen!r} ({exc}); set [daemon] listen to a free "
                'host:port, or "" to turn the listener off.'
            ) from exc
        server.daemon = daemon
        listener = cls(server)
        listener.thread.start()
        return listener

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
