"""Asking each consumer what it has of the served DAGs, and recording the answer; pausing there
what gitdags pauses. One `Consumers` per engine: the daemon polls after each change to what is
served and on each consumer's interval, `gitdags wait` polls until its commit has landed."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gitdags.config import ConsumerConfig, Settings
from gitdags.consumers.airflow_api import AirflowAPI
from gitdags.consumers.landing import Served, error_lines, judge, needs_import_errors
from gitdags.errors import ConsumerError
from gitdags.history.store import HistoryStore, now
from gitdags.model import ConsumerDag, ConsumerStatus

log = logging.getLogger(__name__)

# where a source's file is in the served tree: (source, path in the source) -> path there
DeployPath = Callable[[str, str], str]


class Consumers:
    def __init__(
        self,
        settings: Settings,
        store: HistoryStore,
        *,
        current: Callable[[], Path | None] = lambda: None,
        deploy_path: DeployPath = lambda _source, path: path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.current = current  # the served tree's current generation
        self.deploy_path = deploy_path
        self.apis = {c.name: AirflowAPI(c, env) for c in settings.consumers}

    @property
    def configs(self) -> tuple[ConsumerConfig, ...]:
        return self.settings.consumers

    def served(self, config: ConsumerConfig) -> list[Served]:
        """What gitdags serves to `config`: each DAG, its version, when that version was
        published (kept from the last poll while the version stays) and its files."""
        from gitdags.serve.deploy import read_manifest

        manifest = read_manifest(self.current())
        published = manifest.get("created_at") or now()
        files = {d["dag_id"]: tuple(d.get("files", ())) for d in manifest.get("dags", [])}
        before = {(d.dag_id, d.version): d.since for d in self.store.consumer_dags(config.name)}
        found = []
        for dag_id, source, path, version in self.store.served_ids():
            if not config.runs(source):
                continue
            mine = files.get(dag_id) or (self.deploy_path(source, path),)
            since = before.get((dag_id, version)) or published
            found.append(Served(dag_id, version, since, mine))
        return found

    def poll(self, name: str | None = None) -> list[ConsumerStatus]:
        """Ask each consumer (or the one named) and record what it has; a consumer that cannot
        be asked keeps its DAGs' last states and records why (never raises for it)."""
        for config in self.configs:
            if name is None or config.name == name:
                self._poll(config)
        return self.statuses()

    def _poll(self, config: ConsumerConfig) -> list[ConsumerDag] | None:
        api = self.apis[config.name]
        api.requests = 0
        checked_at = now()
        found: list[ConsumerDag] | None = None
        error = None
        try:
            served = self.served(config)
            listed = {d["dag_id"]: d for d in api.dags() if isinstance(d.get("dag_id"), str)}
            errors = error_lines(api.import_errors()) if needs_import_errors(served, listed) else {}
            found = judge(
                config.name,
                served,
                listed,
                errors,
                now=time.time(),
                checked_at=checked_at,
                missing_after=config.missing_after,
                bundle_holds=BundleBlobs(self.settings.git_repo),
            )
        except ConsumerError as exc:
            error = str(exc)
            said = self.store.consumer_statuses([config.name])[0].error
            if error != said:  # said once per run of the same failure, not on every ask
                log.warning("consumer %s: %s", config.name, error)
        with self.store.transaction():
            self.store.record_consumer(
                config.name,
                config.api_url,
                found,
                checked_at=checked_at,
                error=error,
                requests=api.requests,
            )
        for dag in found or ():
            if dag.state == "broken":
                log.warning(
                    "consumer %s: Airflow cannot import %s, which gitdags judged good: %s",
                    config.name,
                    dag.dag_id,
                    dag.error,
                )
        return found

    def statuses(self) -> list[ConsumerStatus]:
        return self.store.consumer_statuses(c.name for c in self.configs)

    def pending(self) -> bool:
        """Whether some served DAG has not landed yet in some consumer (the daemon then asks
        again soon rather than at the interval)."""
        return any(s.counts.get("pending") for s in self.statuses())

    def set_paused(self, dag_id: str, source: str, paused: bool) -> dict[str, Any]:
        """Pause (or resume) `dag_id` in each consumer that runs its source; per consumer the
        answer: its `is_paused` now, or the sentence saying why it could not be done."""
        answers: dict[str, Any] = {}
        for config in self.configs:
            if not config.runs(source):
                continue
            try:
                answer = self.apis[config.name].set_paused(dag_id, paused)
                answers[config.name] = {"is_paused": answer.get("is_paused")}
            except ConsumerError as exc:
                answers[config.name] = {"error": str(exc)}
        return answers


class BundleBlobs:
    """Whether a served-branch commit (a GitDagBundle's `bundle_version`) holds a DAG's files as
    served now: the same blobs as the newest served/all. None for a commit that is not one of
    the served branches' (Airflow reads another repository): the folder's rule applies."""

    def __init__(self, repo: Path | None) -> None:
        self.repo = repo
        self.trees: dict[str, dict[str, str] | None] = {}

    def _tree(self, commit: str) -> dict[str, str] | None:
        if commit not in self.trees:
            self.trees[commit] = None
            if self.repo is not None and (self.repo / "HEAD").exists():
                done = subprocess.run(
                    ["git", "--git-dir", str(self.repo), "ls-tree", "-r", "--full-tree", commit],
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                if done.returncode == 0:
                    tree = {}
                    for line in done.stdout.splitlines():
                        meta, _, path = line.partition("\t")
                        tree[path] = meta.split()[2]
                    self.trees[commit] = tree
        return self.trees[commit]

    def __call__(self, commit: str, files: tuple[str, ...]) -> bool | None:
        there = self._tree(commit)
        served = self._tree("refs/heads/served/all")
        if there is None or served is None:
            return None
        return all(there.get(f) == served.get(f) for f in files)
