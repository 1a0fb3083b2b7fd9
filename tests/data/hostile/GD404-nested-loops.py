# A billion rounds of literal loops: the static reading follows 10,000 and gives up, instead
# of working for hours (the DAG ids are then for Airflow to find: python = "airflow").
from airflow.sdk import DAG

for a in range(1000):
    for b in range(1000):
        for c in range(1000):
            with DAG(dag_id=f"nested_{a}_{b}_{c}"):
                pass
