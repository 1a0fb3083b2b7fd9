"""The settings gitdags runs with: Settings, a SourceConfig per source, a HookConfig per hook."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from gitdags.errors import ConfigError
from gitdags.spec import MAX_FILE_SIZE, TASK_TYPES

DEFAULT_INCLUDE = ("**/*.yaml", "**/*.yml", "**/*.json", "**/*.toml")
PY_INCLUDE = "**/*.py"


@dataclass(frozen=True)
class S3Settings:
    """[publish.s3]: where the served set goes in S3-compatible storage."""

    bucket: str
    prefix: str = ""
    endpoint_url: str = ""
    region: str = ""
    keep: int = 5


@dataclass(frozen=True)
class DagsterSettings:
    """[publish.dagster]: the Dagster webserver that serves the code location of each Dagster
    source (the deploy folder's files): reloaded after each publish, told of pauses."""

    url: str
    location: str = ""  # the code location's name in workspace.yaml ("" = the source's name)
    timeout: float = 60.0


@dataclass(frozen=True)
class PrefectSettings:
    """[publish.prefect]: the Prefect API the served deployments are applied to."""

    api_url: str
    prefect_python: Path | None = None  # default: the prefect_python of a Prefect source
    timeout: float = 120.0  # one run of Prefect's client (all the changed deployments)


@dataclass(frozen=True)
class SourceConfig:
    name: str
    url: str
    branch: str = "main"
    subdir: str = ""
    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = ()
    interval: float | None = None
    namespace: str = ""
    dag_id_pattern: str = ""  # a regex every DAG id of the source must match ("" = any)
    orchestrator: str = "airflow"  # what runs the files: one of config.keys.ORCHESTRATORS
    python: str = "static"  # .py files: "static" (syntax tree) or the orchestrator's name (loaded)
    airflow_python: str = ""  # the interpreter with Airflow, for python = "airflow"
    dagster_python: str = ""  # the interpreter with Dagster, for python = "dagster"
    dagster_module: str = "definitions.py"  # the code location's file, under subdir
    prefect_python: str = ""  # the interpreter with Prefect, for python = "prefect"
    sandbox: str = "bwrap"  # where repository code runs: "bwrap" (bubblewrap) or "none"
    parse_timeout: float = 30.0
    memory_limit: int = 2 << 30
    forbidden_imports: tuple[str, ...] = ()
    deploy_subdir: str = ""  # folder of the source's files inside the deploy folder
    verify: str = "none"  # commit signatures: "none", "ssh" (allowed_signers) or "gpg" (gpg_home)
    allowed_signers: Path | None = None  # an ssh allowed-signers file (git's format)
    gpg_home: Path | None = None  # a GnuPG home holding the trusted public keys
    verify_scope: str = "head"  # "head": the commit served; "all": every new commit
    endpoint_url: str = ""  # s3:// sources: the S3 API's URL ("" = AWS, or boto3's settings)
    region: str = ""  # s3:// sources
    settle: float = 2.0  # s3:// sources: seconds a changed listing must stay quiet

    @property
    def is_s3(self) -> bool:
        """Its files live under an S3 prefix (`s3://bucket/prefix/`), polled into a mirror."""
        return self.url.startswith("s3://")

    @property
    def sandbox_state(self) -> str | None:
        """Where its repository code runs: "bwrap", "none" (unsandboxed), or None when no
        repository code runs (python = "static")."""
        return self.sandbox if self.python != "static" else None

    @property
    def is_local(self) -> bool:
        return is_local_url(self.url)

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)

    def fingerprint(self) -> str:
        """What decides which files count (a change: a comparison with the database on the next
        sync), then how they are checked (a change: every file checked again)."""
        parts = [
            self.safe_url,
            self.branch,
            self.subdir,
            ",".join(self.include),
            ",".join(self.exclude),
        ]
        checks = [self.namespace, self.dag_id_pattern, ",".join(self.forbidden_imports)]
        if any(checks) or self.python != "static":  # (fingerprints before these keys stay)
            parts += [*checks, self.python, self.airflow_python]
        if self.orchestrator != "airflow":
            parts.append(self.orchestrator)
        if self.orchestrator == "dagster":
            parts += [self.dagster_module, self.dagster_python]
        if self.prefect_python:
            parts.append(self.prefect_python)
        return "|".join(parts)


