# -*- coding: latin-1 -*-
from airflow.sdk import DAG

with DAG(dag_id="cookie_bom"):
    pass
