"""Checks across files and sources: duplicate `dag_id`, namespaces, `depends_on_dags`
targets and cycles between DAGs. Pure: what it knows of other DAGs comes from a `Catalog`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from gitdags.checks.validate import spell_cycle
from gitdags.model import DagFile, Issue, has_errors


class Catalog(Protocol):
    """What `check_across` needs to know about DAGs outside the files being checked."""

    def owners(self, dag_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """(source, path) of the file that defines each of these DAGs now, if any."""

    def depends_on(self, dag_id: str) -> list[str]:
        """The `depends_on_dags` of the DAG as served now."""


class EmptyCatalog:
    def owners(self, dag_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        return {}

    def depends_on(self, dag_id: str) -> list[str]:
        return []


def check_across(
    files: Iterable[DagFile],
    catalog: Catalog,
    *,
    source: str = "",
    namespaces: Mapping[str, str] | None = None,
    own_namespace: str = "",
    pattern: str = "",
) -> dict[tuple[str, str], list[Issue]]:
    """Checks that need more than one file. Returns new issues by (path, dag_id).

    `files` are the files being checked now (for a sync: those that changed); the catalog
    answers for every other DAG. A `dag_id` already owned by another file keeps its owner: the
    newcomer gets the error. `namespaces` maps each other source to the id prefix it owns.
    """
    files = list(files)
    found: dict[tuple[str, str], list[Issue]] = {}

    def add(f: DagFile, code: str, message: str, location: str = "dag_id") -> None:
        issue = Issue(code, "error", f.path, location, None, message)
        found.setdefault((f.path, f.dag_id), []).append(issue)

    groups: dict[str, list[DagFile]] = {}
    matcher = re.compile(pattern) if pattern else None
    for f in sorted(files, key=lambda f: f.path):
        if not f.dag_id:
            continue
        if matcher is not None and not matcher.fullmatch(f.dag_id):
            add(
                f,
                "GD306",
                f"DAG id {f.dag_id!r} does not match the source's dag_id_pattern "
                f"{pattern!r}; rename the DAG.",
            )
        kind = (f.spec or {}).get("format")
        if (
            own_namespace
            and kind in ("airflow", "dag-factory")
            and not f.dag_id.startswith(own_namespace)
        ):
            add(
                f,
                "GD305",
                f"DAG id {f.dag_id!r} is outside the source's namespace {own_namespace!r}; "
                "rename the DAG to start with it.",
            )
        owner_ns = (
            next(
                (
                    name
                    for name, prefix in namespaces.items()
                    if prefix and name != source and f.dag_id.startswith(prefix)
                ),
                None,
            )
            if namespaces
            else None
        )
        if owner_ns is not None:
            add(
                f,
                "GD304",
                f"DAG id {f.dag_id!r} is in namespace {namespaces[owner_ns]!r} of source "  # type: ignore[index]
                f"{owner_ns!r}; rename the DAG or move it to that source.",
            )
            continue
        groups.setdefault(f.dag_id, []).append(f)

    targets = {t for f in files if f.spec for t in f.spec.get("depends_on_dags", ())}
    owners = catalog.owners(set(groups) | targets)
    claimed: dict[str, DagFile] = {}
    for dag_id, group in groups.items():
        owner = owners.get(dag_id)
        if owner is not None:
            where = owner[1] if owner[0] == source else f"{owner[1]} in source {owner[0]!r}"
            for f in group:
                if owner == (source, f.path):
                    claimed[dag_id] = f
                else:
                    add(
                        f,
                        "GD301",
                        f"DAG id {dag_id!r} is already defined by {where}; "
                        "each DAG id must be unique.",
                    )
        elif len(group) > 1 and all((f.spec or {}).get("format") == "airflow" for f in group):
            # as Airflow does: the file it parses first keeps the id, the others fail
            first = min(group, key=lambda f: airflow_order(f.path))
            claimed[dag_id] = first
            for f in group:
                if f is not first:
                    add(
                        f,
                        "GD301",
                        f"DAG id {dag_id!r} is also defined by {first.path}, which Airflow "
                        "parses first and which keeps it; each DAG id must be unique.",
                    )
        elif len(group) > 1:
            for f in group:
                others = ", ".join(sorted({o.path for o in group if o is not f}))
                add(
                    f,
                    "GD301",
                    f"DAG id {dag_id!r} is also defined by {others}; each DAG id must be unique.",
                )
        else:
            claimed[dag_id] = group[0]

    live = {
        dag_id: f
        for dag_id, f in claimed.items()
        if f.spec is not None and not has_errors(f.issues) and (f.path, dag_id) not in found
    }
    for dag_id, f in live.items():
        for target in f.spec["depends_on_dags"]:  # type: ignore[index]
            if target == dag_id:
                add(f, "GD303", f"DAG {dag_id!r} cannot depend on itself.", "depends_on_dags")
            elif target not in live and target not in owners:
                add(
                    f,
                    "GD302",
                    f"depends_on_dags names {target!r}, which is not a known DAG.",
                    "depends_on_dags",
                )
    _dag_cycles(live, catalog, add)
    return found


def airflow_order(path: str) -> list[tuple[int, str]]:
    """A sort key for Airflow's parse order of a DAGs folder (a walk from the top: a folder's
    files before its subfolders, by name)."""
    parts = path.split("/")
    return [(1, p) for p in parts[:-1]] + [(0, parts[-1])]


def _dag_cycles(live: dict[str, DagFile], catalog: Catalog, add: Any) -> None:
    edges: list[tuple[str, str]] = []
    todo = list(live)
    seen = set(todo)
    while todo:
        dag_id = todo.pop()
        f = live.get(dag_id)
        ups = f.spec["depends_on_dags"] if f is not None else catalog.depends_on(dag_id)  # type: ignore[index]
        for up in ups:
            if up == dag_id:
                continue
            edges.append((up, dag_id))
            if up not in seen:
                seen.add(up)
                todo.append(up)
    if not edges:  # no DAG depends on another: no cycle (and no 0.2 s import of networkx)
        return
    import networkx as nx

    graph = nx.DiGraph(edges)
    if nx.is_directed_acyclic_graph(graph):
        return
    for component in nx.strongly_connected_components(graph):
        members = [d for d in component if d in live]
        if len(component) < 2 or not members:
            continue
        names = spell_cycle(graph.subgraph(component), sorted(component))
        for dag_id in members:
            add(
                live[dag_id],
                "GD303",
                f"DAGs depend on each other in a cycle: {names}.",
                "depends_on_dags",
            )


def whole_files(
    dags: list[DagFile], kinds: Mapping[str, str]
) -> tuple[list[DagFile], list[DagFile]]:
    """An Airflow Python file is served as a whole: when one of its DAGs is invalid, the
    file's other DAGs keep their last good version too (GD409). `kinds`: path -> definition
    kind. Returns all the DAGs, and those held back."""
    bad: dict[str, list[str]] = {}
    for f in dags:
        if not f.valid:
            bad.setdefault(f.path, []).append(f.dag_id)
    out, held = [], []
    for f in dags:
        if (
            kinds.get(f.path) in ("airflow", "prefect-flow", "dagster")
            and f.valid
            and f.path in bad
        ):
            names = ", ".join(sorted(bad[f.path]))
            issue = Issue(
                "GD409",
                "error",
                f.path,
                "",
                None,
                f"Another DAG of this file is invalid ({names}); the file is served as a whole, "
                "so its last good version stays served.",
            )
            f = f.with_issues([issue])
            held.append(f)
        out.append(f)
    return out, held
