"""Apache Airflow: Python DAG files and dag-factory YAML as definition kinds, the sandboxed parse
worker and the tier that runs it, .airflowignore, the Airflow 3 compatibility rules (ruff's AIR
rules). The DAG factory that served files and users import stays at its public path,
`gitdags.airflow`."""
