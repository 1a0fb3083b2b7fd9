"""What the console's screens and dialogs share: the app as they see it, and the app-wide keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from textual.binding import Binding
from textual.notifications import SeverityLevel

from gitdags.model import ActionResult

if TYPE_CHECKING:
    from gitdags.engine import SyncEngine

# the app-wide keys, as the main screen's footer shows them
APP_KEYS = [
    Binding("q", "app.quit", "Quit"),
    Binding("question_mark", "app.help", "Help"),
    Binding("L", "app.sync_log", "Sync log"),
    Binding("A", "app.audit_log", "Audit"),
    Binding("S", "app.sync_now", "Sync now"),
]


class ConsoleApp(Protocol):
    """The console app (GitdagsApp) as its screens and dialogs call it."""

    engine: SyncEngine

    def call_engine(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run an engine call from a worker thread; one at a time on the connection."""
        ...

    def confirm(
        self, title: str, what: str, fn: Callable[..., ActionResult], *args: Any, **kw: Any
    ) -> None:
        """Ask for a reason, then run the action (Sync now on a connection of its own)."""
        ...

    def open_dag(self, dag_id: str) -> None: ...

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None: ...
