"""The Dagster load worker: run by the source's `dagster_python` inside bubblewrap (started by
`ParseWorker(..., script=this file)`), never imported by gitdags (it uses only the standard
library and Dagster, which need not have gitdags installed beside them).

It imports Dagster once and makes itself undumpable; for each load it forks a child that
starts a session of its own, sets RLIMIT_AS (the memory limit), and loads the code location the
way Dagster's webserver and `dagster definitions validate` load it (its module's Definitions,
the repository built, every definition loaded and snapshotted); the worker kills the child's
process group when the load ends or passes its timeout. The loads share the one sandbox of the
worker: no network, no capabilities, a read-only view of the tree.

It speaks parse_worker.py's protocol (one JSON object a line): {"ready": true, "airflow":
DAGSTER_VERSION, "isolation": null} on start; {"op": "parse", "id": N, "root": DIR, "files":
[MODULE], "timeout": S, "memory": B} is answered by {"id": N, "started": MODULE}, {"id": N,
"file": MODULE, "result": RESULT}, {"id": N, "done": true}. RESULT is the location as DAGs of
that protocol's shape (one per job: its assets or ops as tasks, its schedules and sensors as
tags "schedule:NAME" / "sensor:NAME"; and "__assets__": every asset, its group as the task's
type) or {"error": "import" | "timeout" | "crashed", "message": ..., "traceback": ...}.
"""

import contextlib
import ctypes
import importlib.util
import json
import os
import resource
import select
import signal
import sys
import time
import traceback

