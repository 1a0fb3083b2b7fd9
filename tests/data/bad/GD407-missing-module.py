from airflow.sdk import DAG
from no_such_package_xyz import helpers

with DAG(dag_id="missing_module", schedule=None):
    helpers.setup()
