from airflow.sdk import DAG
from mycompany.jobs import nightly

with DAG(dag_id="team_forbidden", schedule=None):
    nightly()
