"""The dynamic tier (`python = "airflow"`): what real Airflow made of the files a commit changed
becomes their definitions (`parse_files`, `apply`); the packages a file needs that are missing
where Airflow runs (GD407); the fingerprint of that environment. The worker that parses them
in the sandbox is driven by `parse_client.ParseWorker`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitdags.model import DagFile, FileDefinitions, Issue
from gitdags.orchestrators.airflow.parse_client import ParseWorker  # callers import it from here


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
    from gitdags.orchestrators.airflow.imports import module_level_imports

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
        code = "GD403" if error in ("timeout", "killed", "stopped") else "GD402"
        message = result.get("message") or "The file failed to import."
        if error == "import":
            message = f"The file fails to import in Airflow: {message}"
        trace = result.get("traceback")
        if trace:
            message += "\n" + trace.rstrip()
        issue = Issue(code, "error", path, "", None, message)
        # a file Airflow takes for a DAG file (it names airflow and dag) and cannot import is
        # a DAG file in error for Airflow too, whatever the static reading saw in it: its
        # DAGs keep their last good version
        kind = "airflow" if found.kind == "module" else found.kind
        return FileDefinitions(
            path, kind, found.content_hash, (), found.imports, (*static, issue), found.text
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
