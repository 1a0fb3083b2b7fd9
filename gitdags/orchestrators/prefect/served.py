"""The project file the served tree holds in place of a repository's `prefect.yaml`: the
served deployments' blocks (each at its served version), so `prefect deploy --all` from the
served tree, or a deployment whose `pull` step clones the served branch, only ever sees
validated deployments. A deployment whose version's project keys (`build`, `push`, `pull`)
differ from the file's carries its own (Prefect lets a deployment override them)."""

from __future__ import annotations

from typing import Any

from gitdags.model import ServedDag

STEPS = ("build", "push", "pull")


def is_deployment(dag: ServedDag) -> bool:
    return (dag.spec or {}).get("format") == "prefect"


def project_file(deployments: list[ServedDag]) -> str:
    """The text of one served project file, from the served deployments of one repository
    project file (all of the same source and path)."""
    import yaml

    ordered = sorted(deployments, key=lambda d: ((d.spec or {}).get("index", 0), d.dag_id))
    newest = max(ordered, key=lambda d: d.version) if ordered else None
    top: dict[str, Any] = dict((newest.spec or {}).get("project") or {}) if newest else {}
    blocks = []
    for dag in ordered:
        spec = dag.spec or {}
        block = dict(spec.get("block") or {})
        own = spec.get("project") or {}
        for key in STEPS:
            if key not in block and own.get(key) != top.get(key) and key in own:
                block[key] = own[key]
        blocks.append(block)
    document = {**{k: v for k, v in top.items() if k != "deployments"}, "deployments": blocks}
    where = ordered[0] if ordered else None
    head = (
        f"# Served by gitdags from {where.source}:{where.path}: the last good version of each "
        "served deployment\n"
        + "".join(f"#   {d.dag_id} v{d.version} at {d.commit[:12]}\n" for d in ordered)
        if where
        else "# Served by gitdags: no deployment is served\n"
    )
    return head + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