@dataclass(frozen=True)
class HookConfig:
    name: str
    command: str = ""
    url: str = ""
    timeout: float = 10.0
    retries: int = 3
    secret: str = ""


@dataclass(frozen=True)
class ConsumerConfig:
    """An orchestrator's API that runs what gitdags serves (`[[consumers]]`): gitdags asks it
    what it parsed of each served DAG, and pauses there what is paused here."""

    name: str
    api_url: str
    kind: str = "airflow"
    username: str = "admin"
    password_file: Path | None = None  # else GITDAGS_CONSUMERS_<NAME>_PASSWORD
    token_file: Path | None = None  # a ready bearer token, else GITDAGS_CONSUMERS_<NAME>_TOKEN
    interval: float = 30.0  # how often it is asked when nothing changed
    timeout: float = 10.0  # per request
    missing_after: float = 300.0  # served and still absent there after this: "missing"
    sources: tuple[str, ...] = ()  # the sources whose DAGs it runs (() = every source)

    @property
    def env_prefix(self) -> str:
        return "GITDAGS_CONSUMERS_" + re.sub(r"[^A-Za-z0-9]", "_", self.name).upper() + "_"

    def runs(self, source: str) -> bool:
        return not self.sources or source in self.sources


@dataclass(frozen=True)
class Settings:
    database: Path
    config_path: Path | None = None
    interval: float = 30.0
    listen: str = "127.0.0.1:8765"
    webhook_secret: str = ""
    log_format: str = "text"
    max_backoff: float = 300.0
    sync_timeout: float = 300.0  # the deadline of one sync, fetch included
    parsing_processes: int = 2  # Airflow parse children at once, for python = "airflow"
    deploy_dir: Path | None = None
    keep: int = 5
    airflow_template: Path | None = None
    git_repo: Path | None = None  # a bare repository: served/all and served/<source> branches
    s3: S3Settings | None = None  # [publish.s3]: the served set in S3-compatible storage
    dagster: DagsterSettings | None = None  # [publish.dagster]: the Dagster webserver
    prefect: PrefectSettings | None = None  # [publish.prefect]: deployments applied to Prefect
    max_file_size: int = MAX_FILE_SIZE
    task_types: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(TASK_TYPES))
    sources: tuple[SourceConfig, ...] = ()
    hooks: tuple[HookConfig, ...] = ()
    consumers: tuple[ConsumerConfig, ...] = ()

    @property
    def mirrors_dir(self) -> Path:
        """gitdags' own bare mirrors live next to the database."""
        return self.database.with_name(self.database.name + ".mirrors")

    def source(self, name: str) -> SourceConfig:
        for src in self.sources:
            if src.name == name:
                return src
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"There is no source named {name!r} (sources: {known}).")

    def interval_of(self, source: SourceConfig) -> float:
        return source.interval if source.interval is not None else self.interval

    @property
    def namespaces(self) -> dict[str, str]:
        return {s.name: s.namespace for s in self.sources if s.namespace}

    def with_sources(self, *sources: SourceConfig) -> Settings:
        return replace(self, sources=tuple(sources))


def is_local_url(url: str) -> bool:
    return "://" not in url and not re.match(r"^[\w.-]+@[\w.-]+:", url)


def redact_url(url: str) -> str:
    """Strip the password (or token) from a URL before it is logged or stored."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None and not (parts.username and "@" in parts.netloc):
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = parts.username or ""
    netloc = f"{user}:***@{host}" if parts.password is not None else f"***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
