from datetime import datetime

from airflow import DAG
from airflow.operators.dummy import DummyOperator

with DAG(dag_id="team_legacy", schedule_interval="@daily", start_date=datetime(2024, 1, 1)):
    DummyOperator(task_id="start")
