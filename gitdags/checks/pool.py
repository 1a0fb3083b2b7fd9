"""Validating many files at once: on every core when there are many (a first sync).

Workers return each spec as JSON plus only its head (the fields a sync reads), because
sending 10,000 full spec dicts back costs more than validating them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable

from gitdags import faults, kinds
from gitdags.config import Settings, SourceConfig
from gitdags.git.paths import SYMLINK, Entry
from gitdags.history.packing import SAMPLES, Dictionary, train
from gitdags.history.store import dumps
from gitdags.kinds import ReadContext
from gitdags.model import DagFile, FileDefinitions

log = logging.getLogger(__name__)

PARALLEL_MIN = 400  # below this many files a process pool costs more than it saves

Item = tuple[Entry, bytes | int | None]


HEAVY = ("tasks", "params", "default_args", "description")


def _pdeathsig() -> None:
    """In a worker: die with the parent (Linux), so a killed sync leaves no workers behind."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before the signal was armed
        os._exit(1)


class DeadlinePassed(Exception):
    """The sync's deadline passed while files were being read."""


Chunk = tuple[list[Item], ReadContext, float | None, Dictionary | None]


def _check_chunk(args: Chunk) -> list[FileDefinitions]:
    """Read files and serialize their DAGs' specs (in a worker process when there are many).

    The result keeps only the head of each spec (the fields a sync reads: no tasks, params,
    default_args): `spec_json` carries the whole, and the transfer back from a worker costs
    a tenth of the full dicts. With a dictionary, each DAG's spec and text come back packed
    as its version stores them (`history.packing`), and a format v1 file's text only so.
    Past `deadline` (a `time.monotonic()`, the same clock in every process) it stops between
    two files.
    """
    items, ctx, deadline, dictionary = args
    faults.point("in-check")
    return _read(items, ctx, deadline, dictionary)


def _read(
    items: list[Item], ctx: ReadContext, deadline: float | None, dictionary: Dictionary | None
) -> list[FileDefinitions]:
    out = []
    for entry, content in items:
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlinePassed
        found = kinds.read(entry.path, content, symlink=entry.mode == SYMLINK, ctx=ctx)
        if found.dags:  # the DAGs carry the text: it crosses the process boundary once
            slim = dictionary is not None and found.kind == "v1" and not found.broken
            dags = tuple(_light(d, dictionary, slim) for d in found.dags)
            found = dataclasses.replace(found, dags=dags, content="")
        out.append(found)
    return out


def _light(f: DagFile, dictionary: Dictionary | None, slim: bool) -> DagFile:
    if f.spec is None:
        return f
    head = {k: v for k, v in f.spec.items() if k not in HEAVY}
    spec_json = dumps(f.spec)
    if dictionary is None:
        return dataclasses.replace(f, spec=head, spec_json=spec_json)
    packed = (dictionary.id, dictionary.pack(spec_json, "spec"), dictionary.pack(f.content, "text"))
    if slim:  # nothing after the pool reads a v1 file's text or whole spec
        return dataclasses.replace(f, spec=head, packed=packed, content="")
    return dataclasses.replace(f, spec=head, spec_json=spec_json, packed=packed)


def packing_dictionary(
    current: Dictionary | None, items: list[Item], ctx: ReadContext
) -> Dictionary | None:
    """What the pool packs versions with: the database's dictionary; when it has none yet and
    the pool will run (a first sync), one trained from the first files (read here, once more
    than the pool reads them: a few milliseconds). Fewer files are packed as they are stored."""
    if current is not None or len(items) < PARALLEL_MIN:
        return current
    specs, texts = [], []
    for found in _read(items[:SAMPLES], ctx, None, None):
        for dag in found.dags:
            if dag.spec_json and len(specs) < SAMPLES:
                specs.append(dag.spec_json)
                texts.append(dag.content)
    return train(specs, texts) if specs else None


def context(settings: Settings, config: SourceConfig | None = None) -> ReadContext:
    """What the definition kinds need to know to read the files of a source."""
    ctx = ReadContext(task_types=dict(settings.task_types), max_file_size=settings.max_file_size)
    if config is None:
        return ctx
    root = config.subdir.strip("/")
    return dataclasses.replace(
        ctx,
        orchestrator=config.orchestrator,
        root=f"{root}/" if root else "",
        forbidden_imports=config.forbidden_imports,
    )


Progress = Callable[[int, int], None]  # (files checked, files to check)


def check_all(
    items: list[Item],
    ctx: ReadContext,
    progress: Progress | None = None,
    deadline: float | None = None,
    dictionary: Dictionary | None = None,
) -> dict[str, FileDefinitions]:
    """Read and validate files, on every core when there are many (a first sync); `progress`
    hears how far it got after each batch; specs and texts packed with `dictionary`. Past
    `deadline` (`time.monotonic()`), raises DeadlinePassed."""
    cores = os.cpu_count() or 1
    if len(items) < PARALLEL_MIN or cores < 2:
        checked = []
        for start in range(0, len(items), PARALLEL_MIN):
            chunk = items[start : start + PARALLEL_MIN]
            checked += _check_chunk((chunk, ctx, deadline, dictionary))
            if progress is not None:
                progress(len(checked), len(items))
    else:
        import multiprocessing
        import threading
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        # fork is cheapest (no re-import), but unsafe with threads (the daemon, the console):
        # there the workers come from a forkserver
        if threading.active_count() == 1:
            mp_context = multiprocessing.get_context("fork")
        else:
            mp_context = multiprocessing.get_context("forkserver")
            mp_context.set_forkserver_preload(["gitdags.kinds.v1", "gitdags.checks.pool"])
        size = -(-len(items) // (cores * 4))
        chunks = [
            (items[i : i + size], ctx, deadline, dictionary) for i in range(0, len(items), size)
        ]
        try:
            with ProcessPoolExecutor(
                max_workers=cores, mp_context=mp_context, initializer=_pdeathsig
            ) as pool:
                checked = []
                for part in pool.map(_check_chunk, chunks):
                    checked += part
                    if progress is not None:
                        progress(len(checked), len(items))
        except (BrokenProcessPool, OSError) as exc:  # no processes here: one core will do
            log.warning("cannot validate in worker processes (%s); using one", exc)
            checked = _check_chunk((items, ctx, deadline, dictionary))
    return {f.path: f for f in checked}
