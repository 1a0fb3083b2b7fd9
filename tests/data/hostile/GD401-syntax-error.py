from airflow.sdk import DAG
DAG(dag_id='x'
