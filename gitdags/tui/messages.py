"""Messages the console's workers post back to the screens (past-tense events)."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from gitdags.model import ActionResult, DagDetail, DagPage, SourceStatus, Version


class DataChanged(Message):
    """The database's change counter moved: something was synced or an action ran."""

    def __init__(self, generation: int) -> None:
        super().__init__()
        self.generation = generation


class MainLoaded(Message):
    """A window of the table (and the sources, when they were read again); `asked` says which
    load it answers (a later keystroke's wins)."""

    def __init__(self, page: DagPage, sources: list[SourceStatus] | None, asked: int) -> None:
        super().__init__()
        self.page = page
        self.sources = sources
        self.asked = asked


class DagLoaded(Message):
    def __init__(self, detail: DagDetail, history: list[Version]) -> None:
        super().__init__()
        self.detail = detail
        self.history = history


class DiffLoaded(Message):
    def __init__(self, diff: Any) -> None:
        super().__init__()
        self.diff = diff


class LogLoaded(Message):
    def __init__(self, rows: list[Any]) -> None:
        super().__init__()
        self.rows = rows


class ActionFinished(Message):
    def __init__(self, result: ActionResult) -> None:
        super().__init__()
        self.result = result


class ActionFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error
