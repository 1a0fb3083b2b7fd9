"""git's error messages as one sentence each, saying what to check; URLs without credentials."""

from __future__ import annotations

import re
from pathlib import Path

from gitdags.config import SourceConfig, redact_url


def explain(config: SourceConfig, mirror: Path, what: str, stderr: str) -> str:
    """What git said when `git {what}` failed for this source's mirror, as one sentence."""
    name, url = config.name, config.safe_url
    text = redact_url_text(stderr, config.url)
    lower = text.lower()
    if "couldn't find remote ref" in lower:
        branch = config.branch
        return f"Source {name!r}: branch {branch!r} does not exist in {url}; check its branch."
    if any(
        s in lower
        for s in (
            "authentication failed",
            "permission denied",
            "could not read username",
            "terminal prompts disabled",
        )
    ):
        return f"Source {name!r}: authentication to {url} failed; check the credentials."
    if any(s in lower for s in ("timed out", "operation too slow")):
        return (
            f"Source {name!r}: {url} did not answer in time (the connection timed out); "
            "check the URL, the network and any firewall on the way."
        )
    if any(s in lower for s in ("connection refused", "couldn't connect to server")):
        return (
            f"Source {name!r}: {url} refused the connection (nothing serves git at that "
            "host and port); check the URL's host and port, and that the git server runs."
        )
    if any(
        s in lower
        for s in ("could not resolve host", "unable to connect", "network is unreachable")
    ):
        return f"Source {name!r}: {url} is unreachable; check the URL and the network."
    if "does not appear to be a git repository" in lower or "not a git repository" in lower:
        return f"Source {name!r}: {url} is not a git repository; check its url."
    if "no space left" in lower:
        return f"Source {name!r}: the disk is full; free space for {mirror}."
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "no output")
    return f"Source {name!r}: `git {what}` failed: {first.removeprefix('fatal: ')}."


def verb(args: tuple[str, ...] | list[str]) -> str:
    """The git command a call runs, without its `-c key=value` options."""
    rest = list(args)
    while len(rest) > 1 and rest[0] == "-c":
        rest = rest[2:]
    return rest[0] if rest else "git"


def redact_url_text(text: str, url: str) -> str:
    """Replace the URL (with its credentials) and any user:password@ in free text."""
    text = text.replace(url, redact_url(url))
    return re.sub(r"(://[^/\s:@]+):[^/\s@]+@", r"\1:***@", text)
