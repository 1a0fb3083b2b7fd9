"""The console, driven by Textual's Pilot against a real engine on a real repository."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Label

from gitdags.engine import SyncEngine, build_engine
from gitdags.tui.app import OPEN_HITS, GitdagsApp
from gitdags.tui.mainscreen import SORTS, MainScreen
from gitdags.tui.modals import HELP, ConfirmAction, ErrorModal, HelpScreen
from gitdags.tui.screens import AuditScreen, DagScreen, SyncLogScreen
from tests.conftest import GitRepo, dag_yaml, settings_for
from tests.test_sync import source

CYCLE = dag_yaml("etl", "a", "b", "c", deps={"a": ["c"], "b": ["a"], "c": ["b"]})


@pytest.fixture
def world(tmp_path: Path, repo: GitRepo) -> tuple[SyncEngine, GitRepo]:
    engine = build_engine(settings_for(tmp_path, source(repo)))
    repo.commit(
        "first",
        {
            "etl.yaml": dag_yaml("etl", "extract", "load"),
            "report.yaml": dag_yaml("report", owner="finance", tags="[monthly]"),
            "sales_sync.yaml": dag_yaml("sales_sync", owner="sales-team"),
        },
    )
    engine.sync()
    repo.commit("second", {"etl.yaml": dag_yaml("etl", "extract", "transform", "load")})
    engine.sync()
    repo.commit("broken", {"etl.yaml": CYCLE})
    engine.sync()
    yield engine, repo
    engine.close()


async def settle(pilot) -> None:
    """Wait until the app's workers are done and the messages they posted are handled."""
    for _ in range(50):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            return
    raise AssertionError("the console's workers never settled")


