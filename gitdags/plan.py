"""What a sync will record, worked out before it takes the write lock: the plan that a sync
makes and that an orchestrator's tier judges further (see `gitdags.orchestrators`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gitdags.git.source import Change
from gitdags.model import Commit, FileDefinitions


@dataclass
class Plan:
    """What a sync will record, worked out before taking the write lock."""

    base: tuple[str | None, str | None]  # the source's (served commit, settings) it started from
    old: str | None
    head: str
    forced: bool = False
    nothing_new: bool = False
    commit: Commit | None = None  # the head commit
    commits: dict[str, Commit] = field(default_factory=dict)  # path -> the commit that changed it
    changes: list[Change] = field(default_factory=list)
    checked: dict[str, FileDefinitions] = field(default_factory=dict)
    again: set[str] = field(default_factory=set)  # unchanged files checked again
    environment: tuple[str, str] | None = None  # (meta key, fingerprint) of the Airflow env
    note: str = ""

    def commit_of(self, path: str) -> Commit:
        assert self.commit is not None
        return self.commits.get(path, self.commit)
