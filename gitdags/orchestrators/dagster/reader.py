"""What one Dagster module defines, read from its syntax tree (no code runs): its assets (with
their keys, groups and upstream keys), ops, jobs (`@job`, `define_asset_job`, `@graph` +
`.to_job`), schedules, sensors and whether it calls `Definitions(...)`. `location` puts the
modules of a code location together."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from gitdags.orchestrators.airflow.imports import dotted

# Parameters of an asset or op function that are not inputs (the context, config, resources).
NOT_INPUTS = {"context", "config", "self"}
CRON_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight")


@dataclass
class Asset:
    key: str
    line: int
    group: str = "default"
    deps: list[str] = field(default_factory=list)  # upstream asset keys ("a/b" for ["a","b"])
    var: str = ""  # the module-level name that holds it (the function's name)
    external: bool = False  # an AssetSpec / SourceAsset: declared, never materialized here


@dataclass
class Job:
    name: str
    line: int
    kind: str  # "op_job", "asset_job", "graph_job"
    var: str = ""
    tasks: dict[str, list[str]] = field(default_factory=dict)  # op -> upstream ops (op jobs)
    selection: list[str] = field(default_factory=list)  # asset keys named (asset jobs)
    groups: list[str] = field(default_factory=list)  # asset groups named (asset jobs)
    everything: bool = False  # AssetSelection.all() or "*"
    unresolved: bool = False  # a selection the syntax tree cannot resolve
    description: str = ""


@dataclass
class Trigger:
    kind: str  # "schedule" or "sensor"
    name: str
    line: int
    targets: list[tuple[str, str]]  # ("name", job name) or ("var", variable holding the job)
    cron: list[str] | None = None  # a schedule's cron strings (None: not a literal)


@dataclass
class Module:
    path: str
    assets: list[Asset] = field(default_factory=list)
    ops: dict[str, int] = field(default_factory=dict)  # op or graph name -> line
    graphs: dict[str, tuple[int, dict[str, list[str]]]] = field(default_factory=dict)
    jobs: list[Job] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    definitions: int | None = None  # the line of `Definitions(...)`, if the module calls it
    # what it imports when it is imported: (level of a relative import, module, name or "")
    needs: list[tuple[int, str, str, int]] = field(default_factory=list)
    defined: set[str] = field(default_factory=set)  # the names it defines at its top level
    star: bool = False  # it has a `from x import *` (or a module __getattr__): any name goes


def last(node: ast.AST) -> str:
    """The last part of a dotted name: `dg.asset` -> `asset`."""
    return dotted(node).rpartition(".")[2]


def text(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def kwarg(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def key_text(node: ast.AST | None) -> str | None:
    """An asset key written as `"a"`, `"a/b"`, `["a", "b"]`, `AssetKey(...)`, `AssetDep(...)`."""
    if node is None:
        return None
    value = text(node)
    if value is not None:
        return value
    if isinstance(node, ast.List | ast.Tuple):
        parts = [text(e) for e in node.elts]
        return "/".join(p for p in parts if p) if all(p is not None for p in parts) else None
    if isinstance(node, ast.Call) and last(node.func) in ("AssetKey", "AssetDep", "AssetIn"):
        first = node.args[0] if node.args else kwarg(node, "key") or kwarg(node, "asset")
        return key_text(first)
    return None


class ModuleReader:
    """Walks one module's syntax tree."""

    def __init__(self, path: str, tree: ast.Module) -> None:
        self.module = Module(path)
        self.tree = tree
        self.names: dict[str, str] = {}  # module-level variable -> asset key / job name
        self.seen: set[int] = set()  # ids of the define_asset_job calls read as assignments
        self.holders: dict[int, str] = {}  # id of a SensorDefinition call -> its variable

    def read(self) -> Module:
        self._top_level()
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self._function(node)
        for node in self.tree.body:  # assignments after: they may name the functions above
            if isinstance(node, ast.Assign | ast.AnnAssign):
                self._assign(node)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                self._call(node)
        return self.module

    def _top_level(self) -> None:
        """The names the module defines and the imports it runs when it is imported (those
        under a `try`, which may be guarded, left out)."""
        module = self.module
        todo: list[tuple[ast.stmt, bool]] = [(s, False) for s in self.tree.body]
        while todo:
            node, guarded = todo.pop()
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                module.defined.add(node.name)
                module.star |= node.name == "__getattr__"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    module.defined.add(alias.asname or alias.name.split(".")[0])
                    if not guarded:
                        module.needs.append((0, alias.name, "", node.lineno))
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name == "*":
                        module.star = True
                        continue
                    module.defined.add(alias.asname or alias.name)
                    if not guarded:
                        needed = (node.level, node.module or "", alias.name, node.lineno)
                        module.needs.append(needed)
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            module.defined.add(name.id)
            elif isinstance(node, ast.If | ast.With | ast.For | ast.While):
                todo += [(s, guarded) for s in node.body + getattr(node, "orelse", [])]
            elif isinstance(node, ast.Try):
                todo += [(s, True) for s in node.body + node.orelse + node.finalbody]
                todo += [(s, True) for h in node.handlers for s in h.body]

    # -- decorated functions -------------------------------------------------------------------
    def _function(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for deco in fn.decorator_list:
            call = deco if isinstance(deco, ast.Call) else None
            what = last(call.func if call else deco)
            if what in ("asset", "graph_asset"):
                self._asset(fn, call)
            elif what in ("multi_asset", "graph_multi_asset"):
                self._multi_asset(fn, call)
            elif what == "op":
                name = text(kwarg(call, "name")) if call else None
                self.module.ops[name or fn.name] = fn.lineno
                self.names[fn.name] = name or fn.name
            elif what == "graph":
                name = (text(kwarg(call, "name")) if call else None) or fn.name
                self.module.graphs[name] = (fn.lineno, self._body_graph(fn))
                self.names[fn.name] = name
            elif what == "job":
                name = (text(kwarg(call, "name")) if call else None) or fn.name
                described = text(kwarg(call, "description")) if call else None
                job = Job(name, fn.lineno, "op_job", fn.name, self._body_graph(fn))
                job.description = described or ast.get_docstring(fn) or ""
                self.module.jobs.append(job)
                self.names[fn.name] = name
            elif what in ("schedule", "sensor", "asset_sensor", "multi_asset_sensor"):
                self._trigger(what, fn.name, fn.lineno, call)
            elif what.endswith("_sensor"):  # run_status_sensor, run_failure_sensor, ...
                self._trigger("sensor", fn.name, fn.lineno, call)

    def _asset(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, call: ast.Call | None) -> None:
        key = fn.name
        group = "default"
        deps: list[str] = []
        ins: dict[str, str] = {}
        if call is not None:
            key = key_text(kwarg(call, "key")) or text(kwarg(call, "name")) or fn.name
            prefix = key_text(kwarg(call, "key_prefix"))
            if prefix and kwarg(call, "key") is None:
                key = f"{prefix}/{key}"
            group = text(kwarg(call, "group_name")) or "default"
            deps = self._keys(kwarg(call, "deps"))
            ins = self._ins(kwarg(call, "ins"))
        deps += [ins.get(p, p) for p in self._inputs(fn)]
        asset = Asset(key, fn.lineno, group, deps, fn.name)
        self.module.assets.append(asset)
        self.names[fn.name] = key

    def _multi_asset(
        self, fn: ast.FunctionDef | ast.AsyncFunctionDef, call: ast.Call | None
    ) -> None:
        if call is None:
            return
        group = text(kwarg(call, "group_name")) or "default"
        shared = self._keys(kwarg(call, "deps"))
        ins = self._ins(kwarg(call, "ins"))
        shared += [ins.get(p, p) for p in self._inputs(fn)]
        outs = kwarg(call, "outs")
        if isinstance(outs, ast.Dict):
            for k, v in zip(outs.keys, outs.values, strict=False):
                name = text(k)
                if name is None:
                    continue
                out = v if isinstance(v, ast.Call) else None
                key = (key_text(kwarg(out, "key")) if out else None) or name
                prefix = key_text(kwarg(out, "key_prefix")) if out is not None else None
                if prefix:
                    key = f"{prefix}/{key}"
                own = (text(kwarg(out, "group_name")) if out else None) or group
                self.module.assets.append(Asset(key, fn.lineno, own, list(shared), fn.name))
        specs = kwarg(call, "specs")
        if isinstance(specs, ast.List | ast.Tuple):
            for spec in specs.elts:
                found = self._spec(spec, group)
                if found is not None:
                    found.deps += shared
                    found.var = fn.name
                    self.module.assets.append(found)

    def _spec(self, node: ast.AST, group: str) -> Asset | None:
        if not (isinstance(node, ast.Call) and last(node.func) == "AssetSpec"):
            return None
        key = key_text(node.args[0] if node.args else kwarg(node, "key"))
        if key is None:
            return None
        own = text(kwarg(node, "group_name")) or group
        return Asset(key, node.lineno, own, self._keys(kwarg(node, "deps")))

    def _inputs(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
        args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
        found = []
        for arg in args:
            hint = last(arg.annotation) if arg.annotation is not None else ""
            if arg.arg in NOT_INPUTS or hint.endswith(("Context", "Config", "Resource")):
                continue
            found.append(arg.arg)
        return found

    def _ins(self, node: ast.AST | None) -> dict[str, str]:
        if not isinstance(node, ast.Dict):
            return {}
        found = {}
        for k, v in zip(node.keys, node.values, strict=False):
            name, key = text(k), key_text(v)
            if name is not None and key is not None:
                found[name] = key
        return found

    def _keys(self, node: ast.AST | None) -> list[str]:
        """The asset keys of a `deps=[...]` list: strings, keys, or names of assets."""
        if not isinstance(node, ast.List | ast.Tuple):
            return []
        found = []
        for element in node.elts:
            key = key_text(element)
            if key is None and isinstance(element, ast.Name):
                key = self.names.get(element.id, element.id)
            if key is not None:
                found.append(key)
        return found

    def _body_graph(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, list[str]]:
        """The ops a job or graph body calls, each with the ops whose outputs it takes."""
        tasks: dict[str, list[str]] = {}
        held: dict[str, str] = {}  # local variable -> the op whose output it holds

        def node_of(call: ast.Call) -> str | None:
            name = last(call.func)
            if not name or (isinstance(call.func, ast.Attribute) and name in ("alias", "tag")):
                return None
            ups: list[str] = []
            for arg in [*call.args, *(k.value for k in call.keywords)]:
                ups += upstream(arg)
            op = self.names.get(name, name)
            node, n = op, 1
            while node in tasks:
                n += 1
                node = f"{op}_{n}"
            tasks[node] = sorted(set(ups))
            return node

        def upstream(arg: ast.AST) -> list[str]:
            if isinstance(arg, ast.Call):
                found = node_of(arg)
                return [found] if found else []
            if isinstance(arg, ast.Name):
                return [held[arg.id]] if arg.id in held else []
            if isinstance(arg, ast.Subscript | ast.Attribute):
                return upstream(arg.value)
            if isinstance(arg, ast.List | ast.Tuple):
                return [u for e in arg.elts for u in upstream(e)]
            return []

        for stmt in fn.body:
            if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call):
                found = node_of(stmt.value)
                for target in stmt.targets:
                    names = target.elts if isinstance(target, ast.Tuple) else [target]
                    for t in names:
                        if isinstance(t, ast.Name) and found:
                            held[t.id] = found
            elif isinstance(stmt, ast.Expr | ast.Return) and isinstance(stmt.value, ast.Call):
                node_of(stmt.value)
        return tasks

    def _trigger(self, kind: str, fname: str, line: int, call: ast.Call | None) -> None:
        kind = "schedule" if kind == "schedule" else "sensor"
        name = (text(kwarg(call, "name")) if call else None) or fname
        targets = self._targets(call) if call else []
        cron = self._cron(call) if call and kind == "schedule" else None
        if call and kind == "schedule" and call.args and cron is None:
            cron = self._cron_of(call.args[0])
        self.module.triggers.append(Trigger(kind, name, line, targets, cron))

    def _targets(self, call: ast.Call) -> list[tuple[str, str]]:
        found = []
        for key in ("job", "target"):
            node = kwarg(call, key)
            if isinstance(node, ast.Name):
                found.append(("var", node.id))
            elif isinstance(node, ast.Call) and last(node.func) == "define_asset_job":
                name = text(node.args[0] if node.args else kwarg(node, "name"))
                if name:
                    found.append(("name", name))
        job_name = text(kwarg(call, "job_name"))
        if job_name:
            found.append(("name", job_name))
        jobs = kwarg(call, "jobs")
        if isinstance(jobs, ast.List | ast.Tuple):
            found += [("var", e.id) for e in jobs.elts if isinstance(e, ast.Name)]
        return found

    def _cron(self, call: ast.Call) -> list[str] | None:
        node = kwarg(call, "cron_schedule")
        return self._cron_of(node) if node is not None else None

    def _cron_of(self, node: ast.AST) -> list[str] | None:
        value = text(node)
        if value is not None:
            return [value]
        if isinstance(node, ast.List | ast.Tuple):
            values = [text(e) for e in node.elts]
            return [v for v in values if v is not None] if all(values) else None
        return None

    # -- module-level calls --------------------------------------------------------------------
    def _assign(self, node: ast.Assign | ast.AnnAssign) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        value = node.value
        var = next((t.id for t in targets if isinstance(t, ast.Name)), "")
        if not isinstance(value, ast.Call):
            return
        what = last(value.func)
        if what == "define_asset_job":
            job = self._asset_job(value)
            if job is not None:
                job.var = var
                self.names[var] = job.name
                self.seen.add(id(value))
        elif what == "to_job" and isinstance(value.func, ast.Attribute):
            graph = self.names.get(last(value.func.value), last(value.func.value))
            if graph in self.module.graphs:
                _line, tasks = self.module.graphs[graph]
                name = text(kwarg(value, "name")) or graph
                self.module.jobs.append(Job(name, value.lineno, "graph_job", var, dict(tasks)))
                self.names[var] = name
        elif what in ("AssetSpec", "SourceAsset"):
            found = self._spec(value, "default") if what == "AssetSpec" else None
            if what == "SourceAsset":
                key = key_text(value.args[0] if value.args else kwarg(value, "key"))
                found = Asset(key, value.lineno) if key else None
            if found is not None:
                found.var, found.external = var, True
                self.module.assets.append(found)
                self.names[var] = found.key
        elif what in ("ScheduleDefinition", "SensorDefinition"):
            self.holders[id(value)] = var

    def _call(self, call: ast.Call) -> None:
        what = last(call.func)
        if what == "Definitions" and self.module.definitions is None:
            self.module.definitions = call.lineno
        elif what == "define_asset_job" and id(call) not in self.seen:
            self._asset_job(call)  # inline, e.g. in Definitions(jobs=[...])
        elif what == "ScheduleDefinition":
            job_name = next(
                (n for kind, n in self._targets(call) if kind == "name"),
                None,
            ) or next((self.names.get(n, n) for kind, n in self._targets(call)), "job")
            name = text(kwarg(call, "name")) or f"{job_name}_schedule"
            self.module.triggers.append(
                Trigger("schedule", name, call.lineno, self._targets(call), self._cron(call))
            )
        elif what == "SensorDefinition":
            name = text(kwarg(call, "name")) or self.holders.get(id(call), "sensor")
            self.module.triggers.append(Trigger("sensor", name, call.lineno, self._targets(call)))

    def _asset_job(self, call: ast.Call) -> Job | None:
        name = text(call.args[0] if call.args else kwarg(call, "name"))
        if name is None:
            return None
        job = Job(name, call.lineno, "asset_job")
        job.description = text(kwarg(call, "description")) or ""
        selection = kwarg(call, "selection")
        if selection is None and len(call.args) > 1:
            selection = call.args[1]
        if selection is None:
            job.everything = True
        else:
            self._selection(selection, job)
        self.module.jobs.append(job)
        return job

    def _selection(self, node: ast.AST, job: Job) -> None:
        value = text(node)
        if value is not None:
            self._selection_text(value, job)
        elif isinstance(node, ast.List | ast.Tuple):
            for element in node.elts:
                self._selection(element, job)
        elif isinstance(node, ast.Name):
            job.selection.append(self.names.get(node.id, node.id))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            self._selection(node.left, job)
            self._selection(node.right, job)
        elif isinstance(node, ast.Call):
            what = last(node.func)
            args: list[Any] = list(node.args)
            if what == "all":
                job.everything = True
            elif what in ("assets", "keys"):
                for arg in args:
                    key = key_text(arg)
                    if key is None and isinstance(arg, ast.Name):
                        key = self.names.get(arg.id, arg.id)
                    if key is None:
                        job.unresolved = True
                    else:
                        job.selection.append(key)
            elif what == "groups":
                job.groups += [t for t in (text(a) for a in args) if t is not None]
            else:
                job.unresolved = True
        else:
            job.unresolved = True

    def _selection_text(self, value: str, job: Job) -> None:
        """Dagster's selection syntax, the plain forms: `*`, `group:g`, `key:k`, a key."""
        for part in value.split(" or "):
            part = part.strip()
            if part == "*":
                job.everything = True
            elif part.startswith("group:"):
                job.groups.append(part[6:].strip('"'))
            elif part.startswith("key:"):
                job.selection.append(part[4:].strip('"'))
            elif part and all(c.isalnum() or c in "_/" for c in part):
                job.selection.append(part)
            else:
                job.unresolved = True
