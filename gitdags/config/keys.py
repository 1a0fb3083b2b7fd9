"""What config.toml may hold: the template `gitdags init` writes, and every key with its kind."""

from __future__ import annotations

CONFIG_TEMPLATE = """\
# gitdags configuration; every key can be overridden by GITDAGS_<SECTION>_<KEY>.
[state]
database = "{database}"         # relative paths are relative to this file's folder

[daemon]
interval = "30s"
listen = "127.0.0.1:8765"
webhook_secret = ""             # better given as GITDAGS_DAEMON_WEBHOOK_SECRET

[publish]
deploy_dir = ""                 # "" = no deploy folder

[[sources]]
name = {name}
url = {url}
branch = {branch}
subdir = {subdir}    # "" = whole repository
include = {include}    # which files count ("**/*.py": Airflow DAG files)
exclude = []
namespace = ""                  # DAG id prefix this source owns, e.g. "sales_"
dag_id_pattern = ""             # a regex every DAG id must match ("" = any)
python = "static"               # Airflow .py files: "static" or "airflow" (needs airflow_python)
forbidden_imports = []          # modules DAG files must not import, e.g. ["mycompany.jobs"]
"""


# The orchestrators whose files a source may hold (`orchestrator = ...`; each has its package
# under gitdags/orchestrators/, and `python = "<its name>"` loads its files in the sandbox).
ORCHESTRATORS = ("airflow", "dagster", "prefect")

# Every key of every section, with its kind: str, path, duration, wait (a duration that may be
# 0), int, size, bool, list.
SECTIONS: dict[str, dict[str, str]] = {
    "state": {"database": "path"},
    "daemon": {
        "interval": "duration",
        "listen": "str",
        "webhook_secret": "str",
        "log_format": "str",
        "max_backoff": "duration",
        "sync_timeout": "duration",
        "parsing_processes": "int",
    },
    "publish": {
        "deploy_dir": "path",
        "keep": "int",
        "airflow_template": "path",
        "git_repo": "path",
    },
    "validation": {"max_file_size": "size"},
}
SOURCE_KEYS: dict[str, str] = {
    "name": "str",
    "url": "str",
    "branch": "str",
    "subdir": "str",
    "include": "list",
    "exclude": "list",
    "interval": "duration",
    "namespace": "str",
    "dag_id_pattern": "str",
    "orchestrator": "str",
    "python": "str",
    "sandbox": "str",
    "airflow_python": "str",
    "dagster_python": "str",
    "dagster_module": "str",
    "prefect_python": "str",
    "parse_timeout": "duration",
    "memory_limit": "size",
    "forbidden_imports": "list",
    "deploy_subdir": "str",
    "verify": "str",
    "allowed_signers": "path",
    "gpg_home": "path",
    "verify_scope": "str",
    "endpoint_url": "str",  # s3:// sources: an S3-compatible server (MinIO, Ceph, ...)
    "region": "str",
    "settle": "wait",  # s3:// sources: how long a publisher's uploads must be quiet
}
HOOK_KEYS: dict[str, str] = {
    "name": "str",
    "command": "str",
    "url": "str",
    "timeout": "duration",
    "retries": "int",
    "secret": "str",
}
# [[consumers]]: an orchestrator's API that runs what gitdags serves; its password or token comes
# from GITDAGS_CONSUMERS_<NAME>_PASSWORD / _TOKEN or from a file, never from config.toml
CONSUMER_KEYS: dict[str, str] = {
    "name": "str",
    "kind": "str",
    "api_url": "str",
    "username": "str",
    "password_file": "path",
    "token_file": "path",
    "interval": "duration",
    "timeout": "duration",
    "missing_after": "duration",
    "sources": "list",
}
CONSUMER_KINDS = ("airflow",)
LIST_SECTIONS = {"sources": SOURCE_KEYS, "hooks": HOOK_KEYS, "consumers": CONSUMER_KEYS}

# [publish.dagster]: the Dagster webserver whose code location a Dagster source's files are
DAGSTER_KEYS = {"url": "str", "location": "str", "timeout": "duration"}
# [publish.prefect]: deployments applied to a Prefect API (credentials from the environment:
# PREFECT_API_KEY or PREFECT_API_AUTH_STRING, passed to Prefect's client only)
PREFECT_KEYS = {"api_url": "str", "prefect_python": "path", "timeout": "duration"}
S3_KEYS = {"bucket": "str", "prefix": "str", "endpoint_url": "str", "region": "str", "keep": "int"}
