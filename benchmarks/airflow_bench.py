"""Apache Airflow's own DagBag parsing the same DAGs written as Airflow Python files.

Airflow lives in its own virtual environment (the one the tests use, `.venv-airflow`, or
$GITDAGS_AIRFLOW_VENV), made on demand; where it cannot be installed this part is skipped
with a message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from repo import WORK, airflow_file

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["apache-airflow>=3,<4", "apache-airflow-providers-http"]

TIMER = textwrap.dedent(
    """
    import json, sys, time, logging
    logging.disable(logging.CRITICAL)
    from airflow.dag_processing.dagbag import DagBag
    folder, reps = sys.argv[1], int(sys.argv[2])
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        bag = DagBag(dag_folder=folder)
        times.append(time.perf_counter() - start)
    import airflow
    print(json.dumps({"seconds": times, "dags": len(bag.dags), "errors": len(bag.import_errors),
                      "version": airflow.__version__}))
    """
)


def airflow_python(install: bool) -> Path | None:
    venv = Path(os.environ.get("GITDAGS_AIRFLOW_VENV", ROOT / ".venv-airflow"))
    python = venv / "bin" / "python"
    if (
        python.exists()
        and subprocess.run(
            [str(python), "-c", "import airflow.providers.http"], capture_output=True
        ).returncode
        == 0
    ):
        return python
    if not install:
        return None
    print(f"   installing Apache Airflow into {venv} (about a minute)...", flush=True)
    for step in (
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", *PACKAGES],
    ):
        if subprocess.run(step, capture_output=True).returncode != 0:
            return None
    return python


def bench(specs: list[dict[str, Any]], install: bool, reps: int) -> dict[str, Any] | None:
    python = airflow_python(install)
    if python is None:
        print("   Apache Airflow is not installed here and could not be: skipping its DagBag.")
        return None
    folder = WORK / "airflow_dags"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for spec in specs:
        (folder / f"{spec['dag_id']}.py").write_text(airflow_file(spec))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(WORK / "airflow_home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    done = subprocess.run(
        [str(python), "-c", TIMER, str(folder), str(reps)],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        print(f"   Airflow's DagBag failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    report = json.loads(done.stdout.strip().splitlines()[-1])
    per_file = sorted(s / len(specs) * 1000 for s in report["seconds"])
    return {
        "airflow_version": report["version"],
        "files": len(specs),
        "dags_loaded": report["dags"],
        "import_errors": report["errors"],
        "per_file_min_ms": round(per_file[0], 3),
        "per_file_median_ms": round(per_file[len(per_file) // 2], 3),
    }
