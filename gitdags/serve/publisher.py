"""Publishing after each change to what is served: the deploy folder, then the served branches
and S3 made from its generation, and the hooks; one sentence that names each target that failed."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitdags.config import Settings, SourceConfig
from gitdags.errors import GitdagsError, PublishError
from gitdags.git.source import GitSource
from gitdags.history.store import HistoryStore
from gitdags.model import DagChange

# a publish target ("deploy folder", "served branch", "s3") and what failed there, or None
Outcome = tuple[str, Exception | None]


def _failed(outcomes: list[Outcome]) -> list[tuple[str, Exception]]:
    return [(t, e) for t, e in outcomes if e is not None]


def what_failed(exc: Exception) -> str:
    """What went wrong, for the parentheses of a publish problem."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    return str(exc).rstrip(".") or type(exc).__name__


def served_root(settings: Settings) -> Path | None:
    """The folder of the served tree's generations: the deploy folder, else (the served
    branches and S3 are made from a generation) one of its own beside the database."""
    if settings.deploy_dir:
        return settings.deploy_dir
    return Path(f"{settings.database}.served-tree") if settings.git_repo or settings.s3 else None


def deploy_path(settings: Settings, source: str, path: str) -> str:
    """A Python file's path in the served tree: its path under the source's subdir, at the top
    of `current/` (where Airflow's DAGs folder resolves `import common.x`) or under the
    source's deploy_subdir."""
    config = next((s for s in settings.sources if s.name == source), None)
    subdir = config.subdir.strip("/") + "/" if config and config.subdir else ""
    rel = path[len(subdir) :] if subdir and path.startswith(subdir) else path
    return f"{config.deploy_subdir}/{rel}" if config and config.deploy_subdir else rel


