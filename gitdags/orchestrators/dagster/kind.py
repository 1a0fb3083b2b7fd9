"""One Python file of a Dagster source, read from its syntax tree (no code runs).

A file that defines jobs (`@job`, `define_asset_job(...)`, `@graph` + `.to_job()`) is of kind
`dagster`: each job is a DAG with its own versions, in that file. Any other Python file (the
asset modules, ops, resources, the `Definitions(...)` module) is a `module`: versioned and
served with the tree, never a DAG itself. What needs the other modules of the code location
(asset keys across files, a job's assets, schedules in another file, asset groups) is put
together by `location` in the tier, after every changed file was read here."""

from __future__ import annotations

import ast
import hashlib
import json
from typing import TYPE_CHECKING, Any

from gitdags.model import DagFile, FileDefinitions, Issue
from gitdags.orchestrators.airflow.imports import forbidden_imports, imported_modules
from gitdags.orchestrators.airflow.kind import module_of, source_text
from gitdags.orchestrators.dagster.reader import CRON_PRESETS, Job, Module, ModuleReader
from gitdags.spec import ID_MAX, ID_RE

if TYPE_CHECKING:
    from gitdags.kinds import ReadContext


def parse(path: str, raw: bytes | str) -> tuple[ast.Module | None, Issue | None]:
    try:
        return ast.parse(raw, filename=path), None
    except SyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) and exc.lineno > 0 else None
        reason = (exc.msg or "").strip().rstrip(".") or "Python gave no reason"
        return None, Issue("GD401", "error", path, "", line, f"Syntax error: {reason}.")
    except (ValueError, RecursionError, MemoryError) as exc:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        return None, Issue(
            "GD401", "error", path, "", None, f"The file cannot be parsed: {reason}."
        )


def read_module(path: str, raw: bytes | str) -> Module | None:
    """What one module defines (None when it does not parse, or nests too deeply to read)."""
    tree, _issue = parse(path, raw)
    if tree is None:
        return None
    try:
        return ModuleReader(path, tree).read()
    except RecursionError:
        return None


def too_deep(path: str) -> Issue:
    return Issue(
        "GD401",
        "error",
        path,
        "",
        None,
        "The file nests expressions too deeply to be read (a chain of thousands of operators "
        "or calls); split the expression.",
    )


def definitions(path: str, raw: bytes, digest: str, ctx: ReadContext) -> FileDefinitions | None:
    """The definitions of one file of a Dagster source; None for a file that is not Python."""
    if not path.endswith(".py"):
        return None
    text, _encoding = source_text(raw)
    tree, issue = parse(path, raw)
    if tree is None:
        assert issue is not None
        return FileDefinitions(path, "module", digest, issues=(issue,), content=text)
    module = module_of(path, ctx.root)
    imports = tuple(sorted(imported_modules(tree, module, path.endswith("__init__.py"))))
    issues = forbidden_imports(path, tree, module, ctx.forbidden_imports)
    try:
        found = ModuleReader(path, tree).read()
    except RecursionError:
        issue = too_deep(path)
        return FileDefinitions(path, "module", digest, issues=(issue,), content=text)
    issues += file_checks(found)
    if not found.jobs:
        return FileDefinitions(
            path, "module", digest, imports=imports, issues=tuple(issues), content=text
        )
    dags = tuple(
        DagFile(path, job.name, spec, id_issues(path, job), spec_hash(digest, spec), text)
        for job in found.jobs
        for spec in [job_spec(job, found)]
    )
    return FileDefinitions(
        path, "dagster", digest, dags=dags, imports=imports, issues=tuple(issues), content=text
    )


def spec_hash(digest: str, spec: dict[str, Any]) -> str:
    """A DAG's content hash: its file's, and what the code location adds to its spec (its
    assets and schedules in other files), so that either makes a new version."""
    extra = json.dumps(spec, sort_keys=True).encode()
    return hashlib.sha256(digest.encode() + b"\0" + extra).hexdigest()