async def eventually(pilot, check, timeout: float = 10.0) -> None:
    """Wait for a state the app reaches through a timer (filter debounce, live refresh)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "the console never reached the expected state"
        await settle(pilot)
        await settle(pilot)


def screen_lines(app: GitdagsApp) -> list[str]:
    """The text on the terminal, line by line, as a person sees it."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def on_screen(pilot, check, timeout: float = 10.0) -> list[str]:
    """Wait until the painted screen passes `check` (the paint follows a state change, later
    on a busy machine); its lines."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check(lines := screen_lines(pilot.app)):
        assert loop.time() < deadline, "\n".join(lines)
        await settle(pilot)
        await pilot.pause()
    return lines


def table_keys(app: GitdagsApp) -> list[str]:
    screen = app.screen
    assert isinstance(screen, MainScreen)
    return list(screen.shown)


async def test_filter_open_graph_diff_and_rollback(world) -> None:
    engine, _repo = world
    app = GitdagsApp(engine, poll_interval=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert table_keys(app) == ["etl", "report", "sales_sync"]
        await pilot.press("slash", "s", "a", "l", "e", "s")
        await eventually(pilot, lambda: table_keys(app) == ["sales_sync"])  # by id and owner
        await pilot.press("escape")
        await pilot.press("slash", *"monthly", "enter")
        assert table_keys(app) == ["report"]  # by tag
        await pilot.press("escape", "2")
        assert table_keys(app) == ["etl"]  # quick filter: invalid
        await pilot.press("0", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DagScreen) and screen.dag_id == "etl"
        await pilot.press("2")
        graph = "Tasks form a cycle: a -> b -> c -> a."
        await on_screen(pilot, lambda lines: any(graph in line for line in lines))
        await pilot.press("3")
        await on_screen(pilot, lambda lines: any("GD204" in line for line in lines))

        await pilot.press("4", "down", "down")  # history: v3, v2, v1 -> v1
        await settle(pilot)
        assert screen.cursor_version == 1
        await pilot.press("d")
        await settle(pilot)
        assert screen.query_one("#tabs").active == "tab-diff"
        shown = screen.diff_shown
        assert (shown.from_version, shown.to_version) == (2, 1)  # served against the selected
        assert "-- id: transform" in shown.text

        await pilot.press("4", "r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmAction)
        assert "etl will serve v1" in str(app.screen.query_one("#dialog-what").render())
        await pilot.press(*"bad transform", "enter")
        await settle(pilot)
        said = [n.message for n in app._notifications]
        assert any("now serves v1" in m and "audit log (#" in m for m in said), said
    dag = engine.dag("etl")
    assert (dag.served_version, dag.pinned, dag.status) == (1, True, "pinned")
    (entry,) = engine.audit("etl")
    assert entry.reason == "bad transform" and entry.action == "rollback"


async def test_refused_action_shows_one_sentence(world) -> None:
    engine, _repo = world
    app = GitdagsApp(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.push_screen(DagScreen("etl"))
        await settle(pilot)
        await pilot.press("4", "r")  # v3 is selected: it is invalid, refused before any modal
        await settle(pilot)
        assert isinstance(app.screen, DagScreen)
        said = [n.message for n in app._notifications]
        assert any("invalid (GD204)" in m for m in said), said
        await pilot.press("down", "r")  # v2 is the one served: rolling back to it is no rollback
        await settle(pilot)
        assert isinstance(app.screen, DagScreen)
        said = [n.message for n in app._notifications]
        assert any("already serves v2" in m for m in said), said
        await pilot.press("4", "z")
        await pilot.press("escape")  # cancel the pause
        await settle(pilot)
    assert engine.dag("etl").served_version == 2 and not engine.dag("etl").paused


async def test_live_refresh_keeps_the_selection(world, tmp_path: Path) -> None:
    engine, repo = world
    app = GitdagsApp(engine, poll_interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("down")  # report
        other = build_engine(engine.settings)  # "the daemon", another connection
        repo.commit("new dag", {"aaa.yaml": dag_yaml("aaa")})
        other.sync()
        other.close()
        await eventually(pilot, lambda: "aaa" in table_keys(app))
        screen = app.screen
        assert isinstance(screen, MainScreen)
        assert table_keys(app) == ["aaa", "etl", "report", "sales_sync"]
        assert screen.selected() == "report"


async def test_logs_help_and_sync_now(world) -> None:
    engine, repo = world
    app = GitdagsApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("L")
        await settle(pilot)
        assert isinstance(app.screen, SyncLogScreen)
        assert app.screen.query_one("#log").row_count == 3
        await pilot.press("escape", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        repo.commit("more", {"zzz.yaml": dag_yaml("zzz")})
        await pilot.press("S")
        await pilot.press(*"deploy now", "enter")
        await settle(pilot)
        await pilot.press("A")
        await settle(pilot)
        assert isinstance(app.screen, AuditScreen)
        assert app.screen.query_one("#log").row_count == 1
    assert engine.dag("zzz").status == "active"


def _fixed(engine: SyncEngine) -> None:
    """Timestamps the snapshots would otherwise show as they are today."""
    with engine.store.transaction():
        engine.store.conn.execute("UPDATE dags SET updated_at = '2026-01-05T09:00:01+00:00'")
        engine.store.conn.execute("UPDATE sources SET last_sync_at = '2026-01-05T09:00:01+00:00'")


def test_snapshot_main_screen(world, snap_compare) -> None:
    engine, _ = world
    _fixed(engine)
    app = GitdagsApp(engine)

    async def loaded(pilot) -> None:
        app.sub_title = "gitdags.db"
        await settle(pilot)

    assert snap_compare(app, terminal_size=(100, 24), run_before=loaded)


def test_snapshot_dag_screen_graph(world, snap_compare) -> None:
    engine, _ = world
    _fixed(engine)
    app = GitdagsApp(engine)

    async def open_graph(pilot) -> None:
        app.sub_title = "gitdags.db"
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(100, 24), run_before=open_graph)


async def test_keys_do_what_the_help_says_at_80x24(world) -> None:
    engine, _repo = world
    engine.pin("report")
    app = GitdagsApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        summary = str(app.screen.query_one("#summary").render())
        assert "1 invalid (key 2) · 1 pinned (key 3)" in summary  # counted on the main screen
        await pilot.press("3")
        assert table_keys(app) == ["report"]  # 3 is pinned, as the help and README say
        await pilot.press("4")
        assert table_keys(app) == []  # paused
        await pilot.press("2")
        assert table_keys(app) == ["etl"]
        await pilot.press("question_mark")
        await settle(pilot)
        help_scroll = app.screen.query_one("#help-scroll")
        assert help_scroll.max_scroll_y > 0  # the help is taller than 24 lines: it scrolls
        await pilot.press("j", "j", "j")
        assert help_scroll.scroll_y == 3
        await pilot.press("escape", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DagScreen)
        tabs = screen.query_one("#tabs")
        await pilot.press("tab")
        assert tabs.active == "tab-graph"
        await pilot.press("right", "right")
        assert tabs.active == "tab-history"
        await pilot.press("left")
        assert tabs.active == "tab-issues"
        await pilot.press("4", "j", "j")
        await settle(pilot)
        assert screen.cursor_version == 1  # v3, v2, v1: j moved the history cursor down
        await pilot.press("k")
        await settle(pilot)
        assert screen.cursor_version == 2


async def test_a_damaged_database_never_crashes_the_console(world) -> None:
    from tests.test_hostile import corrupt_pages

    engine, repo = world
    repo.commit("more", {"etl.yaml": dag_yaml("etl", "a", "b", "c", "d")})
    app = GitdagsApp(engine, poll_interval=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        with app.db_lock:
            corrupt_pages(engine.settings.database, "dags")
        await pilot.press("S")
        await settle(pilot)
        await pilot.press(*"check", "enter")
        await settle(pilot)
        await pilot.pause(0.5)
        await settle(pilot)
        assert app.is_running
        said = [n.message for n in app._notifications]
        if isinstance(app.screen, ErrorModal):
            said.append(app.screen.message)
        assert any("is damaged" in m for m in said), said
        assert not any("Traceback" in m for m in said)


async def test_ten_thousand_dags_at_80x24_and_200x50(tmp_path: Path) -> None:
    from gitdags.tui.dagtable import DagTable

    repo = GitRepo(tmp_path / "big")
    owner = "data-platform-analytics"
    files = {
        f"d/{i:05}.yaml": dag_yaml(f"warehouse_export_{i:05}", owner=owner) for i in range(10_000)
    }
    repo.commit("many", files)
    engine = build_engine(settings_for(tmp_path, source(repo)))
    engine.sync()
    try:
        for size in ((80, 24), (200, 50)):
            app = GitdagsApp(engine)
            async with app.run_test(size=size) as pilot:
                await settle(pilot)
                table = app.screen.query_one("#dags", DagTable)
                assert table.total == 10_000 and len(table.rows) < 1_000  # a window of them
                used = sum(table.fitted[i] + 2 for i in table.shown)
                assert used <= table.size.width  # no sideways scrolling
                shown = [table.columns[i].key for i in table.shown]  # one source: no column
                assert shown == ["dag_id", "status", "served", "newest", "owner", "updated_at"]
                header = table.render_line(0).text
                labels = [table.columns[i].label for i in table.shown]
                assert header.split() == labels, header
                first = table.render_line(1).text.split()[0]
                # at 80 columns the ids and owners give way, cut in the middle and at the end
                assert first == ("warehous…t_00000" if size[0] == 80 else "warehouse_export_00000")
                await pilot.press("G")  # to the last DAG, instantly
                assert table.current == "warehouse_export_09999"
                summary = str(app.screen.query_one("#summary").render())
                assert "10000 of 10000 DAGs" in summary
                if size[0] == 80:  # the palette opens any of them, offering only the best few
                    offered = await palette(pilot, "open 09999")
                    assert offered[0].startswith("Open warehouse_export_09999"), offered[:3]
                    await pilot.press("escape")
                    offered = await palette(pilot, "open wa")
                    assert len(offered) <= OPEN_HITS + 2, len(offered)
                    await pilot.press("enter")
                    await settle(pilot)
                    assert isinstance(app.screen, DagScreen)
    finally:
        engine.close()


async def test_twenty_thousand_dags_are_read_a_window_at_a_time(tmp_path: Path) -> None:
    """The table never reads every DAG: the engine is asked for a window (the screen and a
    margin) at first paint, on a jump to the end, on each filter and sort; SQLite filters
    (id, owner, tags, case-insensitive), sorts and counts."""
    from gitdags.tui.dagtable import DagTable

    n = 20_000
    repo = GitRepo(tmp_path / "big")
    files = {
        f"d/{i:05}.yaml": dag_yaml(
            f"warehouse_export_{i:05}",
            owner=f"team-{i % 7}",
            **({"tags": "[Nightly, finance]"} if i % 1000 == 3 else {}),
        )
        for i in range(n)
    }
    repo.commit("many", files)
    engine = build_engine(settings_for(tmp_path, source(repo)))
    engine.sync()
    asked: list[int] = []  # the rows each read asked the engine for
    page, rows = engine.dag_page, engine.dag_rows

    def dag_page(query, limit, **kw):
        asked.append(limit)
        return page(query, limit, **kw)

    def dag_rows(query, offset, limit, **kw):
        asked.append(limit)
        return rows(query, offset, limit, **kw)

    engine.dag_page, engine.dag_rows = dag_page, dag_rows  # the real methods, counted
    try:
        app = GitdagsApp(engine, poll_interval=3600)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            screen, table = app.screen, app.screen.query_one("#dags", DagTable)
            assert isinstance(screen, MainScreen)
            assert table.total == n and 0 < len(table.rows) <= 300
            assert table.current == "warehouse_export_00000"
            summary = str(screen.query_one("#summary").render())
            assert f"{n} of {n} DAGs" in summary
            await pilot.press("G")  # the last DAG: another window, read at once
            assert table.current == f"warehouse_export_{n - 1:05}"
            assert table.start > 0 and table.keys[-1] == table.current
            ids = [f"warehouse_export_{i:05}" for i in range(n)]
            assert table.keys == ids[table.start : table.start + len(table.keys)]
            await pilot.press("slash", *"export_1999", "enter")
            await eventually(pilot, lambda: table.total == 10)
            assert table.current == f"warehouse_export_{n - 1:05}"  # the selection stayed
            assert table_keys(app) == [f"warehouse_export_{i:05}" for i in range(19990, n)]
            await pilot.press("escape")
            await eventually(pilot, lambda: table.total == n)
            assert table.current == f"warehouse_export_{n - 1:05}"
            await pilot.press("slash", *"NIGHTLY", "enter")  # a tag, in another case
            tagged = [f"warehouse_export_{i:05}" for i in range(n) if i % 1000 == 3]
            await eventually(pilot, lambda: table_keys(app) == tagged)
            await pilot.press("escape")
            await pilot.press("slash", *"TEAM-3", "enter")  # an owner
            await eventually(pilot, lambda: table.total == len(range(3, n, 7)))
            await pilot.press("g")  # the selection was filtered out: the first row
            assert table_keys(app)[:2] == ["warehouse_export_00003", "warehouse_export_00010"]
            await pilot.press("escape")
            while screen.sort_key != "owner":
                await pilot.press("o")
            await eventually(
                pilot,
                lambda: (
                    table.total == n
                    and "sorted by owner" in str(screen.query_one("#summary").render())
                ),
            )
            await pilot.press("g")
            held = table_keys(app)
            assert held[:2] == ["warehouse_export_00000", "warehouse_export_00007"], held[:3]
            assert all(screen.held[k].owner == "team-0" for k in held)
            assert asked and max(asked) <= 300, asked  # never every DAG
            offered = await palette(pilot, "open 19999")  # found in SQL, not in a list
            assert offered[0].startswith(f"Open warehouse_export_{n - 1:05}"), offered[:3]
    finally:
        engine.close()


async def test_the_landed_column_reads_the_consumers_of_the_rows_held(
    tmp_path: Path, repo: GitRepo
) -> None:
    """The `landed` column of a paged table: the consumers' states of the window read, as the
    poller records them (a real Airflow answers in tests/test_landing.py)."""
    from gitdags.config import load_settings
    from gitdags.history.rows import now
    from gitdags.model import ConsumerDag
    from gitdags.tui.dagtable import DagTable
    from tests.airflow_server import free_port

    repo.commit("one", {f"{d}.yaml": dag_yaml(d) for d in ("alpha", "beta", "gamma")})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "state.db"\n[publish]\ndeploy_dir = "deploy"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
        f'[[consumers]]\nname = "af"\napi_url = "http://127.0.0.1:{free_port()}"\n'
    )
    engine = build_engine(load_settings(config, env={}))
    try:
        engine.sync()
        stamp = now()
        found = [
            ConsumerDag("af", "alpha", "landed", 1, stamp, checked_at=stamp),
            ConsumerDag("af", "gamma", "broken", 1, stamp, error="ImportError", checked_at=stamp),
        ]
        with engine.store.transaction():
            engine.store.record_consumer(
                "af", "http://x", found, checked_at=stamp, error=None, requests=1
            )
        app = GitdagsApp(engine, poll_interval=3600)
        async with app.run_test(size=(120, 24)) as pilot:
            await settle(pilot)
            lines = await on_screen(pilot, lambda ls: any(x.startswith(" gamma ") for x in ls))
            header = next(x for x in lines if "DAG" in x and "status" in x)
            ids = ("alpha", "beta", "gamma")
            rows = {x.split()[0]: x for x in lines if x.split() and x.split()[0] in ids}
            assert "landed" in header
            assert rows["alpha"].rstrip().endswith("landed"), rows
            assert "broken" in rows["gamma"] and "landed" not in rows["beta"], rows
            table = app.screen.query_one("#dags", DagTable)
            x = header.index("landed")  # the table spans the screen from its left edge
            await pilot.click("#dags", offset=(x, 0))  # read per page: not sortable
            await settle(pilot)
            said = [n.message for n in app._notifications]
            assert any("landed column cannot be sorted" in m for m in said), said
            screen = app.screen
            assert isinstance(screen, MainScreen) and screen.sort_key == "dag_id"
            assert table.keys == ["alpha", "beta", "gamma"]
    finally:
        engine.close()


async def test_a_long_sync_now_never_blocks_the_table(world, tmp_path: Path, monkeypatch) -> None:
    """A fetch of minutes used to hold the console's one connection: the table waited."""
    engine, repo = world
    gate = tmp_path / "gate"
    monkeypatch.setenv("GITDAGS_TEST_FAULTS", f"after-fetch=wait:{gate}")
    repo.commit("more", {"zzz.yaml": dag_yaml("zzz")})
    app = GitdagsApp(engine, poll_interval=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("S", *"now", "enter")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not Path(f"{gate}.reached").exists():  # the sync waits at the gate, mid-fetch
            assert loop.time() < deadline
            await pilot.pause(0.05)
        dags = await asyncio.wait_for(
            asyncio.to_thread(app.call_engine, engine.list_dags), timeout=10
        )  # the table's connection answers while the sync is held
        assert {d.dag_id for d in dags} == {"etl", "report", "sales_sync"}
        gate.touch()
        await eventually(pilot, lambda: "zzz" in table_keys(app))
    monkeypatch.delenv("GITDAGS_TEST_FAULTS")


async def test_the_console_shows_where_the_served_set_went(tmp_path: Path, repo: GitRepo) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    settings = settings_for(
        tmp_path, source(repo), deploy_dir=tmp_path / "deploy", git_repo=tmp_path / "served.git"
    )
    engine = build_engine(settings)
    engine.sync()
    app = GitdagsApp(engine)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot)
            header = str(app.screen.query_one("#sources").render())
            assert "published" in header and "deploy folder: g000001" in header
            assert "served branch: g000001" in header
    finally:
        engine.close()


