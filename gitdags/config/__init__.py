"""config.toml and GITDAGS_* variables -> one frozen Settings.

Precedence: command-line flag > GITDAGS_<SECTION>_<KEY> > config.toml > default. Unknown keys
are errors that name the key. Relative paths are relative to the config file's folder.

The package is the import path of the names below (`from gitdags.config import X`); its
modules hold them by job: the settings, the keys config.toml may hold, and loading it.
"""

from __future__ import annotations

from gitdags.config.keys import CONFIG_TEMPLATE
from gitdags.config.load import config_path, load_settings, missing_config
from gitdags.config.settings import (
    DEFAULT_INCLUDE,
    PY_INCLUDE,
    ConsumerConfig,
    DagsterSettings,
    HookConfig,
    PrefectSettings,
    S3Settings,
    Settings,
    SourceConfig,
    is_local_url,
    redact_url,
)

__all__ = [
    "CONFIG_TEMPLATE",
    "DEFAULT_INCLUDE",
    "PY_INCLUDE",
    "ConsumerConfig",
    "DagsterSettings",
    "HookConfig",
    "PrefectSettings",
    "S3Settings",
    "Settings",
    "SourceConfig",
    "config_path",
    "is_local_url",
    "load_settings",
    "missing_config",
    "redact_url",
]
