"""A project file's deployments resolved against the repository at one commit: each
entrypoint names a `@flow` of a file of the repository (GD110), the flow's name as Prefect
derives it makes the deployment's id, the deployment's (and its schedules') parameters exist
in the flow's signature (GD103) and give every required one (GD101), and the deployment's
content covers the files its flow runs with (the flow file and the repository modules it
imports, transitively), so changing one makes a new version.

Module names resolve as Prefect imports them when it loads an entrypoint: from the project's
folder (the working directory of `prefect deploy` and of a flow run) and from the flow file's
own folder."""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitdags.model import DagFile, FileDefinitions, Issue
from gitdags.orchestrators.prefect.deployments import block_hash, dedupe
from gitdags.orchestrators.prefect.flows import FlowFile, read_flows
from gitdags.orchestrators.prefect.schedules import templated


@dataclass
class ProjectTree:
    """The repository at one commit, as far as resolving needs it."""

    blobs: Mapping[str, str]  # path -> blob id (or content hash) of every counted file
    read: Callable[[list[str]], dict[str, bytes]]  # the contents of some of them
    imports: dict[str, tuple[str, ...]] = field(default_factory=dict)  # path -> its imports
    flow_files: dict[str, FlowFile] = field(default_factory=dict)  # read so far

    def flow_file(self, path: str, root: str) -> FlowFile | None:
        if path not in self.flow_files:
            self.load([path], root)
        return self.flow_files.get(path)

    def load(self, paths: list[str], root: str) -> None:
        wanted = [p for p in paths if p in self.blobs and p not in self.flow_files]
        for path in wanted:  # a blob read before: its reading (blobs name their content)
            known = _READ.get((self.blobs[path], path, root))
            if known is not None:
                self.flow_files[path] = known
                self.imports[path] = known.imports
        wanted = [p for p in wanted if p not in self.flow_files]
        if not wanted:
            return
        contents = self.read(wanted)
        if len(_READ) > 8192:
            _READ.clear()
        for path in wanted:
            if path in contents:
                found = read_flows(path, contents[path], root)
                _READ[(self.blobs[path], path, root)] = found
                self.flow_files[path] = found
                self.imports[path] = found.imports


# (blob, path, project folder) -> its reading: a long-lived daemon reads an unchanged flow file
# once, however often the deployments that run it are resolved again
_READ: dict[tuple[str, str, str], FlowFile] = {}


def folder_of(path: str) -> str:
    folder = path.rpartition("/")[0]
    return f"{folder}/" if folder else ""


def entry_file(project_path: str, entrypoint: str) -> str:
    """The repository path of an entrypoint's file (relative to the project's folder)."""
    file = entrypoint.rpartition(":")[0]
    return posixpath.normpath(folder_of(project_path) + file)


def module_files(module: str, bases: list[str], blobs: Mapping[str, str]) -> list[str]:
    """The repository files importing `module` runs: the module and its packages' __init__."""
    found = []
    parts = module.split(".")
    for base in bases:
        for depth in range(1, len(parts) + 1):
            stem = base + "/".join(parts[:depth])
            for candidate in (f"{stem}.py", f"{stem}/__init__.py"):
                if candidate in blobs:
                    found.append(candidate)
    return found


def closure(start: str, root: str, tree: ProjectTree) -> list[str]:
    """The flow file and every repository module it imports, transitively."""
    seen = {start}
    todo = [start]
    while todo:
        tree.load([p for p in todo if p not in tree.imports], root)
        nxt = []
        for path in todo:
            bases = list(dict.fromkeys([root, folder_of(path)]))
            for module in tree.imports.get(path, ()):
                for found in module_files(module, bases, tree.blobs):
                    if found not in seen:
                        seen.add(found)
                        nxt.append(found)
        todo = nxt
    return sorted(seen)


def resolve(found: FileDefinitions, tree: ProjectTree) -> FileDefinitions:
    """The project file's deployments with their ids, checks against their flows, and their
    content covering their code."""
    if found.kind != "prefect" or found.broken or not found.dags:
        return found
    root = folder_of(found.path)
    files = {
        entry_file(found.path, d.spec["entrypoint"])
        for d in found.dags
        if d.spec is not None and d.spec.get("entrypoint") and ":" in d.spec["entrypoint"]
    }
    tree.load(sorted(files), root)
    dags = dedupe([_resolve(d, found.path, root, tree) for d in found.dags])
    return dataclasses.replace(found, dags=dags)


