"""What Airflow needs served beside a source's files for a dag-factory DAG: its block (with
its defaults) and the loader that hands that block to dag-factory, one pair per DAG, so one
bad DAG never takes its file's other DAGs down. The deploy folder and the Airflow tier (which
builds each DAG from these files in the sandbox) write the same files."""

from __future__ import annotations

import string
from pathlib import Path

from gitdags.model import ServedDag

DAGFACTORY_LOADER = Path(__file__).with_name("dagfactory_loader.py.tmpl")


def dagfactory_block(dag: ServedDag) -> str:
    """The document dag-factory builds one served DAG from: its block, the `default` block and
    the defaults that reached it, as YAML."""
    import yaml

    config = (dag.spec or {})["dag_factory"]["config"]
    head = (
        f"# DAG {dag.dag_id} v{dag.version} from {dag.source}:{dag.path} at {dag.commit}, "
        "with its defaults; read by the loader beside it.\n"
    )
    return head + yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100)


def dagfactory_loader(dag: ServedDag, data_file: str, up: str) -> str:
    template = string.Template(DAGFACTORY_LOADER.read_text(encoding="utf-8"))
    return template.safe_substitute(
        dag_id=dag.dag_id,
        version=dag.version,
        source=dag.source,
        path=dag.path,
        commit=dag.commit,
        data_file=data_file,
        up=up,
    )
