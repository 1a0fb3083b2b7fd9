"""Orchestrators: one package per orchestrator whose files gitdags governs (its definition kinds,
its tier that parses files in the sandbox, its rules, what it serves beside the files). Imports
the vocabulary, kinds, checks' rules and the sandbox; never the engine, serving or the daemon.

A source names its orchestrator (`orchestrator = "airflow"`, the default; the names are
`config.keys.ORCHESTRATORS`). A new orchestrator is a package here with a `read` for its files
and a tier, and one line in each of `read_file` and `tiers` below."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitdags.kinds import ReadContext
    from gitdags.model import FileDefinitions
    from gitdags.orchestrators.interface import SyncView, Tier


def read_file(path: str, raw: bytes, digest: str, ctx: ReadContext) -> FileDefinitions | None:
    """The definitions in one file of a source of `ctx.orchestrator` other than Airflow, as that
    orchestrator reads them; None for a file it leaves to the kinds every source shares (v1)."""
    if ctx.orchestrator == "dagster":
        from gitdags.orchestrators.dagster.kind import definitions

        return definitions(path, raw, digest, ctx)
    if ctx.orchestrator == "prefect":
        from gitdags.orchestrators import prefect

        return prefect.read(path, raw, digest, ctx)
    return None


def tiers(sync: SyncView) -> list[Tier]:
    """The tiers of the orchestrator of the source a sync is for."""
    if sync.config.orchestrator == "airflow":
        from gitdags.orchestrators.airflow.tier import AirflowTier

        return [AirflowTier(sync)]
    if sync.config.orchestrator == "dagster":
        from gitdags.orchestrators.dagster.tier import DagsterTier

        return [DagsterTier(sync)]
    if sync.config.orchestrator == "prefect":
        from gitdags.orchestrators.prefect.tier import PrefectTier

        return [PrefectTier(sync)]
    return []
