# -*- coding: rot13 -*-
from airflow.sdk import DAG

with DAG(dag_id="cookie_rot13"):
    pass