def job_spec(job: Job, module: Module, triggers: list[Any] | None = None) -> dict[str, Any]:
    """A job's spec, with the tasks and triggers its own module shows (`location` completes
    an asset job's tasks and adds the schedules and sensors of other modules)."""
    if triggers is None:
        triggers = [t for t in module.triggers if targets(t, module, job)]
    schedules = [
        {"name": t.name, "cron": t.cron[0] if t.cron and len(t.cron) == 1 else t.cron}
        for t in triggers
        if t.kind == "schedule"
    ]
    tasks = [{"id": op, "type": "op", "depends_on": sorted(ups)} for op, ups in job.tasks.items()]
    selection = {
        "assets": sorted(job.selection),
        "groups": sorted(job.groups),
        "all": job.everything,
        "resolved": not job.unresolved,
    }
    return {
        "dag_id": job.name,
        "format": "dagster",
        "job": job.kind,
        "description": job.description,
        "schedule": schedules[0]["cron"] if len(schedules) == 1 else None,
        "schedules": sorted(schedules, key=lambda s: s["name"]),
        "sensors": sorted(t.name for t in triggers if t.kind == "sensor"),
        "selection": selection if job.kind == "asset_job" else None,
        "owner": None,
        "tags": [],
        "depends_on_dags": [],
        "tasks": tasks,
    }


def targets(trigger: Any, module: Module, job: Job) -> bool:
    """Whether a schedule or sensor of `module` targets `job` (of the same module)."""
    for kind, name in trigger.targets:
        if kind == "name" and name == job.name:
            return True
        if kind == "var" and name in (job.var, job.name):
            return True
    return False


def file_checks(module: Module) -> list[Issue]:
    """What one module shows wrong on its own: cron strings, a job or asset key defined twice."""
    issues = []
    path = module.path
    for trigger in module.triggers:
        for cron in trigger.cron or ():
            reason = cron_problem(cron)
            if reason:
                issues.append(
                    Issue(
                        "GD105",
                        "error",
                        path,
                        f"schedules.{trigger.name}",
                        trigger.line,
                        f"Schedule {trigger.name!r} has cron_schedule {cron!r}, which Dagster "
                        f"refuses: {reason}.",
                    )
                )
    seen: dict[str, int] = {}
    for job in module.jobs:
        if job.name in seen:
            issues.append(
                Issue(
                    "GD301",
                    "error",
                    path,
                    f"jobs.{job.name}",
                    job.line,
                    f"Job {job.name!r} is defined twice in this file (also line "
                    f"{seen[job.name]}); Dagster refuses the code location: rename one.",
                )
            )
        seen.setdefault(job.name, job.line)
    keys: dict[str, int] = {}
    for asset in module.assets:
        if asset.key in keys:
            issues.append(
                Issue(
                    "GD420",
                    "error",
                    path,
                    f"assets.{asset.key}",
                    asset.line,
                    f"Asset key {asset.key!r} is defined twice in this file (also line "
                    f"{keys[asset.key]}); Dagster refuses the code location: rename one.",
                )
            )
        keys.setdefault(asset.key, asset.line)
    return issues


def cron_problem(cron: str) -> str | None:
    """None when Dagster accepts `cron` (5 fields, or one of its presets), else why not."""
    if cron.startswith("@"):
        return None if cron in CRON_PRESETS else f"the presets are {' '.join(CRON_PRESETS)}"
    if len(cron.split()) != 5:
        return "a cron expression has 5 fields (minute hour day month weekday)"
    from croniter import croniter

    try:
        croniter(cron)
    except (ValueError, KeyError, TypeError) as exc:
        return str(exc).rstrip(".") or "not a valid cron expression"
    return None


def id_issues(path: str, job: Job) -> tuple[Issue, ...]:
    if len(job.name) <= ID_MAX and ID_RE.fullmatch(job.name):
        return ()
    message = (
        f"Job name {job.name[:80]!r} is not a valid DAG id: use letters, digits, '_', '.', '-', "
        f"starting with a letter or digit, at most {ID_MAX} characters."
    )
    return (Issue("GD104", "error", path, f"jobs.{job.name}", job.line, message),)
