"""Reading config.toml, applying GITDAGS_* overrides and converting values into one Settings."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitdags.config.keys import (
    CONSUMER_KEYS,
    CONSUMER_KINDS,
    DAGSTER_KEYS,
    HOOK_KEYS,
    LIST_SECTIONS,
    ORCHESTRATORS,
    PREFECT_KEYS,
    S3_KEYS,
    SECTIONS,
    SOURCE_KEYS,
)
from gitdags.config.settings import (
    ConsumerConfig,
    HookConfig,
    Settings,
    SourceConfig,
    is_local_url,
)
from gitdags.errors import ConfigError
from gitdags.spec import ID_RE, TASK_TYPES, parse_duration

MAX_DURATION = 30 * 86400  # longer waits overflow timers and mean a typo


def config_path(explicit: str | os.PathLike[str] | None = None) -> tuple[Path, bool]:
    """The config file to read, and whether the user named it."""
    if explicit:
        return Path(explicit), True
    if os.environ.get("GITDAGS_CONFIG"):
        return Path(os.environ["GITDAGS_CONFIG"]), True
    return Path("config.toml"), False


def missing_config() -> ConfigError:
    """No config file was named and ./config.toml does not exist: what a newcomer hears first
    from a command that needs one (before anything about the database)."""
    return ConfigError(
        f"There is no config.toml in {Path.cwd()}; write one with `gitdags init`, or name "
        "yours with --config PATH (or GITDAGS_CONFIG)."
    )


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    file, named = config_path(path)
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if file.exists():
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file} is not valid TOML ({exc}); fix the file.") from exc
        except OSError as exc:
            raise ConfigError(f"Cannot read {file}: {exc.strerror}.") from exc
    elif named:
        raise ConfigError(f"Config file {file} does not exist; create it with `gitdags init`.")
    base = file.resolve().parent
    _check_keys(raw, str(file))
    _apply_env(raw, env)
    return _build(raw, base, file.resolve() if file.exists() else None)


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}."


def _check_keys(raw: dict[str, Any], where: str) -> None:
    known = [*SECTIONS, *LIST_SECTIONS, "task_types"]
    for section, body in raw.items():
        if section not in known:
            raise ConfigError(f"Unknown section [{section}] in {where}" + _suggest(section, known))
        if section == "task_types":
            if not isinstance(body, dict):
                raise ConfigError(f"[task_types] in {where} must be a table of type = [keys].")
            continue
        keys = LIST_SECTIONS.get(section) or SECTIONS[section]
        tables = body if isinstance(body, list) else [body]
        if section in LIST_SECTIONS and not isinstance(body, list):
            raise ConfigError(f"{section} in {where} must be written [[{section}]].")
        for table in tables:
            if not isinstance(table, dict):
                raise ConfigError(f"[{section}] in {where} must be a table.")
            for key in table:
                if section == "publish" and key in PUBLISH_TABLES:
                    _check_table(f"publish.{key}", table[key], where)
                    continue
                if section == "consumers" and key in ("password", "token"):
                    raise ConfigError(
                        f"[[consumers]] in {where} holds a {key}, which config.toml never does; "
                        f"give it in GITDAGS_CONSUMERS_<NAME>_{key.upper()} or {key}_file."
                    )
                if key not in keys:
                    raise ConfigError(
                        f"Unknown key {key!r} in [{section}] of {where}" + _suggest(key, list(keys))
                    )


# the tables under [publish]: their keys, the key each needs and how to say it
PUBLISH_TABLES: dict[str, tuple[dict[str, str], str, str]] = {
    "s3": (S3_KEYS, "bucket", "needs a bucket."),
    "dagster": (
        DAGSTER_KEYS,
        "url",
        'needs url, the Dagster webserver\'s address (e.g. "http://127.0.0.1:3000").',
    ),
    "prefect": (PREFECT_KEYS, "api_url", "needs api_url, e.g. http://prefect:4200/api."),
}


def _check_table(name: str, body: Any, where: str) -> None:
    """A [publish.<name>] table: a table, of known keys, with the key it needs."""
    keys, needed, needs = PUBLISH_TABLES[name.removeprefix("publish.")]
    if not isinstance(body, dict):
        raise ConfigError(f"[{name}] in {where} must be a table.")
    for key in body:
        if key not in keys:
            raise ConfigError(
                f"Unknown key {key!r} in [{name}] of {where}" + _suggest(key, list(keys))
            )
    if not body.get(needed):
        raise ConfigError(f"[{name}] in {where} {needs}")


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for var, value in env.items():
        if not var.startswith("GITDAGS_") or var == "GITDAGS_CONFIG":
            continue
        rest = var[len("GITDAGS_") :].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is not None:
            key = rest[len(section) + 1 :]
            if key not in SECTIONS[section]:
                raise ConfigError(f"Unknown setting {var}" + _suggest(key, list(SECTIONS[section])))
            raw.setdefault(section, {})[key] = _env_value(SECTIONS[section][key], value)
            continue
        if rest.startswith("sources_"):
            _apply_source_env(raw, var, rest[len("sources_") :], value)
        elif rest.startswith("task_types_"):
            raw.setdefault("task_types", {})[rest[len("task_types_") :]] = _split(value)


def _apply_source_env(raw: dict[str, Any], var: str, rest: str, value: str) -> None:
    key = next((k for k in SOURCE_KEYS if rest.endswith("_" + k)), None)
    if key is None or key == "name":
        raise ConfigError(
            f"{var} names no source key; write GITDAGS_SOURCES_<NAME>_<KEY> with KEY one of "
            + ", ".join(k for k in SOURCE_KEYS if k != "name")
            + "."
        )
    name = rest[: -len(key) - 1]
    for table in raw.get("sources", []):
        if str(table.get("name", "")).lower().replace("-", "_") == name:
            table[key] = _env_value(SOURCE_KEYS[key], value)
            return
    raise ConfigError(f"{var} names source {name!r}, which config.toml does not define.")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _env_value(kind: str, value: str) -> Any:
    return _split(value) if kind == "list" else value


def _convert(kind: str, value: Any, where: str, base: Path) -> Any:
    if kind in ("str", "path"):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string.")
        if kind == "path":
            return (base / value) if value else None
        return value
    if kind in ("duration", "wait"):
        seconds = parse_duration(value)
        if seconds is None or seconds < 0 or (seconds == 0 and kind == "duration"):
            raise ConfigError(f"{where} = {value!r} is not a duration; write e.g. 30s, 5m or 1h.")
        if seconds > MAX_DURATION:
            raise ConfigError(f"{where} = {value!r} is too long; the most is 30d.")
        return float(seconds)
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} = {value!r} must be a whole number.") from None
    if kind == "size":
        match = re.fullmatch(r"\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*", str(value))
        if not match:
            raise ConfigError(f"{where} = {value!r} is not a size; write e.g. 1048576 or 1MiB.")
        units = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}
        units.update(KiB=1 << 10, MiB=1 << 20, GiB=1 << 30)
        return int(match.group(1)) * units[match.group(2) or "B"]
    if kind == "list":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings.")
        return tuple(value)
    raise AssertionError(kind)


def _build(raw: dict[str, Any], base: Path, file: Path | None) -> Settings:
    values: dict[str, Any] = {}
    for section, keys in SECTIONS.items():
        for key, value in raw.get(section, {}).items():
            if section == "publish" and key == "s3":
                from gitdags.config.settings import S3Settings

                values["s3"] = S3Settings(
                    **{
                        k: _convert(S3_KEYS[k], v, f"[publish.s3] {k}", base)
                        for k, v in value.items()
                    }
                )
                continue
            if section == "publish" and key == "dagster":
                from gitdags.config.settings import DagsterSettings

                values["dagster"] = DagsterSettings(
                    **{
                        k: _convert(DAGSTER_KEYS[k], v, f"[publish.dagster] {k}", base)
                        for k, v in value.items()
                    }
                )
                continue
            if section == "publish" and key == "prefect":
                from gitdags.config.settings import PrefectSettings

                values["prefect"] = PrefectSettings(
                    **{
                        k: _convert(PREFECT_KEYS[k], v, f"[publish.prefect] {k}", base)
                        for k, v in value.items()
                    }
                )
                continue
            values[key] = _convert(keys[key], value, f"[{section}] {key}", base)
    values["database"] = values.get("database") or base / "gitdags.db"
    if "log_format" in values and values["log_format"] not in ("text", "json"):
        raise ConfigError("[daemon] log_format must be 'text' or 'json'.")
    task_types = dict(TASK_TYPES)
    for name, required in raw.get("task_types", {}).items():
        if not ID_RE.fullmatch(name):
            raise ConfigError(f"Task type name {name!r} in [task_types] is not a valid id.")
        task_types[name] = _convert("list", required, f"[task_types] {name}", base)
    sources = [_source(t, base) for t in raw.get("sources", [])]
    names = [s.name for s in sources]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"Two [[sources]] are named {name!r}; source names must be unique.")
    hooks = [_hook(t, i, base) for i, t in enumerate(raw.get("hooks", []))]
    consumers = [_consumer(t, i, base, names) for i, t in enumerate(raw.get("consumers", []))]
    if len({c.name for c in consumers}) < len(consumers):
        raise ConfigError("Two [[consumers]] have the same name; consumer names must be unique.")
    return Settings(
        config_path=file,
        task_types=task_types,
        sources=tuple(sources),
        hooks=tuple(hooks),
        consumers=tuple(consumers),
        **values,
    )


def _source(table: dict[str, Any], base: Path) -> SourceConfig:
    for required in ("name", "url"):
        if not table.get(required):
            raise ConfigError(f"A [[sources]] entry has no {required}; every source needs one.")
    name = _convert("str", table["name"], "[[sources]] name", base)
    if not ID_RE.fullmatch(name):
        raise ConfigError(f"Source name {name!r} must use letters, digits, '_', '.', '-'.")
    values = {
        key: _convert(SOURCE_KEYS[key], value, f"[[sources]] {name}: {key}", base)
        for key, value in table.items()
    }
    url = values["url"]
    if is_local_url(url):
        values["url"] = str((base / Path(url).expanduser()).resolve())
    values["subdir"] = values.get("subdir", "").strip("/")
    _check_s3_source(name, values)
    values["deploy_subdir"] = values.get("deploy_subdir", "").strip("/")
    if ".." in values["deploy_subdir"].split("/"):
        raise ConfigError(f"[[sources]] {name}: deploy_subdir must stay inside the deploy folder.")
    python = values.get("python", "static")
    orchestrator = values.setdefault("orchestrator", python if python != "static" else "airflow")
    if orchestrator not in ORCHESTRATORS:
        raise ConfigError(
            f"[[sources]] {name}: orchestrator = {orchestrator!r}; use one of "
            + ", ".join(f'"{o}"' for o in ORCHESTRATORS)
            + "."
        )
    if python not in ("static", orchestrator):
        raise ConfigError(
            f'[[sources]] {name}: python = {python!r}; use "static" or "{orchestrator}" '
            f"(the orchestrator of the source)."
        )
    if python == "airflow" and not values.get("airflow_python"):
        raise ConfigError(
            f'[[sources]] {name}: python = "airflow" needs airflow_python, the interpreter '
            "of the environment the schedulers run (e.g. /opt/airflow/venv/bin/python)."
        )
    if python == "dagster" and not values.get("dagster_python"):
        raise ConfigError(
            f'[[sources]] {name}: python = "dagster" needs dagster_python, the interpreter '
            "of the environment the code location runs in (e.g. /opt/dagster/venv/bin/python)."
        )
    if python == "prefect" and not values.get("prefect_python"):
        raise ConfigError(
            f'[[sources]] {name}: python = "prefect" needs prefect_python, the interpreter '
            "of the environment Prefect's workers run (e.g. /opt/prefect/venv/bin/python)."
        )
    if values.get("sandbox", "bwrap") not in ("bwrap", "none"):
        raise ConfigError(
            f'[[sources]] {name}: sandbox = {values["sandbox"]!r}; use "bwrap" (bubblewrap, '
            'the default) or "none" (repository code runs unsandboxed).'
        )
    for key in ("airflow_python", "dagster_python", "prefect_python"):
        if values.get(key) and "/" in values[key]:
            values[key] = str(base / Path(values[key]).expanduser())
    _check_verify(name, values)
    pattern = values.get("dag_id_pattern", "")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"[[sources]] {name}: dag_id_pattern {pattern!r} is not a regular expression ({exc})."
        ) from None
    return SourceConfig(**values)


def _check_s3_source(name: str, values: dict[str, Any]) -> None:
    """An s3:// url names a bucket (and a prefix); endpoint_url, region and settle are only
    for such a source."""
    url = values["url"]
    if url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket or ".." in prefix.split("/"):
            raise ConfigError(
                f"[[sources]] {name}: url {url!r} does not name a bucket and a plain prefix; "
                "write s3://BUCKET/PREFIX/."
            )
        if values.get("verify", "none") != "none":
            raise ConfigError(
                f"[[sources]] {name}: an s3:// source has no signed commits to verify; "
                'remove verify (or set it to "none").'
            )
        return
    for key in ("endpoint_url", "region", "settle"):
        if key in values:
            raise ConfigError(
                f"[[sources]] {name}: {key} is for s3:// sources; remove it or give an "
                "s3://BUCKET/PREFIX/ url."
            )


def _check_verify(name: str, values: dict[str, Any]) -> None:
    verify = values.get("verify", "none")
    if verify not in ("none", "ssh", "gpg"):
        raise ConfigError(f'[[sources]] {name}: verify = {verify!r}; use "none", "ssh" or "gpg".')
    scope = values.get("verify_scope", "head")
    if scope not in ("head", "all"):
        raise ConfigError(f'[[sources]] {name}: verify_scope = {scope!r}; use "head" or "all".')
    if verify == "ssh" and not values.get("allowed_signers"):
        raise ConfigError(
            f'[[sources]] {name}: verify = "ssh" needs allowed_signers, an ssh allowed-signers '
            'file (one `email namespaces="git" ssh-ed25519 AAAA...` line per signer).'
        )
    if verify == "gpg" and not values.get("gpg_home"):
        raise ConfigError(
            f'[[sources]] {name}: verify = "gpg" needs gpg_home, a GnuPG home holding the '
            "public keys of the allowed signers."
        )
    signers = values.get("allowed_signers")
    if verify == "ssh" and signers is not None:
        try:
            with open(signers, "rb") as file:
                file.read(1)
        except OSError as exc:
            why = "does not exist" if isinstance(exc, FileNotFoundError) else exc.strerror
            raise ConfigError(
                f"[[sources]] {name}: allowed_signers {signers} cannot be read ({why}); "
                "fix the path or the file's permissions, or no commit can be verified."
            ) from None


def _hook(table: dict[str, Any], index: int, base: Path) -> HookConfig:
    values = {
        key: _convert(HOOK_KEYS[key], value, f"[[hooks]] {key}", base)
        for key, value in table.items()
    }
    values.setdefault("name", f"hook{index + 1}")
    if bool(values.get("command")) == bool(values.get("url")):
        raise ConfigError(f"Hook {values['name']!r} needs exactly one of command or url.")
    return HookConfig(**values)


def _consumer(table: dict[str, Any], index: int, base: Path, sources: list[str]) -> ConsumerConfig:
    where = f"[[consumers]] {table.get('name') or index + 1}"
    values = {
        key: _convert(CONSUMER_KEYS[key], value, f"{where}: {key}", base)
        for key, value in table.items()
    }
    values.setdefault("name", f"airflow{index + 1}" if index else "airflow")
    if values.get("kind", "airflow") not in CONSUMER_KINDS:
        raise ConfigError(
            f"{where}: kind = {values['kind']!r}; use "
            + ", ".join(f'"{k}"' for k in CONSUMER_KINDS)
            + "."
        )
    url = values.get("api_url", "")
    if not re.match(r"https?://[^/\s]+", url):
        raise ConfigError(
            f"{where} needs api_url, the address of Airflow's API server "
            "(e.g. http://airflow:8080), without /api/v2."
        )
    values["api_url"] = url.rstrip("/").removesuffix("/api/v2")
    unknown = [s for s in values.get("sources", ()) if s not in sources]
    if unknown:
        raise ConfigError(
            f"{where}: sources names {unknown[0]!r}, which is not a [[sources]] name "
            f"(sources: {', '.join(sources) or 'none configured'})."
        )
    return ConsumerConfig(**values)
