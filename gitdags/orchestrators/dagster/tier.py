"""The Dagster tier of a sync: the code location put together from every module (`location`:
the checks across modules, each job's assets and triggers, the asset groups no job selects),
and with `python = "dagster"` the location loaded by Dagster in the sandbox (`load_worker`),
with the served version of every module the sync did not change. An error of the load is an
error of the changed file(s) it names (or of all the changed files): they are held back at
their last good blob, so that the location as served keeps loading."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitdags.git.paths import unchanged
from gitdags.model import DagFile, FileDefinitions, Issue
from gitdags.orchestrators.dagster import location
from gitdags.orchestrators.dagster.kind import read_module, spec_hash
from gitdags.orchestrators.dagster.reader import Module
from gitdags.orchestrators.interface import environment_changed

if TYPE_CHECKING:
    from gitdags.orchestrators.interface import SyncView
    from gitdags.plan import Plan

log = logging.getLogger(__name__)
LOAD_WORKER = Path(__file__).with_name("load_worker.py")  # the source's worker program
_MODULES: dict[tuple[str, str], Module | None] = {}  # (path, blob) -> what it defines


class DagsterTier:
    def __init__(self, sync: SyncView) -> None:
        self.sync = sync
        self.root = ""  # the source's subdir with a trailing "/" (set when it judges)
        self.last_load: dict[str, Any] | None = None  # the sandboxed load's answer, if any
        self.now: dict[str, str] = {}  # path -> the blob served now, of each Python file

    def environment(self, plan: Plan) -> bool:
        """True when the Dagster environment changed since the last sync (python = dagster)."""
        config = self.sync.config
        if config.python != "dagster" or not config.dagster_python:
            return False
        note = "the Dagster environment changed: the code location loaded again"
        return environment_changed(self.sync, plan, "dagster", config.dagster_python, note)

    # -- the whole location ------------------------------------------------------------------
    def judge(self, plan: Plan, head: str) -> None:
        sync = self.sync
        self.root = sync.ctx.root
        tree = {p: e for p, e in sync.git.tree(head).items() if p.endswith(".py")}
        defs_path = self.root + sync.config.dagster_module
        changed = {c.path for c in plan.changes if c.path.endswith(".py")} - plan.again
        if not changed and not any(p.endswith(".py") for p in plan.again):
            return  # no module changed (nor was asked to be read again): the location stands
        # every job file and the Definitions module are read again: their DAGs' specs hold
        # what other modules define (the assets a job selects, the schedules that target it)
        wanted = sync.store.files_of_kind(sync.name, "dagster")
        if defs_path in tree:
            wanted[defs_path] = tree[defs_path].blob
        wanted = {p: b for p, b in wanted.items() if p in tree}
        again = unchanged({p: tree[p].blob for p in wanted}, set(plan.checked))
        if again:
            plan.checked.update(sync.read_changes(plan, head, again))
            plan.changes += again
            plan.again |= {c.path for c in again}
        if not any(p.endswith(".py") for p in plan.checked):
            return
        self.now = {p: b for s, p, b in sync.store.served_files() if s == sync.name}
        # a file read again that is held back (its blob is not the one served) is judged again
        changed |= {
            p
            for p in plan.again
            if p in tree and p in plan.checked and self.now.get(p) != tree[p].blob
        }
        modules = self._modules(head, tree, plan)
        self._check(plan, tree, modules, changed)
        if defs_path in plan.checked and defs_path in modules:
            if modules[defs_path].definitions is None:
                self._add(plan, defs_path, [self._no_definitions(defs_path)])
        elif defs_path not in tree:
            log.warning("source %s: the code location's module %s is missing", sync.name, defs_path)
        if sync.config.python == "dagster" and sync.config.dagster_python:
            sync.git.remaining(1)
            self.load(plan, head, tree, defs_path, changed)
        served = self._as_served(plan, tree, modules)
        self._specs(plan, location.assemble(served, (), self.root), defs_path)

    def _check(
        self, plan: Plan, tree: dict[str, Any], modules: dict[str, Module], changed: set[str]
    ) -> None:
        """The checks of the location as it would be served with this sync's changes (the
        files broken on their own held back): an issue of a changed file is its own; an
        error that appears in a file the sync did not change is an error of the changed
        files (all of them: the syntax tree does not say which)."""
        loc = location.assemble(self._as_served(plan, tree, modules), changed, self.root)
        before: dict[str, list[Issue]] | None = None
        blamed: list[str] = []
        for path, issues in sorted(loc.issues.items()):
            if path in changed:
                if path in plan.checked and not _broken(plan.checked[path]):
                    self._add(plan, path, issues)  # (a broken one was checked as served)
                continue
            errors = [i for i in issues if i.severity == "error"]
            if errors and before is None:
                old = self._as_served(plan, tree, modules, changes=False)
                before = location.assemble(old, (), self.root).issues
            known = {i.message for i in (before or {}).get(path, [])}
            blamed += [f"{path}: {i.message}" for i in errors if i.message not in known]
        suspects = sorted(p for p in changed if p in plan.checked)
        if blamed and not suspects:  # a deletion (it is served: it is not held back)
            log.warning(
                "source %s: the code location breaks with this commit, which changed no file "
                "that can be held back: %s",
                self.sync.name,
                blamed[0],
            )
        if blamed and suspects:
            for path in suspects:
                self._add(
                    plan,
                    path,
                    [
                        Issue(
                            "GD423",
                            "error",
                            path,
                            "",
                            None,
                            "With this commit's changes to "
                            + ", ".join(suspects[:5])
                            + f" the code location breaks elsewhere ({blamed[0]}"
                            + (f"; and {len(blamed) - 1} more" if len(blamed) > 1 else "")
                            + "); the last good versions stay served.",
                        )
                    ],
                )

    def _modules(self, head: str, tree: dict[str, Any], plan: Plan) -> dict[str, Module]:
        """Every Python module of the location at `head`, read from its syntax tree."""
        out: dict[str, Module] = {}
        todo = []
        for path, entry in tree.items():
            found = plan.checked.get(path)
            if found is not None:
                module = _MODULES.get((path, entry.blob)) or read_module(path, found.text)
                _MODULES[(path, entry.blob)] = module
            elif (path, entry.blob) in _MODULES:
                module = _MODULES[(path, entry.blob)]
            else:
                todo.append(entry)
                continue
            if module is not None:
                out[path] = module
        if todo:
            _commit, contents = self.sync.git.read(head, todo)
            for entry in todo:
                content = contents.get(entry.path)
                module = read_module(entry.path, content) if isinstance(content, bytes) else None
                _MODULES[(entry.path, entry.blob)] = module
                if module is not None:
                    out[entry.path] = module
        if len(_MODULES) > 20000:
            _MODULES.clear()
        return out

    def served(
        self, plan: Plan, tree: dict[str, Any], *, changes: bool = True
    ) -> dict[str, str | None]:
        """path -> the blob each Python module of the location will be served at (None: not
        served): a file this sync read at its new blob unless it is broken, any other at the
        blob served now (every file, without `changes`). A file read again is at the blob served
        already, but for one held back, which is judged again (`judge` counts it changed)."""
        now = self.now
        out: dict[str, str | None] = {}
        for path, entry in tree.items():
            found = plan.checked.get(path)
            if changes and found is not None and not _broken(found):
                out[path] = entry.blob
            else:
                out[path] = now.get(path)
        return out

    def _as_served(
        self, plan: Plan, tree: dict[str, Any], modules: dict[str, Module], *, changes: bool = True
    ) -> dict[str, Module]:
        """The modules as they will be served (a broken file at its last good blob)."""
        out: dict[str, Module] = {}
        blobs = self.served(plan, tree, changes=changes)
        old = [(p, b) for p, b in blobs.items() if b and b != tree[p].blob]
        missing = [b for p, b in old if (p, b) not in _MODULES]
        contents = self.sync.git.blobs(missing) if missing else {}
        for path, blob in blobs.items():
            if blob is None:
                continue
            if blob == tree[path].blob and path in modules:
                out[path] = modules[path]
                continue
            if (path, blob) not in _MODULES:
                _MODULES[(path, blob)] = read_module(path, contents.get(blob, b""))
            module = _MODULES[(path, blob)]
            if module is not None:
                out[path] = module
        return out

    def _specs(self, plan: Plan, loc: location.Location, defs_path: str) -> None:
        """Each job's spec with its assets and triggers; the asset groups on the Definitions
        module."""
        specs = location.job_specs(loc)
        groups = location.group_specs(loc)
        answer = self.last_load
        if answer is not None and answer.get("ok"):  # what Dagster itself found wins
            groups = location.from_dagster(loc, specs, groups, answer)
        for path, found in list(plan.checked.items()):
            if not path.endswith(".py") or found.broken:
                continue
            dags = [
                d.with_spec(  # the pool's serialized spec is the module's alone
                    specs[(path, d.dag_id)],
                    content_hash=spec_hash(found.content_hash, specs[(path, d.dag_id)]),
                )
                if (path, d.dag_id) in specs
                else d
                for d in found.dags
                if not d.dag_id.startswith(location.GROUP_PREFIX)
            ]
            if path == defs_path:
                dags += [
                    DagFile(path, dag_id, spec, (), spec_hash(found.content_hash, spec), found.text)
                    for dag_id, spec in groups.items()
                ]
            kind = "dagster" if dags else "module"
            plan.checked[path] = dataclasses.replace(found, dags=tuple(dags), kind=kind)

    def _add(self, plan: Plan, path: str, issues: list[Issue]) -> None:
        found = plan.checked[path]
        plan.checked[path] = dataclasses.replace(found, issues=(*found.issues, *issues))

    def _no_definitions(self, path: str) -> Issue:
        return Issue(
            "GD421",
            "error",
            path,
            "",
            None,
            "The code location's module calls no Definitions(...), so Dagster finds nothing "
            "to load; define `defs = Definitions(...)` in it or set the source's "
            "dagster_module.",
        )

    # -- the location loaded by Dagster, in the sandbox --------------------------------------
    def load(
        self, plan: Plan, head: str, tree: dict[str, Any], defs_path: str, changed: set[str]
    ) -> None:
        """Dagster loads the location as it would be served with this sync's changes; a load
        error holds back the changed file(s) it names, then all the changed files, until the
        location loads (or nothing changed is left to hold)."""
        sync = self.sync
        folder = sync.git.checkout_tree(head, sync.settings.mirrors_dir / f"{sync.name}.tree")
        suspects = sorted(p for p in changed if p in plan.checked and not _broken(plan.checked[p]))
        while True:
            blobs = self.served(plan, tree)
            answer = self._load_composed(folder, tree, blobs, defs_path)
            self.last_load = answer
            if answer.get("ok"):
                return
            suspects = [p for p in suspects if not _broken(plan.checked[p])]
            named = self._named(answer, folder, suspects)
            if (
                suspects
                and not named
                and plan.old is not None  # something was served before this sync
                and self._fails_without_changes(folder, plan, tree, defs_path)
            ):
                suspects = []  # the location fails without this sync's changes too
            if not suspects:
                log.warning(
                    "source %s: the code location does not load, and no file this sync "
                    "changed is to blame: %s",
                    sync.name,
                    answer.get("message"),
                )
                return
            blamed = named or suspects
            for path in blamed:
                self._add(plan, path, [self._load_issue(path, answer, folder, bool(named))])

    def _fails_without_changes(
        self, folder: Path, plan: Plan, tree: dict[str, Any], defs_path: str
    ) -> bool:
        """Whether the location as served now (without this sync's changes) fails to load
        too: then its error is not the changed files' (a new Dagster, a deleted module)."""
        answer = self._load_composed(
            folder, tree, self.served(plan, tree, changes=False), defs_path
        )
        return not answer.get("ok")

    def _named(self, answer: dict[str, Any], folder: Path, suspects: list[str]) -> list[str]:
        """The changed file the traceback names innermost (the worker's paths come back as
        they are here)."""
        base = str((folder / self.root).resolve())
        trace = str(answer.get("traceback") or "")
        found = [(trace.rfind(f'File "{base}/{p[len(self.root) :]}"'), p) for p in suspects]
        found = [(at, p) for at, p in found if at >= 0]
        return [max(found)[1]] if found else []

    def _load_issue(self, path: str, answer: dict[str, Any], folder: Path, named: bool) -> Issue:
        base = str((folder / self.root).resolve())
        message = str(answer.get("message") or "the load failed").replace(base + "/", self.root)
        why = "" if named else " (the error names no file; every file this sync changed is held)"
        return Issue(
            "GD403" if answer.get("error") == "timeout" else "GD402",
            "error",
            path,
            "",
            _line(answer, f"{base}/{path[len(self.root) :]}"),
            f"Dagster cannot load the code location with this version: {message}{why}; "
            "the last good version stays served.",
        )

    def _load_composed(
        self, folder: Path, tree: dict[str, Any], blobs: dict[str, str | None], defs_path: str
    ) -> dict[str, Any]:
        """Load the location from `folder` with each module at `blobs`, then put the folder
        back as it is at the commit."""
        swapped = {p: b for p, b in blobs.items() if b != tree[p].blob}
        contents = self.sync.git.blobs(b for b in swapped.values() if b)
        try:
            for path, blob in swapped.items():
                target = folder / path
                if blob is None:
                    target.unlink(missing_ok=True)
                else:
                    target.write_bytes(contents[blob])
            return self.run(folder / self.root, defs_path[len(self.root) :])
        finally:
            if swapped:
                heads = self.sync.git.blobs(tree[p].blob for p in swapped)
                for path in swapped:
                    (folder / path).write_bytes(heads[tree[path].blob])

    def run(self, base: Path, module: str) -> dict[str, Any]:
        """One load of the location in `base` by the source's sandboxed worker (load_worker,
        run by dagster_python): {"ok": True, "dagster", "jobs", "assets"} or {"ok": False,
        "error", "message", "traceback"}."""
        assert self.sync.worker is not None
        worker = self.sync.worker()
        config = self.sync.config
        results = worker.parse(  # type: ignore[attr-defined]
            base, [module], timeout=config.parse_timeout, memory=config.memory_limit
        )
        result = results.get(module) or {"error": "crashed", "message": "No answer."}
        if result.get("error"):
            return {"ok": False, **result}
        jobs, assets = {}, {}
        for dag in result.get("dags", ()):
            tasks = dag["tasks"]
            if dag["dag_id"] == "__assets__":
                assets = {t["id"]: {"group": t["type"], "deps": t["depends_on"]} for t in tasks}
                continue
            by_asset = dag["description"] == "asset_job"
            jobs[dag["dag_id"]] = {
                "nodes": [t["id"] for t in tasks],
                "assets": [t["id"] for t in tasks] if by_asset else [],
                "schedules": [g[9:] for g in dag["tags"] if g.startswith("schedule:")],
                "sensors": [g[7:] for g in dag["tags"] if g.startswith("sensor:")],
                "deps": {t["id"]: t["depends_on"] for t in tasks},
            }
        version = getattr(worker, "airflow_version", "")  # the worker's ready line: Dagster's
        return {"ok": True, "dagster": version, "jobs": jobs, "assets": assets}


def _broken(found: FileDefinitions) -> bool:
    return found.broken or any(not d.valid for d in found.dags)


def _line(answer: dict[str, Any], where: str) -> int | None:
    """The line of the innermost frame of the traceback in the file `where`."""
    import re

    found = re.findall(rf'File "{re.escape(where)}", line (\d+)', answer.get("traceback") or "")
    return int(found[-1]) if found else None
