"""Airflow 3's REST API (`/api/v2`), as much of it as gitdags asks: the DAGs it parsed, its
import errors, and pausing. Credentials come from the environment or a file, never config.toml:
a bearer token (`token_file`, GITDAGS_CONSUMERS_<NAME>_TOKEN) is sent as it is; a password
(`password_file`, GITDAGS_CONSUMERS_<NAME>_PASSWORD) is traded at Airflow's token endpoint
(`POST /auth/token`, which its auth managers serve) for a token, again when it expires."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitdags.config import ConsumerConfig
from gitdags.errors import ConsumerError

PAGE = 100  # Airflow's default [api] maximum_page_limit


class AirflowAPI:
    def __init__(self, config: ConsumerConfig, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.env = os.environ if env is None else env
        self.token: str | None = None
        self.traded = False  # the token came from the password: trade it again on a 401
        self.requests = 0  # requests sent (the token's trade included)

    @property
    def where(self) -> str:
        return f"Airflow's API at {self.config.api_url} (consumer {self.config.name})"

    def _secret(self, key: str, file: Path | None) -> str | None:
        value = self.env.get(self.config.env_prefix + key.upper())
        if value:
            return value.strip()
        if file is None:
            return None
        try:
            return file.read_text().strip()
        except OSError as exc:
            raise ConsumerError(
                f"Cannot read the {key} file {file} of consumer {self.config.name} "
                f"({exc.strerror}); fix its path or permissions."
            ) from None

    def _authorization(self, fresh: bool = False) -> dict[str, str]:
        if self.token is None or fresh:
            token = self._secret("token", self.config.token_file)
            if token:
                self.token, self.traded = token, False
            else:
                password = self._secret("password", self.config.password_file)
                if password is None:
                    return {}  # an Airflow that lets everyone in (all admins)
                body = {"username": self.config.username, "password": password}
                answer = self._send("POST", "/auth/token", body, {})
                token = answer.get("access_token") if isinstance(answer, dict) else None
                if not isinstance(token, str):
                    raise ConsumerError(f"{self.where} answered /auth/token without a token.")
                self.token, self.traded = token, True
        return {"Authorization": f"Bearer {self.token}"}

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
    ) -> Any:
        """One API call (`path` under /api/v2); its JSON answer. A 401 with a traded token
        trades the password again, once."""
        full = "/api/v2" + path + ("?" + urllib.parse.urlencode(query) if query else "")
        try:
            return self._send(method, full, body, self._authorization())
        except _Unauthorized:
            if not self.traded:
                raise ConsumerError(
                    f"{self.where} refused the token (401); give a valid one in "
                    f"{self.config.env_prefix}TOKEN or token_file."
                ) from None
            try:
                return self._send(method, full, body, self._authorization(fresh=True))
            except _Unauthorized:
                raise ConsumerError(f"{self.where} refused the fresh token (401).") from None

    def _send(self, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.config.api_url + path,
            data=data,
            method=method,
            headers={"Accept": "application/json", "Content-Type": "application/json", **headers},
        )
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                raise _Unauthorized from None
            detail = _detail(exc)
            if path == "/auth/token" and exc.code in (400, 401, 403):
                raise ConsumerError(
                    f"{self.where} refused user {self.config.username!r} and its password "
                    f"({exc.code}); check {self.config.env_prefix}PASSWORD or password_file."
                ) from None
            raise ConsumerError(
                f"{self.where} answered {method} {path.split('?')[0]} with {exc.code}"
                + (f" ({detail})" if detail else "")
                + ".",
            ) from None
        except TimeoutError:
            raise ConsumerError(
                f"{self.where} did not answer within {self.config.timeout:g} s; "
                "is the api-server overloaded or the address wrong?"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise ConsumerError(
                    f"{self.where} did not answer within {self.config.timeout:g} s; "
                    "is the api-server overloaded or the address wrong?"
                ) from None
            why = getattr(reason, "strerror", None) or str(reason)
            raise ConsumerError(
                f"{self.where} cannot be reached ({why}); is the api-server running there?"
            ) from None
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise ConsumerError(f"{self.where} answered {path} with something not JSON.") from None

    def _pages(self, path: str, key: str, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            answer = self.call("GET", path, query={**query, "limit": PAGE, "offset": len(found)})
            page = answer.get(key) if isinstance(answer, dict) else None
            if not isinstance(page, list):
                raise ConsumerError(f"{self.where} answered {path} without a list of {key}.")
            found += [item for item in page if isinstance(item, dict)]
            total = answer.get("total_entries")
            if not page or not isinstance(total, int) or len(found) >= total:
                return found

    def dags(self) -> list[dict[str, Any]]:
        """Every DAG Airflow knows, stale ones included (one request per 100 DAGs)."""
        return self._pages("/dags", "dags", {"exclude_stale": "false"})

    def import_errors(self) -> list[dict[str, Any]]:
        return self._pages("/importErrors", "import_errors", {})

    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        """Pause or resume a DAG there; its answer (the DAG as Airflow has it now)."""
        path = "/dags/" + urllib.parse.quote(dag_id, safe="")
        answer = self.call("PATCH", path, {"is_paused": paused}, {"update_mask": "is_paused"})
        return answer if isinstance(answer, dict) else {}


class _Unauthorized(Exception):
    pass


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else ""
