"""The Prefect tier of a sync: after the static reading of the changed files, the project
files are resolved against the repository at the commit (`project.resolve`: ids, entrypoints,
parameters, the code each deployment runs with). When code changed, every project file is
resolved again, so a deployment whose flow file or helper changed gets a new version. With
`python = "prefect"`, Prefect's own loader loads each changed flow in the sandbox
(`loading`). Last good, for code: a changed Python file that an invalid deployment runs is
held back (GD409), and so is every deployment that runs a held-back file, until both are good
again, so the served tree never pairs a deployment with code it was not checked with."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from gitdags.git.paths import unchanged
from gitdags.model import FileDefinitions, Issue
from gitdags.orchestrators.interface import environment_changed
from gitdags.orchestrators.prefect.project import ProjectTree, resolve

if TYPE_CHECKING:
    from gitdags.orchestrators.interface import SyncView
    from gitdags.plan import Plan

log = logging.getLogger(__name__)
CODE_KINDS = ("prefect-flow", "module")


class PrefectTier:
    def __init__(self, sync: SyncView) -> None:
        self.sync = sync
        self.every = False  # the Prefect environment changed: every flow is loaded again

    def environment(self, plan: Plan) -> bool:
        """True when the Prefect environment changed since the last sync (python = prefect)."""
        config = self.sync.config
        if config.python != "prefect" or not config.prefect_python:
            return False
        note = "the Prefect environment changed: every flow loaded again"
        self.every = environment_changed(self.sync, plan, "prefect", config.prefect_python, note)
        return self.every

    def judge(self, plan: Plan, head: str) -> None:
        sync = self.sync
        moved = any(
            c.path.endswith(".py") or (c.old_path or "").endswith(".py") for c in plan.changes
        )
        if moved:  # code changed: every project file is resolved again
            projects = sync.store.files_of_kind(sync.name, "prefect")
            again = unchanged(projects, set(plan.checked))
            if again:
                plan.checked.update(sync.read_changes(plan, head, again))
                plan.changes += again
                plan.again |= {c.path for c in again}
        projects = sorted(
            p for p, f in plan.checked.items() if f.kind == "prefect" and f.dags and not f.broken
        )
        if not projects:
            return
        tree = self.tree(plan, head)
        for path in projects:
            plan.checked[path] = resolve(plan.checked[path], tree)
        if sync.config.python == "prefect" and sync.worker is not None:
            from gitdags.orchestrators.prefect.loading import load_flows

            sync.git.remaining(1)
            load_flows(sync, plan, head, projects, self.every)
        changed = [p for p, f in plan.checked.items() if f.kind in CODE_KINDS]
        had = set(sync.store.served_blobs(sync.name, changed))  # files with a last good blob
        hold_code(plan.checked, plan.again, had)

    def tree(self, plan: Plan, head: str) -> ProjectTree:
        sync = self.sync
        listing = sync.git.tree(head)

        def read(paths: list[str]) -> dict[str, bytes]:
            entries = [listing[p] for p in paths if p in listing]
            _commit, contents = sync.git.read(head, entries)
            return {p: c for p, c in contents.items() if isinstance(c, bytes)}

        imports = dict(sync.store.python_imports(sync.name))
        imports.update({p: f.imports for p, f in plan.checked.items() if f.kind in CODE_KINDS})
        imports = {p: i for p, i in imports.items() if p in listing}
        return ProjectTree({p: e.blob for p, e in listing.items()}, read, imports)


def hold_code(checked: dict[str, FileDefinitions], again: set[str], had: set[str]) -> None:
    """Hold back the changed code of invalid deployments, and the deployments that run
    held-back code (to a fixed point): their last good versions stay served together. Only a
    file with a last good blob (`had`) is held for a deployment's sake: a new file has no
    older version to keep."""
    changed = {p for p, f in checked.items() if f.kind in CODE_KINDS and p not in again}
    held = {p for p in changed if checked[p].broken}
    why: dict[str, str] = {p: "it is invalid" for p in held}
    while True:
        grew = False
        for path, found in checked.items():
            if found.kind != "prefect" or not found.dags:
                continue
            dags = []
            for dag in found.dags:
                code = {c[0] for c in (dag.spec or {}).get("code", [])}
                if dag.valid and code & held:
                    blamed = sorted(code & held)[0]
                    dag = dag.with_issues(
                        [
                            Issue(
                                "GD409",
                                "error",
                                path,
                                f"deployments.{(dag.spec or {}).get('index')}",
                                (dag.spec or {}).get("line"),
                                f"Deployment {(dag.spec or {}).get('deployment')!r} runs "
                                f"{blamed}, whose new version is held back ({why[blamed]}); "
                                "its last good version stays served.",
                            )
                        ]
                    )
                    grew = True
                elif not dag.valid and dag.spec is not None:
                    for file in sorted((code & changed & had) - held):
                        held.add(file)
                        who = dag.dag_id or dag.spec.get("deployment")
                        why[file] = f"deployment {who} is invalid with it"
                        grew = True
                dags.append(dag)
            checked[path] = dataclasses.replace(found, dags=tuple(dags))
        if not grew:
            break
    for file in sorted(held):
        found = checked[file]
        if found.broken:
            continue
        checked[file] = dataclasses.replace(
            found,
            issues=(
                *found.issues,
                Issue(
                    "GD409",
                    "error",
                    file,
                    "",
                    None,
                    f"This version is held back: {why[file]}; the file's last good version "
                    "stays served.",
                ),
            ),
        )
