"""Prefect flows and deployments (a source with `orchestrator = "prefect"`).

Each deployment of a project file (`prefect.yaml`) is a DAG, its id `<flow name>/<deployment
name>` as Prefect names it; its content is its block, the project's shared keys and the
repository files its flow runs with, so a change to the flow file or to a module it imports
makes a new version. Python files are flow files (`@flow`) or helper modules, served at their
last good blob.

    deployments  the project file, read on its own (fields, schedules, names)
    flows        flow files and modules, from the syntax tree (flows, tasks, imports)
    schedules    cron / interval / rrule items and their time zones
    project      a deployment resolved against its flow file: id, entrypoint, parameters, code
    tier         the sync's Prefect tier: project files read again when code changes; with
                 python = "prefect", Prefect's own loader in the sandbox
    served       the prefect.yaml the served tree holds (the served deployment blocks)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitdags.kinds import ReadContext
    from gitdags.model import FileDefinitions


def read(path: str, raw: bytes, digest: str, ctx: ReadContext) -> FileDefinitions | None:
    """A file of a Prefect source as Prefect reads it; None for the kinds every source shares
    (format v1 files)."""
    if path.endswith(".py"):
        from gitdags.orchestrators.prefect import flows

        return flows.definitions(path, raw, digest, ctx)
    if not path.endswith((".yaml", ".yml")):
        return None
    from gitdags import formats
    from gitdags.orchestrators.prefect import deployments

    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None  # the shared reading says it is not UTF-8
    named = deployments.is_project_name(path)
    if not named and b"deployments" not in raw:
        return None
    parsed = formats.parse(path, text)
    if parsed.issues:
        if not named:
            return None
        from gitdags.model import FileDefinitions

        return FileDefinitions(path, "prefect", digest, issues=tuple(parsed.issues), content=text)
    if not deployments.looks_like(path, parsed.data):
        return None
    return deployments.definitions(path, parsed.data, parsed.line_of, ctx, digest, text)