class Publisher:
    """A listener: after each change to what is served, the deploy folder and the hooks."""

    def __init__(self, settings: Settings, store: HistoryStore) -> None:
        from gitdags.serve.branches import ServedBranches
        from gitdags.serve.deploy import DeployFolder
        from gitdags.serve.hooks import HookRunner

        self.store = store
        self.settings = settings
        # the served branches are made from a deploy-folder generation: one of its own
        # beside the database when no deploy_dir is configured
        root = served_root(settings)
        self.folder = (
            DeployFolder(
                root,
                settings.keep,
                settings.airflow_template,
                layout=self.deploy_path,
                blobs=self.read_blobs,
                others=self.other_files,
            )
            if root
            else None
        )
        self.branches = ServedBranches(settings.git_repo) if settings.git_repo else None
        self.s3 = None
        if settings.s3 is not None:
            from gitdags.serve.s3 import S3Target

            self.s3 = S3Target(settings.s3, Path(f"{settings.database}.s3.json"))
        self.hooks = HookRunner(settings.hooks, settings.database) if settings.hooks else None
        self.dagster = None
        if settings.dagster is not None:
            from gitdags.orchestrators.dagster.serving import DagsterTarget

            self.dagster = DagsterTarget(
                settings,
                lambda source: {d.dag_id for d in store.dags(source=source) if d.paused},
            )
        self.prefect = None
        if settings.prefect is not None:
            from gitdags.serve.prefect_api import PrefectTarget

            self.prefect = PrefectTarget(settings)

    def __call__(self, source: str, commit: str | None, changes: tuple[DagChange, ...]) -> None:
        outcomes: list[Outcome] = []
        folder = self.folder
        generation = None
        if folder is not None:
            generation = self._target(
                "deploy folder", commit, outcomes, lambda: folder.publish(self.store)
            )
            if generation is not None and not _failed(outcomes):
                self._copies(generation.path, source, commit, changes, outcomes)
        dagster = self.dagster
        folder_failed = any(t == "deploy folder" for t, _e in _failed(outcomes))
        if dagster is not None and dagster.governs(source) and not folder_failed:
            last = self.store.publish_targets().get("dagster") or {}
            # the location's files changed, or the last reload failed: (again) now
            reload = generation is not None or bool(last.get("error"))
            if reload or any(c.change in ("pause", "resume") for c in changes):
                self._target(
                    "dagster",
                    commit,
                    outcomes,
                    lambda: dagster.publish(source, changes, reload=reload),
                    generation.name if generation is not None else "",
                )
        self._prefect(commit, outcomes)
        if self.hooks is not None:
            self.hooks(source, commit, changes)
        self._raise(outcomes)

    @property
    def behind_possible(self) -> bool:
        """Whether a target may have been left behind by a killed process."""
        return self.folder is not None or self.prefect is not None

    def _prefect(self, commit: str | None, outcomes: list[Outcome]) -> None:
        """The deployments that changed, to the Prefect API (nothing to send: no call)."""
        prefect = self.prefect
        if prefect is not None:
            self._target("prefect", commit, outcomes, lambda: prefect.publish(self.store))

    def catch_up(self, source: str, commit: str | None) -> None:
        """Publish what a killed process left unpublished: the deploy folder behind the
        database, or a served branch or S3 behind the folder's current generation, or
        deployments Prefect does not hold yet."""
        if self.prefect is not None:
            sent: list[Outcome] = []
            self._prefect(commit, sent)
            self._raise(sent)
        folder = self.folder
        if folder is None:
            return
        if folder.behind(self.store):
            self(source, commit, ())
            return
        current = folder.current()
        if current is None:
            return
        last = self.store.publish_targets()
        behind = {t for t, at in last.items() if at.get("generation") != current.name} | {
            t for t in ("served branch", "s3") if t not in last
        }
        outcomes: list[Outcome] = []
        self._copies(current, source, commit, (), outcomes, only=behind)
        self._raise(outcomes)

    def _copies(
        self,
        generation: Path,
        source: str,
        commit: str | None,
        changes: tuple[DagChange, ...],
        outcomes: list[Outcome],
        only: set[str] | None = None,
    ) -> None:
        """A deploy-folder generation to the served branches and S3 (those in `only`)."""
        from gitdags.serve.deploy import read_manifest

        branches, s3 = self.branches, self.s3
        wanted = [
            t
            for t, on in (("served branch", branches), ("s3", s3))
            if on is not None and (only is None or t in only)
        ]
        if not wanted:
            return
        found = read_manifest(generation)
        name = generation.name

        def manifest() -> dict[str, Any]:  # never an empty served set for want of a manifest
            if not found:
                raise GitdagsError(
                    f"The generation {generation} has no readable manifest beside it; "
                    "`gitdags doctor --repair` rewrites the deploy folder."
                )
            return found

        if "served branch" in wanted and branches is not None:
            publish_branch = lambda: branches.publish(  # noqa: E731
                generation, manifest(), source, commit, changes
            )
            self._target("served branch", commit, outcomes, publish_branch, name)
        if "s3" in wanted and s3 is not None:
            publish_s3 = lambda: s3.publish(generation, manifest(), commit)  # noqa: E731
            self._target("s3", commit, outcomes, publish_s3, name)

    def _target(
        self,
        name: str,
        commit: str | None,
        outcomes: list[Outcome],
        publish: Callable[[], Any],
        generation: str = "",
    ) -> Any:
        """Publish to one target and record how it went (`status` and /metrics show it); a
        failure is kept in `outcomes`, so that the other targets still get their turn."""
        from gitdags.history.store import now

        try:
            result = publish()
        except Exception as exc:
            outcomes.append((name, exc))
            record: dict[str, Any] = {"error": str(exc), "at": now()}
            result = None
        else:
            if name in ("deploy folder", "prefect") and result is None:
                return None  # nothing changed: the record stays as it was
            outcomes.append((name, None))
            made = getattr(result, "name", generation)
            record = {"generation": made, "commit": commit, "error": None, "at": now()}
        with contextlib.suppress(GitdagsError), self.store.transaction():
            self.store.set_meta(f"publish:{name}", json.dumps(record))
        return result

    def where(self, target: str) -> str:
        """A publish target as a person knows it: what it is and where."""
        if target == "dagster" and self.settings.dagster is not None:
            return f"Dagster's webserver {self.settings.dagster.url}"
        if target == "served branch":
            return f"the served-branch repository {self.settings.git_repo}"
        if target == "prefect" and self.settings.prefect is not None:
            return f"the Prefect API {self.settings.prefect.api_url}"
        if target == "s3" and self.settings.s3 is not None:
            s3 = self.settings.s3
            return f"S3 (s3://{s3.bucket}{'/' + s3.prefix if s3.prefix else ''})"
        root = self.folder.root if self.folder is not None else ""
        return f"the {'deploy folder' if self.settings.deploy_dir else 'served tree'} {root}"

    def _raise(self, outcomes: list[Outcome]) -> None:
        """One sentence that names each target that failed, and those brought up to date."""
        failed = _failed(outcomes)
        if not failed:
            return
        parts = [
            f"{self.where(t)} was not brought up to date ({what_failed(e)})" for t, e in failed
        ]
        done = [self.where(t) for t, e in outcomes if e is None]
        if done:
            parts.append(f"{' and '.join(done)} {'is' if len(done) == 1 else 'are'} up to date")
        parts.append("the DAGs are recorded and the next sync tries again")
        message = "; ".join(parts) + "."
        raise PublishError(message[0].upper() + message[1:]) from failed[0][1]

    def close(self) -> None:
        if self.hooks is not None:
            self.hooks.close()

    def deploy_path(self, source: str, path: str) -> str:
        return deploy_path(self.settings, source, path)

    def other_files(self) -> list[tuple[str, str, str]]:
        """(source, path, blob) of the files of each configured source's tree at its served
        commit that are not DAG definitions: SQL templates, configs, docs, `.airflowignore`
        and the like, as git-sync would check them out (see `publish.other_files`)."""
        from gitdags.serve.deploy import other_files

        found: list[tuple[str, str, str]] = []
        records = self.store.source_records()
        for config in self.settings.sources:
            record = records.get(config.name)
            commit = record and (record.pinned_commit or record.served_commit)
            if not commit:
                continue
            mirror = self.settings.mirrors_dir / f"{config.name}.git"
            git = GitSource(config, mirror, self.settings.max_file_size)
            if not git.has_commit(commit):
                continue
            kinds = self.store.file_kinds(config.name)
            found += [
                (config.name, path, blob)
                for path, blob in other_files(git.files_under(commit), kinds, git.blobs)
            ]
        return found

    def read_blobs(self, source: str, blobs: list[str]) -> dict[str, bytes]:
        """Blobs from the source's mirror (which stays when the source leaves the config)."""
        config = next(
            (s for s in self.settings.sources if s.name == source), SourceConfig(source, "")
        )
        mirror = self.settings.mirrors_dir / f"{source}.git"
        return GitSource(config, mirror, self.settings.max_file_size).blobs(blobs)
