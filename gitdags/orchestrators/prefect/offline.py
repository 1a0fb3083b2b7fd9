"""Prefect projects in `gitdags validate`: a folder holding a project file (`prefect.yaml`,
or a YAML file whose top level has a `deployments` list) is a Prefect project; its files are
read as a Prefect source reads them, and its deployments resolved against the files on disk."""

from __future__ import annotations

import os
from pathlib import Path

from gitdags.checks.validate import content_hash
from gitdags.model import FileDefinitions
from gitdags.orchestrators.prefect.deployments import is_project_name
from gitdags.orchestrators.prefect.project import ProjectTree, folder_of, resolve


def project_folders(files: list[Path], max_size: int) -> list[str]:
    """The folders (as "a/b/", "" for the current one) that hold a Prefect project file."""
    found = []
    for path in files:
        if path.suffix not in (".yaml", ".yml") or path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_size > max_size:
            continue
        if is_project_name(path.name) or _has_deployments(path):
            found.append(folder_of(path.as_posix()))
    return sorted(set(found))


def _has_deployments(path: Path) -> bool:
    import yaml

    try:
        raw = path.read_bytes()
        if b"deployments" not in raw:
            return False
        data = yaml.safe_load(raw)
    except (OSError, yaml.YAMLError, ValueError, RecursionError):
        return False
    deployments = data.get("deployments") if isinstance(data, dict) else None
    return isinstance(deployments, list) and all(
        isinstance(d, dict) and "entrypoint" in d for d in deployments
    )


def in_project(path: str, folders: list[str]) -> bool:
    return any(path.startswith(folder) for folder in folders)


def resolve_on_disk(checked: list[FileDefinitions], max_size: int) -> list[FileDefinitions]:
    """The project files among `checked` with their deployments resolved against the disk."""
    out = []
    for found in checked:
        if found.kind != "prefect":
            out.append(found)
            continue
        folder = folder_of(found.path)
        blobs = {}
        for top, dirs, names in os.walk(folder or "."):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in names:
                if name.endswith(".py"):
                    full = Path(top, name)
                    key = os.path.normpath(full.as_posix())
                    if full.is_file() and not full.is_symlink() and full.stat().st_size <= max_size:
                        blobs[key] = content_hash(full.read_bytes())

        def read(paths: list[str]) -> dict[str, bytes]:
            return {p: Path(p).read_bytes() for p in paths}

        out.append(resolve(found, ProjectTree(blobs, read)))
    return out


def load_on_disk(
    checked: list[FileDefinitions], python: str, timeout: float, sandbox: str
) -> list[FileDefinitions]:
    """`--prefect-python`: Prefect's own loader, in the sandbox, loads the flow of each
    deployment of the project files among `checked` (from its project's folder on disk)."""
    import tempfile

    from gitdags.orchestrators.airflow.parse_client import ParseWorker
    from gitdags.orchestrators.prefect.loading import check, judged, requests, worker_script

    found = {f.path: f for f in checked}
    projects = sorted(
        p for p, f in found.items() if f.kind == "prefect" and f.dags and not f.broken
    )
    roots = {p: Path(folder_of(p) or ".").resolve() for p in projects}
    if not projects:
        return checked
    with tempfile.TemporaryDirectory(prefix="gitdags-load-") as scratch:
        worker = ParseWorker(
            python,
            Path(scratch) / "worker",
            sandbox=sandbox,
            readable=tuple(sorted(set(roots.values()))),
            script=worker_script(Path(scratch)),
            check=check,
            orchestrator="prefect",
        )
        try:
            for path in projects:
                todo = requests(found, [path], lambda _path: "", lambda *_: True)
                if todo:
                    results = worker.parse(
                        roots[path], sorted(todo), timeout=timeout, memory=2 << 30
                    )
                    judged(found, [path], todo, results, f"{roots[path]}/")
        finally:
            worker.close()
    return [found[f.path] for f in checked]