async def test_help_scrolls_to_its_last_line_in_two_columns_at_80x24(world) -> None:
    """The last help line could not be scrolled into view, and a long line wrapped into the
    key column."""
    engine, _repo = world
    app = GitdagsApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        keys = list(app.screen.query(".help-key").results(Label))
        whats = list(app.screen.query(".help-what").results(Label))
        assert len({w.region.x for w in whats}) == 1  # one column for what the keys do
        column = whats[0].region.x
        assert all(k.region.right <= column for k in keys)
        assert not any("pause / resume" in line for line in screen_lines(app))
        await pilot.press("end")

        def last_line_shown() -> bool:
            last = ["z", "pause", "/", "resume"]
            return any(line.split("█")[1].split() == last for line in screen_lines(app))

        await eventually(pilot, last_line_shown)  # the screen is painted after the scroll
        lines = screen_lines(app)
        names = {str(k.render()) for k in keys}
        sections = {section for section, _keys in HELP}
        for line in lines[2:-1]:  # inside the frame: each key column holds a key or nothing
            if line.strip("█ ") in sections:
                continue
            cell = line[2:column].strip()
            assert cell == "" or cell in names, line
        wrapped = [w for w in whats if w.region.height > 1]
        assert wrapped  # some lines are longer than 80 columns: they wrap in their column
        await pilot.press("home")
        await eventually(pilot, lambda: any("this help" in line for line in screen_lines(app)))


