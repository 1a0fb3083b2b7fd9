"""Nightly backup of the warehouse metadata, written as an Airflow DAG file."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG
from common.defaults import default_args

with DAG(
    dag_id="nightly_backup",
    description="Dump the warehouse catalog and ship it to cold storage",
    schedule="0 1 * * *",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args=default_args(),
    tags=["platform", "backup"],
):
    dump = BashOperator(task_id="dump_catalog", bash_command="echo dump {{ ds }}")
    compress = BashOperator(task_id="compress", bash_command="echo gzip")
    ship = BashOperator(task_id="ship_to_cold_storage", bash_command="echo ship")
    dump >> compress >> ship
