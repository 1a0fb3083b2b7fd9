"""The one interface between the sync and an orchestrator's tier: what a tier may use of the
sync (`SyncView`) and what it offers (`Tier`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gitdags.config import Settings, SourceConfig
    from gitdags.git.source import Change, GitSource
    from gitdags.history.store import HistoryStore
    from gitdags.kinds import ReadContext
    from gitdags.model import FileDefinitions
    from gitdags.plan import Plan


log = logging.getLogger(__name__)


class SyncView(Protocol):
    """What an orchestrator's tier may use of the sync it judges for."""

    name: str
    config: SourceConfig
    settings: Settings
    store: HistoryStore
    git: GitSource
    ctx: ReadContext
    worker: Callable[[], object] | None  # the source's sandboxed worker, started on use

    def read_changes(
        self, plan: Plan, head: str, changes: list[Change]
    ) -> dict[str, FileDefinitions]: ...


class Tier(Protocol):
    """An orchestrator's judgement of a sync's plan, after the kinds' static reading."""

    def environment(self, plan: Plan) -> bool:
        """True when what the orchestrator runs with changed since the last sync: every file
        it judges is read again."""
        ...

    def judge(self, plan: Plan, head: str) -> None:
        """Replace, in `plan.checked`, what the static reading guessed by what the
        orchestrator's own loader makes of the changed files (in the sandbox)."""
        ...


def environment_changed(
    sync: SyncView, plan: Plan, orchestrator: str, python: str, note: str
) -> bool:
    """Whether the environment `python` runs (the orchestrator's packages) changed since the
    last sync of the source: its fingerprint is recorded with this sync, and a change puts
    `note` on the plan (every file the orchestrator judges is judged again)."""
    from gitdags.orchestrators.airflow.parsing import environment_fingerprint

    key = f"{orchestrator}-environment:{sync.name}"
    now = environment_fingerprint(python)
    before = sync.store.meta(key)
    if before != now:
        plan.environment = (key, now)  # recorded with the sync
    if before is None or before == now:
        return False
    plan.note = note
    log.info("source %s: %s", sync.name, note)
    return True
