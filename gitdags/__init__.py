"""gitdags: follow git repositories of DAG definitions; validate, version and serve them.

The public API; never imports the console.
"""

from gitdags.config import Settings, SourceConfig, load_settings
from gitdags.engine import SyncEngine, build_engine
from gitdags.errors import (
    ActionError,
    ConfigError,
    GitdagsError,
    NotFoundError,
    SourceError,
    StoreError,
)
from gitdags.model import DagChange, DagFile, DagState, Issue, SourceStatus, SyncResult, Version

__all__ = [
    "ActionError",
    "ConfigError",
    "DagChange",
    "DagFile",
    "DagState",
    "GitdagsError",
    "Issue",
    "NotFoundError",
    "Settings",
    "SourceConfig",
    "SourceError",
    "SourceStatus",
    "StoreError",
    "SyncEngine",
    "SyncResult",
    "Version",
    "build_engine",
    "load_settings",
]
__version__ = "0.1.0"
