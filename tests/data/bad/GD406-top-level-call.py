from airflow.sdk import DAG, Variable

bucket = Variable.get("landing_bucket")

with DAG(dag_id="team_top_level", schedule=None):
    pass
