"""Two assets with one key (Dagster: "Duplicate asset key")."""

from dagster import asset


@asset
def report():
    return 1


@asset(name="report")
def report_again():
    return 2
