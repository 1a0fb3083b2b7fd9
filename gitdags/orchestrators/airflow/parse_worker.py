"""The Airflow parse worker: run by the `airflow_python` interpreter inside bubblewrap (see
`gitdags.sandbox.bwrap`), never imported by gitdags (this file uses only the standard library and
Airflow, which need not have gitdags installed beside them).

It imports Airflow once, freezes the garbage collector (as Airflow's own DAG processor does),
makes itself undumpable (no process can read its memory or descriptors through /proc) and
forks one child per file. Each child, before any repository code runs:
  - starts a session of its own and keeps one descriptor: its own answer pipe (stdin, stdout
    and stderr are /dev/null; the worker's protocol and the other children's pipes are closed);
  - enters new user, PID, mount, network, IPC and UTS namespaces and forks the process that
    parses: PID 1 of its namespace, so that every process the file starts (double fork, setsid)
    dies with it, and it can name no process outside (not the worker, not the other parses);
    a private /tmp and /dev/shm, its own /proc, no network at all;
  - that process drops every capability (bounding set included), sets RLIMIT_AS (the memory
    limit), RLIMIT_CPU, RLIMIT_NPROC and RLIMIT_FSIZE, and gets an environment of its own.
The worker kills a child that passes the parse timeout, and reports one that dies.

Protocol: one JSON object a line. On start the worker writes {"ready": true, "airflow": V,
"isolation": null | REASON} (REASON: why the per-file namespaces could not be made).
Requests: {"op": "parse", "id": N, "root": DIR, "files": [REL...], "timeout": S, "memory": B,
"parallel": P}, answered by {"id": N, "started": REL} as each file's child starts, one
{"id": N, "file": REL, "result": RESULT} as each ends, then {"id": N, "done": true}. RESULT is
{"dags": [...]} or {"error": "import" | "timeout" | "killed" | "crashed", "message": ...,
"traceback": ...}. {"op": "modules", "id": N, "names": [...]} is answered by
{"id": N, "missing": [...]}.
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
from typing import Any

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
PR_CAPBSET_READ, PR_CAPBSET_DROP = 23, 24
MAX_RESULT = 32 << 20
LIBC = ctypes.CDLL(None, use_errno=True)
SCRATCH = Path(os.environ.get("GITDAGS_PARSE_SCRATCH") or "/tmp")  # writable, the worker's


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # Airflow's own output goes to stderr, never into the protocol
    os.environ["AIRFLOW_HOME"] = str(SCRATCH / "airflow-home")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # /proc/<worker>/mem, fd, environ: no one's
    LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    import airflow

    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    for module in ("airflow.sdk", "airflow.providers.standard.operators.bash", "dagfactory"):
        with contextlib.suppress(Exception):  # what most DAG files import: loaded once
            importlib.import_module(module)
    serve(protocol, airflow.__version__, DagBag)


def serve(protocol: Any, version: str, bag: Any) -> None:
    """Say ready (with the orchestrator's `version`), then answer each request on stdin until
    it closes: the modules missing here, or a parse of files (`parse_all` with `bag`)."""
    gc.freeze()  # what the imports made is shared by every fork, never copied
    ready = {"ready": True, "airflow": version, "isolation": probe_isolation()}
    protocol.write(json.dumps(ready) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "modules":
            answer = {"id": request["id"], "missing": missing(request["names"])}
            protocol.write(json.dumps(answer) + "\n")
            continue
        parse_all(bag, request, protocol)
        import resource

        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, any parse so far
        done = {"id": request["id"], "done": True, "children_peak_kb": peak}
        protocol.write(json.dumps(done) + "\n")


def missing(names: list[str]) -> list[str]:
    out = []
    for name in names:
        try:
            if importlib.util.find_spec(name) is None:
                out.append(name)
        except (ImportError, ValueError):
            out.append(name)
    return out


def parse_all(dagbag: type, request: dict, protocol: object) -> None:
    """Parse each file in its own child, at most `parallel` at once; each result is written as
    soon as its child ends."""
    files = list(request["files"])
    parallel = max(1, int(request.get("parallel", 2)))
    timeout = float(request.get("timeout", 30))
    running: dict[int, tuple[str, int, float, bytearray]] = {}  # read fd -> file, pid, start

    def answer(rel: str, result: dict) -> None:
        line = {"id": request["id"], "file": rel, "result": result}
        protocol.write(json.dumps(line, default=str) + "\n")  # type: ignore[attr-defined]

    while files or running:
        while files and len(running) < parallel:
            rel = files.pop(0)
            protocol.write(json.dumps({"id": request["id"], "started": rel}) + "\n")  # type: ignore[attr-defined]
            read_fd, pid = spawn(dagbag, request, rel)
            running[read_fd] = (rel, pid, time.monotonic(), bytearray())
        ready, _, _ = select.select(list(running), [], [], 0.05)
        for fd in ready:
            rel, pid, _started, buffer = running[fd]
            chunk = os.read(fd, 1 << 16)
            if chunk and len(buffer) < MAX_RESULT:
                buffer += chunk
                continue
            os.close(fd)
            del running[fd]
            answer(rel, finish(pid, buffer))
        now = time.monotonic()
        for fd, (rel, pid, started, _buffer) in list(running.items()):
            if now - started > timeout:
                kill(pid)
                os.close(fd)
                del running[fd]
                message = f"Parsing took over {timeout:g}s (parse_timeout); the file was stopped."
                answer(rel, {"error": "timeout", "message": message})


def spawn(dagbag: type, request: dict, rel: str) -> tuple[int, int]:
    """Fork the child that parses `rel`: it reads the file in a process three levels down,
    (this child, the init of its PID namespace, a parent, the parse), each ending as the one
    below it ended, so the worker learns from this child's exit how the parse ended."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            os.setsid()  # its own session and group: a killpg(0) reaches only the parse
            keep_only(write_fd)
            if isolate(request["root"]) is None:  # namespaces made: the next is PID 1 in them
                supervise(write_fd, lambda: init(dagbag, request, rel, write_fd))
            home = SCRATCH / f"child-{os.getpid()}"  # no private /tmp (sandbox = "none")
            supervise(write_fd, lambda: run_parse(dagbag, request, rel, write_fd, home))
        except BaseException:
            write_result(write_fd, crashed_in_setup())
            os._exit(1)
        os._exit(70)
    os.close(write_fd)
    return read_fd, pid


def supervise(out: int, body: object) -> None:
    """Run `body` in a child process and end as it ended; never returns."""
    pid = os.fork()
    if pid == 0:
        body()  # type: ignore[operator]
        os._exit(70)
    os.close(out)
    relay(os.waitpid(pid, 0)[1])


def init(dagbag: type, request: dict, rel: str, out: int) -> None:
    """PID 1 of the parse's namespace: when it ends, every process in it ends. Repository code
    never runs here (signals from inside do not reach PID 1); it runs in a grandchild whose
    parent, like Airflow's file processor, can be killed by the file: that is an error."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the worker kills the child above
    os.setsid()
    if LIBC.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
        os.write(2, f"proc: {os.strerror(ctypes.get_errno())}\n".encode())
    drop_capabilities()
    home = Path("/tmp/home" if os.access("/tmp", os.W_OK) else "/dev/shm/home")  # both private
    supervise(out, lambda: supervise(out, lambda: run_parse(dagbag, request, rel, out, home)))


def keep_only(fd: int) -> None:
    """Close every descriptor but `fd`; 0, 1 and 2 become /dev/null."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(devnull, std)
    if devnull > 2:
        os.close(devnull)
    os.closerange(3, fd)
    os.closerange(fd + 1, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 65536)


def isolate(root: str = "/") -> str | None:
    """New user, PID, mount, network, IPC and UTS namespaces for this parse, with a private
    /tmp and /dev/shm (unless the tree `root` is there: sandbox = "none" parses the tree
    where it is); None when done, else why not (the kernel refused)."""
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    if LIBC.unshare(flags) != 0:
        return f"unshare: {os.strerror(ctypes.get_errno())}"
    LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # the maps are written through /proc/self
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    LIBC.mount(None, b"/", None, MS_REC | MS_PRIVATE, None)
    LIBC.mount(b"/", b"/", None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)  # where not yet
    for folder in (b"/tmp", b"/dev/shm"):
        if os.path.isdir(folder) and not root.startswith(folder.decode() + "/"):
            flags = MS_NOSUID | MS_NODEV
            if LIBC.mount(b"tmpfs", folder, b"tmpfs", flags, b"size=64m,mode=1777") != 0:
                raise OSError(ctypes.get_errno(), f"mount tmpfs on {folder.decode()}")
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    return None


def probe_isolation() -> str | None:
    """Whether a child can make its namespaces here: None, or why not."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            reason = isolate()
        except BaseException as exc:
            reason = f"{type(exc).__name__}: {exc}"
        os.write(write_fd, (reason or "").encode()[:500])
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as answer:
        reason = answer.read().decode()
    os.waitpid(pid, 0)
    return reason or None


def relay(status: int) -> None:
    """End as the process below ended: its exit code, or 128 + the signal that killed it (as a
    shell does: PID 1 cannot kill itself with it), so the worker can tell."""
    os._exit(
        os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    )


def run_parse(dagbag: type, request: dict, rel: str, out: int, home: Path) -> None:
    """The process that imports the file; never returns."""
    code = 0
    try:
        drop_capabilities()
        result = child(dagbag, request, rel, home)
    except BaseException as exc:
        result = {
            "error": "import",
            "message": f"{type(exc).__name__}: {exc}"[:2000],
            "traceback": traceback.format_exc()[-20000:],
        }
        code = 1
    try:
        write_result(out, result)
    finally:
        os._exit(code)


def write_result(out: int, result: dict) -> None:
    data = json.dumps(result, default=str).encode()[:MAX_RESULT]
    view = memoryview(data)
    while view:
        view = view[os.write(out, view) :]


def crashed_in_setup() -> dict:
    return {
        "error": "crashed",
        "message": "The parse could not be set up: " + traceback.format_exc().strip()[-500:],
    }


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]


def drop_capabilities() -> None:
    """No capability at all, in any namespace, ever again (bounding set emptied)."""
    LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    for cap in range(64):
        held = LIBC.prctl(PR_CAPBSET_READ, cap, 0, 0, 0)
        if held < 0:  # past the last capability
            break
        if held and LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot drop capabilities")
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if LIBC.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "cannot drop capabilities")


def finish(pid: int, buffer: bytearray) -> dict:
    _pid, status = os.waitpid(pid, 0)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # what is left of its session outside the namespace
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, 1):  # the parse answered
        try:
            return json.loads(bytes(buffer))
        except ValueError:
            return {"error": "crashed", "message": "The parse of this file gave no answer."}
    code = os.waitstatus_to_exitcode(status)
    if code < 0 or code > 128:  # killed by a signal, here or in the namespace below
        number = -code if code < 0 else code - 128
        name = (
            signal.Signals(number).name if number in signal.Signals._value2member_map_ else number
        )
        if number in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            return {
                "error": "killed",
                "message": f"The parse of this file was stopped by {name}: the file killed its "
                "own process, its parent or its process group (which would stop Airflow's DAG "
                "processor too), or it went over the memory or CPU limit.",
            }
        how = f"was killed by {name}"
        if number == signal.SIGXCPU:
            how += " (over the CPU time limit)"
    else:
        how = f"exited with code {code} before it finished"
    return {"error": "crashed", "message": f"Parsing the file {how}."}


def kill(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            target()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def child(dagbag: type, request: dict, rel: str, home: Path) -> dict:
    root = Path(request["root"])
    home.mkdir(parents=True, exist_ok=True)
    limit(int(request.get("memory", 2 << 30)), float(request.get("timeout", 30)), home)
    os.chdir(home)  # not the DAGs folder: Airflow's processor runs elsewhere (gitdags#22)
    sys.path.append(str(root))  # as Airflow adds the DAGs folder: after the packages
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


def limit(memory: int, timeout: float, home: Path) -> None:
    """Limits and an environment of its own for the parse."""
    import resource

    os.environ.clear()
    os.environ.update(
        PATH="/usr/local/bin:/usr/bin:/bin",
        LANG="C.UTF-8",
        HOME=str(home),
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        TMPDIR=str(home),
        DO_NOT_TRACK="1",  # dag-factory's telemetry
    )
    cpu = max(1, int(timeout) + 1)
    for which, value in (
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, 64 << 20),
        (resource.RLIMIT_NPROC, 64),
        (resource.RLIMIT_CORE, 0),
    ):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(which, (value, value))


if __name__ == "__main__":
    main()
