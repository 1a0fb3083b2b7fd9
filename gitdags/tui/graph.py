"""A DAG's task graph as terminal text: layered top to bottom, edges named, cycles in red."""

from __future__ import annotations

from typing import Any

from rich.text import Text

STATUS_STYLE = {
    "active": "green",
    "invalid": "bold red",
    "disabled": "dim",
    "deleted": "dim strike",
    "paused": "yellow",
    "pinned": "bold cyan",
}
# what a consumer has of a DAG (`landed`, `pending`...), as the DAG table and screen colour it
LANDING_STYLE = {
    "landed": "green",
    "pending": "yellow",
    "drift": "magenta",
    "broken": "bold red",
    "missing": "red",
}


def layers(tasks: list[dict[str, Any]]) -> list[list[tuple[str, bool]]]:
    """Tasks in layers, each after all its upstreams; (task, in a cycle) pairs.

    Tasks caught in a cycle are layered together as one node (networkx's condensation), so
    what comes after a cycle is still drawn after it.
    """
    import networkx as nx

    graph = nx.DiGraph()
    ids = [t["id"] for t in tasks]
    graph.add_nodes_from(ids)
    for t in tasks:
        for up in t.get("depends_on", []):
            if up in graph:
                graph.add_edge(up, t["id"])
    condensed = nx.condensation(graph)
    order = {n: i for i, n in enumerate(ids)}
    result = []
    for generation in nx.topological_generations(condensed):
        layer = []
        for node in generation:
            members = condensed.nodes[node]["members"]
            cyclic = len(members) > 1
            layer += [(m, cyclic) for m in members]
        result.append(sorted(layer, key=lambda item: order[item[0]]))
    return result


def render(spec: dict[str, Any] | None) -> Text:
    """The drawing; a cycle's message is shown apart from it, wrapped (see DagScreen)."""
    if not spec or not spec.get("tasks"):
        return Text("No tasks to draw (the file could not be read).", style="italic")
    tasks = spec["tasks"]
    ups = {t["id"]: t.get("depends_on", []) for t in tasks}
    kinds = {t["id"]: t.get("type", "?") for t in tasks}
    downs: dict[str, list[str]] = {t["id"]: [] for t in tasks}
    for task_id, parents in ups.items():
        for up in parents:
            downs.setdefault(up, []).append(task_id)
    width = max(len(t) for t in ups) + 2
    out = Text()
    for number, layer in enumerate(layers(tasks), 1):
        out.append(f" {number:>2} ", style="bold reverse")
        out.append("\n")
        for task_id, cyclic in layer:
            if cyclic:
                out.append("    ⟲ ", style="bold red")
            else:
                out.append("    ┃ " if downs.get(task_id) else "    ╹ ", style="cyan")
            out.append(f"[{task_id}]".ljust(width), style="bold red" if cyclic else "bold")
            out.append(f" {kinds[task_id]:<14}", style="dim")
            if ups[task_id]:
                out.append(" ◀── " + ", ".join(ups[task_id]), style="red" if cyclic else "cyan")
            out.append("\n")
    return out
