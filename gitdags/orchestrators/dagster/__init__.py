"""Dagster code locations: a source with `orchestrator = "dagster"` holds the Python modules of
one code location. Each job is a DAG (`kind`, `reader`); asset groups outside every job and the
checks that need every module are put together by `location`; `tier` judges a sync's plan (the
static checks of the whole location, and with `python = "dagster"` the location loaded in the
sandbox by `load_worker`); `graphql` reloads the location and pauses jobs in Dagster."""
