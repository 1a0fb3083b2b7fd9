from airflow.sdk import DAG

with DAG(dag_id="no_cookie_latin1", description="café"):
    pass
