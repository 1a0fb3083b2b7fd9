"""A schedule of a job that no module defines."""

from dagster import ScheduleDefinition

nightly = ScheduleDefinition(job_name="no_such_job", cron_schedule="0 3 * * *")
