"""Named fault points, so that tests inject a crash or a pause at an exact place of a sync
instead of sleeping and hoping. Armed only by GITDAGS_TEST_FAULTS, which only tests set:

    GITDAGS_TEST_FAULTS="after-commit=kill"          SIGKILL this process there
    GITDAGS_TEST_FAULTS="in-record=raise"            raise FaultInjected there
    GITDAGS_TEST_FAULTS="after-plan=wait:/tmp/gate"  touch /tmp/gate.reached, then wait until
                                                     /tmp/gate exists (a real event)

Points: after-fetch, after-plan, in-check (reading files, in each worker process of a large
sync), in-record (inside the sync's transaction), after-commit (between the database commit
and the deploy switch), in-switch (inside the deploy switch), in-hook (before a delivery),
s3-manifest (an S3 publish with its objects written, before its manifest), in-s3 (an S3 publish
with its objects and manifest written, before its pointer), in-parse (the Airflow parse worker
has started a file's parse), s3-settle (an S3 source's poll saw a change younger than its settle
time, before it waits and lists again), s3-read (an S3 source's poll has listed, before it
reads the changed objects).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

VARIABLE = "GITDAGS_TEST_FAULTS"
POINTS = (
    "after-fetch",
    "after-plan",
    "in-check",
    "in-record",
    "after-commit",
    "in-switch",
    "in-hook",
    "s3-manifest",
    "in-s3",
    "in-parse",
    "s3-settle",
    "s3-read",
)


class FaultInjected(RuntimeError):
    """Raised at an armed fault point."""


def point(name: str) -> None:
    armed = os.environ.get(VARIABLE)
    if not armed:
        return
    for item in armed.split(","):
        where, _, action = item.partition("=")
        if where.strip() == name:
            _act(name, action.strip())


def _act(name: str, action: str) -> None:
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise FaultInjected(f"fault injected at {name}")
    elif action.startswith("wait:"):
        gate = Path(action[len("wait:") :])
        Path(f"{gate}.reached").touch()
        deadline = time.monotonic() + 120
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
