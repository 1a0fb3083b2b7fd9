"""Mentions airflow and a dag, but defines none: Airflow would parse it for nothing."""

from airflow.sdk import dag


def make(name):
    return dag(dag_id=name)
