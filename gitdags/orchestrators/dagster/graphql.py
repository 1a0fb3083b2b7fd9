"""Dagster's webserver, through its GraphQL API (`[publish.dagster] url`): reload a code
location after the deploy folder changed and say whether it loaded; stop a job's schedules and
sensors when its DAG is paused in gitdags, start them when it is resumed.

Traps of Dagster 1.13 (see the README's Dagster section): `loadStatus` says LOADED even when
the load failed (the `__typename` of `locationOrLoadError` says which), and the reply of
`reloadRepositoryLocation` can be stale, so the location is asked again after it."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from typing import Any

from gitdags.errors import GitdagsError

REPOSITORY = "__repository__"  # the repository of a Definitions object

RELOAD = """mutation($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) { __typename }
}"""
STATUS = """query {
  workspaceOrError { __typename ... on Workspace { locationEntries {
    name locationOrLoadError { __typename
      ... on PythonError { message errorChain { error { message } } }
      ... on RepositoryLocation { repositories { name jobs { name } } }
    } } } }
}"""
TRIGGERS = """query($sel: RepositorySelector!) {
  repositoryOrError(repositorySelector: $sel) { __typename
    ... on Repository {
      schedules { name pipelineName scheduleState { id status } }
      sensors { name targets { pipelineName } sensorState { id status } }
    }
    ... on PythonError { message }
  }
}"""
START_SCHEDULE = """mutation($sel: ScheduleSelector!) {
  startSchedule(scheduleSelector: $sel) { __typename ... on PythonError { message } }
}"""
STOP_SCHEDULE = """mutation($id: String!) {
  stopRunningSchedule(id: $id) { __typename ... on PythonError { message } }
}"""
START_SENSOR = """mutation($sel: SensorSelector!) {
  startSensor(sensorSelector: $sel) { __typename ... on PythonError { message } }
}"""
STOP_SENSOR = """mutation($id: String!) {
  stopSensor(id: $id) { __typename ... on PythonError { message } }
}"""


class DagsterError(GitdagsError):
    """Dagster's webserver refused or could not be reached."""


class Webserver:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/") + "/graphql"
        self.timeout = timeout

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": text, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            self.url, body, {"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                answer = json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            raise DagsterError(f"Dagster's webserver at {self.url} answered {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise DagsterError(
                f"Dagster's webserver at {self.url} cannot be reached ({exc})"
            ) from exc
        if not isinstance(answer, dict):
            raise DagsterError(f"Dagster's webserver at {self.url} answered something else")
        if answer.get("errors"):
            message = answer["errors"][0].get("message")
            raise DagsterError(f"Dagster refused the request: {message}")
        data: dict[str, Any] = answer.get("data") or {}
        return data

    def location(self, name: str) -> tuple[bool, str, list[str]]:
        """(loaded, the load error's message, the jobs) of a code location."""
        data = self.query(STATUS)["workspaceOrError"]
        for entry in data.get("locationEntries", ()):
            if entry["name"] != name:
                continue
            found = entry.get("locationOrLoadError") or {}
            if found.get("__typename") == "RepositoryLocation":
                jobs = [j["name"] for r in found.get("repositories", ()) for j in r["jobs"]]
                return True, "", sorted(j for j in jobs if not j.startswith("__"))
            chain = [e["error"]["message"] for e in found.get("errorChain") or ()]
            message = " ".join(m.strip() for m in [found.get("message") or "", *chain] if m)
            return False, message or "not loaded", []
        raise DagsterError(f"Dagster's workspace has no code location named {name!r}")

    def reload(self, name: str) -> list[str]:
        """Reload the code location; its jobs once it loaded. A load error raises, with
        Dagster's message."""
        # the reply can be a 500 after a failed then good load: the status says how it went
        with contextlib.suppress(DagsterError):
            self.query(RELOAD, {"name": name})
        loaded, message, jobs = self.location(name)
        if not loaded:
            raise DagsterError(f"Dagster cannot load code location {name!r}: {message}")
        return jobs

    def set_running(self, location: str, jobs: set[str], running: bool) -> list[str]:
        """Start (or stop) the schedules and sensors that target `jobs`; their names."""
        selector = {"repositoryName": REPOSITORY, "repositoryLocationName": location}
        found = self.query(TRIGGERS, {"sel": selector})["repositoryOrError"]
        if found.get("__typename") != "Repository":
            raise DagsterError(
                f"Dagster has no loaded code location {location!r}: "
                f"{found.get('message') or found.get('__typename')}"
            )
        done = []
        for schedule in found.get("schedules", ()):
            if schedule["pipelineName"] not in jobs:
                continue
            state = schedule["scheduleState"]
            if (state["status"] == "RUNNING") == running:
                done.append(schedule["name"])
                continue
            if running:
                sel = {**selector, "scheduleName": schedule["name"]}
                self._check(self.query(START_SCHEDULE, {"sel": sel}), "startSchedule")
            else:
                self._check(self.query(STOP_SCHEDULE, {"id": state["id"]}), "stopRunningSchedule")
            done.append(schedule["name"])
        for sensor in found.get("sensors", ()):
            if not jobs & {t["pipelineName"] for t in sensor.get("targets") or ()}:
                continue
            state = sensor["sensorState"]
            if (state["status"] == "RUNNING") != running:
                if running:
                    sel = {**selector, "sensorName": sensor["name"]}
                    self._check(self.query(START_SENSOR, {"sel": sel}), "startSensor")
                else:
                    self._check(self.query(STOP_SENSOR, {"id": state["id"]}), "stopSensor")
            done.append(sensor["name"])
        return sorted(done)

    def _check(self, data: dict[str, Any], field: str) -> None:
        result = data.get(field) or {}
        if result.get("__typename") in ("PythonError", "UnauthorizedError"):
            raise DagsterError(f"Dagster refused {field}: {result.get('message', '')}")
