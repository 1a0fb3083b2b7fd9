"""Apply deployments to a Prefect API with Prefect's own client: run by `prefect_python`
(standard library and Prefect only; gitdags never imports it). It reads one JSON request on
stdin, {"apply": [deployment...], "remove": ["flow/deployment"...]}, and writes one JSON line
per deployment: {"id": "flow/deployment", "ok": true, "deployment_id": ...} or {"id": ...,
"ok": false, "error": ...}. The API and its credentials come from the environment
(PREFECT_API_URL, PREFECT_API_KEY or PREFECT_API_AUTH_STRING)."""

# mypy: ignore-errors

from __future__ import annotations

import datetime as dt
import json
import sys


def schedule_of(item: dict):
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

    tz = item.get("timezone")
    if item.get("cron") is not None:
        kwargs = {"cron": item["cron"], "timezone": tz, "day_or": item.get("day_or")}
        schedule = CronSchedule(**{k: v for k, v in kwargs.items() if v is not None})
    elif item.get("interval") is not None:
        interval = item["interval"]
        if isinstance(interval, int | float):
            interval = dt.timedelta(seconds=interval)
        kwargs = {"interval": interval, "anchor_date": item.get("anchor_date"), "timezone": tz}
        schedule = IntervalSchedule(**{k: v for k, v in kwargs.items() if v is not None})
    else:
        rule = item["rrule"]
        try:
            loaded = json.loads(rule)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            schedule = RRuleSchedule(**loaded)
            if tz:
                schedule.timezone = tz
        else:
            schedule = RRuleSchedule(rrule=rule, timezone=tz)
    extra = {k: item[k] for k in ("parameters", "slug") if item.get(k)}
    active = item.get("active")
    return DeploymentScheduleCreate(
        schedule=schedule, active=True if active is None else bool(active), **extra
    )


def apply(client, deployment: dict, flows: dict) -> str:
    name = deployment["flow_name"]
    if name not in flows:  # one request per flow, however many deployments it has
        flows[name] = client.create_flow_from_name(name)
    flow_id = flows[name]
    pool = deployment.get("work_pool") or {}
    concurrency = deployment.get("concurrency_limit")
    if isinstance(concurrency, dict):
        concurrency = concurrency.get("limit")
    made = client.create_deployment(
        flow_id=flow_id,
        name=deployment["name"],
        version=deployment["version"],
        description=deployment.get("description"),
        schedules=[schedule_of(s) for s in deployment.get("schedules", [])],
        parameters=deployment.get("parameters") or {},
        tags=deployment.get("tags") or [],
        work_pool_name=pool.get("name"),
        work_queue_name=pool.get("work_queue_name"),
        job_variables=pool.get("job_variables") or {},
        entrypoint=deployment["entrypoint"],
        pull_steps=deployment.get("pull") or None,
        parameter_openapi_schema=deployment.get("parameter_openapi_schema"),
        enforce_parameter_schema=deployment.get("enforce_parameter_schema"),
        concurrency_limit=concurrency,
        paused=bool(deployment.get("paused")),  # paused: its schedules stop, it stays
    )
    return str(made)


def remove(client, name: str) -> str:
    from prefect.exceptions import ObjectNotFound

    try:
        found = client.read_deployment_by_name(name)
    except ObjectNotFound:
        return ""
    client.delete_deployment(found.id)
    return str(found.id)


def main() -> None:
    request = json.loads(sys.stdin.read())
    out = sys.stdout
    from prefect.client.orchestration import get_client

    flows: dict = {}
    with get_client(sync_client=True) as client:
        for deployment in request.get("apply", []):
            key = f"{deployment['flow_name']}/{deployment['name']}"
            try:
                made = apply(client, deployment, flows)
                answer = {"id": key, "ok": True, "deployment_id": made}
            except Exception as exc:  # one deployment's failure is its own
                answer = {"id": key, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:1000]}
            out.write(json.dumps(answer) + "\n")
            out.flush()
        for name in request.get("remove", []):
            try:
                answer = {"id": name, "ok": True, "deployment_id": remove(client, name)}
            except Exception as exc:
                answer = {"id": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:1000]}
            out.write(json.dumps(answer) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
