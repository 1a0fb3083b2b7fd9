"""APIs that Airflow 3 removed or moved, found by ruff's Airflow rules (AIR3xx), run once over
all the Python files of a sync rather than written again here.

AIR301 (removed) and AIR302 (moved into a provider) break a file under Airflow 3: an error
(GD408). AIR311 and AIR312 (deprecated, still working) are warnings.
"""

from __future__ import annotations

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


def check(files: Mapping[str, str]) -> dict[str, list[Issue]]:
    """path -> the Airflow 3 issues of each file's text."""
    ruff = _ruff()
    if not files or ruff is None:
        return {}
    with tempfile.TemporaryDirectory(prefix="gitdags-air-") as scratch:
        root = Path(scratch)
        names: dict[str, str] = {}
        for i, (path, text) in enumerate(sorted(files.items())):
            name = f"f{i:06}.py"
            (root / name).write_text(text, encoding="utf-8")
            names[name] = path
        try:
            done = subprocess.run(
                [ruff, *RUFF_ARGS],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=120,
            )
            found = json.loads(done.stdout or "[]")
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            log.warning("cannot check Airflow 3 APIs with ruff: %s", exc)
            return {}
    out: dict[str, list[Issue]] = {}
    for item in found:
        path = names.get(Path(item.get("filename", "")).name)
        code = item.get("code") or ""
        if path is None or not code.startswith("AIR3"):
            continue
        severity = "error" if code in ERRORS else "warning"
        message = (item.get("message") or "").rstrip(".;") + f" ({code})."
        line = (item.get("location") or {}).get("row")
        out.setdefault(path, []).append(Issue("GD408", severity, path, "", line, message))  # type: ignore[arg-type]
    return out


def apply(found: dict[str, FileDefinitions]) -> None:
    """Check the Airflow files of `found` (in place): each gets its Airflow 3 issues."""
    texts = {
        path: f.text for path, f in found.items() if f.kind in ("airflow", "module") and f.text
    }
    for path, issues in check(texts).items():
        found[path] = found[path].with_issues(issues)
