"""The sample location's pipeline/jobs.py with its schedule renamed: definitions.py (unchanged)
still imports nightly_training, so the location would break there."""

from dagster import AssetSelection, ScheduleDefinition, define_asset_job

train_model = define_asset_job("train_model", selection=AssetSelection.groups("ml"))

nightly = ScheduleDefinition(job=train_model, cron_schedule="0 3 * * *")
