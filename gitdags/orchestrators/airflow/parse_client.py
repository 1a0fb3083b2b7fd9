"""The client of the sandboxed parse worker: real Airflow parses files in `parse_worker.py`, run
by the source's `airflow_python`, and each answer is checked for shape as it comes back.

gitdags never imports repository code: the worker is another process, started with an
environment that holds none of gitdags' variables or credentials, and it forks one sandboxed
child per file. A worker that dies is started again at the next parse; a file that kills its
child is an error of that file only.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitdags import faults
from gitdags.errors import SourceError
from gitdags.sandbox.bwrap import DAGS_FOLDER

log = logging.getLogger(__name__)
WORKER = Path(__file__).with_name("parse_worker.py")
START_TIMEOUT = 180.0


class ParseWorker:
    """One long-lived `parse_worker.py` process, in the sandbox unless `sandbox` is "none".

    `readable` are the folders it may read besides the interpreter (the trees it parses);
    `private` are gitdags' own paths, refused if the interpreter's folders would show them."""

    def __init__(
        self,
        python: str,
        scratch: Path,
        parallel: int = 2,
        *,
        sandbox: str = "bwrap",
        readable: tuple[Path, ...] = (),
        private: tuple[Path, ...] = (),
        served_under: str = "",
        script: Path = WORKER,
        check: Callable[[object], dict[str, Any]] | None = None,
        orchestrator: str = "airflow",
    ) -> None:
        self.orchestrator = orchestrator  # whose loader the worker runs (named in its errors)
        self.runs = "schedulers" if orchestrator == "airflow" else "workers"
        self.script = script  # the worker program: stdlib only, it speaks parse_worker's protocol
        self.check = check or checked  # each file's result, checked for shape as it comes back
        self.python = os.path.abspath(python) if "/" in python else python  # a venv's python
        self.scratch = scratch
        self.parallel = parallel
        self.sandbox = sandbox
        self.readable = tuple(p.resolve() for p in readable)
        self.private = private
        self.mounts: list[tuple[str, str]] = []  # (folder here, where the worker sees it)
        if sandbox != "none":
            from gitdags.sandbox.bwrap import inside

            self.mounts = inside(self.readable, served_under)
        self.proc: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str] = queue.Queue()
        self.airflow_version = ""
        self.started_in = 0.0  # seconds the last start took (the sandbox and Airflow's import)
        self.starts = 0
        self.stderr: collections.deque[str] = collections.deque(maxlen=40)
        self.lock = threading.Lock()
        self.next_id = 0
        self.remaining: Callable[[float], float] | None = None  # the sync's deadline
        self.children_peak_kb = 0  # the largest resident size of a parse child so far

    def bounded(self, remaining: Callable[[float], float] | None) -> ParseWorker:
        """This worker, its waits cut to what is left of a sync's deadline: `remaining`
        shortens a wait and raises SourceError once the deadline has passed."""
        self.remaining = remaining
        return self

    def _wait(self, seconds: float) -> float:
        """`seconds`, cut to what is left of the sync's deadline; past it, the parse in flight
        is stopped and the deadline's SourceError raised."""
        if self.remaining is None:
            return seconds
        try:
            return self.remaining(seconds)
        except SourceError:
            if self.proc is not None:
                self._stop(self.proc)
            raise

    def _command(self) -> list[str]:
        if self.sandbox == "none":
            return [self.python, "-I", str(self.script)]
        from gitdags.sandbox import bwrap

        for folder in self.readable:
            folder.mkdir(parents=True, exist_ok=True)
        return bwrap.command(
            self.python, self.script, self.scratch / "etc", self.mounts, list(self.private)
        )

    def _inside(self, root: Path) -> str:
        """`root` as the worker sees it."""
        here = str(root.resolve())
        for host, seen in self.mounts:
            if here == host or here.startswith(host + "/"):
                return seen + here[len(host) :]
        if self.sandbox == "none":
            return here
        raise SourceError(f"{root} is not readable in the parse sandbox (a gitdags defect).")

    def _outside(self, result: dict[str, Any]) -> dict[str, Any]:
        """The paths in a result as they are here."""
        for key in ("message", "traceback"):
            text = result.get(key)
            if isinstance(text, str):
                for host, seen in self.mounts:
                    text = text.replace(seen + "/", host + "/")
                result[key] = text
        return result

    def _start(self) -> subprocess.Popen[str]:
        if self.proc is not None and self.proc.poll() is None:
            return self.proc
        started = time.monotonic()
        self.scratch.mkdir(parents=True, exist_ok=True)
        os.chmod(self.scratch, 0o755)
        env = {  # never a variable of gitdags' own: they hold its credentials
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.scratch),
            "GITDAGS_PARSE_SCRATCH": str(self.scratch),
        }
        try:
            proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=self.scratch,
                start_new_session=True,  # a signal to gitdags' group never reaches it
            )
        except OSError as exc:
            raise SourceError(
                f"Cannot run {self.orchestrator}_python {self.python} ({exc.strerror}); point "
                f"it at the python of the environment the {self.runs} run."
            ) from exc
        self.lines = queue.Queue()
        threading.Thread(target=self._drain, args=(proc,), daemon=True).start()
        threading.Thread(target=self._read, args=(proc, self.lines), daemon=True).start()
        ready = self._line(START_TIMEOUT)
        if not ready or not ready.get("ready"):
            self._stop(proc)
            tail = " ".join(list(self.stderr)[-3:]).strip() or "no output"
            if self.sandbox != "none" and "bwrap" in tail:
                from gitdags.sandbox.bwrap import SETUP

                raise SourceError(
                    f"bubblewrap could not start the parse sandbox: {tail[-300:]}. {SETUP}"
                )
            product = {"airflow": "Apache Airflow"}.get(
                self.orchestrator, self.orchestrator.title()
            )
            raise SourceError(
                f"The {self.orchestrator.title()} parse worker did not start with "
                f"{self.python}: {tail[-300:]}; check that {product} is installed there."
            )
        if ready.get("isolation") and self.sandbox != "none":
            self._stop(proc)
            from gitdags.sandbox.bwrap import SETUP

            raise SourceError(
                "The parse sandbox cannot give each file namespaces of its own "
                f"({ready['isolation']}). {SETUP}"
            )
        self.airflow_version = ready.get("airflow", "")
        self.started_in = time.monotonic() - started
        self.starts += 1
        self.proc = proc
        return proc

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.stderr.append(line.rstrip())

    @staticmethod
    def _read(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")  # the worker ended

    def _line(self, timeout: float) -> dict[str, Any] | None:
        """The next protocol line, or None when the worker ended or said nothing that long."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        if not line:
            return None
        try:
            answer = json.loads(line)
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    def _stop(self, proc: subprocess.Popen[str]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, 9)
        proc.kill()
        proc.wait()
        self.proc = None

    def _send(self, request: dict[str, Any]) -> None:
        proc = self._start()
        self.next_id += 1
        request["id"] = self.next_id
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
        except OSError:
            pass

    def parse(
        self, root: Path, files: list[str], *, timeout: float, memory: int
    ) -> dict[str, dict[str, Any]]:
        """What Airflow made of each file: {"dags": [...]} or {"error": ...}. A file whose
        parse stops the worker is parsed again alone; if it stops it again, that is its
        result (the worker is started again for the rest)."""
        results: dict[str, dict[str, Any]] = {}
        suspects: set[str] = set()
        todo = list(files)
        with self.lock:
            while todo:
                alone = [f for f in todo if f in suspects][:1]
                batch = alone or [f for f in todo if f not in suspects]
                done, in_flight = self._parse_batch(root, batch, timeout, memory, len(alone))
                results.update(done)
                for rel in in_flight:
                    if rel in suspects:
                        results[rel] = {
                            "error": "stopped",
                            "message": "The parse of this file stopped the parse worker; it "
                            "was started again for the other files.",
                        }
                    suspects.add(rel)
                todo = [f for f in todo if f not in results]
        return results

    def _parse_batch(
        self, root: Path, files: list[str], timeout: float, memory: int, alone: int
    ) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """Results of one request, and the files in flight when the worker stopped (empty
        when it answered them all)."""
        root_inside, under = self._inside(root), ""
        if root_inside.startswith(DAGS_FOLDER + "/"):  # a source served under a folder: Airflow
            under = root_inside[len(DAGS_FOLDER) + 1 :] + "/"  # has the deploy folder's root
            root_inside = DAGS_FOLDER  # on sys.path, not that folder
        request = {
            "op": "parse",
            "root": root_inside,
            "files": [under + f for f in files],
            "timeout": timeout,
            "memory": memory,
            "parallel": 1 if alone else self.parallel,
        }
        self._send(request)
        results: dict[str, dict[str, Any]] = {}
        in_flight: set[str] = set()
        while True:
            answer = self._line(self._wait(timeout + 30))  # each file ends by its timeout
            if answer is None:  # the worker stopped (or hangs, or the deadline came)
                if self.proc is not None:
                    self._stop(self.proc)
                self._wait(0.1)  # past the sync's deadline: that is the sync's error
                tail = " ".join(list(self.stderr)[-2:]).strip()
                log.warning(
                    "the %s parse worker stopped (%s)",
                    self.orchestrator.title(),
                    tail[-200:] or "no output",
                )
                return results, in_flight or (set(files) - set(results))
            if answer.get("id") != request["id"]:
                continue
            if answer.get("done"):
                peak = answer.get("children_peak_kb")
                if isinstance(peak, int):
                    self.children_peak_kb = max(self.children_peak_kb, peak)
                return results, set()
            name = answer.get("started") or answer.get("file")
            if not isinstance(name, str) or not name.startswith(under):
                continue
            rel = name[len(under) :]
            if "started" in answer:
                in_flight.add(rel)
                faults.point("in-parse")
            elif rel in in_flight:
                in_flight.discard(rel)
                results[rel] = self._outside(self.check(answer.get("result")))

    def missing(self, names: list[str]) -> set[str]:
        if not names:
            return set()
        with self.lock:
            self._send({"op": "modules", "names": names})
            while True:
                answer = self._line(60)
                if answer is None:
                    if self.proc is not None:
                        self._stop(self.proc)
                    raise SourceError(
                        f"The {self.orchestrator.title()} parse worker stopped answering; it is "
                        "started again at "
                        "the next sync."
                    )
                if answer.get("id") == self.next_id:
                    return {str(n) for n in answer.get("missing") or ()}

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._stop(self.proc)
        self.proc = None


ERRORS = ("import", "timeout", "killed", "crashed", "stopped")
DAG_FIELDS: dict[str, tuple[type, ...]] = {
    "dag_id": (str,),
    "file": (str,),
    "description": (str,),
    "schedule": (str, type(None)),
    "owner": (str, type(None)),
    "start_date": (str, type(None)),
}
TASK_FIELDS = ("id", "type", "operator")


def checked(result: object) -> dict[str, Any]:
    """A result from the worker, checked for shape (it crossed from where repository code
    ran): {"dags": [...]} with the fields `describe` writes, or {"error": ..., "message": ...};
    anything else is an error of that file."""
    try:
        return _checked(result)
    except (TypeError, ValueError, KeyError) as exc:
        return {
            "error": "crashed",
            "message": f"The parse of this file gave a malformed answer ({exc}).",
        }


def checked_error(result: object, known: tuple[str, ...] | None = ERRORS) -> dict[str, Any] | None:
    """A worker's result that is an error, checked for shape and cut to size (None: it is
    not an error); `known` the errors it may name (None: any). Raises for a malformed one."""
    if not isinstance(result, dict):
        raise TypeError("not an object")
    if result.get("error") is None:
        return None
    error, message = result["error"], result.get("message")
    if not isinstance(error, str) or (known is not None and error not in known):
        raise ValueError("an unknown error")
    if not isinstance(message, str):
        raise ValueError("an error without a message")
    trace = result.get("traceback")
    return {
        "error": error,
        "message": message[:2000],
        "traceback": trace[-20000:] if isinstance(trace, str) else None,
    }


def _checked(result: object) -> dict[str, Any]:
    error = checked_error(result)
    if error is not None:
        return error
    assert isinstance(result, dict)
    dags = result["dags"]
    if not isinstance(dags, list):
        raise TypeError("dags is not a list")
    out = []
    for dag in dags:
        if not isinstance(dag, dict):
            raise TypeError("a DAG is not an object")
        clean: dict[str, Any] = {}
        for key, kinds in DAG_FIELDS.items():
            if not isinstance(dag.get(key), kinds):
                raise TypeError(f"{key} of a DAG")
            clean[key] = dag.get(key)
        tags, tasks = dag.get("tags"), dag.get("tasks")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise TypeError("tags of a DAG")
        if not isinstance(tasks, list):
            raise TypeError("tasks of a DAG")
        clean["tags"] = tags
        clean["tasks"] = []
        for task in tasks:
            if not isinstance(task, dict) or not all(
                isinstance(task.get(k), str) for k in TASK_FIELDS
            ):
                raise TypeError("a task")
            ups = task.get("depends_on")
            if not isinstance(ups, list) or not all(isinstance(u, str) for u in ups):
                raise TypeError("depends_on of a task")
            clean["tasks"].append({**{k: task[k] for k in TASK_FIELDS}, "depends_on": ups})
        out.append(clean)
    return {"dags": out}
