"""The actions on one DAG (roll back, pin, pause), each through a confirmation that says
exactly what will happen: from the DAG screen's keys and from the command palette, on the DAG
screen's DAG or on the DAG selected in the table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitdags.errors import GitdagsError
from gitdags.model import DagState, Version
from gitdags.render import short

if TYPE_CHECKING:
    from gitdags.tui.common import ConsoleApp


def describe(version: Version) -> str:
    first = version.message.splitlines()[0] if version.message else ""
    return f"v{version.version} ({short(version.commit)} by {version.author}: {first})"


def ask_rollback(
    app: ConsoleApp, state: DagState, to: int | None, *, until_change: bool = False
) -> None:
    """Roll back to version `to` (None: the one before the served one, as the CLI does)."""
    dag_id = state.dag_id
    try:  # the CLI's rules, before the modal: not the served version, not an invalid one
        version = app.call_engine(
            app.engine.rollback_target, dag_id, None if to is None else str(to)
        )
    except GitdagsError as exc:
        app.notify(str(exc), title="Cannot roll back", severity="error")
        return
    release = (
        "until a newer valid commit changes the DAG, then the newest version is served"
        if until_change
        else "new commits are recorded but not served until you unpin it"
    )
    what = (
        f"{dag_id} will serve {describe(version)} instead of "
        f"v{state.served_version or '-'}, and stay pinned: {release}."
    )
    title = "Roll back until the next change" if until_change else "Roll back"
    app.confirm(
        title, what, app.engine.rollback, dag_id, str(version.version), until_change=until_change
    )


def ask_pin(app: ConsoleApp, state: DagState) -> None:
    """Pin the served version, or unpin a pinned DAG."""
    if state.pinned:
        what = f"{state.dag_id} will serve its newest valid version again."
        app.confirm("Unpin", what, app.engine.unpin, state.dag_id)
    else:
        what = (
            f"{state.dag_id} will keep serving v{state.served_version or '-'}: new commits are "
            "recorded but not served until you unpin it."
        )
        app.confirm("Pin", what, app.engine.pin, state.dag_id)


def ask_pause(app: ConsoleApp, state: DagState) -> None:
    """Pause a DAG, or resume a paused one."""
    if state.paused:
        what = f"{state.dag_id} will be served again (v{state.served_version})."
        app.confirm("Resume", what, app.engine.resume, state.dag_id)
    else:
        what = f"{state.dag_id} stays registered and versioned but is no longer served."
        app.confirm("Pause", what, app.engine.pause, state.dag_id)
