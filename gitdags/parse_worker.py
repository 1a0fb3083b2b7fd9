"""The sandboxed Airflow parse worker: run by the `airflow_python` interpreter, never imported
by gitdags (this file uses only the standard library and Airflow, which need not have gitdags
installed beside them).

It imports Airflow once, freezes the garbage collector (as Airflow's own DAG processor does)
and forks one child per file. Each child, before it imports the file:
  - enters new user-less namespaces where the kernel lets it: a network namespace (no network,
    not even loopback) and a mount namespace whose root is remounted read-only, with a private
    tmpfs for its scratch home (when the mount namespace cannot be made, the child runs with the
    host's filesystem view, as the uid `nobody` where it can switch, which cannot write outside
    world-writable folders);
  - drops to the uid `nobody` when it runs as root;
  - sets RLIMIT_AS (the memory limit), RLIMIT_CPU, RLIMIT_NPROC and RLIMIT_FSIZE, and joins
    a pids cgroup of its own (64 processes) where the kernel offers one;
  - gets an environment of its own: PATH, LANG, HOME and AIRFLOW_HOME in a scratch folder;
  - sends stdout and stderr to /dev/null, and its result over a pipe.
The parent kills a child that passes the parse timeout, and reports one that dies.

Protocol: one JSON object a line. On start the worker writes {"ready": true, "airflow": V}.
Requests: {"op": "parse", "id": N, "root": DIR, "files": [REL...], "timeout": S, "memory": B}
answered by one {"id": N, "results": {REL: RESULT}}, where RESULT is {"dags": [...]} or
{"error": "import" | "timeout" | "crashed", "message": ..., "traceback": ...};
{"op": "modules", "id": N, "names": [...]} answered by {"id": N, "missing": [...]}.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib.util
import json
import os
import select
import signal
import sys
import time
import traceback
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
MAX_RESULT = 32 << 20
NOBODY = 65534


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # Airflow's own output goes to stderr, never into the protocol
    scratch = Path(os.environ.get("GITDAGS_PARSE_SCRATCH") or "/tmp")
    os.environ["AIRFLOW_HOME"] = str(scratch / "airflow-home")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    import airflow

    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    for module in ("airflow.sdk", "airflow.providers.standard.operators.bash", "dagfactory"):
        with contextlib.suppress(Exception):  # what most DAG files import: loaded once
            importlib.import_module(module)
    _NEEDED.extend([os.path.dirname(os.__file__), os.path.dirname(airflow.__file__)])
    gc.freeze()
    protocol.write(json.dumps({"ready": True, "airflow": airflow.__version__}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "modules":
            answer = {"id": request["id"], "missing": missing(request["names"])}
        else:
            results = parse_all(DagBag, request, scratch)
            import resource

            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, any child
            answer = {"id": request["id"], "results": results, "children_peak_kb": peak}
        protocol.write(json.dumps(answer) + "\n")


def missing(names: list[str]) -> list[str]:
    out = []
    for name in names:
        try:
            if importlib.util.find_spec(name) is None:
                out.append(name)
        except (ImportError, ValueError):
            out.append(name)
    return out


def parse_all(dagbag: type, request: dict, scratch: Path) -> dict[str, dict]:
    """Parse each file in its own child, at most `parallel` at once."""
    files = list(request["files"])
    parallel = max(1, int(request.get("parallel", 2)))
    running: dict[int, tuple[str, int, float, bytearray]] = {}  # read fd -> file, pid, start
    results: dict[str, dict] = {}
    while files or running:
        while files and len(running) < parallel:
            rel = files.pop(0)
            read_fd, pid = spawn(dagbag, request, rel, scratch)
            running[read_fd] = (rel, pid, time.monotonic(), bytearray())
        timeout = float(request.get("timeout", 30))
        ready, _, _ = select.select(list(running), [], [], 0.05)
        for fd in ready:
            rel, pid, started, buffer = running[fd]
            chunk = os.read(fd, 1 << 16)
            if chunk and len(buffer) < MAX_RESULT:
                buffer += chunk
                continue
            os.close(fd)
            del running[fd]
            results[rel] = finish(pid, buffer)
        now = time.monotonic()
        for fd, (rel, pid, started, _buffer) in list(running.items()):
            if now - started > timeout:
                kill(pid)
                os.close(fd)
                del running[fd]
                results[rel] = {
                    "error": "timeout",
                    "message": f"Parsing took over {timeout:g}s (parse_timeout); the file was "
                    "stopped.",
                }
    return results


def spawn(dagbag: type, request: dict, rel: str, scratch: Path) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        code = 0
        try:
            result = child(dagbag, request, rel, scratch)
        except BaseException as exc:
            result = {
                "error": "import",
                "message": f"{type(exc).__name__}: {exc}"[:2000],
                "traceback": traceback.format_exc()[-20000:],
            }
            code = 1
        try:
            data = json.dumps(result, default=str).encode()
            with os.fdopen(write_fd, "wb") as out:
                out.write(data[:MAX_RESULT])
        finally:
            os._exit(code)
    os.close(write_fd)
    return read_fd, pid


def finish(pid: int, buffer: bytearray) -> dict:
    _pid, status = os.waitpid(pid, 0)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # what the child left running
    release_processes(pid)
    if buffer:
        try:
            return json.loads(bytes(buffer))
        except ValueError:
            pass
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = (
            signal.Signals(number).name if number in signal.Signals._value2member_map_ else number
        )
        how = f"was killed by {name}"
        if number == signal.SIGKILL:
            how += " (over the memory or CPU limit, or killed)"
        elif number == signal.SIGXCPU:
            how += " (over the CPU time limit)"
    else:
        how = f"exited with code {os.WEXITSTATUS(status)} before it finished"
    return {"error": "crashed", "message": f"Parsing the file {how}."}


PIDS_MAX = 64
CGROUPS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))  # cgroup v1, then v2


def limit_processes(pid: int) -> None:
    """A pids cgroup of its own (at most PIDS_MAX processes), where the kernel offers one:
    RLIMIT_NPROC does not hold for root, and a fork bomb must not starve the other parses."""
    for base in CGROUPS:
        if not (base / "cgroup.procs").exists() or not os.access(base, os.W_OK):
            continue
        group = base / f"gitdags-parse-{pid}"
        try:
            group.mkdir(exist_ok=True)
            (group / "pids.max").write_text(f"{PIDS_MAX}\n")
            (group / "cgroup.procs").write_text(f"{pid}\n")
            return
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()


def release_processes(pid: int) -> None:
    """Kill whatever is left in the child's cgroup, then remove the cgroup."""
    for base in CGROUPS:
        group = base / f"gitdags-parse-{pid}"
        if not group.exists():
            continue
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                left = [int(p) for p in (group / "cgroup.procs").read_text().split()]
            except OSError:
                break
            if not left:
                break
            for stray in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(stray, signal.SIGKILL)
            time.sleep(0.01)
        with contextlib.suppress(OSError):
            group.rmdir()


