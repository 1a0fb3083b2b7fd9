"""The streaming pipeline: a flow with two subflows and retrying tasks."""

from common.batching import batches
from prefect import flow, task


@task(retries=3, retry_delay_seconds=10)
def fetch(source: str, size: int) -> list[int]:
    return list(range(size))


@task
def store(rows: list[int]) -> int:
    return len(rows)


@flow(name="extract-events")
def extract(source: str, batch_size: int) -> list[int]:
    return fetch(source, batch_size)


@flow(name="load-events")
def load(rows: list[int], batch_size: int) -> int:
    return sum(store(chunk) for chunk in batches(rows, batch_size))


@flow(log_prints=True)
def event_pipeline(source: str, batch_size: int = 1000) -> int:
    rows = extract(source, batch_size)
    loaded = load(rows, batch_size)
    print(f"loaded {loaded} events from {source}")
    return loaded
