"""A bounded kill -9 loop of the daemon under a stream of commits: does every restarted daemon
catch up?

A committer thread commits a random change (edits, a broken file, a deletion, a new file) to a
repository of `--files` DAGs (40) every ~0.2 s. The daemon (interval 1 s, a deploy folder, a
listener) is started, killed with SIGKILL after 0.3-2 s, and started again, `--kills` times
per loop. Some restarts (one in
`--check-every`, and the last of each loop, once the commits have stopped) are left running
until the commit served reaches the tip the repository had when they started: the time that
takes is a restart's catch-up time. A restart that has not caught up within `--patience`
seconds is a stall: its stacks (SIGUSR1, faulthandler) and the tail of its log are printed.
The database must stay whole throughout.

    python benchmarks/daemon_kill_loop.py [--loops 4] [--kills 60] [--seed 1] [--remote] [--group]

`--remote` serves the repository as a bare file:// remote (no ref watch: interval polls only);
`--group` kills the daemon's process group (its git commands too), as `systemctl kill` or a
container runtime does, instead of the daemon's process alone; `--served-branch` and `--hooks`
add those consumers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from kill_loop import dag, whole  # noqa: E402
from repo import GIT_ENV, WORK, git  # noqa: E402

# the daemon, with its stacks dumped to its log on SIGUSR1 (to see what a stalled one does)
LAUNCH = (
    "import faulthandler, signal, sys; faulthandler.register(signal.SIGUSR1, all_threads=True); "
    "from gitdags.cli import main; sys.argv[0] = 'gitdags'; main()"
)


class Committer(threading.Thread):
    """Commits a random change every ~0.2 s until stopped (and pushes it to `remote`)."""

    def __init__(self, repo: Path, remote: Path | None, rnd: random.Random, files: int) -> None:
        super().__init__(daemon=True)
        self.repo, self.remote, self.rnd, self.files = repo, remote, rnd, files
        self.halt = threading.Event()
        self.commits = 0
        self.lock = threading.Lock()  # held while a commit is being made

    def run(self) -> None:
        while not self.halt.wait(self.rnd.uniform(0.1, 0.3)):
            with self.lock:
                self.commits += 1
                for _ in range(self.rnd.randint(1, 3)):
                    i = self.rnd.randrange(self.files + 5)
                    path = self.repo / f"k{i:03}.yaml"
                    roll = self.rnd.random()
                    if roll < 0.1 and path.exists():
                        path.unlink()
                    else:
                        path.write_text(dag(i, self.commits, broken=roll < 0.2))
                git(self.repo, "add", "--all")
                git(self.repo, "commit", "--quiet", "--allow-empty", "-m", f"c{self.commits}")
                if self.remote is not None:
                    git(self.repo, "push", "--quiet", str(self.remote), "main")

    def tip(self) -> str:
        with self.lock:
            return git(self.repo, "rev-parse", "HEAD")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def served_commit(database: Path) -> str | None:
    if not database.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT served_commit FROM sources WHERE name = 'main'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def record(database: Path) -> tuple[object, ...] | None:
    """The source's failures in a row and last error, as the database has them."""
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT failures, last_error FROM sources").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return (str(exc),)


def reached(repo: Path, tip: str, served: str | None) -> bool:
    """The served commit is `tip` or a commit after it."""
    if served is None:
        return False
    done = subprocess.run(
        ["git", "merge-base", "--is-ancestor", tip, served], cwd=repo, env=GIT_ENV
    )
    return done.returncode == 0


def start(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.pop("GITDAGS_TEST_FAULTS", None)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "--config", str(cfg), "daemon"],
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=True,  # its own process group, as a service has its own cgroup
        )


