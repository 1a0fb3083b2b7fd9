"""The console on a large database: first paint and one filter keystroke (Textual's Pilot)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gitdags.engine import SyncEngine
from gitdags.tui.app import GitdagsApp
from gitdags.tui.mainscreen import MainScreen


async def _measure(engine: SyncEngine, expected: int) -> dict[str, Any]:
    app = GitdagsApp(engine, poll_interval=3600)
    start = time.perf_counter()
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.perf_counter() + 120
        while not (isinstance(app.screen, MainScreen) and len(app.screen.shown) == expected):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the console never showed {expected} DAGs")
            await pilot.pause(0.005)
        first_paint = time.perf_counter() - start
        screen = app.screen
        await pilot.press("slash")
        keystrokes = []
        applies = []
        for char in "dag_0001":
            before = screen.applied
            pressed = time.perf_counter()
            await pilot.press(char)
            while screen.applied == before:
                await pilot.pause(0.002)
            keystrokes.append(time.perf_counter() - pressed)
            began = time.perf_counter()
            screen.apply()
            applies.append(time.perf_counter() - began)
    return {
        "first_paint_ms": round(first_paint * 1000, 1),
        "filter_keystroke_ms": round(max(keystrokes[:1]) * 1000, 1),
        "filter_keystroke_median_ms": round(sorted(keystrokes)[len(keystrokes) // 2] * 1000, 1),
        "table_rebuild_all_rows_ms": round(applies[0] * 1000, 1),
        "note": "keystrokes include the 50 ms debounce of filter-as-you-type",
    }


def measure(engine: SyncEngine, expected: int) -> dict[str, Any]:
    return asyncio.run(_measure(engine, expected))
