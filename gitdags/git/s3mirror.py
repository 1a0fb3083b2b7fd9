"""Writing what an S3 poll found into the source's bare mirror: one commit (`git fast-import`,
blobs streamed from the objects read) and the poll's state, moved together in one git ref
transaction, so that a crash leaves the mirror as before the poll or after it."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import IO, Any

from gitdags.errors import SourceError
from gitdags.git.source import GitSource

STATE_REF = "refs/gitdags/s3-state"  # a blob: what the branch's head was made from
IMPORT_REF = "refs/gitdags/s3-import"  # fast-import's scratch branch
NOTES_REF = "refs/notes/s3"  # per commit, every object it read: `git notes --ref=s3 show C`
SHOWN = 10  # paths named in a commit message (and trailers); the rest are counted: each
# version of a DAG records its commit's message, so a first poll of 10,000 objects must not
# give each of them a message naming all 10,000
ZERO = "0" * 40


@dataclass
class Read:
    """One object read from the bucket: its path in the tree, its bytes, and what the state
    records of it (ETag or SHA-256, size, version id)."""

    path: str
    body: IO[bytes]
    size: int
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class Change:
    """What one poll brings: the objects read, the paths gone, the message, the new state."""

    title: str
    reads: list[Read]
    deleted: list[str]
    lines: list[str]
    trailers: list[str]
    state: dict[str, Any]  # {"url", "mode", "files": {path: record with "blob"}, ...}
    when: float  # the author date: when the publisher wrote the newest object


def read_state(git: GitSource, head: str | None, url: str) -> dict[str, Any]:
    """The state the head was made from; {} when there is none that matches it (a first poll,
    a changed url, a mirror written otherwise): the next commit is then made from scratch."""
    done = git._git("cat-file", "blob", STATE_REF, check=False)
    if done.returncode != 0 or head is None:
        return {}
    try:
        state = json.loads(done.stdout)
    except ValueError:
        return {}
    if not isinstance(state, dict) or state.get("head") != head or state.get("url") != url:
        return {}
    return state


def head_or_none(git: GitSource) -> str | None:
    done = git._git(
        "rev-parse",
        "--verify",
        "--quiet",
        f"refs/heads/{git.config.branch}^{{commit}}",
        check=False,
    )
    return done.stdout.decode().strip() or None


def quoted(path: str) -> bytes:
    """A path as fast-import reads it: C-style quoted (control characters never get here)."""
    return b'"' + path.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8") + b'"'


def message(change: Change, url: str) -> str:
    lines, trailers = change.lines, change.trailers
    more = len(lines) - SHOWN
    body = lines[:SHOWN] + ([f"... and {more} more"] if more > 0 else [])
    extra = len(trailers) - SHOWN
    tail = trailers[:SHOWN] + ([f"S3-More: {extra} more objects"] if extra > 0 else [])
    return "\n\n".join(
        part
        for part in (change.title, f"Polled from {url}", "\n".join(body), "\n".join(tail))
        if part
    )


def note(change: Change) -> bytes:
    """Everything the poll changed and every object it read, without the message's cap."""
    return "\n".join([*change.lines, "", *change.trailers, ""]).encode("utf-8")


def write(git: GitSource, head: str | None, change: Change, reset: bool) -> str:
    """Commit `change` on the source's branch (from scratch when `reset`) and store its state;
    the new head (the old one when the tree did not change: only the state moves)."""
    marks = git.mirror / "s3-import.marks"
    text = message(change, git.config.url).encode("utf-8")
    notes = git._git("rev-parse", "--verify", "--quiet", NOTES_REF, check=False)
    notes_tip = notes.stdout.decode().strip()
    mark = len(change.reads) + 1
    when = int(change.when)
    proc = subprocess.Popen(
        [
            "git",
            "-C",
            str(git.mirror),
            "fast-import",
            "--quiet",
            "--done",
            f"--export-marks={marks}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=git._env,
    )
    assert proc.stdin is not None
    out = proc.stdin
    try:
        for number, read in enumerate(change.reads, 1):
            out.write(b"blob\nmark :%d\ndata %d\n" % (number, read.size))
            read.body.seek(0)
            while chunk := read.body.read(1 << 20):
                out.write(chunk)
            out.write(b"\n")
        out.write(b"reset %s\n" % IMPORT_REF.encode())
        out.write(b"commit %s\nmark :%d\n" % (IMPORT_REF.encode(), mark))
        out.write(b"author s3 <s3@gitdags> %d +0000\n" % when)
        out.write(b"committer gitdags <gitdags@localhost> %d +0000\n" % int(_now()))
        out.write(b"data %d\n%s\n" % (len(text), text))
        if head is not None:
            out.write(b"from %s\n" % head.encode())
        if reset:
            out.write(b"deleteall\n")
        for path in change.deleted:
            out.write(b"D %s\n" % quoted(path))
        for number, read in enumerate(change.reads, 1):
            out.write(b"M 100644 :%d %s\n" % (number, quoted(read.path)))
        out.write(b"\ncommit %s\n" % NOTES_REF.encode())
        out.write(b"committer gitdags <gitdags@localhost> %d +0000\ndata 0\n" % int(_now()))
        if notes_tip:
            out.write(b"from %s\n" % notes_tip.encode())
        body = note(change)
        out.write(b"N inline :%d\ndata %d\n%s\n" % (mark, len(body), body))
        out.write(b"\ndone\n")
        out.close()
    except BrokenPipeError:
        pass
    finally:
        for read in change.reads:
            read.body.close()
    stderr = proc.stderr.read() if proc.stderr else b""
    if proc.wait(timeout=git.remaining(300)) != 0:
        raise SourceError(
            f"Source {git.config.name!r}: writing the poll into the mirror failed "
            f"({stderr.decode('utf-8', 'replace').strip()[:200]}); delete {git.mirror} to "
            "start it again."
        )
    blobs = _marks(marks, len(change.reads))
    marks.unlink(missing_ok=True)
    files = change.state["files"]
    for number, read in enumerate(change.reads, 1):
        files[read.path] = {**read.record, "blob": blobs[number]}
    new = git._git("rev-parse", IMPORT_REF).stdout.decode().strip()
    if head is not None and _tree(git, new) == _tree(git, head):
        new = head  # nothing a reader sees changed: keep the head, move the state
    change.state["head"] = new
    state_blob = (
        git._git(
            "hash-object", "-w", "--stdin", input=json.dumps(change.state, sort_keys=True).encode()
        )
        .stdout.decode()
        .strip()
    )
    branch = f"refs/heads/{git.config.branch}"
    script = (
        f"start\nupdate {branch} {new} {head or ZERO}\nupdate {STATE_REF} {state_blob}\n"
        f"delete {IMPORT_REF}\nprepare\ncommit\n"
    )
    git._git("update-ref", "--stdin", input=script.encode())
    return new


def _marks(path: os.PathLike[str], count: int) -> dict[int, str]:
    blobs: dict[int, str] = {}
    if count:
        with open(path, encoding="ascii") as file:
            for line in file:
                mark, sha = line.split()
                blobs[int(mark.lstrip(":"))] = sha
    return blobs


def _tree(git: GitSource, commit: str) -> str:
    return git._git("rev-parse", f"{commit}^{{tree}}").stdout.decode().strip()


def _now() -> float:
    import time

    return time.time()
