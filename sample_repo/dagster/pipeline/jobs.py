"""The training job and its nightly schedule."""

from dagster import AssetSelection, ScheduleDefinition, define_asset_job

train_model = define_asset_job("train_model", selection=AssetSelection.groups("ml"))

nightly_training = ScheduleDefinition(job=train_model, cron_schedule="0 3 * * *")
