from airflow.sdk import DAG

with DAG(dag_id="other_team_report", schedule=None):
    pass
