"""Loads one Dagster code location the way Dagster's webserver and `dagster definitions
validate` load it, and prints what it found as one JSON line. Run by the source's
`dagster_python` (the environment the code location runs in), inside the sandbox, once per load:
it reads {"root": FOLDER, "module": FILE} from stdin. It imports nothing of gitdags.

The answer: {"ok": true, "dagster": VERSION, "jobs": {name: {"nodes": [...], "assets": [...],
"schedules": [...], "sensors": [...]}}, "assets": {key: {"group": G, "deps": [...]}}} or
{"ok": false, "message": "...", "traceback": "...", "frames": [files of the traceback]}.
"""

import json
import os
import sys
import traceback


def frames(exc: BaseException) -> list:
    """The files of the traceback of `exc` and of its causes, innermost last."""
    found = []
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        found = [f.filename for f in traceback.extract_tb(exc.__traceback__)] + found
        if isinstance(exc, SyntaxError) and exc.filename:
            found.append(exc.filename)
        exc = exc.__cause__ or exc.__context__
    return found


def main() -> None:
    request = json.loads(sys.stdin.readline())
    root = request["root"]
    os.chdir(root)
    sys.path.insert(0, root)
    os.environ["DAGSTER_IS_DEFS_VALIDATION_CLI"] = "1"
    try:
        from dagster import __version__
        from dagster._core.definitions.reconstruct import repository_def_from_target_def
        from dagster._core.remote_representation.external_data import RepositorySnap
        from dagster._core.workspace.autodiscovery import loadable_targets_from_python_file
    except Exception as exc:  # the environment, not the code location
        print(json.dumps({"ok": False, "environment": True, "message": repr(exc)}))
        return
    try:
        targets = loadable_targets_from_python_file(os.path.join(root, request["module"]), root)
        if not targets:
            raise ValueError(f"{request['module']} defines no Definitions object")
        repo = repository_def_from_target_def(targets[0].target_definition)
        repo.load_all_definitions()
        RepositorySnap.from_def(repo)  # what the webserver's code server builds from it
        answer = describe(repo)
        answer.update(ok=True, dagster=__version__)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        answer = {
            "ok": False,
            "message": f"{type(exc).__name__}: {exc}"[:4000],
            "traceback": "".join(traceback.format_exception(exc))[-8000:],
            "frames": frames(exc),
        }
    print(json.dumps(answer), flush=True)


def describe(repo) -> dict:
    jobs = {}
    for job in repo.get_all_jobs():
        if job.name.startswith("__ASSET_JOB"):
            continue
        assets = []
        if job.asset_layer is not None:
            assets = sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
        jobs[job.name] = {
            "nodes": sorted(n.name for n in job.graph.nodes),
            "assets": assets,
            "schedules": sorted(
                s.name for s in repo.schedule_defs if s.has_job and s.job_name == job.name
            ),
            "sensors": sorted(
                s.name
                for s in repo.sensor_defs
                if s.has_jobs and job.name in [t.job_name for t in s.targets]
            ),
        }
    assets = {}
    graph = repo.asset_graph
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
        }
    return {"jobs": jobs, "assets": assets}


if __name__ == "__main__":
    main()
