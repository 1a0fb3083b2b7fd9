"""What a publish tells Dagster (`[publish.dagster]`): after the deploy folder changed, the code
location of each Dagster source is reloaded by the webserver (the location is the deploy
folder's files, see the README's workspace.yaml), and must load; a paused job's schedules and
sensors are stopped in Dagster, a resumed job's started again."""

from __future__ import annotations

from collections.abc import Callable

from gitdags.config import Settings
from gitdags.model import DagChange
from gitdags.orchestrators.dagster.graphql import DagsterError, Webserver


class DagsterTarget:
    def __init__(self, settings: Settings, paused: Callable[[str], set[str]]) -> None:
        """`paused`: source -> the DAGs of the source paused in gitdags now."""
        assert settings.dagster is not None
        self.settings = settings
        self.paused = paused
        self.web = Webserver(settings.dagster.url, settings.dagster.timeout)

    def governs(self, source: str) -> bool:
        """Whether `source` holds a Dagster code location."""
        config = next((s for s in self.settings.sources if s.name == source), None)
        return config is not None and config.orchestrator == "dagster"

    def location(self, source: str) -> str:
        assert self.settings.dagster is not None
        return self.settings.dagster.location or source

    def publish(
        self, source: str, changes: tuple[DagChange, ...], *, reload: bool
    ) -> dict[str, list[str]]:
        """Reload the location (when the deploy folder changed), then stop the schedules and
        sensors of the jobs paused, start those of the jobs resumed; what was done."""
        try:
            return self._publish(source, changes, reload=reload)
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise DagsterError(
                f"Dagster's webserver {self.web.url} gave an answer gitdags does not understand "
                f"({type(exc).__name__}: {exc}); check that it is Dagster 1.x."
            ) from exc

    def _publish(
        self, source: str, changes: tuple[DagChange, ...], *, reload: bool
    ) -> dict[str, list[str]]:
        name = self.location(source)
        done: dict[str, list[str]] = {}
        resumed = {c.dag_id for c in changes if c.change == "resume"}
        paused = {c.dag_id for c in changes if c.change == "pause"}
        if reload:
            done["jobs"] = self.web.reload(name)
            # what is paused in gitdags stays stopped in Dagster (a pause it missed included)
            paused |= self.paused(source) - resumed
        if paused:
            done["stopped"] = self.web.set_running(name, paused, False)
        if resumed:
            done["started"] = self.web.set_running(name, resumed, True)
        return done
