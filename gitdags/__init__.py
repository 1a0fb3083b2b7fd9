"""gitdags: follow git repositories of DAG definitions; validate, version and serve them.

The public API. Names are loaded on first use (PEP 562), so `import gitdags.registry` in a
scheduler loads the registry and the store, not the engine, git or validation.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gitdags import moved

moved.install()  # the import paths of before the layout, for one release

if TYPE_CHECKING:
    from gitdags.config import Settings, SourceConfig, load_settings
    from gitdags.engine import SyncEngine, build_engine
    from gitdags.errors import (
        ActionError,
        ConfigError,
        GitdagsError,
        NotFoundError,
        SourceError,
        StoreError,
        UsageError,
    )
    from gitdags.model import (
        DagChange,
        DagDetail,
        DagFile,
        DagState,
        FileDefinitions,
        Issue,
        ServedDag,
        SourceStatus,
        SyncResult,
        Version,
    )
    from gitdags.registry import Registry

_WHERE = {
    "Settings": "config",
    "SourceConfig": "config",
    "load_settings": "config",
    "SyncEngine": "engine",
    "build_engine": "engine",
    "ActionError": "errors",
    "ConfigError": "errors",
    "GitdagsError": "errors",
    "NotFoundError": "errors",
    "SourceError": "errors",
    "StoreError": "errors",
    "UsageError": "errors",
    "DagChange": "model",
    "DagDetail": "model",
    "DagFile": "model",
    "DagState": "model",
    "FileDefinitions": "model",
    "Issue": "model",
    "ServedDag": "model",
    "SourceStatus": "model",
    "SyncResult": "model",
    "Version": "model",
    "Registry": "registry",
}
__all__ = [
    "ActionError",
    "ConfigError",
    "DagChange",
    "DagDetail",
    "DagFile",
    "DagState",
    "FileDefinitions",
    "GitdagsError",
    "Issue",
    "NotFoundError",
    "Registry",
    "ServedDag",
    "Settings",
    "SourceConfig",
    "SourceError",
    "SourceStatus",
    "StoreError",
    "SyncEngine",
    "SyncResult",
    "UsageError",
    "Version",
    "build_engine",
    "load_settings",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'gitdags' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gitdags.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return [*globals(), *__all__]
