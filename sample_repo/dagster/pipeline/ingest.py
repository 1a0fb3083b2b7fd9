"""Raw events in, cleaned events out."""

from dagster import asset


@asset(group_name="ingest")
def raw_events() -> list[dict]:
    return [{"user": 1, "clicks": 3}, {"user": 2, "clicks": 0}]


@asset(group_name="ingest")
def clean_events(raw_events: list[dict]) -> list[dict]:
    return [e for e in raw_events if e["clicks"] > 0]