def _resolve(dag: DagFile, project: str, root: str, tree: ProjectTree) -> DagFile:
    spec = dag.spec
    if spec is None or not spec.get("deployment"):
        return dag
    entrypoint = spec.get("entrypoint")
    if not entrypoint or ":" not in entrypoint or templated(entrypoint):
        return dag
    where = f"deployments.{spec['index']}.entrypoint"
    lines = spec.get("lines") or {}
    line = lines.get("entrypoint") or spec.get("line")
    name = spec["deployment"]

    def issue(code: str, message: str, location: str = where) -> Issue:
        return Issue(code, "error", project, location, line, message)

    path = entry_file(project, entrypoint)
    function = entrypoint.rpartition(":")[2]
    flow_file = tree.flow_file(path, root) if path in tree.blobs else None
    if flow_file is None:
        return dag.with_issues(
            [
                issue(
                    "GD110",
                    f"Deployment {name!r}: entrypoint {entrypoint!r} names {path}, which is not "
                    "a file of the repository (or the source's include globs leave it out).",
                )
            ]
        )
    code = [[p, tree.blobs[p]] for p in closure(path, root, tree)]
    spec = {**spec, "code": code}
    content = block_hash(spec["block"], spec["project"], code)
    if flow_file.error is not None:
        error = flow_file.error
        where_line = f" (line {error.line})" if error.line else ""
        bad = issue(
            "GD401",
            f"Deployment {name!r}: its flow file {path} cannot be read{where_line}: "
            f"{error.message}",
        )
        return dag.with_spec(spec, content_hash=content).with_issues([bad])
    flow = flow_file.flows.get(function)
    if flow is None and "." in function:  # a flow method of a class: the syntax tree does not
        return dag.with_spec(spec, content_hash=content)  # follow; the loader does
    if flow is None:
        what = "a @task, not a @flow" if function in flow_file.tasks else "no @flow function"
        bad = issue(
            "GD110",
            f"Deployment {name!r}: entrypoint {entrypoint!r} names {what} of {path} "
            f"(its flows: {', '.join(sorted(flow_file.flows)) or 'none'}).",
        )
        return dag.with_spec(spec, content_hash=content).with_issues([bad])
    flow_name = flow.name or function.replace("_", "-")
    spec.update(
        dag_id=f"{flow_name}/{name}",
        flow_name=flow_name,
        flow=flow.spec(flow_file.tasks, flow_file.flows),
    )
    spec["tasks"] = spec["flow"]["tasks"]
    issues = _parameters(spec, flow.parameters, flow.var_keyword, project, flow_name)
    return dataclasses.replace(
        dag, dag_id=spec["dag_id"], spec=spec, content_hash=content, spec_json=""
    ).with_issues(issues)


def _parameters(
    spec: dict[str, Any],
    signature: list[dict[str, Any]],
    var_keyword: bool,
    project: str,
    flow_name: str,
) -> list[Issue]:
    """The deployment's and its schedules' parameters against the flow's signature."""
    names = {p["name"] for p in signature}
    index = spec["index"]
    name = spec["deployment"]
    lines = spec.get("lines") or {}
    given: list[tuple[str, Mapping[str, Any], dict[str, Any]]] = [
        (
            f"deployments.{index}.parameters",
            spec.get("parameters") or {},
            lines.get("parameters") or {},
        )
    ]
    block = spec["block"]
    listed = block.get("schedules") if isinstance(block.get("schedules"), list) else []
    for i, item in enumerate(listed):
        if isinstance(item, dict) and isinstance(item.get("parameters"), dict):
            at = (lines.get("schedules") or {}).get(str(i)) or {}
            given.append((f"deployments.{index}.schedules.{i}.parameters", item["parameters"], at))
    issues = []
    if not var_keyword:
        for location, values, at in given:
            for key in values:
                if key not in names:
                    issues.append(
                        Issue(
                            "GD103",
                            "error",
                            project,
                            f"{location}.{key}",
                            at.get(str(key)) or spec.get("line"),
                            f"Deployment {name!r} passes parameter {key!r}, which flow "
                            f"{flow_name!r} does not take (it takes: "
                            f"{', '.join(sorted(names)) or 'none'}); Prefect would fail the "
                            "run on the worker.",
                        )
                    )
    passed = set(spec.get("parameters") or {})
    missing = [p["name"] for p in signature if p["required"] and p["name"] not in passed]
    if missing:
        issues.append(
            Issue(
                "GD101",
                "error",
                project,
                f"deployments.{index}.parameters",
                spec.get("line"),
                f"Deployment {name!r} does not give flow {flow_name!r} its required "
                f"parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)}; give "
                "them in parameters.",
            )
        )
    return issues
