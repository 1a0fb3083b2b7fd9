"""Refresh the finance dashboards, as a TaskFlow DAG."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(schedule="@hourly", start_date=datetime(2024, 1, 1), catchup=False, tags=["finance"])
def report_refresh():
    @task
    def refresh_extracts() -> int:
        return 12

    @task
    def notify(count: int) -> None:
        print(f"refreshed {count} extracts")

    notify(refresh_extracts())


report_refresh()
