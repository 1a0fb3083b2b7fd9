#!/usr/bin/env python
# vim: set fileencoding=latin-1 :
from airflow.sdk import DAG

# café: latin-1 bytes, as the declaration says
with DAG(dag_id="latin1_dag", description="café"):
    pass