PR_SET_DUMPABLE = 4
MAX_RESULT = 32 << 20


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # Dagster's own output goes to stderr, never into the protocol
    os.environ["DAGSTER_IS_DEFS_VALIDATION_CLI"] = "1"
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    import dagster
    from dagster._core.definitions.reconstruct import repository_def_from_target_def  # noqa: F401
    from dagster._core.remote_representation.external_data import RepositorySnap  # noqa: F401
    from dagster._core.workspace.autodiscovery import loadable_targets_from_python_file  # noqa: F401

    warm_up()
    ready = {"ready": True, "airflow": dagster.__version__, "isolation": None}
    protocol.write(json.dumps(ready) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "modules":
            names = request.get("names") or []
            missing = [n for n in names if not _importable(n)]
            protocol.write(json.dumps({"id": request["id"], "missing": missing}) + "\n")
            continue
        for module in request.get("files", ()):
            protocol.write(json.dumps({"id": request["id"], "started": module}) + "\n")
            result = in_child(request["root"], module, request["timeout"], request["memory"])
            answer = {"id": request["id"], "file": module, "result": result}
            protocol.write(json.dumps(answer) + "\n")
        protocol.write(json.dumps({"id": request["id"], "done": True}) + "\n")


WARM_UP = """
import dagster as dg

@dg.asset(group_name="g")
def a():
    return 1

@dg.asset(deps=[a])
def b(context: dg.AssetExecutionContext):
    return 2

@dg.op
def o():
    return 1

@dg.job
def op_job():
    o()

j = dg.define_asset_job("j", selection=dg.AssetSelection.groups("g"))

@dg.sensor(job=j)
def s(context):
    return None

defs = dg.Definitions(
    assets=[a, b], jobs=[j, op_job], sensors=[s],
    schedules=[dg.ScheduleDefinition(job=j, cron_schedule="0 1 * * *")],
)
"""


def warm_up() -> None:
    """Load a small location of Dagster's own making once, so that each forked load finds
    the Dagster code it runs already imported (Dagster imports much of itself lazily)."""
    folder = os.path.join(os.environ.get("GITDAGS_PARSE_SCRATCH") or "/tmp", "gitdags-warm-up")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "gitdags_warm_up_location.py")
    with open(path, "w") as out:
        out.write(WARM_UP)
    here, before = os.getcwd(), list(sys.path)
    try:
        load(folder, "gitdags_warm_up_location.py")
    finally:
        os.chdir(here)
        sys.path[:] = before
        sys.modules.pop("gitdags_warm_up_location", None)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def in_child(root: str, module: str, timeout: float, memory: int) -> dict:
    """The load of the location in a forked child, its answer read from a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1):
                os.dup2(null, fd)
            if memory:
                resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            data = json.dumps(load(root, module)).encode()
        except BaseException as exc:  # the child reports everything
            data = json.dumps({"error": "crashed", "message": repr(exc)[:2000]}).encode()
        with os.fdopen(write_end, "wb") as out:
            out.write(data[:MAX_RESULT])
        os._exit(0)
    os.close(write_end)
    chunks, size = [], 0
    deadline = time.monotonic() + timeout
    timed_out = False
    with os.fdopen(read_end, "rb") as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([pipe], [], [], left)
            if not ready:
                continue
            chunk = os.read(pipe.fileno(), 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_RESULT:
                break
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # the child and whatever it started in its session
    os.waitpid(pid, 0)
    if timed_out:
        return {"error": "timeout", "message": f"The load took more than {timeout:g} s."}
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {"error": "crashed", "message": "The load ended without an answer."}


def load(root: str, module: str) -> dict:
    os.chdir(root)
    sys.path.insert(0, root)
    from dagster._core.definitions.reconstruct import repository_def_from_target_def
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster._core.workspace.autodiscovery import loadable_targets_from_python_file

    try:
        targets = loadable_targets_from_python_file(os.path.join(root, module), root)
        if not targets:
            raise ValueError(f"{module} defines no Definitions object")
        repo = repository_def_from_target_def(targets[0].target_definition)
        repo.load_all_definitions()
        RepositorySnap.from_def(repo)  # what the webserver's code server builds from it
    except Exception as exc:
        return {
            "error": "import",
            "message": explained(exc)[:2000],
            "traceback": "".join(traceback.format_exception(exc))[-20000:],
        }
    return {"dags": describe(repo, module)}


def explained(exc: BaseException) -> str:
    """The error and what caused it (Dagster wraps the cause: "Failed to resolve asset job")."""
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen and len(parts) < 4:
        seen.add(id(exc))
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        parts.append(f"{type(exc).__name__}: {text}".rstrip(": "))
        exc = exc.__cause__ or exc.__context__
    return "; caused by ".join(parts)


def describe(repo, module: str) -> list:
    def dag(name: str, what: str, tags: list, tasks: list) -> dict:
        return {
            "dag_id": name,
            "file": module,
            "description": what,
            "schedule": None,
            "owner": None,
            "start_date": None,
            "tags": tags,
            "tasks": tasks,
        }

    graph = repo.asset_graph
    deps = {}
    groups = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        deps[key.to_user_string()] = sorted(p.to_user_string() for p in node.parent_keys)
        groups[key.to_user_string()] = node.group_name or "default"
    out = []
    for job in repo.get_all_jobs():
        if job.name.startswith("__ASSET_JOB"):
            continue
        tags = [
            f"schedule:{s.name}" for s in repo.schedule_defs if s.has_job and s.job_name == job.name
        ]
        tags += [
            f"sensor:{s.name}"
            for s in repo.sensor_defs
            if s.has_jobs and job.name in [t.job_name for t in s.targets]
        ]
        if job.asset_layer is not None and job.asset_layer.selected_asset_keys:
            keys = sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
            chosen = set(keys)
            tasks = [
                {
                    "id": k,
                    "type": groups.get(k, "default"),
                    "operator": "asset",
                    "depends_on": [d for d in deps.get(k, []) if d in chosen],
                }
                for k in keys
            ]
            out.append(dag(job.name, "asset_job", sorted(tags), tasks))
            continue
        structure = job.graph.dependency_structure
        tasks = [
            {
                "id": node.name,
                "type": "op",
                "operator": "op",
                "depends_on": sorted(
                    {up.node.name for up in structure.all_upstream_outputs_from_node(node.name)}
                ),
            }
            for node in job.graph.nodes
        ]
        out.append(dag(job.name, "op_job", sorted(tags), tasks))
    assets = [
        {"id": k, "type": groups[k], "operator": "asset", "depends_on": deps[k]}
        for k in sorted(deps)
    ]
    out.append(dag("__assets__", "assets", [], assets))
    return out


if __name__ == "__main__":
    main()
