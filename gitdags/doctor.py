"""`gitdags doctor` and `gitdags backup`: is the state whole, and a copy of it taken online.

The checks, each a `Finding`: SQLite's integrity check and foreign keys; every served version
present and valid; each source's mirror intact and holding its served commit; the deploy
folder exactly the served set, file by file (each file's content against the hash its
generation's manifest recorded, and no file the manifest does not list); each served branch's
tree exactly the deploy folder's files. `repair` makes again what can be made again from git and
the database (a damaged mirror, the deploy folder, the served branches); a damaged database is
never rewritten: it is restored from a backup, which `backup` takes with SQLite's online backup
API while the daemon runs.

Doctor only reads unless it repairs, and never creates a database. It runs git with
`safe.directory` set for the one repository it reads, so a user who may read the mirrors but
does not own them gets real findings; what such a user cannot read or repair is said plainly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitdags.errors import GitdagsError, StoreError, damaged
from gitdags.serve.deploy import LEGACY_MANIFEST, legacy_layout, read_manifest

if TYPE_CHECKING:
    from gitdags.engine import SyncEngine
    from gitdags.serve.branches import ServedBranches
    from gitdags.serve.deploy import DeployFolder
    from gitdags.serve.publisher import Publisher


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
    from gitdags.history.store import (
        _read_only,  # immutable where this user cannot write the folder
    )

    try:
        conn = _read_only(database)
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
    if not target.parent.is_dir():
        raise GitdagsError(
            f"The folder {target.parent} does not exist; create it first, or give a path in a "
            "folder that exists."
        )
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
    publisher = engine.publisher or _publisher(engine)
    try:
        folder = publisher.folder if publisher is not None else None
        findings.append(_deploy(engine, folder, repair=repair))
        if publisher is not None and publisher.branches is not None and folder is not None:
            findings.append(_branches(publisher.branches, folder, repair=repair))
    finally:
        if publisher is not None and publisher is not engine.publisher:
            publisher.close()
    return findings


def _publisher(engine: SyncEngine) -> Publisher | None:
    """The publish targets, to check them (doctor opens the database read-only, so the engine
    has none): without hooks, so that checking delivers nothing."""
    from gitdags.serve.publisher import Publisher

    settings = engine.settings
    if not (settings.deploy_dir or settings.git_repo or settings.s3):
        return None
    return Publisher(dataclasses.replace(settings, hooks=()), engine.store)


# -- permissions -----------------------------------------------------------------------------
def _owner(path: Path) -> str:
    """Who owns `path` (or the nearest folder above it that exists), by name."""
    import pwd

    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        uid = path.stat().st_uid
    except OSError:
        return "its owner"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _unreadable(path: Path) -> str | None:
    """Why this user cannot read the tree at `path` (None when it can, or when it is gone)."""
    for folder in [path, *(p for p in path.rglob("*") if p.is_dir())] if path.is_dir() else []:
        if not os.access(folder, os.R_OK | os.X_OK):
            return (
                f"this user (uid {os.geteuid()}) cannot read {folder}; run `gitdags doctor` "
                f"as {_owner(folder)}, who owns it, or give this user read access"
            )
    return None


# what repairing each writes: a mirror is made again beside itself; a deploy folder and a
# served-branch repository are written inside
_WRITES = {
    "mirror": ("..", "."),
    "deploy": (".", ".generations"),
    "branches": (".", "refs", "objects", "gitdags"),
}


def _unwritable(path: Path, kind: str) -> Path | None:
    """The first folder that repairing `path` writes and this user may not (None: none)."""
    for rel in _WRITES[kind]:
        target = (path / rel).resolve() if rel != "." else path
        if target.exists() and not os.access(target, os.W_OK):
            return target
    return None if path.exists() or os.access(path.parent, os.W_OK) else path.parent


def _repair_advice(path: Path, kind: str, what: str) -> str:
    """`gitdags doctor --repair` <what>, said to a user who can run it, or whom to ask."""
    blocked = _unwritable(path, kind)
    if blocked is None:
        return f"`gitdags doctor --repair` {what}"
    return (
        f"`gitdags doctor --repair`, run as {_owner(path)} (this user, uid {os.geteuid()}, "
        f"cannot write {blocked}), {what}"
    )


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """git on `repo` for a read: `safe.directory` names that one repository, so git does not
    refuse a repository another user owns (what doctor run by a reader finds)."""
    return subprocess.run(
        ["git", "-c", f"safe.directory={repo}", "--git-dir", str(repo), *args],
        capture_output=True,
        timeout=600,
    )


# -- mirrors ---------------------------------------------------------------------------------
def _mirror(engine: SyncEngine, name: str, *, repair: bool) -> Finding:
    config = engine.settings.source(name)
    git = engine.git(config)
    record = engine.store.source_record(name)
    served = record.served_commit if record else None
    check = f"mirror {name}"
    unreadable = _unreadable(git.mirror)
    if unreadable is not None:  # not a damaged mirror: a user who may not look
        return Finding(check, False, f"{git.mirror}: {unreadable}")
    problem = _mirror_problem(git.mirror, served)
    if problem is None:
        return Finding(check, True, f"{git.mirror}: intact")
    if not repair or _unwritable(git.mirror, "mirror"):  # one who may not repair: whom to ask
        advice = _repair_advice(git.mirror, "mirror", "fetches it again")
        return Finding(check, False, f"{git.mirror}: {problem}; {advice}")
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
    done = _git(mirror, "fsck", "--connectivity-only", "--no-progress", "--no-dangling")
    if done.returncode != 0:
        said = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
        return f"git fsck failed ({said[0] if said else 'no output'})"
    if served and _git(mirror, "cat-file", "-e", f"{served}^{{commit}}").returncode != 0:
        return f"the served commit {served[:12]} is missing"
    return None


# -- the deploy folder -----------------------------------------------------------------------
def _deploy(engine: SyncEngine, folder: DeployFolder | None, *, repair: bool) -> Finding:
    if folder is None:
        return Finding("deploy folder", True, "none configured")
    unreadable = _unreadable(folder.root)
    if unreadable is not None:
        return Finding("deploy folder", False, f"{folder.root}: {unreadable}")
    problem = folder.mismatch(engine.store) or _content_problem(folder)
    if problem is None:
        current = folder.current()
        manifest = read_manifest(current) if current is not None else {}
        unhashed = [p for p, (_kind, digest) in expected_files(manifest).items() if not digest]
        note = (
            f" ({len(unhashed)} files written by an older gitdags have no content hash to check; "
            "the next change of what is served records them)"
            if unhashed
            else ""
        )
        return Finding("deploy folder", True, f"{folder.root}: the served set, complete{note}")
    if not repair or _unwritable(folder.root, "deploy"):
        advice = _repair_advice(folder.root, "deploy", "rewrites it")
        return Finding("deploy folder", False, f"{folder.root}: {problem}; {advice}")
    folder.publish(engine.store, force=True)  # every file written anew, none linked
    still = folder.mismatch(engine.store) or _content_problem(folder)
    if still is not None:
        return Finding("deploy folder", False, f"{folder.root}: rewritten, but {still}")
    return Finding("deploy folder", True, f"{folder.root}: {problem}; rewritten", repaired=True)


def expected_files(manifest: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """path in the generation -> (how its content is identified, the digest): "sha256" for
    a file gitdags wrote (a DAG's), "blob" (git's id) for a file of the repository's tree."""
    found: dict[str, tuple[str, str]] = {}
    for entry in manifest.get("dags", []):
        hashes = entry.get("sha256") or {}
        for path in entry.get("files", []):
            found[path] = ("sha256", str(hashes.get(path, "")))
    for entry in manifest.get("tree", []):
        found[entry["path"]] = ("blob", str(entry.get("blob", "")))
    return found


