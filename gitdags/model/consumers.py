"""What a consumer (an orchestrator's API that runs what gitdags serves) has of each served DAG."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# landed: it runs the served version; pending: served, not parsed there yet; drift: it runs
# another version, or a DAG of a served file that gitdags does not serve; broken: it reports an
# import error for a served file; missing: served, absent there past the consumer's deadline
CONSUMER_STATES = ("landed", "pending", "drift", "broken", "missing")


@dataclass(frozen=True)
class ConsumerDag:
    consumer: str
    dag_id: str
    state: str
    version: int | None  # the served version judged (None: a DAG gitdags does not serve)
    since: str  # when that version was published (pending counts from here)
    parsed_at: str | None = None  # when the consumer last parsed it
    bundle_version: str | None = None  # the served-branch commit it parsed, where it says
    paused: bool | None = None  # paused there (None: not known there)
    error: str = ""  # its import error there, or why the state is what it is
    checked_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ConsumerStatus:
    """One consumer at a glance: its DAGs by state, the oldest pending, its last answer."""

    name: str
    api_url: str
    counts: dict[str, int]
    oldest_pending: float | None  # seconds
    checked_at: str | None
    error: str | None  # why the last poll failed (None: it answered)
    requests: int  # requests sent by the last poll

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
