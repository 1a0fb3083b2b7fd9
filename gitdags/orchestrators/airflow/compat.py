"""APIs that Airflow 3 removed or moved, found by ruff's Airflow rules (AIR3xx), run once over
all the Python files of a sync rather than written again here.

AIR301 (removed) and AIR302 (moved into a provider) break a file under Airflow 3: an error
(GD408) for the static tier, except a moved name that still imports with the source's
`airflow_python` (a compatibility shim): a warning; where Airflow parses the files itself, it
is the judge, and they are warnings. AIR311 and AIR312 (deprecated, still working) are
warnings.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from gitdags.model import FileDefinitions, Issue

log = logging.getLogger(__name__)
ERRORS = ("AIR301", "AIR302")
RUFF_ARGS = ("check", "--isolated", "--no-cache", "--select", "AIR3", "--exit-zero")
RUFF_ARGS += ("--output-format", "json", "--target-version", "py311", ".")


def _ruff() -> str | None:
    beside = Path(sys.executable).with_name("ruff")
    return str(beside) if beside.exists() else shutil.which("ruff")


class Check:
    """One ruff run over the texts of some files, started now and read by `issues()` (so that
    it runs while Airflow parses the same files)."""

    def __init__(self, files: Mapping[str, str]) -> None:
        self.names: dict[str, str] = {}
        self.proc: subprocess.Popen[str] | None = None
        self.scratch: tempfile.TemporaryDirectory[str] | None = None
        ruff = _ruff() if files else None  # (no lookup when there is nothing to check)
        if ruff is None:
            return
        self.scratch = tempfile.TemporaryDirectory(prefix="gitdags-air-")
        root = Path(self.scratch.name)
        for i, (path, text) in enumerate(sorted(files.items())):
            name = f"f{i:06}.py"
            (root / name).write_text(text, encoding="utf-8")
            self.names[name] = path
        try:
            self.proc = subprocess.Popen(
                [ruff, *RUFF_ARGS],
                cwd=root,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        except OSError as exc:
            log.warning("cannot check Airflow 3 APIs with ruff: %s", exc)

    def issues(self) -> dict[str, list[Issue]]:
        """path -> the Airflow 3 issues of each file."""
        found: list[dict[str, object]] = []
        try:
            if self.proc is not None:
                out, _err = self.proc.communicate(timeout=120)
                found = json.loads(out or "[]")
        except (subprocess.TimeoutExpired, ValueError) as exc:
            log.warning("cannot check Airflow 3 APIs with ruff: %s", exc)
            if self.proc is not None:
                self.proc.kill()
                self.proc.wait()
        finally:
            if self.scratch is not None:
                self.scratch.cleanup()
        out_issues: dict[str, list[Issue]] = {}
        for item in found:
            path = self.names.get(Path(str(item.get("filename", ""))).name)
            code = str(item.get("code") or "")
            if path is None or not code.startswith("AIR3"):
                continue
            severity = "error" if code in ERRORS else "warning"
            message = str(item.get("message") or "").rstrip(".;") + f" ({code})."
            location = item.get("location")
            line = location.get("row") if isinstance(location, dict) else None
            out_issues.setdefault(path, []).append(
                Issue("GD408", severity, path, "", line, message)  # type: ignore[arg-type]
            )
        return out_issues


def start(found: Mapping[str, FileDefinitions]) -> Check:
    """Start checking the Airflow files of `found`, and the Python objects that declarative
    files name (each as `import module; module.Name` on the line that names it)."""
    texts = {p: f.text for p, f in found.items() if f.kind in ("airflow", "module") and f.text}
    for path, f in found.items():
        if f.probes and not f.broken:
            lines = [""] * max(line for line, _name, _dag in f.probes)
            for line, name, _dag in f.probes:
                lines[line - 1] = f"import {name.rpartition('.')[0]}; {name}"
            texts[path] = "\n".join(lines) + "\n"
    return Check(texts)


_PROBE = """
import importlib, json, sys, warnings
warnings.simplefilter("ignore")
ok = []
for name in json.load(sys.stdin):
    module, _, attr = name.rpartition(".")
    try:
        try:
            importlib.import_module(name)
            ok.append(name)
            continue
        except ImportError:
            pass
        if module and hasattr(importlib.import_module(module), attr):
            ok.append(name)
    except Exception:
        pass