def blob_id(data: bytes, length: int = 40) -> str:
    """git's object id of a blob holding `data` (SHA-1, or SHA-256 for a 64-digit id)."""
    digest = hashlib.sha256 if length == 64 else hashlib.sha1
    return digest(b"blob %d\0" % len(data) + data).hexdigest()


def _content_problem(folder: DeployFolder) -> str | None:
    """The files of `current/` whose content differs from what its manifest recorded, and the
    files there that the manifest does not list; None when every file is as written."""
    current = folder.current()
    if current is None:
        return "there is no current generation"
    expected = expected_files(read_manifest(current))
    changed = []
    for path, (kind, digest) in sorted(expected.items()):
        target = current / path
        if target.is_symlink():  # gitdags writes files: a link points anywhere
            changed.append(path)
            continue
        if not digest or not target.is_file():
            continue  # no hash recorded (an older gitdags wrote it), or `mismatch` said so
        data = target.read_bytes()
        found = blob_id(data, len(digest)) if kind == "blob" else hashlib.sha256(data).hexdigest()
        if found != digest:
            changed.append(path)
    legacy = {LEGACY_MANIFEST} if legacy_layout(current) else set()  # bookkeeping, inside
    extra = _extras(current, set(expected) | legacy)
    parts = []
    if changed:
        parts.append(f"{len(changed)} files changed since written ({', '.join(changed[:3])})")
    if extra:
        parts.append(f"{len(extra)} files it does not serve ({', '.join(extra[:3])})")
    return f"{current.name} has " + " and ".join(parts) if parts else None


