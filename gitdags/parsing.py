"""The dynamic tier (`python = "airflow"`): real Airflow parses the Airflow files a commit
changed, in the sandboxed worker of `parse_worker.py`, run by the source's `airflow_python`.

gitdags never imports repository code: the worker is another process, started with an
environment that holds none of gitdags' variables or credentials, and it forks one sandboxed
child per file. A worker that dies is started again at the next parse; a file that kills its
child is an error of that file only.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import logging
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitdags.errors import SourceError
from gitdags.model import DagFile, FileDefinitions, Issue

log = logging.getLogger(__name__)
WORKER = Path(__file__).with_name("parse_worker.py")
START_TIMEOUT = 180.0


class ParseWorker:
    """One long-lived `parse_worker.py` process."""

    def __init__(self, python: str, scratch: Path, parallel: int = 2) -> None:
        self.python = os.path.abspath(python) if "/" in python else python  # a venv's python
        self.scratch = scratch
        self.parallel = parallel
        self.proc: subprocess.Popen[str] | None = None
        self.airflow_version = ""
        self.stderr: collections.deque[str] = collections.deque(maxlen=40)
        self.lock = threading.Lock()
        self.next_id = 0
        self.children_peak_kb = 0  # the largest resident size of a parse child so far

    def _start(self) -> subprocess.Popen[str]:
        if self.proc is not None and self.proc.poll() is None:
            return self.proc
        self.scratch.mkdir(parents=True, exist_ok=True)
        os.chmod(self.scratch, 0o755)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.scratch),
            "GITDAGS_PARSE_SCRATCH": str(self.scratch),
        }
        try:
            proc = subprocess.Popen(
                [self.python, "-I", str(WORKER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=self.scratch,
            )
        except OSError as exc:
            raise SourceError(
                f"Cannot run airflow_python {self.python} ({exc.strerror}); point it at the "
                "python of the environment the schedulers run."
            ) from exc
        assert proc.stdout is not None and proc.stderr is not None
        threading.Thread(target=self._drain, args=(proc,), daemon=True).start()
        ready = self._line(proc, START_TIMEOUT)
        if not ready or not ready.get("ready"):
            proc.kill()
            proc.wait()
            tail = " ".join(list(self.stderr)[-3:]).strip() or "no output"
            raise SourceError(
                f"The Airflow parse worker did not start with {self.python}: {tail[-300:]}; "
                "check that Apache Airflow is installed there."
            )
        self.airflow_version = ready.get("airflow", "")
        self.proc = proc
        return proc

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.stderr.append(line.rstrip())

    def _line(self, proc: subprocess.Popen[str], timeout: float) -> dict[str, Any] | None:
        """The next protocol line, or None when the worker died or took longer."""
        assert proc.stdout is not None
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(proc.stdout.readline()))  # type: ignore[union-attr]
        reader.daemon = True
        reader.start()
        reader.join(timeout)
        if not found or not found[0]:
            return None
        return json.loads(found[0])

    def _ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        with self.lock:
            proc = self._start()
            self.next_id += 1
            request["id"] = self.next_id
            assert proc.stdin is not None
            try:
                proc.stdin.write(json.dumps(request) + "\n")
                proc.stdin.flush()
            except OSError:
                pass
            answer = self._line(proc, timeout)
            if answer is None or answer.get("id") != request["id"]:
                proc.kill()
                proc.wait()
                self.proc = None
                tail = " ".join(list(self.stderr)[-2:]).strip()
                raise SourceError(
                    f"The Airflow parse worker stopped answering ({tail[-200:] or 'no output'}); "
                    "it is started again at the next sync."
                )
            return answer

    def parse(
        self, root: Path, files: list[str], *, timeout: float, memory: int
    ) -> dict[str, dict[str, Any]]:
        if not files:
            return {}
        request = {
            "op": "parse",
            "root": str(root),
            "files": files,
            "timeout": timeout,
            "memory": memory,
            "parallel": self.parallel,
        }
        waves = -(-len(files) // max(self.parallel, 1))
        answer = self._ask(request, timeout * waves + 60)
        self.children_peak_kb = max(self.children_peak_kb, int(answer.get("children_peak_kb", 0)))
        return answer["results"]

    def missing(self, names: list[str]) -> set[str]:
        if not names:
            return set()
        return set(self._ask({"op": "modules", "names": names}, 60)["missing"])

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@functools.lru_cache(maxsize=16)
def _package_dirs(python: str) -> tuple[str, ...]:
    code = "import sysconfig; p = sysconfig.get_paths(); print(p['purelib']); print(p['platlib'])"
    try:
        done = subprocess.run(
            [python, "-I", "-c", code], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(sorted(set(done.stdout.split()))) if done.returncode == 0 else ()


def environment_fingerprint(python: str) -> str:
    """What is installed where Airflow runs: the names (with versions) of the distributions in
    `python`'s site-packages. A change means every Airflow file is parsed again."""
    digest = hashlib.sha256(python.encode())
    for folder in _package_dirs(os.path.abspath(python) if "/" in python else python):
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue
        digest.update("\n".join(names).encode())
    return digest.hexdigest()


