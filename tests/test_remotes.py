"""Remotes people use: https through git's smart-HTTP CGI (`git http-backend`) behind a
loopback server that wants basic auth, with credentials from GIT_ASKPASS or the URL; they
never show in logs, the database, `status` or errors."""

from __future__ import annotations

import base64
import logging
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gitdags.config import SourceConfig
from tests.conftest import GitRepo, dag_yaml, git

USER, TOKEN = "ci-bot", "s3cr3t-t0ken"


class _GitHttp(BaseHTTPRequestHandler):
    """git http-backend as CGI, behind basic auth."""

    root: Path

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _cgi(self) -> None:
        wanted = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != wanted:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": USER,
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _cgi


@pytest.fixture
def https_remote(tmp_path: Path, repo: GitRepo) -> Iterator[str]:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    served = tmp_path / "srv"
    served.mkdir()
    git(tmp_path, "clone", "--bare", "--quiet", str(repo.path), str(served / "dags.git"))
    handler = type("Handler", (_GitHttp,), {"root": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dags.git"
    finally:
        server.shutdown()
        server.server_close()


def secrets_anywhere(engine, caplog) -> str:
    dump = "\n".join(engine.store.conn.iterdump())
    status = str([s.to_dict() for s in engine.status()])
    return dump + status + caplog.text


def test_https_with_askpass_and_with_a_url_token_never_leak_the_token(
    tmp_path: Path, https_remote: str, make_engine, monkeypatch, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    engine = make_engine(SourceConfig("web", https_remote))
    (result,) = engine.sync()  # no credentials: one sentence, at once, never a prompt
    assert result.error is not None and "authentication" in result.error.lower()
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(f'#!/bin/sh\ncase "$1" in Username*) echo {USER};; *) echo {TOKEN};; esac\n')
    askpass.chmod(0o755)
    monkeypatch.setenv("GIT_ASKPASS", str(askpass))
    (result,) = engine.sync()
    assert result.error is None, result.error
    assert engine.dag("a").served_version == 1
    assert TOKEN not in secrets_anywhere(engine, caplog)

    monkeypatch.delenv("GIT_ASKPASS")
    with_token = https_remote.replace("http://", f"http://{USER}:{TOKEN}@")
    other = make_engine(SourceConfig("web", with_token))
    (result,) = other.sync()
    assert result.error is None, result.error
    wrong = make_engine(SourceConfig("web", with_token.replace(TOKEN, "wrong-" + TOKEN)))
    (result,) = wrong.sync()
    assert result.error is not None and TOKEN not in result.error
    assert TOKEN not in secrets_anywhere(other, caplog)


def test_a_git_command_that_hangs_is_killed_at_the_sync_timeout(make_engine) -> None:
    """git's commands run without subprocess.run's polled wait (`git.source._run`): one that
    outlives the sync's deadline is still killed and said in one sentence. Here `git fetch`
    waits on a server that accepts the connection and never answers."""
    import socket
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        engine = make_engine(
            SourceConfig(name="hung", url=f"git://127.0.0.1:{port}/repo.git"), sync_timeout=1.5
        )
        started = time.monotonic()
        (result,) = engine.sync()
        assert result.error and re.search(r"`git fetch` took over \d+s", result.error), result.error
        assert time.monotonic() - started < 30
    finally:
        server.close()
