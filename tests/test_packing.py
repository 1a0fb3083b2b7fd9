"""Versions stored packed (history.packing): a database of the previous release migrates in
place and reads the same; new versions round-trip; the state stays small."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from gitdags.cli import app
from gitdags.config import Settings, SourceConfig
from gitdags.engine import SyncEngine, build_engine
from gitdags.history.migrations import MIGRATIONS
from gitdags.history.packing import train
from gitdags.history.store import HistoryStore
from tests.conftest import GitRepo, dag_yaml

SCHEMA4 = Path(__file__).parent / "data" / "schema4"


def _old_database(tmp_path: Path) -> Path:
    """The database the release before packing wrote (make_fixture.py says how)."""
    database = tmp_path / "state" / "gitdags.db"
    database.parent.mkdir()
    shutil.copy(SCHEMA4 / "gitdags.sqlite", database)
    return database


def _engine(database: Path, repo: Path) -> SyncEngine:
    source = SourceConfig(name="main", url=str(repo), include=("**/*.py", "**/*.yaml"))
    return build_engine(Settings(database=database, listen="", sources=(source,)))


def test_a_schema_4_database_migrates_in_place_and_reads_the_same(tmp_path: Path) -> None:
    database = _old_database(tmp_path)
    before = sqlite3.connect(database)
    assert before.execute("PRAGMA user_version").fetchone() == (4,)
    plain = before.execute("SELECT dag_id, version, spec, content FROM versions").fetchall()
    before.close()
    expected = json.loads((SCHEMA4 / "expected.json").read_text())

    engine = _engine(database, tmp_path / "gone")
    try:
        assert engine.store.schema_version() == len(MIGRATIONS) == 7
        dag_ids = sorted(expected["history"])
        assert {d: [v.to_dict(full=True) for v in engine.history(d)] for d in dag_ids} == expected[
            "history"
        ]
        # fields may be added, never renamed: what the old release showed is shown the same
        shown = {d: engine.show(d).to_dict() for d in dag_ids}
        assert {d: {k: shown[d][k] for k in v} for d, v in expected["show"].items()} == expected[
            "show"
        ]
        assert engine.actions.diff("etl", 1, 4).to_dict() == expected["diff"]
        assert [s.to_dict() for s in engine.served()] == expected["served"]
        listed = [s.to_dict() for s in engine.list_dags()]
        assert [{k: d[k] for k in e} for d, e in zip(listed, expected["list"], strict=True)] == (
            expected["list"]
        )

        # every version is stored packed now, and unpacks to the text the old release held
        db = sqlite3.connect(database)
        rows = db.execute("SELECT dag_id, version, spec, content, zdict FROM versions").fetchall()
        assert len(rows) == len(plain) == 6
        dictionary = engine.store.current_dictionary()
        assert all(isinstance(r[3], bytes) and r[4] == dictionary.id for r in rows)
        assert dictionary is not None
        unpacked = {
            (d, n): (
                dictionary.unpack(s, "spec") if s is not None else None,
                dictionary.unpack(c, "text"),
            )
            for d, n, s, c, _z in rows
        }
        assert unpacked == {(d, n): (s, c) for d, n, s, c in plain}
        db.close()

        # rollback reads the packed versions: etl back to version 4, the newest valid
        engine.rollback("etl", "4", reason="forward again", actor="ops")
        (served,) = [s for s in engine.served() if s.dag_id == "etl"]
        (v4,) = [v for v in expected["history"]["etl"] if v["version"] == 4]
        assert served.version == 4 and served.spec == v4["spec"]
    finally:
        engine.close()


def test_a_reader_migrates_an_old_database_once_and_the_cli_reads_it(tmp_path: Path) -> None:
    database = _old_database(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{database}"\n[[sources]]\nname = "main"\nurl = "{tmp_path}"\n'
    )
    result = CliRunner().invoke(app, ["--config", str(config), "history", "etl", "--json"])
    assert result.exit_code == 0, result.output
    expected = json.loads((SCHEMA4 / "expected.json").read_text())["history"]["etl"]
    shown = json.loads(result.stdout)
    assert [v["version"] for v in shown] == [v["version"] for v in expected]
    assert HistoryStore(database, readonly=True).schema_version() == 7


def test_new_versions_are_packed_and_read_back(tmp_path: Path, repo: GitRepo) -> None:
    text = dag_yaml("etl", "extract", "load", description="naïve — ünïcode ✓")
    repo.commit("one", {"etl.yaml": text})
    engine = _engine(tmp_path / "state" / "gitdags.db", repo.path)
    try:
        engine.sync()
        repo.commit("two", {"etl.yaml": text.replace("load", "store")})
        engine.sync()
        history = engine.history("etl")
        assert [v.version for v in history] == [2, 1]
        assert history[1].content == text and history[0].content == text.replace("load", "store")
        assert history[0].spec is not None and history[0].spec["description"] == "naïve — ünïcode ✓"
        db = sqlite3.connect(engine.settings.database)
        stored = db.execute("SELECT length(spec), length(content), zdict FROM versions").fetchall()
        assert all(z == engine.store.current_dictionary().id for *_, z in stored)
        assert all(s < len(json.dumps(history[0].spec)) for s, _c, _z in stored)
        db.close()
    finally:
        engine.close()


def test_a_dictionary_survives_pickling_and_packs_what_it_unpacks() -> None:
    import pickle

    dictionary = train(['{"dag_id": "a", "tasks": []}'], ["dag_id: a\ntasks: []\n"])
    packed = dictionary.pack('{"dag_id": "b", "tasks": [], "x": "\\ud800"}', "spec")
    again = pickle.loads(pickle.dumps(dictionary))
    assert again.id == dictionary.id and again.unpack(packed, "spec") == dictionary.unpack(
        packed, "spec"
    )
    assert again.unpack(again.pack("snow ☃ \udc80", "text"), "text") == "snow ☃ \udc80"


def test_a_first_sync_packs_in_the_pool_with_a_dictionary_it_trained(
    tmp_path: Path, repo: GitRepo
) -> None:
    n = 410  # over PARALLEL_MIN: read, validated and packed in worker processes
    texts = {f"d/{i:04}.yaml": dag_yaml(f"d{i:04}", "extract", f"t{i}") for i in range(n)}
    repo.commit("many", texts)
    engine = _engine(tmp_path / "state" / "gitdags.db", repo.path)
    try:
        (result,) = engine.sync()
        assert result.added == n
        db = sqlite3.connect(engine.settings.database)
        assert db.execute("SELECT count(*) FROM zdicts").fetchone() == (1,)
        (zdict,) = db.execute("SELECT DISTINCT zdict FROM versions").fetchone()
        assert zdict == engine.store.current_dictionary().id
        db.close()
        for i in (0, 205, n - 1):
            (version,) = engine.history(f"d{i:04}")
            assert version.content == texts[f"d/{i:04}.yaml"]
            assert [t["id"] for t in version.spec["tasks"]] == ["extract", f"t{i}"]
        (served,) = [s for s in engine.served() if s.dag_id == "d0007"]
        assert served.spec["tasks"][1]["depends_on"] == ["extract"]
    finally:
        engine.close()


def test_status_counts_from_the_index_after_the_migration_and_new_syncs(
    tmp_path: Path, repo: GitRepo
) -> None:
    old = _old_database(tmp_path)
    engine = _engine(old, tmp_path / "gone")
    try:
        (status,) = engine.status()
        assert {k: n for k, n in status.counts.items() if n} == {"deleted": 1, "pinned": 2}
        plan = engine.store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT source, status, count(*) FROM dags GROUP BY source, status"
        ).fetchall()
        assert "COVERING INDEX idx_dags_source_status" in str([tuple(r) for r in plan])
    finally:
        engine.close()
    repo.commit("one", {"a.yaml": dag_yaml("a"), "b.yaml": dag_yaml("b"), "c.yaml": dag_yaml("c")})
    engine = _engine(tmp_path / "new" / "gitdags.db", repo.path)
    try:
        engine.sync()
        engine.pause("a", reason="r", actor="t")
        repo.commit("two", {"b.yaml": "dag_id: b\ntasks: [\n"}, delete=["c.yaml"])
        engine.sync()
        (status,) = engine.status()
        assert {k: n for k, n in status.counts.items() if n} == {
            "paused": 1,
            "invalid": 1,
            "deleted": 1,
        }
    finally:
        engine.close()