def parse_files(
    worker: ParseWorker,
    root: Path,
    found: dict[str, FileDefinitions],
    paths: list[str],
    *,
    prefix: str,
    own: set[str],
    timeout: float,
    memory: int,
) -> None:
    """Airflow parses `paths` (keys of `found`, each `prefix` + its path under `root`); their
    definitions in `found` become what Airflow found. A file importing a package that is in
    neither the repository (`own`: its top-level module names) nor the Airflow environment
    gets GD407 and is not parsed."""
    parse = missing_packages(found, paths, own, worker.missing, worker.python)
    results = worker.parse(root, [p[len(prefix) :] for p in parse], timeout=timeout, memory=memory)
    here = str(root).rstrip("/") + "/"
    for path in parse:
        result = results.get(path[len(prefix) :]) or {"error": "crashed", "message": "No answer."}
        for key in ("message", "traceback"):  # paths relative to the repository, as in git
            if isinstance(result.get(key), str):
                result[key] = result[key].replace(here, prefix)
        found[path] = apply(found[path], result)


def missing_packages(
    found: dict[str, FileDefinitions],
    paths: list[str],
    own: set[str],
    missing: Callable[[list[str]], set[str]],
    python: str,
) -> list[str]:
    """GD407 (in place) on each of `paths` that imports at module level, outside a guarding
    `try`, a package that is neither the repository's (`own`: its top-level module names)
    nor installed where Airflow runs (`missing` answers for `python`). Returns the others."""
    from gitdags.kinds.airflow_py import module_level_imports

    needs = {
        p: {n for n in module_level_imports(found[p].text) if n.split(".")[0] not in own | {""}}
        for p in paths
    }
    asked = {name: _package_of(name) for names in needs.values() for name in names}
    lacks = missing(sorted(set(asked.values()))) if asked else set()
    rest = []
    for path in paths:
        lacking = sorted(n for n in needs[path] if asked[n] in lacks)
        if not lacking:
            rest.append(path)
            continue
        issue = Issue(
            "GD407",
            "error",
            path,
            "",
            None,
            f"The file imports {', '.join(lacking)}, which is neither a module of the "
            f"repository nor installed where Airflow runs ({python}); install it there "
            "or fix the import.",
        )
        f = found[path]
        found[path] = FileDefinitions(
            path, f.kind, f.content_hash, (), f.imports, (*f.issues, issue), f.text
        )
    return rest


def _package_of(module: str) -> str:
    """What must be installed for `module` to import: its top-level package, or for a
    provider (`airflow.providers.apache.kafka.operators.x`) the provider's package. Airflow's
    own moved names (`airflow.operators.bash`) still import through shims: `airflow` is asked."""
    parts = module.split(".")
    if parts[:2] == ["airflow", "providers"] and len(parts) > 2:
        return ".".join(parts[:4])
    return parts[0]


def apply(found: FileDefinitions, result: dict[str, Any]) -> FileDefinitions:
    """The file as Airflow parsed it: its DAGs, or its import error (GD402), timeout (GD403)
    or crash (GD402), in place of what the static reading guessed."""
    path = found.path
    static = tuple(i for i in found.issues if i.code in ("GD405", "GD406", "GD407"))
    error = result.get("error")
    if error:
        code = "GD403" if error == "timeout" else "GD402"
        message = result.get("message") or "The file failed to import."
        if error == "import":
            message = f"The file fails to import in Airflow: {message}"
        trace = result.get("traceback")
        if trace:
            message += "\n" + trace.rstrip()
        issue = Issue(code, "error", path, "", None, message)
        return FileDefinitions(
            path, found.kind, found.content_hash, (), found.imports, (*static, issue), found.text
        )
    text = found.text
    dags = tuple(
        DagFile(path, d["dag_id"], spec, (), _identity(found.content_hash, spec), text)
        for d in result.get("dags", ())
        for spec in (_spec(d),)
    )
    issues = list(static)
    if not dags:  # a helper module, served like any module
        issues.append(
            Issue(
                "GD404",
                "warning",
                path,
                "",
                None,
                "Airflow parsed the file and found no DAG in it; it is served as a helper module.",
            )
        )
    kind = "airflow" if dags else "module"
    return FileDefinitions(path, kind, found.content_hash, dags, found.imports, tuple(issues), text)


def _identity(file_hash: str, spec: dict[str, Any]) -> str:
    """A parsed DAG's content hash covers what Airflow made of it, not only its file: a helper
    change that changes the DAG makes a new version of it."""
    digest = hashlib.sha256(file_hash.encode())
    digest.update(json.dumps(spec, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _spec(dag: dict[str, Any]) -> dict[str, Any]:
    return {
        "dag_id": dag["dag_id"],
        "format": "airflow",
        "parsed_by": "airflow",
        "description": dag.get("description") or "",
        "schedule": dag.get("schedule"),
        "start_date": dag.get("start_date"),
        "owner": dag.get("owner"),
        "tags": dag.get("tags") or [],
        "depends_on_dags": [],
        "tasks": dag.get("tasks") or [],
    }
