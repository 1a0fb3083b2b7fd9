"""The git side: a bare mirror per source, fetched, diffed and read without a working tree.

Every operation runs the `git` command line, chosen per operation by speed and robustness:
`git diff-tree` diffs a 10k-file tree in a few milliseconds (dulwich's tree_changes takes
~50 ms), `git ls-tree -l` lists a tree with sizes, and one `git cat-file --batch` call reads
the commit and every changed blob of a sync in a single process. Sizes are checked with
`--batch-check` first so that an oversized blob is never read.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from gitdags.config import SourceConfig
from gitdags.errors import SourceError
from gitdags.git.explain import explain, verb
from gitdags.git.lock import clear_stale_locks, mirror_lock
from gitdags.git.paths import GITLINK, SYMLINK, Change, Entry, PathFilter, escaped_name
from gitdags.git.verify import check_signatures
from gitdags.model import Commit

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 300


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    # never a prompt: an askpass program the operator set (or a credential helper) answers,
    # else `true` answers nothing and the fetch fails at once with an authentication error
    env["GIT_ASKPASS"] = os.environ.get("GIT_ASKPASS") or "true"
    env["SSH_ASKPASS"] = os.environ.get("SSH_ASKPASS") or "true"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(var, None)
    return env


class GitSource:
    """One source's bare mirror. Reads count `blobs_read`, so tests can prove what was read."""

    def __init__(
        self,
        config: SourceConfig,
        mirror: Path,
        max_file_size: int,
        *,
        deadline: float | None = None,
    ) -> None:
        self.config = config
        self.mirror = mirror
        self.max_file_size = max_file_size
        self.misnamed: set[str] = set()  # paths whose names are not UTF-8 (see `_name`)
        self.deadline = deadline  # time.monotonic() by which the sync must be done
        self.accepts = PathFilter(config.subdir, config.include, config.exclude)
        self.blobs_read = 0
        self.note = ""  # what the fetch left out, in one sentence: said in the sync's note
        self._env = _git_env()

    # -- running git ------------------------------------------------------------------------------
    def _git(
        self, *args: str, input: bytes | None = None, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        cmd = ["git", "-C", str(self.mirror), *args]
        timeout = self.remaining(timeout)
        try:
            done = _run(cmd, input, self._env, timeout)
        except subprocess.TimeoutExpired as exc:
            raise SourceError(
                f"Source {self.config.name!r}: `git {verb(args)}` took over {timeout:.0f}s; "
                "check the network or the repository size."
            ) from exc
        except OSError as exc:
            raise SourceError(f"Cannot run git ({exc.strerror}); install git.") from exc
        if check and done.returncode != 0:
            raise SourceError(self._explain(verb(args), done.stderr.decode("utf-8", "replace")))
        return done

    def verify(self, old: str | None, head: str) -> None:
        """Raise unless the commits to serve carry a good signature of an allowed signer
        (`verify`: ssh with `allowed_signers`, or gpg with `gpg_home`): `head`, or with
        `verify_scope = "all"` every commit after `old` (a first sync verifies `head`)."""
        config = self.config
        if config.verify == "none":
            return
        commits = [head]
        if config.verify_scope == "all" and old and old != head and self.has_commit(old):
            commits = self._git("rev-list", "--reverse", f"{old}..{head}").stdout.decode().split()
        check_signatures(config, self.mirror, self._env, commits, self.remaining)

    def remaining(self, timeout: float) -> float:
        """`timeout`, shortened to what is left before the sync's deadline."""
        if self.deadline is None:
            return timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise SourceError(
                f"Source {self.config.name!r}: the sync passed its deadline; raise [daemon] "
                "sync_timeout if the repository needs longer."
            )
        return min(timeout, left)

    def _explain(self, what: str, stderr: str) -> str:
        return explain(self.config, self.mirror, what, stderr)

    # -- fetching ---------------------------------------------------------------------------------
    def ensure_mirror(self) -> None:
        if (self.mirror / "HEAD").is_file() and (self.mirror / "objects").is_dir():
            return
        if self.mirror.exists() or self.mirror.is_symlink():
            log.warning("mirror %s is damaged; recreating it", self.mirror)
            if self.mirror.is_dir() and not self.mirror.is_symlink():
                shutil.rmtree(self.mirror)
            else:  # a file (or a link) where the mirror should be
                self.mirror.unlink()
        self.mirror.parent.mkdir(parents=True, exist_ok=True)
        local = self.local_path()
        # A repository on this machine is cloned with hard links (git's local clone): ten
        # times faster than packing every object for a fetch. Anything else starts empty.
        command = (
            ["git", "clone", "--mirror", "--quiet", str(local), str(self.mirror)]
            if _is_repository(local)
            else ["git", "init", "--bare", "--quiet", str(self.mirror)]
        )
        done = subprocess.run(command, capture_output=True, env=self._env)
        if done.returncode != 0:
            shutil.rmtree(self.mirror, ignore_errors=True)
            raise SourceError(self._explain(command[1], done.stderr.decode("utf-8", "replace")))
        self._git("config", "gc.autoDetach", "false")

    def maintain(self) -> None:
        """Repack the mirror when git thinks it is due (the daemon calls this now and then),
        under the mirror's lock: never beside a fetch."""
        with self.locked():
            self._git("gc", "--auto", "--quiet", timeout=FETCH_TIMEOUT)

    def local_path(self) -> Path | None:
        """The repository's folder when it is on this machine (a path or a file:// URL)."""
        if self.config.is_local:
            return Path(self.config.url)
        if self.config.url.startswith("file://"):
            return Path(self.config.url[len("file://") :])
        return None

    def fetch(self) -> str:
        """Fetch the branch into the mirror; return its newest commit."""
        if self.config.is_local and not Path(self.config.url).exists():
            raise SourceError(
                f"Source {self.config.name!r}: repository {self.config.url} does not exist; "
                "check its url."
            )
        with self.locked():
            return self._fetch()

    def locked(self) -> AbstractContextManager[None]:
        """Hold the mirror's lock (one writer of a mirror at a time, across processes): wait
        for it until the sync's deadline, saying who holds it, then fail in one sentence."""
        return mirror_lock(self.mirror, self.config.name, self.deadline)

    def _fetch(self) -> str:
        self.ensure_mirror()
        branch = self.config.branch
        args = (
            "-c",
            "gc.auto=0",  # never a surprise repack inside a sync: see maintain()
            "fetch",
            "--no-tags",
            "--force",
            "--quiet",
            "--no-write-fetch-head",
            self.config.url,
            f"+refs/heads/{branch}:refs/heads/{branch}",
        )
        done = self._git(*args, timeout=FETCH_TIMEOUT, check=False)
        stderr = done.stderr.decode("utf-8", "replace")
        if done.returncode != 0 and clear_stale_locks(self.mirror, self.config.name, stderr):
            done = self._git(*args, timeout=FETCH_TIMEOUT, check=False)
        if done.returncode != 0:
            raise SourceError(self._explain("fetch", done.stderr.decode("utf-8", "replace")))
        return self.head()

    def head(self) -> str:
        done = self._git(
            "rev-parse", "--verify", "--quiet", f"refs/heads/{self.config.branch}^{{commit}}"
        )
        return done.stdout.decode().strip()

    def is_ancestor(self, old: str, new: str) -> bool:
        """Whether `old` is an ancestor of `new`; False too when the mirror lacks `old` (a
        force-push it no longer holds): git then exits with 128, not 1."""
        done = self._git("merge-base", "--is-ancestor", old, new, check=False)
        return done.returncode == 0

    def has_commit(self, sha: str) -> bool:
        return self._git("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0

    def ancestors(self, commit: str) -> list[str]:
        """`commit` and every commit before it."""
        return self._git("rev-list", commit).stdout.decode().split()

    def resolve(self, rev: str) -> str | None:
        """A full commit id for a (possibly abbreviated) commit of this mirror, else None."""
        done = self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        return done.stdout.decode().strip() or None if done.returncode == 0 else None

    # -- trees and diffs --------------------------------------------------------------------------
    def _name(self, path: str) -> str:
        """A path as git gives it, as text: a name that is not UTF-8 gets `\\x` escapes
        (it could not be stored) and is remembered in `misnamed`, to be an error of its own."""
        if path.isascii() or not any("\udc80" <= c <= "\udcff" for c in path):
            return path
        shown = escaped_name(path)
        self.misnamed.add(shown)
        return shown

    def _ls_tree(self, commit: str) -> Iterator[tuple[str, str, str, int]]:
        """(path as git has it, mode, blob, size) of every file under the source's subdir."""
        args = ["ls-tree", "-r", "-z", "-l", "--full-tree", commit]
        if self.accepts.prefix:
            args += ["--", self.accepts.prefix]
        out = self._git(*args).stdout.decode("utf-8", "surrogateescape")
        for record in out.split("\0"):
            if record:
                meta, path = record.split("\t", 1)
                mode, _type, blob, size = meta.split()
                yield path, mode, blob, int(size) if size != "-" else -1

    def tree(self, commit: str) -> dict[str, Entry]:
        """Every counted file at `commit`, by path."""
        entries = {}
        for raw, mode, blob, size in self._ls_tree(commit):
            path = self._name(raw)
            if mode != GITLINK and self.accepts(path):
                entries[path] = Entry(path, blob, mode, size)
        return entries

    def files_under(self, commit: str) -> dict[str, Entry]:
        """Every regular file under the source's subdir at `commit`, counted or not (the
        served tree holds them all); symlinks and submodules are left out."""
        entries = {}
        for path, mode, blob, size in self._ls_tree(commit):
            if mode in (GITLINK, SYMLINK) or path.startswith(".git/"):
                continue
            if not path.isascii() and any("\udc80" <= c <= "\udcff" for c in path):
                continue  # a name that is not UTF-8 cannot be written as text
            entries[path] = Entry(path, blob, mode, size)
        return entries

    def diff(self, old: str, new: str) -> list[Change]:
        """Counted files changed from `old` to `new` (renames detected by git)."""
        args = ["diff-tree", "-r", "-z", "-M", "--raw", "--no-commit-id", old, new]
        if self.accepts.prefix:
            args += ["--", self.accepts.prefix]
        out = self._git(*args).stdout.decode("utf-8", "surrogateescape")
        fields = [self._name(f) for f in out.split("\0")]
        changes: list[Change] = []
        i = 0
        while i < len(fields) - 1:
            meta = fields[i].lstrip(":").split()
            _old_mode, new_mode, _old_blob, new_blob, status = meta
            kind = status[0]
            if kind in "RC":
                old_path, path = fields[i + 1], fields[i + 2]
                i += 3
            else:
                old_path, path = None, fields[i + 1]
                i += 2
            entry = Entry(path, new_blob, new_mode) if new_mode != GITLINK else None
            if kind == "D":
                if self.accepts(path):
                    changes.append(Change("D", path, None))
                continue
            if kind == "R" and old_path is not None:
                if self.accepts(old_path) and self.accepts(path):
                    changes.append(Change("R", path, entry, old_path))
                    continue
                if self.accepts(old_path):
                    changes.append(Change("D", old_path, None))
                kind = "A"
            if entry is not None and self.accepts(path):
                changes.append(Change("A" if kind in "AC" else "M", path, entry))
        return changes

    def last_changed(self, old: str | None, head: str, paths: Iterable[str]) -> dict[str, str]:
        """For each path, the newest commit after `old` up to `head` that changed it (for a
        first sync, in the whole history). One `git log`, stopped once every path is found."""
        wanted = set(paths)
        found: dict[str, str] = {}
        if not wanted:
            return found
        args = ["git", "-C", str(self.mirror), "log", "--format=%x01%H", "--name-only", "-z"]
        args += ["--no-renames", head if old is None else f"{old}..{head}"]
        if self.accepts.prefix:
            args += ["--", self.accepts.prefix]
        with subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self._env
        ) as proc:
            assert proc.stdout is not None
            sha, rest = "", b""
            while len(found) < len(wanted):
                chunk = proc.stdout.read(65536)
                if not chunk:
                    break
                *tokens, rest = (rest + chunk).split(b"\0")
                for token in tokens:
                    name = self._name(token.lstrip(b"\n").decode("utf-8", "surrogateescape"))
                    if name.startswith("\x01"):
                        sha = name[1:]
                    elif name in wanted and name not in found:
                        found[name] = sha
            proc.kill()
        return found

    # -- reading ----------------------------------------------------------------------------------
    def read(self, commit: str, entries: list[Entry]) -> tuple[Commit, dict[str, bytes | int]]:
        """The commit's metadata and each entry's content; an int instead of bytes is the size
        of a blob over the limit, which is not read."""
        unknown = [e.blob for e in entries if e.size < 0 and e.mode != SYMLINK]
        sizes: dict[str, int] = {}
        if unknown:
            out = self._git("cat-file", "--batch-check", input="\n".join(unknown).encode() + b"\n")
            for line in out.stdout.decode().splitlines():
                parts = line.split()
                if len(parts) == 3:
                    sizes[parts[0]] = int(parts[2])
        result: dict[str, bytes | int] = {}
        wanted: list[str] = []
        for e in entries:
            if e.mode == SYMLINK:
                continue
            size = e.size if e.size >= 0 else sizes.get(e.blob, 0)
            if size > self.max_file_size:
                result[e.path] = size
            else:
                wanted.append(e.blob)
        objects = self._batch([commit, *dict.fromkeys(wanted)])
        self.blobs_read += len(set(wanted))
        for e in entries:
            if e.mode != SYMLINK and e.path not in result:
                result[e.path] = objects[e.blob]
        return parse_commit(commit, objects[commit]), result

    def checkout_tree(self, commit: str, dest: Path) -> Path:
        """The tree at `commit` written to `dest`, updated in place from the last one (git
        writes only the files that changed: `read-tree -m -u` on an index of its own)."""
        dest.mkdir(parents=True, exist_ok=True)
        index = dest.with_name(dest.name + ".index")
        first = not index.exists()
        env = {**self._env, "GIT_INDEX_FILE": str(index)}
        args = ["git", f"--git-dir={self.mirror}", f"--work-tree={dest}", "read-tree"]
        args += ["--reset", "-u", commit] if first else ["-m", "-u", commit]
        done = subprocess.run(args, capture_output=True, env=env, timeout=self.remaining(300))
        if done.returncode != 0 and not first:  # a damaged tree: write it again
            index.unlink(missing_ok=True)
            args[-3:] = ["--reset", "-u", commit]
            done = subprocess.run(args, capture_output=True, env=env, timeout=self.remaining(300))
        if done.returncode != 0:
            raise SourceError(self._explain("read-tree", done.stderr.decode("utf-8", "replace")))
        return dest

    def blobs(self, shas: Iterable[str]) -> dict[str, bytes]:
        """The content of these blobs (from any commit the mirror holds)."""
        wanted = list(dict.fromkeys(shas))
        return self._batch(wanted) if wanted else {}

    def commits(self, shas: Iterable[str]) -> dict[str, Commit]:
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        objects = self._batch(wanted)
        return {sha: parse_commit(sha, objects[sha]) for sha in wanted}

    def _batch(self, shas: list[str]) -> dict[str, bytes]:
        out = self._git("cat-file", "--batch", input="\n".join(shas).encode() + b"\n").stdout
        objects: dict[str, bytes] = {}
        pos = 0
        for sha in shas:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            if len(header) != 3:
                raise SourceError(
                    f"Source {self.config.name!r}: object {sha[:12]} is missing from the mirror; "
                    f"delete {self.mirror} to fetch it again."
                )
            size = int(header[2])
            objects[sha] = out[end + 1 : end + 1 + size]
            pos = end + 1 + size + 1
        return objects


def open_source(
    config: SourceConfig, mirror: Path, max_file_size: int, *, deadline: float | None = None
) -> GitSource:
    """The mirror of a source: fetched with git, or polled from S3 for an s3:// url."""
    if config.is_s3:
        from gitdags.git.s3source import S3Source

        return S3Source(config, mirror, max_file_size, deadline=deadline)
    return GitSource(config, mirror, max_file_size, deadline=deadline)


def _is_repository(path: Path | None) -> bool:
    return path is not None and ((path / "objects").is_dir() or (path / ".git").is_dir())


def parse_commit(sha: str, raw: bytes) -> Commit:
    head, _, message = raw.decode("utf-8", "replace").partition("\n\n")
    author, when = "", ""
    parents = []
    for line in head.splitlines():
        if line.startswith("parent "):
            parents.append(line[len("parent ") :].strip())
        elif line.startswith("author "):
            match = re.match(r"author (.*) <[^>]*> (\d+) ([+-]\d{4})", line)
            if match:
                author = match.group(1)
        elif line.startswith("committer "):
            match = re.match(r"committer .* <[^>]*> (\d+) ([+-]\d{4})", line)
            if match:
                when = _iso(int(match.group(1)), match.group(2))
    return Commit(sha, author, when, message.strip(), tuple(parents))


def _iso(epoch: int, offset: str) -> str:
    import datetime as dt

    sign = 1 if offset[0] == "+" else -1
    delta = dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])) * sign
    return dt.datetime.fromtimestamp(epoch, dt.timezone(delta)).isoformat()


def _run(
    cmd: list[str], input: bytes | None, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[bytes]:
    """`subprocess.run(..., timeout=)` without its polling: given a timeout, Popen.wait
    sleeps 0.5, 1, 2... ms between checks that the process ended, which cost a sync of one
    commit 5-10 ms over its 7 git commands. Here the wait blocks; a timer kills a process
    that outlives `timeout`."""
    with subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.daemon = True
        timer.start()
        try:
            out, err = proc.communicate(input)
        finally:
            timer.cancel()
        if expired.is_set():
            raise subprocess.TimeoutExpired(cmd, timeout, out, err)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
