"""`gitdags doctor` and `gitdags backup`: is the state whole, and a copy of it taken online.

The checks, each a `Finding`: SQLite's integrity check and foreign keys; every served version
present and valid; each source's mirror intact and holding its served commit; the deploy
folder exactly the served set. `repair` makes again what can be made again from git and the
database (a damaged mirror, the deploy folder); a damaged database is never rewritten: it is
restored from a backup, which `backup` takes with SQLite's online backup API while the daemon
runs.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitdags.errors import GitdagsError, StoreError, damaged

if TYPE_CHECKING:
    from gitdags.engine import SyncEngine


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    repaired: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "ok": self.ok,
            "detail": self.detail,
            "repaired": self.repaired,
        }


def quick_check(database: Path) -> str | None:
    """None when SQLite finds the database whole (its quick check), else what it found."""
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    found = [str(r[0]) for r in rows]
    return None if found == ["ok"] else "; ".join(found[:3])


def backup(database: Path, target: Path) -> int:
    """Copy the database to `target` online (SQLite's backup API); the pages copied."""
    if target.exists():
        raise GitdagsError(f"{target} exists; give a new file for the backup.")
    if not database.exists():
        raise StoreError(f"Database {database} does not exist; there is nothing to back up.")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        pages = int(copy.execute("PRAGMA page_count").fetchone()[0])
        if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise StoreError(
                f"The backup {target} does not check out; the database may be damaged."
            )
    except sqlite3.DatabaseError as exc:
        copy.close()
        target.unlink(missing_ok=True)
        raise StoreError(damaged(database, exc)) from exc
    finally:
        source.close()
    copy.close()
    return pages


def examine(engine: SyncEngine, *, repair: bool = False) -> list[Finding]:
    """Every check, in order; with `repair`, what can be made again is made again."""
    settings = engine.settings
    problem = quick_check(settings.database)
    if problem is not None:  # nothing else can be trusted: say so and stop
        return [
            Finding(
                "database",
                False,
                f"{settings.database} is damaged ({problem}); restore it from a backup "
                "(`gitdags backup` makes them).",
            )
        ]
    store = engine.store
    findings = [Finding("database", True, f"{settings.database}: integrity check ok")]
    bad_keys = store.conn.execute("PRAGMA foreign_key_check").fetchall()
    findings.append(
        Finding("foreign keys", not bad_keys, f"{len(bad_keys)} rows point at nothing")
        if bad_keys
        else Finding("foreign keys", True, "ok")
    )
    wrong = store.served_without_version()
    findings.append(
        Finding(
            "served versions",
            not wrong,
            "every served version is present and valid"
            if not wrong
            else f"{len(wrong)} DAGs serve a version that is missing or invalid: "
            + ", ".join(wrong[:5]),
        )
    )
    for config in settings.sources:
        findings.append(_mirror(engine, config.name, repair=repair))
    findings.append(_deploy(engine, repair=repair))
    return findings


def _mirror(engine: SyncEngine, name: str, *, repair: bool) -> Finding:
    config = engine.settings.source(name)
    git = engine.git(config)
    record = engine.store.source_record(name)
    served = record.served_commit if record else None
    problem = _mirror_problem(git.mirror, served)
    check = f"mirror {name}"
    if problem is None:
        return Finding(check, True, f"{git.mirror}: intact")
    if not repair:
        return Finding(
            check, False, f"{git.mirror}: {problem}; `gitdags doctor --repair` fetches it again"
        )
    shutil.rmtree(git.mirror, ignore_errors=True)
    try:
        git.fetch()
    except GitdagsError as exc:
        return Finding(check, False, f"{git.mirror}: {problem}; fetching it again failed: {exc}")
    still = _mirror_problem(git.mirror, served)
    if still is not None:
        return Finding(check, False, f"{git.mirror}: fetched again, but {still}")
    return Finding(check, True, f"{git.mirror}: {problem}; fetched again", repaired=True)


def _mirror_problem(mirror: Path, served: str | None) -> str | None:
    if not (mirror / "HEAD").is_file() or not (mirror / "objects").is_dir():
        return "missing or not a repository"
    done = subprocess.run(
        ["git", "-C", str(mirror), "fsck", "--connectivity-only", "--no-progress", "--no-dangling"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        first = (done.stderr or done.stdout).strip().splitlines()[:1]
        return f"git fsck failed ({first[0] if first else 'no output'})"
    if served:
        found = subprocess.run(
            ["git", "-C", str(mirror), "cat-file", "-e", f"{served}^{{commit}}"],
            capture_output=True,
        )
        if found.returncode != 0:
            return f"the served commit {served[:12]} is missing"
    return None


def _deploy(engine: SyncEngine, *, repair: bool) -> Finding:
    publisher = engine.publisher
    folder = publisher.folder if publisher is not None else None
    if folder is None:
        return Finding("deploy folder", True, "none configured")
    problem = folder.mismatch(engine.store)
    if problem is None:
        return Finding("deploy folder", True, f"{folder.root}: the served set, complete")
    if not repair:
        return Finding(
            "deploy folder",
            False,
            f"{folder.root}: {problem}; `gitdags doctor --repair` rewrites it",
        )
    folder.publish(engine.store, force=True)
    still = folder.mismatch(engine.store)
    if still is not None:
        return Finding("deploy folder", False, f"{folder.root}: rewritten, but {still}")
    return Finding("deploy folder", True, f"{folder.root}: {problem}; rewritten", repaired=True)
