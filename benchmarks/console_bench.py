"""The console on a large database: first paint, one filter keystroke, a jump to the last row
(Textual's Pilot).

    python benchmarks/console_bench.py --config path/to/config.toml   # a database synced before

The table reads a window of rows from SQLite (the engine's dag_page / dag_rows): the figures
include the SQL count, the page query and the paint. Used by run.py and scale.py too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gitdags.engine import SyncEngine
from gitdags.model import DagQuery
from gitdags.tui.app import GitdagsApp
from gitdags.tui.dagtable import DagTable
from gitdags.tui.mainscreen import MainScreen


async def _measure(engine: SyncEngine, expected: int) -> dict[str, Any]:
    app = GitdagsApp(engine, poll_interval=3600)
    asked: list[int] = []  # the rows each read of the table asked for
    page, rows = engine.dag_page, engine.dag_rows

    def dag_page(query: DagQuery, limit: int, **kw: Any) -> Any:
        asked.append(limit)
        return page(query, limit, **kw)

    def dag_rows(query: DagQuery, offset: int, limit: int, **kw: Any) -> Any:
        asked.append(limit)
        return rows(query, offset, limit, **kw)

    engine.dag_page, engine.dag_rows = dag_page, dag_rows  # type: ignore[method-assign]
    start = time.perf_counter()
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.perf_counter() + 120
            while not (
                isinstance(app.screen, MainScreen)
                and app.screen.page is not None
                and app.screen.page.total == expected
            ):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"the console never showed {expected} DAGs")
                await pilot.pause(0.005)
            await pilot.pause()  # the paint of that first window
            first_paint = time.perf_counter() - start
            screen = app.screen
            table = screen.query_one("#dags", DagTable)
            jumped = time.perf_counter()
            await pilot.press("G")  # the last row: another window, read at once
            jump = time.perf_counter() - jumped
            await pilot.press("slash")
            keystrokes = []
            for char in "dag_0001":
                before = screen.applied
                pressed = time.perf_counter()
                await pilot.press(char)
                while screen.applied == before:
                    await pilot.pause(0.002)
                keystrokes.append(time.perf_counter() - pressed)
            began = time.perf_counter()
            page(screen.dag_query(), table.window, around=table.current)
            query = time.perf_counter() - began
    finally:
        engine.dag_page, engine.dag_rows = page, rows  # type: ignore[method-assign]
    return {
        "first_paint_ms": round(first_paint * 1000, 1),
        "filter_keystroke_ms": round(max(keystrokes[:1]) * 1000, 1),
        "filter_keystroke_median_ms": round(sorted(keystrokes)[len(keystrokes) // 2] * 1000, 1),
        "jump_to_last_row_ms": round(jump * 1000, 1),
        "page_query_ms": round(query * 1000, 1),
        "most_rows_read_at_once": max(asked),
        "note": "keystrokes include the 50 ms debounce of filter-as-you-type",
    }


def measure(engine: SyncEngine, expected: int) -> dict[str, Any]:
    return asyncio.run(_measure(engine, expected))


def main() -> None:
    from gitdags.config import load_settings
    from gitdags.engine import build_engine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="a config of a synced state")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    engine = build_engine(load_settings(args.config), readonly=True)
    try:
        every = sum(n for counts in engine.store.dag_counts().values() for n in counts.values())
        runs = [measure(engine, every) for _ in range(args.reps)]
    finally:
        engine.close()
    print(json.dumps({"dags": every, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
