"""The Airflow tier of a sync (`python = "airflow"`): which files Airflow parses again (the
changed ones and every file that imports a changed module, transitively; all of them when the
Airflow environment changed), the parse in the sandboxed worker, and the modules held back
because a file importing them fails. Split from `sync` for size; it works on its plan."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from gitdags.git.paths import unchanged
from gitdags.kinds import PYTHON_KINDS
from gitdags.model import FileDefinitions, Issue
from gitdags.orchestrators.interface import environment_changed

if TYPE_CHECKING:
    from gitdags.orchestrators.interface import SyncView
    from gitdags.plan import Plan

log = logging.getLogger(__name__)


class AirflowTier:
    def __init__(self, sync: SyncView) -> None:
        self.sync = sync

    def judge(self, plan: Plan, head: str) -> None:
        """After the static reading: ruff's Airflow 3 rules, and Airflow itself (in the
        sandbox) parses the Airflow files and builds the dag-factory DAGs this plan changed;
        without python = "airflow", the packages Airflow would miss."""
        from gitdags.orchestrators.airflow import compat

        sync = self.sync
        check = compat.start(plan.checked)  # ruff's Airflow 3 rules, while Airflow parses
        dynamic = sync.config.python == "airflow" and sync.worker is not None
        parsed = dynamic and sync.git.accepts.python
        if parsed:
            if sync.config.sandbox == "none":
                log.warning(
                    'source %s: Airflow parses its files UNSANDBOXED (sandbox = "none")',
                    sync.name,
                )
            sync.git.remaining(1)  # the sync's one deadline, between its stages too
            self.parse(plan, head)
        elif sync.git.accepts.python:
            self.missing_packages(plan)
        if dynamic:
            sync.git.remaining(1)
            self.build_dagfactory(plan, head)
        compat.finish(check, plan.checked, parsed=parsed, airflow_python=sync.config.airflow_python)

    def environment(self, plan: Plan) -> bool:
        """True when the Airflow environment changed since the last sync (python = airflow)."""
        config = self.sync.config
        if config.python != "airflow" or not config.airflow_python:
            return False
        note = "the Airflow environment changed: every Airflow file parsed again"
        return environment_changed(self.sync, plan, "airflow", config.airflow_python, note)

    def parse(self, plan: Plan, head: str) -> None:
        """The dynamic tier: Airflow parses the DAG files this sync changed and every DAG file
        that imports (even transitively) a Python module it changed; a module change that
        breaks a DAG file importing it is held back."""
        from gitdags.orchestrators.airflow.kind import module_of, parsed_by_airflow

        root = self.sync.ctx.root
        checked = plan.checked
        graph = self.sync.store.python_imports(self.sync.name)
        graph.update({p: f.imports for p, f in checked.items() if f.kind in PYTHON_KINDS})
        moved = {c.path for c in plan.changes if c.path.endswith(".py")}
        moved |= {c.old_path for c in plan.changes if c.old_path and c.old_path.endswith(".py")}
        users = importers(graph, {module_of(p, root) for p in moved}, root)
        later = {
            p: b for p, b in self.sync.store.python_files(self.sync.name).items() if p in users
        }
        again = unchanged(later, set(checked))
        if again:
            plan.checked.update(self.sync.read_changes(plan, head, again))
            plan.changes += again
            plan.again |= {c.path for c in again}
        dag_files = sorted(p for p, f in checked.items() if parsed_by_airflow(f))
        if not dag_files:
            return
        tree = self.sync.git.checkout_tree(
            head,
            self.sync.settings.mirrors_dir / f"{self.sync.name}.tree",  # the sandbox reads it
        )
        self._parse(tree, checked, dag_files, graph)
        held = self._blame(tree, checked, moved, graph)
        # what will be served: the DAG files this commit changed, with the modules held back
        changed = [p for p in dag_files if p not in plan.again]
        users = importers(graph, {module_of(p, root) for p in held}, root)
        again_in = [p for p in changed if p in users and not checked[p].broken]
        if held and again_in:
            self.parse_composed(tree, held, again_in, checked, graph)

    def _blame(
        self,
        tree: Path,
        checked: dict[str, FileDefinitions],
        moved: set[str],
        graph: dict[str, tuple[str, ...]],
    ) -> list[str]:
        """The changed modules held back: a module is to blame only when its new version
        breaks an importer that was good with its previous one (the importer parses again
        with that version); otherwise each importer carries its own error."""
        from gitdags.orchestrators.airflow.kind import module_of

        root = self.sync.ctx.root
        store, name = self.sync.store, self.sync.name
        suspects: dict[str, list[str]] = {}
        for path, found in checked.items():
            if found.kind != "module" or found.broken or path not in moved:
                continue
            users = importers(graph, {module_of(path, root)}, root)
            broken = sorted(u for u in users if u in checked and checked[u].broken)
            if broken:
                suspects[path] = broken
        if not suspects:
            return []
        had = store.served_blobs(name, suspects)  # a module with no good version: not held
        good = store.served_blobs(name, {u for users in suspects.values() for u in users})
        suspects = {p: [u for u in users if u in good] for p, users in suspects.items() if p in had}
        suspects = {p: users for p, users in suspects.items() if users}
        if not suspects:
            return []
        users = sorted({u for found in suspects.values() for u in found})
        trial = {p: checked[p] for p in [*suspects, *users]}
        self.parse_composed(tree, sorted(suspects), users, trial, graph)
        held = []
        for path, found in suspects.items():
            fixed = [u for u in found if not trial[u].broken]
            if not fixed:
                continue
            issue = Issue(
                "GD402",
                "error",
                path,
                "",
                None,
                f"This version breaks {', '.join(fixed[:5])}, which import it and parse with "
                "its previous version; that last good version stays served.",
            )
            checked[path] = dataclasses.replace(
                checked[path], issues=(*checked[path].issues, issue)
            )
            held.append(path)
        return held

    def missing_packages(self, plan: Plan) -> None:
        """The static tier, when the interpreter Airflow runs is known (`airflow_python`):
        GD407 on the DAG files that import a package missing there, as Airflow's tier does."""
        from gitdags.kinds import read
        from gitdags.orchestrators.airflow import compat
        from gitdags.orchestrators.airflow.imports import optional_modules
        from gitdags.orchestrators.airflow.kind import module_of, parsed_by_airflow
        from gitdags.orchestrators.airflow.parsing import missing_packages

        python = self.sync.config.airflow_python
        paths = sorted(p for p, f in plan.checked.items() if parsed_by_airflow(f))
        if not python or not paths:
            return
        root = self.sync.ctx.root
        graph = self.sync.store.python_imports(self.sync.name)
        graph.update({p: f.imports for p, f in plan.checked.items() if f.kind in PYTHON_KINDS})
        own = {module_of(p, root).split(".")[0] for p in graph}
        rest = missing_packages(
            plan.checked, paths, own, lambda names: compat.missing(python, names), python
        )
        # a DAG defined only when an optional import works: read again knowing whether it does
        guarded = {
            p: optional_modules(plan.checked[p].text)
            for p in rest
            if any("optional import" in i.message for i in plan.checked[p].issues)
        }
        asked = sorted({m for modules in guarded.values() for m in modules})
        if not asked:
            return
        present = frozenset(asked) - compat.missing(python, asked)
        if not present:
            return
        ctx = dataclasses.replace(self.sync.ctx, present=present)
        blobs = {c.path: c.entry for c in plan.changes if c.entry is not None}
        entries = [blobs[p] for p in guarded if p in blobs]
        _commit, contents = self.sync.git.read(plan.head, entries)
        for entry in entries:
            content = contents.get(entry.path)
            if isinstance(content, bytes):
                plan.checked[entry.path] = read(entry.path, content, ctx=ctx)

    def build_dagfactory(self, plan: Plan, head: str) -> None:
        """dag-factory, in the sandboxed worker, builds each DAG this sync read from its block
        alone (through the loader the deploy folder would serve), with the real operator
        classes: a DAG it cannot build gets the error (GD402), on that DAG only. The DAG's
        `$VARS` are not set in the sandbox: an error there is a warning."""
        import os

        from gitdags.model import ServedDag
        from gitdags.naming import loader_stem
        from gitdags.orchestrators.airflow.served import dagfactory_block, dagfactory_loader

        root = self.sync.ctx.root
        todo = [
            (path, dag)
            for path, found in plan.checked.items()
            if found.kind == "dag-factory" and not found.broken
            for dag in found.dags
            if dag.valid
        ]
        if not todo:
            return
        tree = self.sync.git.checkout_tree(
            head,
            self.sync.settings.mirrors_dir / f"{self.sync.name}.tree",  # the sandbox reads it
        )
        base = tree / root
        loaders: dict[str, tuple[str, str]] = {}  # loader -> (path, dag_id)
        try:
            for path, dag in todo:
                rel = path[len(root) :] if path.startswith(root) else path
                folder = rel.rpartition("/")[0]
                stem = f".gitdags-build-{loader_stem(path, dag.dag_id)}"
                loader = f"{folder}/{stem}.py".lstrip("/")
                served = ServedDag(dag.dag_id, self.sync.name, path, "active", 0, head, dag.spec)
                up = os.path.relpath(".", folder or ".")
                (base / f"{loader[:-3]}.dagfactory").write_text(dagfactory_block(served))
                (base / loader).write_text(dagfactory_loader(served, f"{stem}.dagfactory", up))
                loaders[loader] = (path, dag.dag_id)
            results = self.sync.worker().parse(  # type: ignore[misc]
                base,
                sorted(loaders),
                timeout=self.sync.config.parse_timeout,
                memory=self.sync.config.memory_limit,
            )
        finally:
            for loader in loaders:
                (base / loader).unlink(missing_ok=True)
                (base / f"{loader[:-3]}.dagfactory").unlink(missing_ok=True)
        failed: dict[str, dict[str, Issue]] = {}
        for loader, (path, dag_id) in loaders.items():
            result = results.get(loader) or {"error": "crashed", "message": "No answer."}
            built = [d.get("dag_id") for d in result.get("dags", ())]
            if not result.get("error") and dag_id in built:
                continue
            message = str(result.get("message") or "dag-factory built no DAG.")
            message = message.replace(str(base).rstrip("/") + "/", root)
            dag = next(d for d in plan.checked[path].dags if d.dag_id == dag_id)
            variables = "$" in json.dumps((dag.spec or {}).get("dag_factory", {}))
            failed.setdefault(path, {})[dag_id] = Issue(
                "GD403" if result.get("error") == "timeout" else "GD402",
                "warning" if variables else "error",
                path,
                dag_id,
                None,
                f"dag-factory cannot build DAG {dag_id!r} where Airflow runs: {message}"
                + (" (its $VARIABLES are not set here)" if variables else ""),
            )
        for path, issues in failed.items():
            found = plan.checked[path]
            dags = tuple(
                d.with_issues([issues[d.dag_id]]) if d.dag_id in issues else d for d in found.dags
            )
            plan.checked[path] = dataclasses.replace(found, dags=dags)

    def _parse(
        self,
        tree: Path,
        checked: dict[str, FileDefinitions],
        paths: list[str],
        graph: dict[str, tuple[str, ...]],
    ) -> None:
        from gitdags.orchestrators.airflow import parsing
        from gitdags.orchestrators.airflow.kind import module_of

        root = self.sync.ctx.root
        parsing.parse_files(
            self.sync.worker(),  # type: ignore[misc]
            tree / root,
            checked,
            paths,
            prefix=root,
            # the repository's top-level modules, and the folder a deploy_subdir serves it
            # under (Airflow imports the source's modules through it)
            own={module_of(p, root).split(".")[0] for p in graph}
            | {self.sync.config.deploy_subdir.split("/")[0]},
            timeout=self.sync.config.parse_timeout,
            memory=self.sync.config.memory_limit,
        )

    def parse_composed(
        self,
        tree: Path,
        held: list[str],
        paths: list[str],
        checked: dict[str, FileDefinitions],
        graph: dict[str, tuple[str, ...]],
    ) -> None:
        """Parse `paths` again in the tree as it will be served: the held-back modules at
        their last good blob (or absent), then put the tree back as it is at the commit."""
        served = self.sync.store.served_blobs(self.sync.name, held)
        good = self.sync.git.blobs(served.values())
        try:
            for path in held:
                target = tree / path
                if path in served:
                    target.write_bytes(good[served[path]])
                else:
                    target.unlink(missing_ok=True)
            self._parse(tree, checked, paths, graph)
        finally:
            current = {p: checked[p].text for p in held}
            for path, text in current.items():
                (tree / path).write_text(text, encoding="utf-8")


def importers(graph: dict[str, tuple[str, ...]], modules: set[str], root: str) -> set[str]:
    """The Python files that import one of `modules`, directly or through other modules."""
    from gitdags.orchestrators.airflow.kind import module_of

    found: set[str] = set()
    todo = {m for m in modules if m}
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        seen.add(module)
        for path, imports in graph.items():
            if path in found:
                continue
            if any(i == module or i.startswith(module + ".") for i in imports):
                found.add(path)
                user = module_of(path, root)
                if user not in seen:
                    todo.add(user)
    return found