def kill(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            target()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    release_processes(pid)


def child(dagbag: type, request: dict, rel: str, scratch: Path) -> dict:
    os.setpgid(0, 0)  # its own process group: whatever it forks is killed with it
    limit_processes(os.getpid())
    root = Path(request["root"])
    _NEEDED.append(str(root))
    home = scratch / f"child-{os.getpid()}"
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o777)
    sandbox(home, int(request.get("memory", 2 << 30)), float(request.get("timeout", 30)))
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.chdir(home)  # not the DAGs folder: Airflow's processor runs elsewhere (gitdags#22)
    sys.path.insert(0, str(root))
    keep_fatal_signals()
    bag = dagbag(dag_folder=str(root / rel), safe_mode=False, load_op_links=False, bundle_path=root)
    errors = {str(k): str(v) for k, v in bag.import_errors.items()}
    if errors:
        trace = next(iter(errors.values()))
        last = [ln for ln in trace.strip().splitlines() if ln.strip()][-1:] or ["import error"]
        return {"error": "import", "message": last[0][:2000], "traceback": trace[-20000:]}
    return {"dags": [describe(dag, root) for dag in bag.dags.values()]}


def keep_fatal_signals() -> None:
    """Airflow's importer catches SIGSEGV in Python, which returns to the faulting instruction
    for ever (a busy loop until the timeout): a segfault must end the child at once."""
    real = signal.signal

    def guarded(signum: int, handler: object) -> object:
        if signum in (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL):
            return signal.SIG_DFL
        return real(signum, handler)  # type: ignore[arg-type]

    signal.signal = guarded  # type: ignore[assignment]


