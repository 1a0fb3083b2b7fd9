"""The deploy folder: the served set written atomically for orchestrators that read a folder.

Each change to what is served writes a new generation directory (one normalized JSON file per
served DAG, and optionally an Airflow Python file rendered from a template), then switches the
`current` symlink to it with one rename: a reader never sees a half-written tree. The last
`keep` generations stay for readers still inside them. Unchanged DAG files are hard-linked from
the previous generation, so a 10-file change writes 10 files, not 10,000.

gitdags' own bookkeeping, the generation's manifest, lies beside its directory, never in it: a
generation holds only served files, whatever their names (a DAG or a repository file may be
called `manifest.json`).

    deploy_dir/
      current -> .generations/g000042-3f2a1c0d9e1b
      .generations/g000042-3f2a1c0d9e1b/{daily_sales_etl.json, ...}
      .generations/g000042-3f2a1c0d9e1b.manifest.json
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitdags import faults
from gitdags.errors import GitdagsError
from gitdags.history.store import HistoryStore, now
from gitdags.model import FILE_FORMATS, ServedDag
from gitdags.naming import loader_stem, safe_name
from gitdags.orchestrators.airflow.served import dagfactory_block, dagfactory_loader
from gitdags.orchestrators.prefect.served import is_deployment, project_file

log = logging.getLogger(__name__)

GENERATIONS = ".generations"
CURRENT = "current"
SEEN = ".database-generation"  # the database's change counter the folder was brought up to
MANIFEST = ".manifest.json"  # a generation's manifest: `<generation>.manifest.json` beside it
LEGACY_MANIFEST = "manifest.json"  # the old layout: inside the generation, among its files
BUILTIN_TEMPLATE = Path(__file__).with_name("airflow_dag.py.tmpl")


def manifest_path(generation: Path) -> Path:
    """Where a generation's manifest lies: beside its directory, not among its files."""
    return generation.with_name(generation.name + MANIFEST)


