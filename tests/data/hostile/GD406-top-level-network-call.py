import requests
from airflow.sdk import DAG
requests.get('http://169.254.169.254/')
with DAG(dag_id='net'):
    pass
