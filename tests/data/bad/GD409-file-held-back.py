from airflow.sdk import DAG

with DAG(dag_id="team_good_one", schedule=None):
    pass

with DAG(dag_id="team bad id!", schedule=None):
    pass
