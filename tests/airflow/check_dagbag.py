"""Run inside a virtual environment with Apache Airflow 3: load the served DAGs through
`gitdags.airflow.load_dags` with Airflow's own DagBag, and run `dag.test()` on one DAG.

    python check_dagbag.py DATABASE DAGS_FOLDER TEST_DAG   -> one JSON object on stdout
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path


def main() -> None:
    database, folder, test_dag = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gitdags_dags.py").write_text(
        f"from gitdags.airflow import load_dags\n\nload_dags(globals(), database={database!r})\n"
    )
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    noise = io.StringIO()
    with contextlib.redirect_stdout(noise):
        bag = DagBag(dag_folder=str(folder))
        run = bag.dags[test_dag].test()
    out = {
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dags": {
            dag_id: {
                "schedule": dag.schedule
                if isinstance(dag.schedule, str | None)
                else str(dag.schedule),
                "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
                "operators": {t.task_id: type(t).__name__ for t in dag.tasks},
            }
            for dag_id, dag in bag.dags.items()
        },
        "test_run": {
            "state": str(run.state),
            "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()},
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
