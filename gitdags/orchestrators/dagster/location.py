"""A Dagster code location put together from its modules, as their syntax trees show them: the
checks that need more than one module (an asset key defined twice, an input or dep naming no
asset, a cycle between assets, a job selecting an asset or group that does not exist, a
schedule or sensor targeting no job), each job's assets and triggers, and the asset groups
that no job selects (one DAG each, kept on the `Definitions(...)` module). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gitdags.model import Issue
from gitdags.orchestrators.dagster.kind import job_spec
from gitdags.orchestrators.dagster.reader import Asset, Job, Module, Trigger

GROUP_PREFIX = "assets."  # an asset group's DAG id: assets.<group>


@dataclass
class Location:
    modules: dict[str, Module]  # path -> what it defines
    issues: dict[str, list[Issue]] = field(default_factory=dict)  # path -> issues found here
    assets: dict[str, Asset] = field(default_factory=dict)  # key -> the asset
    owner: dict[str, str] = field(default_factory=dict)  # asset key -> path of its module
    jobs: dict[str, tuple[str, Job]] = field(default_factory=dict)  # name -> (path, job)

    def add(self, path: str, issue: Issue) -> None:
        self.issues.setdefault(path, []).append(issue)


def assemble(modules: dict[str, Module], changed: Iterable[str] = (), root: str = "") -> Location:
    """The location of `modules` (paths under `root`, the folder Dagster's working directory
    is) and the cross-module issues, on the modules that bring them: of two modules defining
    one asset key, the changed one (or the later path)."""
    changed = set(changed)
    loc = Location(modules)
    _imports(loc, root)
    order = sorted(modules, key=lambda p: (p in changed, p))  # unchanged first: they keep keys
    for path in order:
        for asset in modules[path].assets:
            first = loc.owner.get(asset.key)
            if first is not None and first != path:
                loc.add(
                    path,
                    Issue(
                        "GD420",
                        "error",
                        path,
                        f"assets.{asset.key}",
                        asset.line,
                        f"Asset key {asset.key!r} is also defined by {first}; Dagster refuses "
                        "a code location with a key defined twice: rename one.",
                    ),
                )
                continue
            if first is None:
                loc.owner[asset.key] = path
                loc.assets[asset.key] = asset
        for job in modules[path].jobs:
            loc.jobs.setdefault(job.name, (path, job))
    _dependencies(loc)
    _cycles(loc)
    _selections(loc)
    _triggers(loc)
    return loc


def _imports(loc: Location, root: str) -> None:
    """An import of the location's own modules that names no module of it (GD407), or a name
    the module it names does not define: Python fails there, and Dagster with it."""
    from gitdags.orchestrators.airflow.kind import module_of

    own = {module_of(p, root): p for p in loc.modules}
    packages = {".".join(m.split(".")[:i]) for m in own for i in range(1, m.count(".") + 1)}
    tops = {m.split(".")[0] for m in own} - {""}
    for path, module in sorted(loc.modules.items()):
        said: set[tuple[str, int]] = set()
        here = module_of(path, root).split(".")
        base = here if path.endswith("__init__.py") else here[:-1]
        for level, name, attr, line in module.needs:
            if level:
                if level - 1 > len(base):
                    continue
                up = base[: len(base) - (level - 1)]
                name = ".".join([*up, *([name] if name else [])])
            if not name or name.split(".")[0] not in tops:
                continue  # not the location's own: Dagster's environment has it or not
            if name not in own and name not in packages:
                problem = f"module {name!r}, which is no file of the code location"
            elif attr and f"{name}.{attr}" not in own and f"{name}.{attr}" not in packages:
                target = loc.modules.get(own.get(name, ""))
                if target is None or target.star or attr in target.defined:
                    continue
                problem = f"{attr!r} from {name}, which does not define it"
            else:
                continue
            if (problem, line) in said:
                continue
            said.add((problem, line))
            loc.add(
                path,
                Issue(
                    "GD407",
                    "error",
                    path,
                    "",
                    line,
                    f"The module imports {problem}; Python fails there and Dagster refuses the "
                    "code location.",
                ),
            )


def _dependencies(loc: Location) -> None:
    for key, asset in loc.assets.items():
        for dep in asset.deps:
            if dep in loc.assets:
                continue
            path = loc.owner[key]
            # an input (a parameter) must be an asset; `deps=` naming none is an external asset
            loc.add(
                path,
                Issue(
                    "GD202",
                    "warning",
                    path,
                    f"assets.{key}",
                    asset.line,
                    f"Asset {key!r} depends on {dep!r}, which no module of the code location "
                    "defines; if it is an input (a parameter), Dagster refuses the location "
                    "(declare the asset, or list it in deps= as an external asset).",
                ),
            )


def _cycles(loc: Location) -> None:
    graph = {k: [d for d in a.deps if d in loc.assets] for k, a in loc.assets.items()}
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()
    for start in sorted(graph):
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        trail: list[str] = []
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                trail.append(node)
            ups = graph[node]
            if index < len(ups):
                stack.append((node, index + 1))
                up = ups[index]
                if state.get(up) == 1:
                    cycle = trail[trail.index(up) :]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        _cycle_issue(loc, list(reversed(cycle)))
                elif not state.get(up):
                    stack.append((up, 0))
            else:
                state[node] = 2
                trail.pop()


def _cycle_issue(loc: Location, cycle: list[str]) -> None:
    """`cycle`: asset keys, each upstream of the next (and the last of the first)."""
    spelled = " -> ".join([*cycle, cycle[0]])
    for path in sorted({loc.owner[k] for k in cycle}):
        first = next(k for k in cycle if loc.owner[k] == path)
        loc.add(
            path,
            Issue(
                "GD204",
                "error",
                path,
                f"assets.{first}",
                loc.assets[first].line,
                f"Assets form a cycle ({spelled}); Dagster refuses the code location: "
                "remove one dependency.",
            ),
        )


def _selections(loc: Location) -> None:
    groups = {a.group for a in loc.assets.values() if not a.external}
    for name, (path, job) in sorted(loc.jobs.items()):
        if job.kind != "asset_job":
            continue
        for key in job.selection:
            if key not in loc.assets:
                loc.add(
                    path,
                    Issue(
                        "GD202",
                        "error",
                        path,
                        f"jobs.{name}",
                        job.line,
                        f"Job {name!r} selects asset {key!r}, which no module of the code "
                        "location defines; Dagster refuses the location.",
                    ),
                )
        for group in job.groups:
            if group not in groups:
                loc.add(
                    path,
                    Issue(
                        "GD202",
                        "error",
                        path,
                        f"jobs.{name}",
                        job.line,
                        f"Job {name!r} selects asset group {group!r}, which has no asset in "
                        "the code location; Dagster refuses the location.",
                    ),
                )


def _triggers(loc: Location) -> None:
    for path, module in sorted(loc.modules.items()):
        for trigger in module.triggers:
            if trigger.targets and not _jobs_of(loc, module, trigger):
                loc.add(
                    path,
                    Issue(
                        "GD422",
                        "error",
                        path,
                        f"{trigger.kind}s.{trigger.name}",
                        trigger.line,
                        f"The {trigger.kind} {trigger.name!r} targets a job that no module of "
                        "the code location defines; define the job or fix the name.",
                    ),
                )


def _jobs_of(loc: Location, module: Module, trigger: Trigger) -> list[str]:
    """The names of the jobs a trigger targets (a variable resolved through the modules)."""
    found = []
    for kind, name in trigger.targets:
        if kind == "name" and name in loc.jobs:
            found.append(name)
            continue
        for job_name, (_path, job) in loc.jobs.items():
            if kind == "var" and name in (job.var, job.name):
                found.append(job_name)
                break
    return found


def selected(loc: Location, job: Job) -> list[str]:
    """The asset keys an asset job runs."""
    if job.everything:
        return sorted(k for k, a in loc.assets.items() if not a.external)
    keys = {k for k in job.selection if k in loc.assets}
    keys |= {k for k, a in loc.assets.items() if a.group in job.groups and not a.external}
    return sorted(keys)


def job_specs(loc: Location) -> dict[tuple[str, str], dict[str, Any]]:
    """(path, job name) -> the job's spec with its assets and the triggers of every module."""
    triggers: dict[str, list[Trigger]] = {}
    for module in loc.modules.values():
        for trigger in module.triggers:
            for name in _jobs_of(loc, module, trigger):
                triggers.setdefault(name, []).append(trigger)
    out = {}
    for path, module in loc.modules.items():
        for job in module.jobs:
            spec = job_spec(job, module, triggers.get(job.name, []))
            if job.kind == "asset_job":
                keys = selected(loc, job)
                spec["tasks"] = _asset_tasks(loc, keys)
            out[(path, job.name)] = spec
    return out