def read_manifest(generation: Path | None) -> dict[str, Any]:
    """A generation's manifest ({} when there is none to read); a generation of the old layout
    (its manifest inside, among the served files) is read there."""
    if generation is None:
        return {}
    try:
        found = json.loads(manifest_path(generation).read_text())
    except FileNotFoundError:
        return _legacy_manifest(generation) or {}
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _legacy_manifest(generation: Path) -> dict[str, Any] | None:
    """The manifest inside a generation of the old layout, or None: a served file that happens
    to be called `manifest.json` (a DAG's, a repository's) is not taken for one."""
    try:
        found = json.loads((generation / LEGACY_MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    ours = isinstance(found, dict) and {"sequence", "fingerprint", "dags"} <= found.keys()
    return found if ours else None


def legacy_layout(generation: Path) -> bool:
    """Whether a generation is of the old layout: no manifest beside it, one inside."""
    return not manifest_path(generation).exists() and _legacy_manifest(generation) is not None


@dataclass(frozen=True)
class Generation:
    name: str
    path: Path
    dags: int
    written: int
    linked: int


def fingerprint(served: list[ServedDag], files: Sequence[tuple[str, str, str]] = ()) -> str:
    digest = hashlib.sha256()
    for dag in served:
        digest.update(f"{dag.dag_id}\0{dag.version}\0{dag.commit}\n".encode())
    for source, path, blob in files:
        digest.update(f"{source}\0{path}\0{blob}\n".encode())
    return digest.hexdigest()


# (source, path in the repository) -> path in the deploy folder
Layout = Callable[[str, str], str]
# (source, blob ids) -> their content
BlobReader = Callable[[str, list[str]], dict[str, bytes]]
# -> (source, path, blob) of the files served at their source's served commit
OtherFiles = Callable[[], list[tuple[str, str, str]]]

# Kinds gitdags serves its own way: a DAG file or a module at its last good blob, a format v1
# or dag-factory DAG through the files it writes for it (its raw file would hold DAGs that are
# not the served ones), a dag-factory loader never (it would load every DAG of its folder).
# A Prefect project file is served as the served deployments' blocks (its raw file would hold
# deployments that are not the served ones); flow files at their last good blob.
SERVED_OTHERWISE = ("airflow", "module", "v1", "dag-factory", "defaults", "loader")
SERVED_OTHERWISE += ("prefect", "prefect-flow", "dagster")


def other_files(
    listing: Mapping[str, Any],
    kinds: Mapping[str, str],
    read: Callable[[list[str]], dict[str, bytes]],
) -> list[tuple[str, str]]:
    """(path, blob) of the files of a source's tree (`listing`: path -> entry with a `blob`)
    served as they are at the served commit: every file but those `kinds` (the source's
    counted files) says are served otherwise. A Python file the source does not count (or
    could not read) is served only when Airflow would not take it for a DAG file (safe mode:
    it lacks `airflow` or `dag`): no code gitdags never checked becomes a DAG."""
    from gitdags.orchestrators.airflow.kind import is_dag_file

    found, unchecked = [], []
    for path, entry in sorted(listing.items()):
        kind = kinds.get(path)
        if kind in SERVED_OTHERWISE:
            continue
        if kind in (None, "none") and path.endswith(".py"):  # not counted, or not readable
            unchecked.append((path, entry.blob))
            continue
        found.append((path, entry.blob))
    contents = read([blob for _path, blob in unchecked]) if unchecked else {}
    found += [(p, b) for p, b in unchecked if not is_dag_file(contents.get(b, b"airflow dag"))]
    return sorted(found)


class DeployFolder:
    def __init__(
        self,
        root: Path,
        keep: int = 5,
        template: Path | None = None,
        *,
        layout: Layout | None = None,
        blobs: BlobReader | None = None,
        others: OtherFiles | None = None,
    ) -> None:
        self.root = root
        self.keep = max(keep, 1)
        self.template = self._load_template(template)
        self.layout = layout or (lambda _source, path: path)
        self.blobs = blobs
        self.others = others

    def _files(self, store: HistoryStore) -> tuple[list[tuple[str, str, str]], set[tuple]]:
        """The files of the served tree: the Python files at their last good blob, then the
        other files of each source's tree at its served commit (also returned as a set)."""
        if self.blobs is None:
            return [], set()
        others = self.others() if self.others is not None else []
        return store.served_files() + others, set(others)

    @staticmethod
    def _load_template(template: Path | None) -> string.Template | None:
        if template is None:
            return None
        path = BUILTIN_TEMPLATE if template.name == "builtin" else template
        try:
            return string.Template(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise GitdagsError(
                f"Cannot read the Airflow template {path}: {exc.strerror}; "
                "fix [publish] airflow_template."
            ) from exc

    def current(self) -> Path | None:
        link = self.root / CURRENT
        return link.resolve() if link.is_symlink() else None

    def publish(self, store: HistoryStore, *, force: bool = False) -> Generation | None:
        """Write a new generation if what is served changed (or `force`); None otherwise."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:  # one publisher at a time (daemon, CLI)
            fcntl.flock(lock, fcntl.LOCK_EX)
            generation = store.generation()
            published = self._publish(store, force)
            _write_atomic(self.root / SEEN, f"{generation}\n")
            return published

    def mismatch(self, store: HistoryStore) -> str | None:
        """What keeps `current/` from being exactly the served set, complete; None if nothing."""
        current = self.current()
        if current is None or not current.is_dir():
            return "there is no current generation"
        manifest = read_manifest(current)
        if not manifest:
            return f"{current.name} has no readable manifest"
        if legacy_layout(current):
            return f"{current.name} keeps gitdags' manifest among the served files (old layout)"
        served = [d for d in store.served() if (d.spec or {}).get("format") not in FILE_FORMATS]
        files, _others = self._files(store)
        if manifest.get("fingerprint") != fingerprint(served, files):
            return f"{current.name} is not what the database serves"
        listed = [f for d in manifest.get("dags", []) for f in d.get("files", [])]
        listed += [f["path"] for f in manifest.get("tree", [])]
        missing = [f for f in listed if not (current / f).is_file()]
        if missing:
            return f"{current.name} lacks {len(missing)} files ({', '.join(missing[:3])})"
        return None

    def behind(self, store: HistoryStore) -> bool:
        """Whether the database changed since the folder was last brought up to date (a
        process killed between its commit and its publish leaves it so)."""
        try:
            return int((self.root / SEEN).read_text()) != store.generation()
        except (OSError, ValueError):
            return True

    def _publish(self, store: HistoryStore, force: bool) -> Generation | None:
        served = [d for d in store.served() if (d.spec or {}).get("format") not in FILE_FORMATS]
        files, others = self._files(store)
        print_ = fingerprint(served, files)
        previous = self.current()
        old = read_manifest(previous)
        moved = previous is not None and legacy_layout(previous)  # the old layout: write anew
        if not force and not moved and old.get("fingerprint") == print_:
            return None
        gens = self.root / GENERATIONS
        gens.mkdir(parents=True, exist_ok=True)
        sequence = int(old.get("sequence", 0)) + 1
        commits = sorted({f"{d.source}@{d.commit}" for d in served})
        tag = (
            commits[0].split("@")[1][:12]
            if len(commits) == 1
            else hashlib.sha256("\n".join(commits).encode()).hexdigest()[:12]
        )
        name = f"g{sequence:06d}-{tag}"
        staging = gens / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        before = {d["dag_id"]: d for d in old.get("dags", [])}
        written = linked = 0
        entries = []
        self._projects: dict[str, list[ServedDag]] = {}  # a served project file: its DAGs
        for dag in served:
            if is_deployment(dag):
                self._projects.setdefault(self._files_of(dag)[0], []).append(dag)
        for dag in served:
            dag_files = self._files_of(dag)
            prior = before.get(dag.dag_id)
            reuse = (
                previous is not None
                and not force
                and prior is not None
                and prior.get("version") == dag.version
                and prior.get("files") == dag_files
                and not is_deployment(dag)  # its file holds the other deployments too
            )
            hashes: dict[str, str] = {}  # what `gitdags doctor` checks each file against
            for file in dag_files:
                target = staging / file
                if not target.resolve().is_relative_to(staging.resolve()):
                    raise GitdagsError(f"DAG id {dag.dag_id!r} cannot be written safely.")
                target.parent.mkdir(parents=True, exist_ok=True)
                if file in self._projects and target.exists():  # written for another of them
                    hashes[file] = hashlib.sha256(target.read_bytes()).hexdigest()
                elif reuse:
                    assert previous is not None and prior is not None
                    os.link(previous / file, target)
                    known = (prior.get("sha256") or {}).get(file)
                    hashes[file] = known or hashlib.sha256(target.read_bytes()).hexdigest()
                    linked += 1
                else:
                    data = self._content(dag, file, dag_files).encode("utf-8")
                    target.write_bytes(data)
                    hashes[file] = hashlib.sha256(data).hexdigest()
                    written += 1
            entries.append(
                {
                    "dag_id": dag.dag_id,
                    "source": dag.source,
                    "version": dag.version,
                    "files": dag_files,
                    "sha256": hashes,
                }
            )
        tree, tree_written, tree_linked = self._tree(staging, previous, old, files, force, others)
        written, linked = written + tree_written, linked + tree_linked
        manifest = {
            "sequence": sequence,
            "name": name,
            "created_at": now(),
            "fingerprint": print_,
            "commits": commits,
            "dags": entries,
            "tree": tree,
        }
        final = gens / name
        if final.exists():
            shutil.rmtree(final)
        # beside the generation, before it: a generation is never without its manifest
        temp = gens / f".tmp-{name}{MANIFEST}-{os.getpid()}"
        temp.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(temp, manifest_path(final))
        os.rename(staging, final)
        self._switch(final)
        self._prune(final)
        log.info(
            "published",
            extra={"generation": name, "dags": len(served), "written": written, "linked": linked},
        )
        return Generation(name, final, len(served), written, linked)

    def _tree(
        self,
        staging: Path,
        previous: Path | None,
        old: dict[str, Any],
        files: list[tuple[str, str, str]],
        force: bool,
        others: set[tuple] = frozenset(),  # type: ignore[assignment]
    ) -> tuple[list[dict[str, str]], int, int]:
        """The served tree's files at their paths (the Python files first, then the other
        files, which give way to a file gitdags writes for a DAG): unchanged blobs
        hard-linked from the previous generation, the others read from the mirrors."""
        before = {f["path"]: f["blob"] for f in old.get("tree", [])}
        placed: dict[str, str] = {}
        todo: dict[str, list[tuple[str, str]]] = {}
        entries = []
        written = linked = 0
        for source, path, blob in files:
            dest = self.layout(source, path)
            taken = dest in placed or (staging / dest).exists() or dest == "manifest.json"
            if taken and (source, path, blob) in others:
                log.warning(
                    "%s of source %s is not served: gitdags serves a file there", dest, source
                )
                continue
            if dest in placed:
                raise GitdagsError(
                    f"Sources {placed[dest]!r} and {source!r} both serve {dest}; give one of "
                    "them a deploy_subdir."
                )
            placed[dest] = source
            target = staging / dest
            if not target.resolve().is_relative_to(staging.resolve()) or dest.startswith("/"):
                raise GitdagsError(f"{dest!r} of source {source!r} cannot be written safely.")
            target.parent.mkdir(parents=True, exist_ok=True)
            entries.append({"path": dest, "source": source, "blob": blob})
            if previous is not None and not force and before.get(dest) == blob:
                os.link(previous / dest, target)
                linked += 1
            else:
                todo.setdefault(source, []).append((dest, blob))
        for source, wanted in todo.items():
            assert self.blobs is not None
            contents = self.blobs(source, [blob for _dest, blob in wanted])
            for dest, blob in wanted:
                (staging / dest).write_bytes(contents[blob])
                written += 1
        return entries, written, linked

    def _files_of(self, dag: ServedDag) -> list[str]:
        """The files that serve one DAG: its JSON spec (and the Airflow file of the template);
        for a dag-factory DAG, its loader and its block, beside where its YAML file lies."""
        if is_deployment(dag):  # one project file for the deployments of its source file
            return [self.layout(dag.source, dag.path)]
        if (dag.spec or {}).get("format") == "dag-factory":
            folder = self.layout(dag.source, dag.path).rpartition("/")[0]
            base = f"{folder}/{loader_stem(dag.path, dag.dag_id)}".lstrip("/")
            return [f"{base}.py", f"{base}.dagfactory"]
        base = safe_name(dag.dag_id)
        return [f"{base}.json"] + ([f"{base}.py"] if self.template else [])

    def _content(self, dag: ServedDag, file: str, dag_files: list[str]) -> str:
        if is_deployment(dag):
            return project_file(self._projects[file])
        if file.endswith(".json"):
            return json.dumps(dag.to_dict(), indent=2) + "\n"
        if file.endswith(".dagfactory"):
            return dagfactory_block(dag)
        if file.endswith(".py") and dag_files[-1].endswith(".dagfactory"):
            root = self.layout(dag.source, "").strip("/") or "."
            folder = file.rpartition("/")[0] or "."
            data_file = dag_files[-1].rpartition("/")[2]
            return dagfactory_loader(dag, data_file, os.path.relpath(root, folder))
        return self._render(dag, dag_files[0])

    def _render(self, dag: ServedDag, json_file: str) -> str:
        assert self.template is not None
        return self.template.safe_substitute(
            dag_id=dag.dag_id,
            json_file=json_file,
            source=dag.source,
            path=dag.path,
            version=dag.version,
            commit=dag.commit,
        )

    def _switch(self, target: Path) -> None:
        link = self.root / CURRENT
        temp = self.root / f".{CURRENT}.tmp-{os.getpid()}"
        if temp.is_symlink() or temp.exists():
            temp.unlink()
        os.symlink(Path(GENERATIONS) / target.name, temp)
        faults.point("in-switch")
        os.replace(temp, link)  # one atomic rename: readers see the old tree or the new one

    def _prune(self, current: Path) -> None:
        folder = self.root / GENERATIONS
        gens = sorted(
            (p for p in folder.iterdir() if p.name.startswith("g") and p.is_dir()),
            key=lambda p: p.name,
        )
        for old in gens[: -self.keep]:
            if old != current:
                shutil.rmtree(old, ignore_errors=True)
                manifest_path(old).unlink(missing_ok=True)
        for manifest in folder.glob(f"g*{MANIFEST}"):  # its generation is gone (a crash)
            if not (folder / manifest.name[: -len(MANIFEST)]).is_dir():
                manifest.unlink(missing_ok=True)
        for stale in folder.glob(".tmp-*"):  # left by a crash
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


def _write_atomic(path: Path, text: str) -> None:
    temp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    temp.write_text(text)
    os.replace(temp, path)
