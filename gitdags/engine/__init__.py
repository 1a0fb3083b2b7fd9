"""The one place that composes config, git, the definition kinds and the store.

Every user action is one `SyncEngine` method that returns model objects; the CLI, the console,
the daemon and the tests all build it with `build_engine(settings)`. Operator actions are a
component (`OperatorActions`) whose methods the engine offers as its own; what it reads is
`reads.EngineReads`, a mixin of it.

The engine is the only writer of each source's reconcile record (`SourceRecord`): the newest
commit fetched and attempted, the commit served, consecutive failures and the last error.
"""

from __future__ import annotations

from gitdags.engine.core import Listener, SyncEngine, build_engine, sources_to_sync
from gitdags.engine.reads import RECOVERED

__all__ = ["RECOVERED", "Listener", "SyncEngine", "build_engine", "sources_to_sync"]
