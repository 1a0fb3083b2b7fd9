"""The project file the served tree holds in place of a repository's `prefect.yaml`: the
served deployments' blocks (each at its served version), so `prefect deploy --all` from the
served tree, or a deployment whose `pull` step clones the served branch, only ever sees
validated deployments. A deployment whose version's project keys (`build`, `push`, `pull`)
differ from the file's carries its own (Prefect lets a deployment override them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitdags.model import ServedDag

STEPS = ("build", "push", "pull")
API_WORKER = Path(__file__).with_name("api_worker.py")  # run by prefect_python, never imported


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
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: 10x faster, same text
    text = yaml.dump(document, Dumper=dumper, sort_keys=False, allow_unicode=True, width=100)
    return head + text


def deployment_payload(dag: ServedDag, *, paused: bool = False) -> dict[str, Any]:
    """What Prefect's client is given for one served deployment (see `api_worker`): its block
    at the served version, the project's steps it inherits, `version` = the gitdags version
    and commit, and the parameter schema of its flow as the syntax tree shows it."""
    spec = dag.spec or {}
    block = spec.get("block") or {}
    project = spec.get("project") or {}
    items = list(block.get("schedules") or [])
    if isinstance(block.get("schedule"), dict):
        items.insert(0, block["schedule"])
    pull = block.get("pull", project.get("pull"))
    flow = spec.get("flow") or {}
    signature = flow.get("parameters") or []
    schema = {
        "title": "Parameters",
        "type": "object",
        "properties": {
            p["name"]: {"title": p["name"], "position": i} for i, p in enumerate(signature)
        },
        "required": [p["name"] for p in signature if p.get("required")],
        "definitions": {},
    }
    return {
        "flow_name": spec.get("flow_name"),
        "name": spec.get("deployment"),
        "version": f"gitdags v{dag.version} {dag.commit[:12]}",
        "description": block.get("description"),
        "entrypoint": block.get("entrypoint"),
        "parameters": block.get("parameters") or {},
        "tags": block.get("tags") if isinstance(block.get("tags"), list) else [],
        "schedules": items,
        "work_pool": block.get("work_pool") if isinstance(block.get("work_pool"), dict) else {},
        "pull": [pull] if isinstance(pull, dict) else pull,
        "parameter_openapi_schema": schema if flow else None,
        "enforce_parameter_schema": block.get("enforce_parameter_schema"),
        "concurrency_limit": block.get("concurrency_limit"),
        "paused": paused,
    }
