import time

from airflow.sdk import DAG

time.sleep(60)

with DAG(dag_id="too_slow", schedule=None):
    pass
