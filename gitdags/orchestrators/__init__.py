"""Orchestrators: one package per orchestrator whose files gitdags governs (its definition kinds,
its tier that parses files in the sandbox, its rules, what it serves beside the files). Imports
the vocabulary, kinds, checks' rules and the sandbox; never the engine, serving or the daemon."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitdags.orchestrators.interface import SyncView, Tier


def tiers(sync: SyncView) -> list[Tier]:
    """The tiers of every orchestrator, for one sync (a new orchestrator adds its own here)."""
    from gitdags.orchestrators.airflow.tier import AirflowTier

    return [AirflowTier(sync)]