print(json.dumps(ok))
"""


def importable(python: str, names: list[str]) -> set[str]:
    """Which of these dotted names (Airflow's own, never repository code) import with
    `python`, the interpreter Airflow runs: a moved name that still imports there works."""
    return _ask(python, _PROBE, names, "which Airflow names import")


_FIND = """
import importlib.util, json, sys
out = []
for name in json.load(sys.stdin):
    try:
        if importlib.util.find_spec(name) is None:
            out.append(name)
    except (ImportError, ValueError):
        out.append(name)
print(json.dumps(out))
"""


def missing(python: str, names: list[str]) -> set[str]:
    """Which of these packages `python` (the interpreter Airflow runs) does not have; found
    without importing them. Nothing when it cannot be asked."""
    return _ask(python, _FIND, names, "which packages it has")


def _ask(python: str, script: str, names: list[str], what: str) -> set[str]:
    """The names `script`, run by `python` in a scratch home with `names` on its stdin, prints
    as a JSON list on its last line; nothing when it cannot be asked."""
    if not names:
        return set()
    with tempfile.TemporaryDirectory(prefix="gitdags-probe-") as home:
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home, "AIRFLOW_HOME": home}
        env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        try:
            done = subprocess.run(
                [python, "-I", "-c", script],
                input=json.dumps(sorted(set(names))),
                capture_output=True,
                text=True,
                timeout=180,
                env=env,
                cwd=home,
            )
            return set(json.loads(done.stdout.strip().splitlines()[-1]))
        except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
            log.warning("cannot ask %s %s: %s", python, what, exc)
            return set()


def _name_in(message: str) -> str:
    """The dotted name ruff's message quotes first (`airflow.operators.email.EmailOperator`)."""
    parts = message.split("`")
    return parts[1] if len(parts) > 2 else ""


def finish(
    check: Check,
    found: dict[str, FileDefinitions],
    *,
    parsed: bool = False,
    airflow_python: str = "",
) -> None:
    """Each file of `found` gets its Airflow 3 issues (in place). When Airflow itself parsed
    the files (`parsed`), it is the judge of what breaks them: the issues are warnings. When
    the interpreter Airflow runs is known (`airflow_python`), a moved name that still imports
    there is a warning, one that does not an error."""
    results = check.issues()
    works: set[str] = set()
    if airflow_python and not parsed:
        named = [
            _name_in(i.message)
            for issues in results.values()
            for i in issues
            if i.severity == "error" and "(AIR302)" in i.message
        ]
        works = importable(airflow_python, [n for n in named if n])
    for path, issues in results.items():
        if path not in found:
            continue
        if parsed:
            issues = [dataclasses.replace(i, severity="warning") for i in issues]
        elif works:
            issues = [
                dataclasses.replace(
                    i,
                    severity="warning",
                    message=i.message.rstrip(".") + "; it still imports where Airflow runs.",
                )
                if "(AIR302)" in i.message and _name_in(i.message) in works
                else i
                for i in issues
            ]
        f = found[path]
        if f.probes:  # each on the DAG that names the object (all of them for a default)
            owner = {line: dag_id for line, _name, dag_id in f.probes}
            dags = tuple(
                d.with_issues([i for i in issues if owner.get(i.line or 0) in ("", d.dag_id)])
                for d in f.dags
            )
            found[path] = dataclasses.replace(f, dags=dags)
        else:
            found[path] = f.with_issues(issues)


def apply(found: dict[str, FileDefinitions]) -> None:
    finish(start(found), found)
