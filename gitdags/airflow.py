"""Real Airflow DAG objects from what gitdags serves (the dynamic DAG factory pattern).

One file in Airflow's dags folder:

    from gitdags.airflow import load_dags
    load_dags(globals())          # database: $GITDAGS_STATE_DATABASE, else config.toml's

or, with the deploy folder's rendered files, one Python file per DAG (`dag_from_file`), so a
DAG whose operator cannot be built shows up as an import error for that DAG only.

Task types: bash -> BashOperator, python -> PythonOperator (the callable is imported when the
task runs, so parsing stays fast), empty -> EmptyOperator, sql -> SQLExecuteQueryOperator,
http -> HttpOperator, kubernetes_pod -> KubernetesPodOperator, sensor -> the sensor its `kind`
names (file, s3_key, http, sql, external_task), local -> `python -m module` in a BashOperator,
lambda -> LambdaInvokeFunctionOperator. A provider that is not installed is an ImportError
that names the package to install. `depends_on_dags` becomes ExternalTaskSensor waits
before the DAG's first tasks. Airflow is an optional extra: `pip install gitdags[airflow]`.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import os
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from gitdags.spec import parse_duration

log = logging.getLogger(__name__)

# task type or sensor kind -> (module, class, pip package)
OPERATORS: dict[str, tuple[str, str, str]] = {
    "bash": (
        "airflow.providers.standard.operators.bash",
        "BashOperator",
        "apache-airflow-providers-standard",
    ),
    "python": (
        "airflow.providers.standard.operators.python",
        "PythonOperator",
        "apache-airflow-providers-standard",
    ),
    "empty": (
        "airflow.providers.standard.operators.empty",
        "EmptyOperator",
        "apache-airflow-providers-standard",
    ),
    "sql": (
        "airflow.providers.common.sql.operators.sql",
        "SQLExecuteQueryOperator",
        "apache-airflow-providers-common-sql",
    ),
    "http": (
        "airflow.providers.http.operators.http",
        "HttpOperator",
        "apache-airflow-providers-http",
    ),
    "kubernetes_pod": (
        "airflow.providers.cncf.kubernetes.operators.pod",
        "KubernetesPodOperator",
        "apache-airflow-providers-cncf-kubernetes",
    ),
    "lambda": (
        "airflow.providers.amazon.aws.operators.lambda_function",
        "LambdaInvokeFunctionOperator",
        "apache-airflow-providers-amazon",
    ),
    "sensor:file": (
        "airflow.providers.standard.sensors.filesystem",
        "FileSensor",
        "apache-airflow-providers-standard",
    ),
    "sensor:external_task": (
        "airflow.providers.standard.sensors.external_task",
        "ExternalTaskSensor",
        "apache-airflow-providers-standard",
    ),
    "sensor:s3_key": (
        "airflow.providers.amazon.aws.sensors.s3",
        "S3KeySensor",
        "apache-airflow-providers-amazon",
    ),
    "sensor:sql": (
        "airflow.providers.common.sql.sensors.sql",
        "SqlSensor",
        "apache-airflow-providers-common-sql",
    ),
    "sensor:http": (
        "airflow.providers.http.sensors.http",
        "HttpSensor",
        "apache-airflow-providers-http",
    ),
}
SENSOR_TARGET = {
    "file": "filepath",
    "external_task": "external_dag_id",
    "s3_key": "bucket_key",
    "http": "endpoint",
    "sql": "sql",
}


def operator_class(kind: str, dag_id: str) -> Any:
    if kind not in OPERATORS:
        raise ImportError(f"DAG {dag_id}: gitdags has no Airflow operator for {kind!r}.")
    module, name, package = OPERATORS[kind]
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ImportError(
            f"DAG {dag_id}: {name} needs {package}; install it (pip install {package})."
        ) from exc


def _dag_class() -> Any:
    try:
        from airflow.sdk import DAG
    except ImportError:  # Airflow 2
        from airflow.models.dag import DAG  # type: ignore[no-redef]
    return DAG


def _seconds(value: Any) -> dt.timedelta | None:
    seconds = parse_duration(value)
    return dt.timedelta(seconds=seconds) if seconds is not None else None


def _start(value: str | None) -> dt.datetime:
    when = dt.datetime.fromisoformat(value) if value else dt.datetime(2024, 1, 1)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def lazy_callable(target: str) -> Callable[..., Any]:
    """A callable that imports `package.module:function` when the task runs."""
    module, _, name = target.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        function = importlib.import_module(module)
        for part in name.split("."):
            function = getattr(function, part)
        return function(*args, **kwargs)  # type: ignore[operator]

    call.__name__ = call.__qualname__ = name.split(".")[-1]
    call.__module__ = module
    return call


def _task_kwargs(task: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"task_id": task["id"]}
    for key in ("trigger_rule", "retries", "pool", "priority_weight"):
        if task.get(key) is not None:
            kwargs[key] = task[key]
    if task.get("retry_delay") is not None:
        kwargs["retry_delay"] = _seconds(task["retry_delay"])
    if task.get("timeout") is not None:
        kwargs["execution_timeout"] = _seconds(task["timeout"])
    if task.get("description"):
        kwargs["doc_md"] = task["description"]
    return kwargs


def make_operator(task: dict[str, Any], dag_id: str) -> Any:
    config = dict(task.get("config") or {})
    kind = task["type"]
    kwargs = _task_kwargs(task)
    if kind == "bash":
        kwargs.update(bash_command=config["command"], env=config.get("env"))
    elif kind == "local":
        args = " ".join(str(a) for a in config.get("args", []))
        kwargs.update(bash_command=f"python -m {config['module']} {args}".strip())
        kind = "bash"
    elif kind == "python":
        kwargs.update(
            python_callable=lazy_callable(config["callable"]),
            op_kwargs=config.get("op_kwargs") or {},
        )
    elif kind == "sql":
        kwargs.update(conn_id=config["conn_id"], sql=config["sql"])
    elif kind == "http":
        kwargs.update(
            endpoint=config["url"],
            method=config.get("method", "GET"),
            http_conn_id=config.get("conn_id", "http_default"),
            headers=config.get("headers") or {},
        )
        if config.get("data") is not None:
            kwargs["data"] = json.dumps(config["data"])
    elif kind == "kubernetes_pod":
        kwargs.update(
            image=config["image"],
            name=task["id"].replace("_", "-"),
            namespace=config.get("namespace"),
            cmds=config.get("cmds"),
            arguments=config.get("arguments"),
            env_vars=config.get("env"),
        )
    elif kind == "lambda":
        kwargs.update(
            function_name=config["function_name"], payload=json.dumps(config.get("payload", {}))
        )
    elif kind == "sensor":
        sensor = str(config.get("kind"))
        if sensor not in SENSOR_TARGET:
            raise ImportError(
                f"DAG {dag_id}: sensor kind {sensor!r} has no Airflow sensor in gitdags; use "
                + ", ".join(SENSOR_TARGET)
                + "."
            )
        kwargs[SENSOR_TARGET[sensor]] = config["target"]
        if sensor == "sql":
            kwargs["conn_id"] = config.get("conn_id")
        for key in ("poke_interval", "timeout"):
            if config.get(key) is not None:
                kwargs[key] = parse_duration(config[key])
        if config.get("mode"):
            kwargs["mode"] = config["mode"]
        kind = f"sensor:{sensor}"
    cls = operator_class(kind, dag_id)
    return cls(**{k: v for k, v in kwargs.items() if v is not None})


def _airflow_has_sla() -> bool:
    import airflow

    return int(airflow.__version__.split(".")[0]) < 3


def build_dag(record: dict[str, Any]) -> Any:
    """An Airflow DAG from one served record (`Registry.served()` or a deploy-folder file)."""
    spec = record["spec"]
    dag_id = spec["dag_id"]
    args = spec.get("default_args") or {}
    default_args: dict[str, Any] = {}
    if spec.get("owner") or args.get("owner"):
        default_args["owner"] = args.get("owner") or spec["owner"]
    if args.get("retries") is not None:
        default_args["retries"] = args["retries"]
    if args.get("retry_delay") is not None:
        default_args["retry_delay"] = _seconds(args["retry_delay"])
    if args.get("timeout") is not None:
        default_args["execution_timeout"] = _seconds(args["timeout"])
    if args.get("sla") is not None and _airflow_has_sla():
        default_args["sla"] = _seconds(args["sla"])
    options: dict[str, Any] = {
        "dag_id": dag_id,
        "description": spec.get("description") or None,
        "schedule": spec.get("schedule"),
        "start_date": _start(spec.get("start_date")),
        "catchup": bool(spec.get("catchup")),
        "tags": [*(spec.get("tags") or []), "gitdags"],
        "params": spec.get("params") or {},
        "default_args": default_args,
        "doc_md": f"Served by gitdags: v{record.get('version')} of {record.get('path')} "
        f"at {record.get('commit')}.",
    }
    if spec.get("max_active_runs"):
        options["max_active_runs"] = spec["max_active_runs"]
    dag_class = _dag_class()
    with dag_class(**options) as dag:
        tasks = {task["id"]: make_operator(task, dag_id) for task in spec["tasks"]}
        for task in spec["tasks"]:
            for up in task.get("depends_on", []):
                tasks[up] >> tasks[task["id"]]
        roots = [tasks[t["id"]] for t in spec["tasks"] if not t.get("depends_on")]
        sensor = operator_class("sensor:external_task", dag_id)
        for upstream in spec.get("depends_on_dags", []):
            wait = sensor(
                task_id=f"wait_for_{upstream}",
                external_dag_id=upstream,
                external_task_id=None,
                mode="reschedule",
                timeout=6 * 3600,
            )
            wait >> roots
    return dag


def dag_from_file(path: str | os.PathLike[str]) -> Any:
    """The DAG of one deploy-folder JSON file."""
    return build_dag(json.loads(Path(path).read_text(encoding="utf-8")))


def load_dags(
    namespace: MutableMapping[str, Any] | None = None,
    *,
    database: str | os.PathLike[str] | None = None,
    config: str | None = None,
) -> dict[str, Any]:
    """Build every served DAG; put each in `namespace` (pass `globals()`) under its id.

    A DAG that cannot be built is logged and left out; the others still load.
    """
    from gitdags.registry import Registry

    if database is None:
        database = os.environ.get("GITDAGS_STATE_DATABASE")
    if database is None:
        from gitdags.config import load_settings

        database = load_settings(config).database
    with Registry(database) as registry:
        served = registry.served()
    built: dict[str, Any] = {}
    for record in served:
        if (record.get("spec") or {}).get("format") in (
            "airflow",
            "dag-factory",
            "prefect",
            "prefect-flow",
        ):
            continue  # served as files in the deploy folder: the Python file, the loader
        try:
            built[record["dag_id"]] = build_dag(record)
        except Exception as exc:
            log.error("gitdags: DAG %s was not loaded: %s", record["dag_id"], exc)
    if namespace is not None:
        namespace.update(built)
    return built
