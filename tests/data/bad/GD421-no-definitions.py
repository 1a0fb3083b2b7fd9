"""A code location's module (dagster_module) that makes no Definitions(...)."""

from dagster import asset


@asset
def lonely():
    return 1