def describe(dag: object, root: Path) -> dict:
    default_args = getattr(dag, "default_args", None) or {}
    start = getattr(dag, "start_date", None) or default_args.get("start_date")
    return {
        "dag_id": dag.dag_id,  # type: ignore[attr-defined]
        "file": os.path.relpath(getattr(dag, "fileloc", "") or "", root),
        "description": getattr(dag, "description", None) or "",
        "schedule": schedule_of(dag),
        "owner": getattr(dag, "owner", None),
        "tags": sorted(str(t) for t in (getattr(dag, "tags", None) or ())),
        "start_date": start.isoformat() if hasattr(start, "isoformat") else None,
        "tasks": [
            {
                "id": task.task_id,
                "type": type(task).__name__,
                "operator": f"{type(task).__module__}.{type(task).__name__}",
                "depends_on": sorted(task.upstream_task_ids),
            }
            for task in dag.tasks  # type: ignore[attr-defined]
        ],
    }


def schedule_of(dag: object) -> str | None:
    summary = getattr(dag, "timetable_summary", None)
    if isinstance(summary, str):
        return None if summary in ("None", "") else summary
    timetable = getattr(dag, "timetable", None)
    return type(timetable).__name__ if timetable is not None else None


# what a child must still read once it is nobody: the standard library, Airflow, the tree
_NEEDED: list[str] = []


def sandbox(home: Path, memory: int, timeout: float) -> None:
    """Contain the child: namespaces where the kernel allows them, then limits and a clean
    environment. Every step is best effort; what could not be done is not fatal."""
    import resource

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        pass  # no network namespace here (not root, or not allowed): documented fallback
    if libc.unshare(CLONE_NEWNS) == 0:
        libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None)
        libc.mount(str(home).encode(), str(home).encode(), None, MS_BIND, None)
        libc.mount(b"/", b"/", None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)
        libc.mount(b"tmpfs", str(home).encode(), b"tmpfs", 0, b"size=64m")
    os.environ.clear()
    os.environ.update(
        PATH="/usr/bin:/bin",
        LANG="C.UTF-8",
        HOME=str(home),
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        TMPDIR=str(home),
        DO_NOT_TRACK="1",  # dag-factory's telemetry
    )
    cpu = max(1, int(timeout) + 1)
    for limit, value in (
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, 64 << 20),
        (resource.RLIMIT_NPROC, 64),
        (resource.RLIMIT_CORE, 0),
    ):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(limit, (value, value))
    if os.getuid() == 0 and all(_world_readable(Path(p)) for p in _NEEDED):
        try:  # as nobody: no writes outside world-writable folders, RLIMIT_NPROC applies
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        except OSError:
            pass


def _world_readable(path: Path) -> bool:
    """Whether any user can read `path`: every folder on the way can be entered."""
    import stat

    try:
        for folder in [*reversed(path.parents), path]:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH or (folder == path and not mode & stat.S_IROTH):
                return False
    except OSError:
        return False
    return True


if __name__ == "__main__":
    main()
