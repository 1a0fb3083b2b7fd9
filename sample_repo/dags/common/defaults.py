"""Shared settings of the platform's Airflow DAGs (a helper module: never a DAG itself)."""

from datetime import timedelta

PLATFORM_OWNER = "platform-team"


def default_args(owner: str = PLATFORM_OWNER, retries: int = 2) -> dict:
    return {"owner": owner, "retries": retries, "retry_delay": timedelta(minutes=5)}
