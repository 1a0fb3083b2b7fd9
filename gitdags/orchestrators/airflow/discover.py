"""Which files of a repository on this machine look like Airflow DAG files (for `gitdags init`)."""

from __future__ import annotations

from pathlib import Path

from gitdags.config import PY_INCLUDE, SourceConfig
from gitdags.git.source import GitSource
from gitdags.orchestrators.airflow.kind import is_dag_file
from gitdags.spec import MAX_FILE_SIZE


def airflow_dag_files(url: str, branch: str, subdir: str = "", *, most: int = 3) -> list[str]:
    """Up to `most` .py files that look like Airflow DAG files (Airflow's safe-mode test) at
    the tip of `branch` under `subdir`, in a repository on this machine (a path or file://);
    [] for a remote URL, a folder that is not a repository, or a branch it does not have."""
    config = SourceConfig("init", url, branch, subdir.strip("/"), include=(PY_INCLUDE,))
    local = GitSource(config, Path(), MAX_FILE_SIZE).local_path()
    if local is None or not ((local / "objects").is_dir() or (local / ".git").exists()):
        return []
    git = GitSource(config, local, MAX_FILE_SIZE)  # read only: ls-tree and cat-file
    commit = git.resolve(f"refs/heads/{branch}")
    if commit is None:
        return []
    entries = [e for e in git.tree(commit).values() if 0 <= e.size <= MAX_FILE_SIZE]
    found: list[str] = []
    for start in range(0, len(entries), 200):
        chunk = entries[start : start + 200]
        blobs = git.blobs(e.blob for e in chunk)
        found += [e.path for e in chunk if is_dag_file(blobs[e.blob])]
        if len(found) >= most:
            break
    return found[:most]
