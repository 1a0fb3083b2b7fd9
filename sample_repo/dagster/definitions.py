"""The code location of the ML training pipeline: its assets, job and schedule."""

from dagster import Definitions, load_assets_from_modules
from pipeline import ingest, training
from pipeline.jobs import nightly_training, train_model

defs = Definitions(
    assets=load_assets_from_modules([ingest, training]),
    jobs=[train_model],
    schedules=[nightly_training],
)