async def test_issue_messages_wrap_at_80x24(world) -> None:
    engine, repo = world
    missing = "a_task_with_a_name_long_enough_to_need_a_second_line"
    repo.commit("typo", {"report.yaml": dag_yaml("report", "a", deps={"a": [missing]})})
    engine.sync()
    app = GitdagsApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_dag("report")
        await settle(pilot)
        await pilot.press("3")
        lines = await on_screen(pilot, lambda lines: any("GD202" in line for line in lines))
        at = next(i for i, line in enumerate(lines) if "GD202" in line)
        message = " ".join(line.strip() for line in lines[at + 1 : at + 4])
        assert f"Task 'a' depends on '{missing}', which does not exist." in message, lines
        assert lines[at + 2].startswith(" " * 8)  # the message wraps under itself
        pane = app.screen.query_one("#tab-issues .pane-scroll")
        assert pane.max_scroll_x == 0  # nothing to scroll sideways for


async def test_every_footer_fits_at_80x24(world) -> None:
    """The DAG screen's footer was cut ("z Pause/")."""
    engine, _repo = world
    app = GitdagsApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for key, kind in (("", MainScreen), ("enter", DagScreen), ("L", SyncLogScreen)):
            if key:
                await pilot.press(key)
                await settle(pilot)
            assert isinstance(app.screen, kind)
            shown = [b.binding for b in app.screen.active_bindings.values() if b.binding.show]
            assert len(shown) >= 3
            words = [f" {binding.description} " for binding in shown]
            lines = await on_screen(
                pilot, lambda lines, words=words: all(w in lines[-1] for w in words)
            )
            footer = lines[-1]
            assert footer.rstrip().endswith("^p palette"), footer
            if kind is DagScreen:
                assert " z Pause/resume " in footer and " ? Help " in footer
                await pilot.press("escape")
                await settle(pilot)