def from_dagster(
    loc: Location,
    specs: dict[tuple[str, str], dict[str, Any]],
    groups: dict[str, dict[str, Any]],
    answer: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """The jobs' specs (changed in place) and the asset groups' specs with what Dagster found
    when it loaded the location (`load_worker`'s answer): each job's assets and ops with their
    dependencies, its schedules and sensors, and the assets no job selects."""
    assets: dict[str, dict[str, Any]] = answer.get("assets") or {}
    jobs: dict[str, dict[str, Any]] = answer.get("jobs") or {}
    for (_path, name), spec in specs.items():
        job = jobs.get(name)
        if job is None:
            continue
        if job.get("assets"):
            spec["tasks"] = _loaded_tasks(loc, assets, [k for k in job["assets"] if k in assets])
        else:
            deps = job.get("deps") or {}
            spec["tasks"] = [
                {"id": n, "type": "op", "depends_on": sorted(deps.get(n, ()))}
                for n in sorted(job["nodes"])
            ]
        known = {s["name"] for s in spec["schedules"]}
        spec["schedules"] += [{"name": s, "cron": None} for s in job["schedules"] if s not in known]
        spec["sensors"] = sorted(set(spec["sensors"]) | set(job["sensors"]))
        spec["loaded_by"] = f"dagster {answer.get('dagster', '')}".strip()
    taken = {k for job in jobs.values() for k in job.get("assets", ())}
    by_group: dict[str, list[str]] = {}
    for key, asset in sorted(assets.items()):
        if key not in taken and key in loc.assets and not loc.assets[key].external:
            by_group.setdefault(asset.get("group") or "default", []).append(key)
    out = {}
    for group, keys in by_group.items():
        dag_id = f"{GROUP_PREFIX}{group}"
        spec = dict(groups.get(dag_id) or _group_spec(group, []))
        spec["tasks"] = _loaded_tasks(loc, assets, keys)
        spec["loaded_by"] = f"dagster {answer.get('dagster', '')}".strip()
        out[dag_id] = spec
    return out


def _loaded_tasks(
    loc: Location, assets: dict[str, dict[str, Any]], keys: list[str]
) -> list[dict[str, Any]]:
    chosen = set(keys)
    return [
        {
            "id": key,
            "type": "asset",
            "group": assets[key].get("group") or "default",
            "module": loc.owner.get(key),
            "depends_on": sorted(d for d in assets[key].get("deps", ()) if d in chosen),
        }
        for key in sorted(keys)
    ]


def _asset_tasks(loc: Location, keys: list[str]) -> list[dict[str, Any]]:
    chosen = set(keys)
    return [
        {
            "id": key,
            "type": "asset",
            "group": loc.assets[key].group,
            "module": loc.owner[key],
            "depends_on": sorted({d for d in loc.assets[key].deps if d in chosen}),
        }
        for key in keys
    ]


def group_specs(loc: Location) -> dict[str, dict[str, Any]]:
    """DAG id -> spec of each asset group with assets that no asset job selects."""
    taken: set[str] = set()
    for _path, job in loc.jobs.values():
        if job.kind == "asset_job":
            taken.update(selected(loc, job))
    groups: dict[str, list[str]] = {}
    for key, asset in sorted(loc.assets.items()):
        if key not in taken and not asset.external:
            groups.setdefault(asset.group, []).append(key)
    return {
        f"{GROUP_PREFIX}{group}": _group_spec(group, _asset_tasks(loc, keys))
        for group, keys in sorted(groups.items())
    }


def _group_spec(group: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "dag_id": f"{GROUP_PREFIX}{group}",
        "format": "dagster",
        "job": "asset_group",
        "description": f"The assets of group {group!r} that no job selects.",
        "schedule": None,
        "schedules": [],
        "sensors": [],
        "selection": None,
        "owner": None,
        "tags": [],
        "depends_on_dags": [],
        "tasks": tasks,
    }


def check_location(texts: dict[str, bytes], root: str = "") -> dict[str, list[Issue]]:
    """The checks across the modules of one location given as path -> bytes (`gitdags
    validate`): every module is new, so each issue stays on the module that brings it."""
    from gitdags.orchestrators.dagster.kind import read_module

    modules = {p: read_module(p, raw) or Module(p, star=True) for p, raw in texts.items()}
    return assemble(modules, set(modules), root).issues
