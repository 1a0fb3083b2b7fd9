"""The Prefect load worker: Airflow's parse worker (`orchestrators/airflow/parse_worker.py`:
the sandbox, one isolated child per file, limits, the JSON-lines protocol) with these
definitions in place of its Airflow ones. `loading.worker_script` writes the two as one
program, run by `prefect_python` inside bubblewrap; gitdags never imports this file's code
into its own process, and it uses only the standard library and Prefect.

A "file" of a parse request is `<project folder>\\t<entrypoint>`: the child changes to the
project folder (a flow run's working directory) and loads the entrypoint with Prefect's own
`load_flow_from_entrypoint(..., use_placeholder_flow=False)` (with the placeholder, an import
error would be hidden behind a flow rebuilt from the syntax tree). Its result is
{"flows": [{"entrypoint", "name", "parameters": the flow's parameter schema}]} or an error.
"""

# ruff: noqa: F821  (names of the parse worker this file is appended to)
# mypy: ignore-errors

import os
import traceback
from pathlib import Path


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # Prefect's own output goes to stderr, never into the protocol
    home = SCRATCH / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(prefect_environment(home))
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    import prefect
    import prefect.flows  # what every load needs: imported once, before the forks

    warm_up(home)
    serve(protocol, prefect.__version__, None)


WARM_UP = """
from prefect import flow, task


@task(retries=1)
def step(x: int) -> int:
    return x


@flow(name="gitdags-warm-up")
def warm_up(day: str, limit: int = 1, tags: list[str] | None = None) -> int:
    return step(limit)
"""


def warm_up(home: Path) -> None:
    """Load one flow the way every child will (a script, its decorators, its parameter
    schema), so that what Prefect imports and builds on first use is there before the forks."""
    import contextlib

    from prefect.flows import load_flow_from_entrypoint

    script = home / "gitdags_warm_up.py"
    with contextlib.suppress(Exception):  # a slower start, never a broken worker
        script.write_text(WARM_UP)
        flow = load_flow_from_entrypoint(f"{script}:warm_up", use_placeholder_flow=False)
        flow.parameters.model_dump(mode="json")


def prefect_environment(home: Path) -> dict:
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": "http://127.0.0.1:9/api",  # never a real server: loading needs none
        "DO_NOT_TRACK": "1",
    }


def child(_loader: object, request: dict, rel: str, home: Path) -> dict:
    root = Path(request["root"])
    home.mkdir(parents=True, exist_ok=True)
    limit(int(request.get("memory", 2 << 30)), float(request.get("timeout", 30)), home)
    os.environ.update(prefect_environment(home))
    folder, _, entrypoint = rel.partition("\t")
    os.chdir(root / folder)  # as a flow run: the project's folder is the working directory
    keep_fatal_signals()
    from prefect.exceptions import ScriptError
    from prefect.flows import load_flow_from_entrypoint

    try:
        flow = load_flow_from_entrypoint(entrypoint, use_placeholder_flow=False)
    except ScriptError as exc:
        real = exc.user_exc
        trace = "".join(traceback.format_exception(type(real), real, real.__traceback__))
        return {
            "error": "import",
            "message": f"{type(real).__name__}: {real}"[:2000],
            "traceback": trace[-20000:],
        }
    schema = flow.parameters.model_dump(mode="json")
    return {
        "flows": [
            {
                "entrypoint": entrypoint,
                "name": str(flow.name),
                "parameters": {
                    "properties": schema.get("properties") or {},
                    "required": list(schema.get("required") or []),
                },
            }
        ]
    }
