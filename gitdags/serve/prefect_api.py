"""The Prefect publish target (`[publish.prefect] api_url`): after each change to what is
served, the deployments that changed are created or updated in Prefect through Prefect's own
client, run in `prefect_python` (`orchestrators/prefect/api_worker.py`; gitdags never imports
Prefect), with `version` = the gitdags version and commit; a paused DAG's deployment is paused
there (its schedules stop), a retired one (deleted, or no longer served) is removed. Only what
changed since the last publish is sent: what was applied, per deployment, is kept beside the
database (`<database>.prefect.json`). Credentials come from gitdags' environment
(PREFECT_API_KEY, PREFECT_API_AUTH_STRING) and go to Prefect's client only."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from gitdags.config import PrefectSettings, Settings
from gitdags.errors import GitdagsError
from gitdags.history.store import HistoryStore
from gitdags.model import ServedDag
from gitdags.orchestrators.prefect.served import API_WORKER, deployment_payload, is_deployment

CREDENTIALS = ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING")


class PrefectTarget:
    def __init__(self, settings: Settings) -> None:
        assert settings.prefect is not None
        self.config: PrefectSettings = settings.prefect
        self.state_path = Path(f"{settings.database}.prefect.json")
        self.home = Path(f"{settings.database}.prefect-home")
        python = self.config.prefect_python
        if python is None:
            found = next((s.prefect_python for s in settings.sources if s.prefect_python), "")
            python = Path(found) if found else None
        self.python = python
        self.last: dict[str, Any] = {}  # what the last run did: applied, removed, failed

    def wanted(self, store: HistoryStore) -> dict[str, dict[str, Any]]:
        """dag_id -> what Prefect should hold for it: the served deployments, and the paused
        ones (at their served version, paused)."""
        found = {d.dag_id: deployment_payload(d) for d in store.served() if is_deployment(d)}
        for state in store.dag_states(status="paused"):
            row = store.dag(state.dag_id)
            if row is None or row.served_version is None:
                continue
            version = store.version(row, row.served_version)
            if version is None or (version.spec or {}).get("format") != "prefect":
                continue
            dag = ServedDag(
                row.dag_id,
                row.source,
                row.path,
                "paused",
                version.version,
                version.commit,
                version.spec,
            )
            found[row.dag_id] = deployment_payload(dag, paused=True)
        return found

    def publish(self, store: HistoryStore) -> dict[str, Any] | None:
        """Apply what changed; None when nothing did. Raises GitdagsError naming the
        deployments Prefect refused (the others are applied)."""
        wanted = self.wanted(store)
        state = self._state()
        keys = {dag_id: _key(payload) for dag_id, payload in wanted.items()}
        apply = [wanted[d] for d in sorted(wanted) if state.get(d) != keys[d]]
        remove = sorted(d for d in state if d not in wanted)
        if not apply and not remove:
            return None
        answers = self._run({"apply": apply, "remove": remove})
        failed = {}
        for dag_id in [f"{p['flow_name']}/{p['name']}" for p in apply] + remove:
            answer = answers.get(dag_id) or {"ok": False, "error": "no answer"}
            if not answer.get("ok"):
                failed[dag_id] = str(answer.get("error"))
            elif dag_id in keys:
                state[dag_id] = keys[dag_id]
            else:
                state.pop(dag_id, None)
        self._save(state)
        self.last = {
            "applied": len(apply) - len(set(failed) & set(keys)),
            "removed": len(remove) - len(set(failed) - set(keys)),
            "failed": failed,
        }
        if failed:
            first = next(iter(failed.items()))
            raise GitdagsError(
                f"Prefect refused {len(failed)} deployment(s), e.g. {first[0]} ({first[1][:300]})"
            )
        return self.last

    def _run(self, request: dict[str, Any]) -> dict[str, dict[str, Any]]:
        if self.python is None:
            raise GitdagsError(
                "[publish.prefect] needs prefect_python (or a Prefect source with one): the "
                "interpreter with Prefect that applies the deployments"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.home),
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.config.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            **{k: os.environ[k] for k in CREDENTIALS if os.environ.get(k)},
        }
        try:
            done = subprocess.run(
                [str(self.python), "-I", str(API_WORKER)],
                input=json.dumps(request),
                capture_output=True,
                text=True,
                env=env,
                timeout=self.config.timeout,
                cwd=self.home,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitdagsError(f"Prefect's client did not run with {self.python}: {exc}") from exc
        answers = {}
        for line in done.stdout.splitlines():
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            if isinstance(answer, dict) and isinstance(answer.get("id"), str):
                answers[answer["id"]] = answer
        if done.returncode != 0 and not answers:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            raise GitdagsError(f"Prefect's client failed at {self.config.api_url}: {tail[0][:300]}")
        return answers

    def _state(self) -> dict[str, str]:
        try:
            found = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def _save(self, state: dict[str, str]) -> None:
        temp = self.state_path.with_name(f"{self.state_path.name}.tmp-{os.getpid()}")
        temp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
        os.replace(temp, self.state_path)


def _key(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
