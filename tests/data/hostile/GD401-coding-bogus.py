# -*- coding: bogus -*-
from airflow.sdk import DAG

with DAG(dag_id="cookie_bogus"):
    pass