def _extras(root: Path, listed: set[str]) -> list[str]:
    """Paths under `root` that are no listed file nor a folder holding one (symlinks are
    never followed: a link is an extra unless listed)."""
    folders = {str(Path(p).parent) for p in listed}
    folders |= {str(parent) for p in listed for parent in Path(p).parents}
    extra = []
    for top, dirs, files in os.walk(root):
        rel = os.path.relpath(top, root)
        for name in sorted(dirs):
            path = name if rel == "." else f"{rel}/{name}"
            if path not in folders or os.path.islink(os.path.join(top, name)):
                extra.append(path)
        dirs[:] = [d for d in dirs if (d if rel == "." else f"{rel}/{d}") not in extra]
        for name in sorted(files):
            path = name if rel == "." else f"{rel}/{name}"
            if path not in listed:
                extra.append(path)
    return sorted(extra)


# -- the served branches ---------------------------------------------------------------------
def _branches(branches: ServedBranches, folder: DeployFolder, *, repair: bool) -> Finding:
    """Each served branch's tree against the deploy folder's current generation: the same
    files with the same content, nothing more."""
    check = "served branches"
    repo = branches.repo
    current = folder.current()
    if current is None:
        return Finding(check, True, f"{repo}: nothing served yet")
    unreadable = _unreadable(repo)
    if unreadable is not None:
        return Finding(check, False, f"{repo}: {unreadable}")
    problem = _branch_problem(repo, current, read_manifest(current))
    if problem is None:
        return Finding(check, True, f"{repo}: each branch holds the deploy folder's files")
    if not repair or _unwritable(repo, "branches"):
        advice = _repair_advice(repo, "branches", "commits the deploy folder's files again")
        return Finding(check, False, f"{repo}: {problem}; {advice}")
    manifest = read_manifest(current)
    for state in (repo / "gitdags").glob("*.files.json"):
        state.unlink()  # what the branches were last given is not trusted: hash every file
    branches.publish(current, manifest, "gitdags doctor --repair", None, ())
    still = _branch_problem(repo, current, manifest)
    if still is not None:
        return Finding(check, False, f"{repo}: committed again, but {still}")
    return Finding(check, True, f"{repo}: {problem}; committed again", repaired=True)


def _branch_problem(repo: Path, current: Path, manifest: dict[str, Any]) -> str | None:
    from gitdags.serve.branches import files_by_source

    by_source = files_by_source(manifest)
    wanted = {"all": sorted({p for paths in by_source.values() for p in paths})}
    wanted |= {source: sorted(paths) for source, paths in by_source.items()}
    problems = []
    for branch, paths in wanted.items():
        listed = _git(repo, "ls-tree", "-r", "-z", f"refs/heads/served/{branch}")
        if listed.returncode != 0:
            problems.append(f"served/{branch} is missing")
            continue
        tree: dict[str, str] = {}
        for line in listed.stdout.decode("utf-8", "surrogateescape").split("\0"):
            if line:
                meta, _, path = line.partition("\t")
                tree[path] = meta.split()[2]
        length = len(next(iter(tree.values()), "0" * 40))
        differ = []
        for path in paths:
            file = current / path
            data = file.read_bytes() if file.is_file() and not file.is_symlink() else None
            if path not in tree or data is None or blob_id(data, length) != tree[path]:
                differ.append(path)
        extra = sorted(set(tree) - set(paths))
        if differ or extra:
            what = [f"{len(differ)} differ ({', '.join(differ[:3])})"] if differ else []
            what += [f"{len(extra)} are not served ({', '.join(extra[:3])})"] if extra else []
            problems.append(f"served/{branch}: files " + " and ".join(what))
    return "; ".join(problems) if problems else None
