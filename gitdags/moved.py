"""Import paths of before the layout (0.1) that keep working for one release: importing one
gives the module at its new path, with a DeprecationWarning that names it. Installed by
`gitdags/__init__.py`; nothing in gitdags imports an old path."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED = {
    "gitdags.source": "gitdags.git.source",
    "gitdags.validate": "gitdags.checks.validate",
    "gitdags.crosscheck": "gitdags.checks.crosscheck",
    "gitdags.checking": "gitdags.checks.pool",
    "gitdags.offline": "gitdags.checks.offline",
    "gitdags.store": "gitdags.history.store",
    "gitdags.migrations": "gitdags.history.migrations",
    "gitdags.actions": "gitdags.history.actions",
    "gitdags.kinds.airflow_py": "gitdags.orchestrators.airflow.kind",
    "gitdags.kinds.dagfactory": "gitdags.orchestrators.airflow.dagfactory",
    "gitdags.kinds.dagfactory_checks": "gitdags.orchestrators.airflow.dagfactory_checks",
    "gitdags.kinds.dagfactory_defaults": "gitdags.orchestrators.airflow.dagfactory_defaults",
    "gitdags.airflow_tier": "gitdags.orchestrators.airflow.tier",
    "gitdags.parsing": "gitdags.orchestrators.airflow.parsing",
    "gitdags.airflow3": "gitdags.orchestrators.airflow.compat",
    "gitdags.airflowignore": "gitdags.orchestrators.airflow.ignore",
    "gitdags.publish": "gitdags.serve.deploy",
    "gitdags.served_branch": "gitdags.serve.branches",
    "gitdags.s3": "gitdags.serve.s3",
    "gitdags.hooks": "gitdags.serve.hooks",
    "gitdags.httpapi": "gitdags.daemon.http",
    "gitdags.refwatch": "gitdags.daemon.refwatch",
    "gitdags.sdnotify": "gitdags.daemon.sdnotify",
    "gitdags.metrics": "gitdags.daemon.metrics",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new}; import it from there (the old path goes in the next "
            "release).",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        pass  # the module at its new path is already executed


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
