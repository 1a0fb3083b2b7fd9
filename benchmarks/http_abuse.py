"""The daemon's listener under abuse: 200 bad clients at once (trickling requests, bad
signatures, lying Content-Lengths, unknown sources), while /healthz is timed.

    python benchmarks/http_abuse.py [--clients 200]

Prints /healthz p50/p99 with and without the abuse (the baseline, same run), and what the bad
clients got: every bad signature a 401 (and no sync), every unknown source a 404 that names no
source, every bad length a 400/413.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from repo import WORK, git  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(port: int, method: str, path: str, body: bytes = b"", headers=None) -> int:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body or None, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def timed_health(port: int, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        code = request(port, "GET", "/healthz")
        samples.append((time.perf_counter() - start) * 1000)
        assert code == 200, code
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args()
    root = WORK / "http-abuse"
    shutil.rmtree(root, ignore_errors=True)
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(root, "init", "--quiet", "--initial-branch=main", str(repo))
    (repo / "a.yaml").write_text("dag_id: a\ntasks: [{id: a, type: empty}]\n")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "one")
    port = free_port()
    config = root / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{root / "g.db"}"\n'
        f'[daemon]\nlisten = "127.0.0.1:{port}"\nwebhook_secret = "s3cret"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo}"\ninterval = "1h"\n'
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "gitdags", "--config", str(config), "daemon"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 30
        while request(port, "GET", "/healthz") != 200:
            assert time.monotonic() < deadline, "the daemon never became ready"
            time.sleep(0.05)
        baseline = timed_health(port, 200)
        results: dict[str, list[int]] = {
            "bad signature": [],
            "unknown source": [],
            "bad length": [],
        }
        slow = []

        def abuse(i: int) -> None:
            kind = i % 4
            if kind == 0:  # trickles half a request and waits
                conn = socket.create_connection(("127.0.0.1", port), timeout=60)
                conn.sendall(b"POST /hooks/main HTTP/1.1\r\nHost: x\r\n")
                slow.append(conn)
            elif kind == 1:
                sig = {"X-Hub-Signature-256": "sha256=" + "0" * 64}
                results["bad signature"].append(request(port, "POST", "/hooks/main", b"{}", sig))
            elif kind == 2:
                results["unknown source"].append(request(port, "POST", "/hooks/nope", b"{}"))
            else:
                with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
                    conn.sendall(
                        b"POST /hooks/main HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"
                    )
                    answer = conn.recv(64).decode(errors="replace")
                results["bad length"].append(int(answer.split()[1]) if answer else 0)

        threads = [threading.Thread(target=abuse, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        under = timed_health(port, 200)
        for t in threads:
            t.join()
        for conn in slow:
            conn.close()
        syncs = subprocess.run(
            ["sqlite3", str(root / "g.db"), "SELECT count(*) FROM syncs"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    finally:
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=30)

    def p(samples: list[float], q: float) -> float:
        return statistics.quantiles(samples, n=100)[int(q) - 1]

    print(f"{args.clients} bad clients at once against the daemon's listener")
    print(f"/healthz baseline  p50 {p(baseline, 50):.1f} ms  p99 {p(baseline, 99):.1f} ms")
    print(f"/healthz abused    p50 {p(under, 50):.1f} ms  p99 {p(under, 99):.1f} ms")
    for what, codes in results.items():
        print(
            f"  {what:<15} {len(codes)} tried: "
            + ", ".join(f"{c} x{codes.count(c)}" for c in sorted(set(codes)))
        )
    print(f"  syncs recorded (only the first one): {syncs or '?'}")
    print(f"  tracebacks in the daemon log: {err.decode().count('Traceback')}")


if __name__ == "__main__":
    main()
