# -*- coding: utf-16 -*-
from airflow.sdk import DAG

with DAG(dag_id="cookie_utf16"):
    pass
