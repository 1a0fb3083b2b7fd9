"""The last good tree as git branches (`[publish] git_repo`): what Airflow 3's GitDagBundle and
git-sync read, pinned per commit, never rewritten.

After each new deploy-folder generation, a bare repository gets one commit on `served/all`
(every source's files, laid out as in `current/`) and on `served/<source>` for each source
whose files changed; each commit's tree is exactly that part of `current/` (whose files are
all served files: the generation's manifest lies beside it), its message says what changed and
what was held back, with `Source-Commit:` trailers naming the upstream commits and a
`Served-Generation:` trailer naming the deploy-folder generation: gitdags' bookkeeping is in
the message, never a path of the tree. Rollback, pin and pause are new commits like any other
change.

Cheap at 10,000 files: each branch keeps its own index and a record of what identifies each
file's content (a DAG's id and version, a tree file's blob: the deploy manifest says it), so
only changed files are hashed, and `git write-tree` reuses the unchanged subtrees; with one
source, its branch has the tree of served/all.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gitdags.errors import GitdagsError
from gitdags.model import DagChange

AUTHOR = {"GIT_AUTHOR_NAME": "gitdags", "GIT_AUTHOR_EMAIL": "gitdags@localhost"}
AUTHOR |= {"GIT_COMMITTER_NAME": "gitdags", "GIT_COMMITTER_EMAIL": "gitdags@localhost"}
ZERO = "0" * 40


class ServedBranches:
    def __init__(self, repo: Path) -> None:
        self.repo = repo

    def _git(self, *args: str, stdin: str | None = None, index: Path | None = None) -> str:
        env = {**os.environ, **AUTHOR, "GIT_DIR": str(self.repo)}
        if index is not None:
            env["GIT_INDEX_FILE"] = str(index)
        done = subprocess.run(
            ["git", *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
        )
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["no output"])[0]
            raise GitdagsError(f"Cannot write the served branches in {self.repo}: {first}.")
        return done.stdout

    def ensure(self) -> None:
        if not (self.repo / "HEAD").is_file():
            self.repo.mkdir(parents=True, exist_ok=True)
            self._git("init", "--quiet", "--bare", str(self.repo))
            self._git("symbolic-ref", "HEAD", "refs/heads/served/all")

    def publish(
        self,
        generation: Path,
        manifest: dict[str, Any],
        source: str,
        commit: str | None,
        changes: Iterable[DagChange],
    ) -> dict[str, str]:
        """Commit the generation to served/all and to each source's branch whose files
        changed (`commit`: the upstream commit of `source` the change came from); returns
        branch -> new commit."""
        self.ensure()
        files = files_by_source(manifest)
        changes = list(changes)
        commits = {source: commit or ""}  # the upstream commit this change came from
        made = {}
        everything = {p: k for by in files.values() for p, k in by.items()}
        trees: dict[str, str] = {}
        for branch, paths in [("all", everything), *((s, f) for s, f in sorted(files.items()))]:
            same = paths == everything and "all" in trees  # one source: the same tree
            tree = trees["all"] if same else self._tree(branch, generation, paths)
            trees[branch] = tree
            message = _message(branch, source, changes, commits, generation.name)
            commit = self._commit(branch, tree, message)
            if commit:
                made[f"served/{branch}"] = commit
        return made

    def _tree(self, branch: str, generation: Path, paths: dict[str, str]) -> str:
        """The tree of `paths` (path -> what identifies its content: a DAG's id and version,
        a file's blob), from the branch's own index: only what changed is hashed."""
        index = self.repo / "gitdags" / f"{branch}.index"
        state_file = self.repo / "gitdags" / f"{branch}.files.json"
        index.parent.mkdir(parents=True, exist_ok=True)
        try:
            known: dict[str, list[str]] = json.loads(state_file.read_text())
        except (OSError, ValueError):
            known = {}
            index.unlink(missing_ok=True)  # no record of it: build the index anew
        now: dict[str, list[str]] = {}
        todo = []
        for path, key in paths.items():
            before = known.get(path)
            if before is not None and before[0] == key:
                now[path] = before
            else:
                todo.append(path)
        if todo:  # only what changed is hashed
            listed = "".join(f"{generation / p}\n" for p in todo)
            hashed = self._git("hash-object", "-w", "--stdin-paths", stdin=listed).split()
            for path, sha in zip(todo, hashed, strict=True):
                now[path] = [paths[path], sha]
        lines = [f"100644 {now[p][1]}\t{p}\n" for p in todo]
        lines += [f"0 {ZERO}\t{p}\n" for p in known if p not in now]
        if lines:
            info = "".join(lines)
            self._git("update-index", "--add", "--remove", "--index-info", stdin=info, index=index)
            state_file.write_text(json.dumps(now, separators=(",", ":")))
        return self._git("write-tree", index=index).strip()

    def _commit(self, branch: str, tree: str, message: str) -> str:
        """A commit of `tree` on served/<branch>, unless its tree is that already."""
        ref = f"refs/heads/served/{branch}"
        parent = self._git("for-each-ref", "--format=%(objectname) %(tree)", ref).split()
        if parent and parent[1] == tree:
            return ""  # nothing of this branch changed
        args = ["commit-tree", tree, "-F", "-"] + (["-p", parent[0]] if parent else [])
        commit = self._git(*args, stdin=message).strip()
        self._git("update-ref", ref, commit, parent[0] if parent else ZERO)
        return commit


def files_by_source(manifest: dict[str, Any]) -> dict[str, dict[str, str]]:
    """source -> {path in current/: what identifies its content} of every file a generation
    serves: a DAG's files by its id and version, a tree file by its blob."""
    found: dict[str, dict[str, str]] = {}
    for entry in manifest.get("dags", []):
        source = entry.get("source") or "all"
        key = f"{entry['dag_id']}@{entry.get('version')}"
        for path in entry.get("files", []):
            found.setdefault(source, {})[path] = key
    for entry in manifest.get("tree", []):
        found.setdefault(entry["source"], {})[entry["path"]] = entry["blob"]
    return found


def _message(
    branch: str, source: str, changes: list[DagChange], commits: dict[str, str], generation: str
) -> str:
    served = [c for c in changes if c.change != "invalid"]
    held = [c for c in changes if c.change == "invalid"]
    named = [f"{c.dag_id} {c.change}" + (f" v{c.version}" if c.version else "") for c in served]
    head = f"{source}: " + (", ".join(named[:3]) or "what is served changed")
    if len(served) > 3:
        head += f" and {len(served) - 3} more"
    lines = [head[:200], ""]
    lines += [
        f"- {c.dag_id}: {c.change}" + (f" (v{c.version})" if c.version else "") for c in served
    ]
    if held:
        lines += ["", "Held back (invalid; the last good version stays served):"]
        lines += [f"- {c.dag_id} v{c.version} ({c.path})" for c in held]
    lines += ["", *(f"Source-Commit: {sha}" for _name, sha in sorted(commits.items()) if sha)]
    lines.append(f"Source: {source}")
    lines.append(f"Served-Generation: {generation}")
    if branch != "all":
        lines.append(f"Served-Branch: served/{branch}")
    return "\n".join(lines) + "\n"
