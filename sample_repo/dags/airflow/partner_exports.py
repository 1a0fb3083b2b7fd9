"""One export DAG per partner, built in a loop: one file, several DAGs."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from common.defaults import default_args

PARTNERS = ["acme", "globex", "initech"]

for partner in PARTNERS:
    with DAG(
        dag_id=f"partner_export_{partner}",
        schedule="@daily",
        start_date=datetime(2024, 1, 1),
        catchup=False,
        default_args=default_args(owner="partnerships"),
        tags=["partners", partner],
    ):
        start = EmptyOperator(task_id="start")
        extract = BashOperator(task_id="extract", bash_command=f"echo extract {partner}")
        upload = BashOperator(task_id="upload_sftp", bash_command=f"echo upload {partner}")
        start >> extract >> upload
