"""Shared settings of the platform's pipelines: a helper module, imported by the DAG files."""

from datetime import timedelta

PLATFORM_OWNER = "platform-team"


def default_args(owner: str = PLATFORM_OWNER, retries: int = 2) -> dict:
    return {"owner": owner, "retries": retries, "retry_delay": timedelta(minutes=5)}
