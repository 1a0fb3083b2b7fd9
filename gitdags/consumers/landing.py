"""The state of each served DAG in a consumer, from what its API says: a pure judgement, so
that the daemon's polls, `gitdags wait` and the tests share it.

- `landed`: it runs the served version. For a DAG read from a served-branch bundle
  (GitDagBundle: Airflow reports a `bundle_version`), the bundle's commit holds the served files
  as served; for a folder (no bundle version), Airflow parsed the DAG's file after gitdags
  published that version, with no import error.
- `pending`: served, not parsed there yet (for how long: since it was published).
- `drift`: it runs another version past the consumer's deadline, loads the DAG from another
  file than gitdags serves it in, or has a DAG of a served file that gitdags does not serve.
- `broken`: it reports an import error for the DAG's served file: gitdags judged the file good
  and the orchestrator did not, a disagreement to look into.
- `missing`: served, absent there past the consumer's deadline (`missing_after`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gitdags.model import ConsumerDag


@dataclass(frozen=True)
class Served:
    """One DAG as gitdags serves it: its version, since when, and its files as the
    orchestrator's DAGs folder (or bundle) sees them."""

    dag_id: str
    version: int | None
    since: str  # when this version was published
    files: tuple[str, ...]


def seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def needs_import_errors(served: list[Served], airflow: Mapping[str, dict[str, Any]]) -> bool:
    """Whether the import errors must be asked for: a served DAG Airflow lacks, or one it says
    has import errors (one request saved when everything is well)."""
    for dag in served:
        found = airflow.get(dag.dag_id)
        if found is None or found.get("is_stale") or found.get("has_import_errors"):
            return True
    return False


def judge(
    consumer: str,
    served: list[Served],
    airflow: Mapping[str, dict[str, Any]],
    errors: Mapping[str, str],
    *,
    now: float,
    checked_at: str,
    missing_after: float,
    bundle_holds: Callable[[str, tuple[str, ...]], bool | None] = lambda _c, _f: None,
) -> list[ConsumerDag]:
    """Each served DAG's state in the consumer, then the DAGs it has of served files that gitdags
    does not serve. `airflow`: its DAGs by id (as `/api/v2/dags` lists them); `errors`: import
    errors by file (relative to the DAGs folder or bundle); `bundle_holds(commit, files)`: whether
    a served-branch commit holds `files` as served now (None: not a served-branch commit)."""
    found: list[ConsumerDag] = []
    for dag in served:
        a = airflow.get(dag.dag_id)
        since = seconds(dag.since) or now
        late = now - since > missing_after
        error = next((errors[f] for f in dag.files if f in errors), "")
        base = {"consumer": consumer, "dag_id": dag.dag_id, "version": dag.version}
        base |= {"since": dag.since, "checked_at": checked_at}
        if a is None or a.get("is_stale"):
            if error:
                state, why = "broken", error
            elif late:
                state, why = "missing", f"not there {now - since:.0f} s after it was served"
            else:
                state, why = "pending", ""
            paused = None if a is None else bool(a.get("is_paused"))
            found.append(ConsumerDag(state=state, error=why, paused=paused, **base))
            continue
        parsed_at = a.get("last_parsed_time")
        bundle = a.get("bundle_version")
        here = a.get("relative_fileloc")
        paused = bool(a.get("is_paused"))
        extra = {"parsed_at": parsed_at, "bundle_version": bundle, "paused": paused}
        py_files = [f for f in dag.files if f.endswith(".py")]
        if here and py_files and here not in dag.files:
            why = f"Airflow loads it from {here}; gitdags serves it in {', '.join(py_files)}"
            found.append(ConsumerDag(state="drift", error=why, **base, **extra))
            continue
        if error:
            found.append(ConsumerDag(state="broken", error=error, **base, **extra))
            continue
        holds = bundle_holds(bundle, dag.files) if bundle and dag.files else None
        if holds is None:  # a folder: parsed after the version was published
            parsed = seconds(parsed_at)
            holds = parsed is not None and parsed >= since
            older = "it was last parsed before this version was served"
        else:
            older = f"its bundle version {bundle[:12]} holds another version of its files"
        if holds:
            found.append(ConsumerDag(state="landed", **base, **extra))
        elif late:
            found.append(ConsumerDag(state="drift", error=older, **base, **extra))
        else:
            found.append(ConsumerDag(state="pending", **base, **extra))
    ours = {d.dag_id for d in served}
    files = {f for d in served for f in d.files}
    for dag_id, a in sorted(airflow.items()):
        here = a.get("relative_fileloc")
        if dag_id in ours or a.get("is_stale") or here not in files:
            continue
        found.append(
            ConsumerDag(
                consumer=consumer,
                dag_id=dag_id,
                state="drift",
                version=None,
                since=checked_at,
                parsed_at=a.get("last_parsed_time"),
                bundle_version=a.get("bundle_version"),
                paused=bool(a.get("is_paused")),
                error=f"Airflow has it from the served file {here}; gitdags does not serve it",
                checked_at=checked_at,
            )
        )
    return found


def error_lines(import_errors: list[dict[str, Any]]) -> dict[str, str]:
    """Airflow's import errors by file: the last line of each stack trace (the exception)."""
    found: dict[str, str] = {}
    for item in import_errors:
        name, trace = item.get("filename"), item.get("stack_trace")
        if isinstance(name, str) and isinstance(trace, str):
            lines = [line.strip() for line in trace.strip().splitlines() if line.strip()]
            found[name] = lines[-1][:500] if lines else "an import error"
    return found
