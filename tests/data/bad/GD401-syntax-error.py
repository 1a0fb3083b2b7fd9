from airflow.sdk import DAG

with DAG(dag_id="broken", schedule=None)
    pass
