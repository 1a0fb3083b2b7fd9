"""Validating many files at once: on every core when there are many (a first sync).

Workers return each spec as JSON plus only its head (the fields a sync reads), because
sending 10,000 full spec dicts back costs more than validating them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

from gitdags import validate
from gitdags.config import Settings
from gitdags.model import DagFile
from gitdags.source import SYMLINK, Entry
from gitdags.store import dumps

log = logging.getLogger(__name__)

PARALLEL_MIN = 400  # below this many files a process pool costs more than it saves

Item = tuple[Entry, bytes | int | None]


def check_entry(
    entry: Entry, content: bytes | int | None, max_file_size: int, task_types: Mapping[str, Any]
) -> DagFile:
    if entry.mode == SYMLINK:
        return validate.symlink(entry.path)
    if isinstance(content, int):
        return validate.oversized(entry.path, content, max_file_size)
    return validate.check_file(entry.path, content or b"", task_types=task_types)


HEAVY = ("tasks", "params", "default_args", "description")


def _check_chunk(args: tuple[list[Item], int, dict[str, Any]]) -> list[DagFile]:
    """Validate files and serialize their specs (in a worker process when there are many).

    The result keeps only the head of each spec (the fields a sync reads: no tasks, params,
    default_args): `spec_json` carries the whole, and the transfer back from a worker costs
    a tenth of the full dicts.
    """
    items, max_file_size, task_types = args
    out = []
    for entry, content in items:
        f = check_entry(entry, content, max_file_size, task_types)
        if f.spec is not None:
            head = {k: v for k, v in f.spec.items() if k not in HEAVY}
            f = dataclasses.replace(f, spec=head, spec_json=dumps(f.spec))
        out.append(f)
    return out


def check_all(items: list[Item], settings: Settings) -> dict[str, DagFile]:
    """Validate files, on every core when there are many (a first sync of a large repo)."""
    types = dict(settings.task_types)
    cores = os.cpu_count() or 1
    if len(items) < PARALLEL_MIN or cores < 2:
        checked = _check_chunk((items, settings.max_file_size, types))
    else:
        import multiprocessing
        import threading
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        # fork is cheapest (no re-import), but unsafe with threads (the daemon, the console):
        # there the workers come from a forkserver
        if threading.active_count() == 1:
            context = multiprocessing.get_context("fork")
        else:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["gitdags.validate", "gitdags.checking"])
        size = -(-len(items) // (cores * 4))
        chunks = [
            (items[i : i + size], settings.max_file_size, types) for i in range(0, len(items), size)
        ]
        try:
            with ProcessPoolExecutor(max_workers=cores, mp_context=context) as pool:
                checked = [f for part in pool.map(_check_chunk, chunks) for f in part]
        except (BrokenProcessPool, OSError) as exc:  # no processes here: one core will do
            log.warning("cannot validate in worker processes (%s); using one", exc)
            checked = _check_chunk((items, settings.max_file_size, types))
    return {f.path: f for f in checked}