LONG = {
    f"partners/{name}.yaml": dag_yaml(
        f"partner_export_weekly_to_{name}", owner="partner-integrations-team"
    )
    for name in ("acme", "globex", "initech")
}


async def test_long_dag_ids_give_way_so_owner_and_updated_show(tmp_path: Path) -> None:
    """At 80 columns owner and updated never showed: the DAG column took the room."""
    repo = GitRepo(tmp_path / "partners")
    repo.commit("partners", LONG)
    engine = build_engine(settings_for(tmp_path, source(repo)))
    engine.sync()
    try:
        app = GitdagsApp(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            columns = ["DAG", "status", "served", "newest", "owner", "updated"]
            lines = await on_screen(pilot, lambda lines: any(x.split() == columns for x in lines))
            rows = [line.split()[0] for line in lines if "partner_" in line]
            assert len(rows) == 3 and all("…" in r for r in rows)
            assert rows == ["partner_…to_acme", "partner_…_globex", "partner_…initech"]
            assert all(len(r) == 16 for r in rows)
        app = GitdagsApp(engine)
        async with app.run_test(size=(200, 50)) as pilot:
            text = "\n".join(
                await on_screen(pilot, lambda lines: any("partner_export" in x for x in lines))
            )
            assert "partner_export_weekly_to_globex" in text
            assert "partner-integrations-team" in text
    finally:
        engine.close()


async def test_two_sources_show_the_source_column(tmp_path: Path) -> None:
    one, two = GitRepo(tmp_path / "one"), GitRepo(tmp_path / "two")
    one.commit("a", {"a.yaml": dag_yaml("a")})
    two.commit("b", {"b.yaml": dag_yaml("b")})
    engine = build_engine(settings_for(tmp_path, source(one, "one"), source(two, "two")))
    engine.sync()
    try:
        app = GitdagsApp(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            await on_screen(pilot, lambda lines: any(x.startswith(" DAG ") for x in lines))
            header = next(line for line in screen_lines(app) if line.startswith(" DAG "))
            assert "source" in header.split()
            screen = app.screen
            assert isinstance(screen, MainScreen)
            sorted_by = []
            for _ in SORTS:
                await pilot.press("o")
                sorted_by.append(screen.sort_key)
            assert "source" in sorted_by  # two sources: o sorts by source too
    finally:
        engine.close()


async def test_a_filter_that_matches_nothing_says_so(world) -> None:
    engine, _repo = world
    app = GitdagsApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"xyz", "enter")
        await settle(pilot)
        assert table_keys(app) == []
        said = "No DAG matches 'xyz' (escape clears the filter)."
        await on_screen(pilot, lambda lines: any(said in line for line in lines))
        await pilot.press("escape")
        await settle(pilot)
        assert table_keys(app) == ["etl", "report", "sales_sync"]
        await on_screen(pilot, lambda lines: any(x.startswith(" sales_sync ") for x in lines))
        assert not any("No DAG" in line for line in screen_lines(app))
        screen = app.screen
        assert isinstance(screen, MainScreen)
        sorted_by = []
        for _ in SORTS:
            await pilot.press("o")
            sorted_by.append(screen.sort_key)
        assert "source" not in sorted_by  # one source: no column, no sort by it
        await pilot.press("4")  # paused: none
        said = "No DAG is paused (0 shows every DAG)."
        await on_screen(pilot, lambda lines: any(said in line for line in lines))


async def palette(pilot, query: str) -> list[str]:
    """Open the command palette, type `query`; the commands it offers, in order."""
    from textual.command import CommandList, CommandPalette

    await pilot.press("ctrl+p")
    await settle(pilot)
    assert isinstance(pilot.app.screen, CommandPalette)
    await pilot.press(*query)
    options: list[str] = []

    def offered() -> bool:
        commands = pilot.app.screen.query_one(CommandList)
        options[:] = [
            str(commands.get_option_at_index(i).prompt) for i in range(commands.option_count)
        ]
        return bool(options)

    await eventually(pilot, offered)
    return options


async def test_the_command_palette_offers_gitdags_actions(world) -> None:
    engine, _repo = world
    app = GitdagsApp(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        offered = await palette(pilot, "")  # as it opens: gitdags' actions first
        names = [o.splitlines()[0] for o in offered]
        assert names[:2] == ["Sync now", "Roll back etl to v1"]
        assert "Pause etl" in names and "Filter DAGs" in names
        assert names.index("Help") < names.index("Theme")
        await pilot.press("escape")
        await settle(pilot)

        offered = await palette(pilot, "pause etl")
        assert offered[0].startswith("Pause etl")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmAction)
        assert "etl stays registered" in str(app.screen.query_one("#dialog-what").render())
        await pilot.press(*"from the palette", "enter")
        await settle(pilot)
        assert engine.dag("etl").paused

        offered = await palette(pilot, "roll back etl to v1")
        assert offered[0].startswith("Roll back etl to v1")
        await pilot.press("enter")
        await settle(pilot)
        assert "etl will serve v1" in str(app.screen.query_one("#dialog-what").render())
        await pilot.press("enter")
        await settle(pilot)
        assert engine.dag("etl").served_version == 1

        offered = await palette(pilot, "open report")
        assert offered[0].startswith("Open report")
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DagScreen) and screen.dag_id == "report"

        offered = await palette(pilot, "roll back report")  # one version: nothing to go to
        assert offered[0].startswith("Roll back report\nrefused: "), offered
        await pilot.press("escape")
        await settle(pilot)

        offered = await palette(pilot, "pin report")  # on the DAG screen: its DAG
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmAction)
        await pilot.press("enter")
        await settle(pilot)
        assert engine.dag("report").pinned

        await pilot.press("escape")  # back to the table: filter from the palette
        await settle(pilot)
        await palette(pilot, "filter dags")
        await pilot.press("enter", *"sales")
        await settle(pilot)
        await eventually(pilot, lambda: table_keys(app) == ["sales_sync"])
    (first, second, third) = sorted(engine.audit(), key=lambda e: e.id)
    assert (first.action, first.reason) == ("pause", "from the palette")
    assert (second.action, third.action) == ("rollback", "pin")