def kill_daemon(proc: subprocess.Popen[bytes], group: bool) -> None:
    """SIGKILL the daemon, or (`group`) the daemon and every git it runs, as systemd does."""
    if group:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.kill()
    proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=4)
    parser.add_argument("--kills", type=int, default=60, help="kills per loop")
    parser.add_argument("--check-every", type=int, default=5)
    parser.add_argument("--patience", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--files", type=int, default=40, help="DAG files in the repository")
    parser.add_argument("--remote", action="store_true")
    parser.add_argument(
        "--group", action="store_true", help="kill the whole process group (git included)"
    )
    parser.add_argument("--dir", type=Path, default=WORK / "daemon-kill-loop")
    parser.add_argument("--served-branch", action="store_true", help="publish served branches")
    parser.add_argument("--hooks", action="store_true", help="a command hook on every change")
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    total = {"kills": 0, "checked": 0, "caught up": 0, "stalls": 0, "broken database": 0}
    total["stale git locks removed"] = 0
    longest = 0.0
    started = time.perf_counter()
    for loop in range(1, args.loops + 1):
        root = args.dir
        shutil.rmtree(root, ignore_errors=True)
        repo = root / "repo"
        repo.mkdir(parents=True)
        git(root, "init", "--quiet", "--initial-branch=main", str(repo))
        for i in range(args.files):
            (repo / f"k{i:03}.yaml").write_text(dag(i, 0))
        git(repo, "add", "--all")
        git(repo, "commit", "--quiet", "-m", "start")
        remote = None
        url = str(repo)
        if args.remote:
            remote = root / "remote.git"
            git(root, "clone", "--bare", "--quiet", str(repo), str(remote))
            url = f"file://{remote}"
        database = root / "state" / "g.db"
        cfg = root / "config.toml"
        served = f'git_repo = "{root / "served.git"}"\n' if args.served_branch else ""
        hooks = f'[[hooks]]\nname = "log"\ncommand = "cat >> {root / "hooks.log"}"\n'
        cfg.write_text(
            f'[state]\ndatabase = "{database}"\n'
            f'[publish]\ndeploy_dir = "{root / "deploy"}"\n{served}'
            f'[daemon]\ninterval = "1s"\nlisten = "127.0.0.1:{free_port()}"\n'
            f'[[sources]]\nname = "main"\nurl = "{url}"\n' + (hooks if args.hooks else "")
        )
        log = root / "daemon.log"
        committer = Committer(repo, remote, rnd, args.files)
        committer.start()
        for kill in range(1, args.kills + 1):
            last = kill == args.kills
            if last:
                committer.halt.set()
                committer.join()
            check = last or rnd.randrange(args.check_every) == 0
            tip = committer.tip()
            mark = log.stat().st_size if log.exists() else 0
            proc = start(cfg, log)
            begun = time.monotonic()
            try:
                if check:
                    total["checked"] += 1
                    while time.monotonic() - begun < args.patience:
                        if reached(repo, tip, served_commit(database)) or proc.poll() is not None:
                            break
                        time.sleep(0.05)
                    took = time.monotonic() - begun
                    if reached(repo, tip, served_commit(database)):
                        total["caught up"] += 1
                        longest = max(longest, took)
                    else:
                        total["stalls"] += 1
                        if proc.poll() is None:
                            proc.send_signal(signal.SIGUSR1)  # its stacks, into the log
                            time.sleep(1)
                        tail = log.read_bytes()[mark:].decode("utf-8", "replace")
                        print(f"--- loop {loop}, restart {kill}: not caught up in {took:.0f}s")
                        print(f"reconcile record: {record(database)}")
                        print(tail[-12000:])
                else:
                    time.sleep(rnd.uniform(0.3, 2.0))
            finally:
                kill_daemon(proc, args.group)
            total["kills"] += 1
            total["broken database"] += database.exists() and not whole(database)
        said = log.read_text("utf-8", "replace") if log.exists() else ""
        total["stale git locks removed"] += said.count("removing a stale git lock")
        print(
            f"loop {loop}: {committer.commits} commits; so far {total['caught up']}/"
            f"{total['checked']} checked restarts caught up, longest {longest:.1f}s",
            flush=True,
        )
    seconds = time.perf_counter() - started
    print(
        f"daemon kill -9 loop: {args.loops} loops, {total['kills']} kills, "
        f"{total['caught up']}/{total['checked']} checked restarts caught up "
        f"(longest {longest:.1f}s), {total['stalls']} stalls, "
        f"{total['broken database']} broken databases, {total['stale git locks removed']} "
        f"stale git locks removed, {seconds:.0f}s (seed {args.seed})"
    )
    if total["stalls"] or total["broken database"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