async def test_the_logs_say_when_empty_and_show_a_whole_note_at_80x24(tmp_path: Path) -> None:
    engine = build_engine(settings_for(tmp_path, source(tmp_path / "no-such-repo", "gone")))
    (result,) = engine.sync()
    assert result.error
    try:
        app = GitdagsApp(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("A")
            await settle(pilot)
            assert isinstance(app.screen, AuditScreen)
            await on_screen(pilot, lambda lines: any("No operator action yet" in x for x in lines))
            await pilot.press("escape", "L")
            await settle(pilot)
            assert isinstance(app.screen, SyncLogScreen)
            words = "".join(result.error.split())

            def whole(lines: list[str]) -> bool:  # the table cuts the note; this line does not
                shown = "".join("".join(line.split()) for line in lines[-6:-1])
                return f"note:{words}" in shown  # a long path wraps inside a word

            await on_screen(pilot, whole)
    finally:
        engine.close()


async def test_a_cycle_message_wraps_under_the_graph_at_80x24(tmp_path: Path) -> None:
    """The graph scrolls sideways (its drawing stays aligned); the cycle's sentence was cut."""
    repo = GitRepo(tmp_path / "loop")
    names = ("poll_kafka_offsets", "ingest_events", "dedupe_events")
    loop = {names[0]: [names[2]], names[1]: [names[0]], names[2]: [names[1]]}
    repo.commit("loop", {"events.yaml": dag_yaml("events", *names, deps=loop)})
    engine = build_engine(settings_for(tmp_path, source(repo)))
    engine.sync()
    try:
        app = GitdagsApp(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("enter", "2")
            cycle = " -> ".join((*names, names[0]))

            def wrapped(lines: list[str]) -> bool:
                text = " ".join(" ".join(line.split()) for line in lines)
                return f"Tasks form a cycle: {cycle}." in text

            await on_screen(pilot, wrapped)
    finally:
        engine.close()
