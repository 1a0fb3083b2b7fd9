"""Publishing: the deploy folder, hooks and the registry read API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gitdags.config import HookConfig
from gitdags.engine import SyncEngine
from gitdags.registry import Registry
from gitdags.serve.deploy import read_manifest, safe_name
from tests.conftest import GitRepo, dag_yaml
from tests.test_sync import source


def listing(deploy: Path) -> dict[str, int]:
    """The served set as the deploy folder shows it: dag_id -> version."""
    current = deploy / "current"
    out = {}
    for path in sorted(current.glob("*.json")):
        if path.name != "manifest.json":
            record = json.loads(path.read_text())
            out[record["dag_id"]] = record["version"]
    return out


def served(engine: SyncEngine) -> dict[str, int]:
    return {d.dag_id: d.version for d in engine.served()}


def test_deploy_folder_follows_the_served_set(tmp_path: Path, repo: GitRepo, make_engine) -> None:
    deploy = tmp_path / "deploy"
    engine = make_engine(source(repo), deploy_dir=deploy, keep=3)
    first = repo.commit(
        "one", {"a.yaml": dag_yaml("a"), "b.yaml": dag_yaml("b"), "c.yaml": dag_yaml("c")}
    )
    engine.sync()
    assert listing(deploy) == served(engine) == {"a": 1, "b": 1, "c": 1}
    repo.commit(
        "change a, delete b, add dormant",
        {
            "a.yaml": dag_yaml("a", "x", "y"),
            "dormant.yaml": dag_yaml("dormant", enabled="false"),
            "bad.yaml": "dag_id: bad\ntasks: 3\n",
        },
        delete=["b.yaml"],
    )
    engine.sync()
    assert listing(deploy) == served(engine) == {"a": 2, "c": 1}  # not disabled, not invalid
    engine.pause("c")
    assert listing(deploy) == {"a": 2}
    engine.resume("c")
    engine.rollback("a", "1")
    assert listing(deploy) == {"a": 1, "c": 1}
    manifest = read_manifest((deploy / "current").resolve())
    assert manifest["commits"] == [f"main@{first}"]  # v1 of a and of c both come from it
    assert os.readlink(deploy / "current").startswith(".generations/g")
    generations = sorted((deploy / ".generations").iterdir())
    assert len(generations) == 3 * 2  # keep = 3, each with its manifest beside it
    # the tree is served as at the served commit: a README is there as in git-sync's checkout
    repo.commit("docs", {"README.md": "hi"})
    engine.sync()
    assert (deploy / "current" / "README.md").read_text() == "hi"
    assert (deploy / "current" / "a.json").is_file() and not (deploy / "current/a.yaml").exists()
    # a sync that changes nothing served makes no new generation
    generations = sorted((deploy / ".generations").iterdir())
    engine.sync()
    assert sorted((deploy / ".generations").iterdir()) == generations


def test_unchanged_dags_are_linked_not_rewritten(
    tmp_path: Path, repo: GitRepo, make_engine
) -> None:
    deploy = tmp_path / "deploy"
    engine = make_engine(source(repo), deploy_dir=deploy, airflow_template=Path("builtin"))
    repo.commit("one", {f"d{i}.yaml": dag_yaml(f"d{i}") for i in range(20)})
    engine.sync()
    repo.commit("two", {"d3.yaml": dag_yaml("d3", "new")})
    engine.sync()
    generation = engine.publisher.folder.current()  # type: ignore[union-attr]
    assert (generation / "d0.json").stat().st_nlink == 2  # shared with the previous generation
    assert (generation / "d3.json").stat().st_nlink == 1
    rendered = (generation / "d3.py").read_text()
    assert 'with_name("d3.json")' in rendered and "dag_from_file" in rendered
    compile(rendered, "d3.py", "exec")


def test_file_names_cannot_escape() -> None:
    for dag_id in ("../etc/passwd", "..", ".hidden", "a/b", "x" * 300):
        name = safe_name(dag_id)
        assert "/" not in name and not name.startswith(".") and len(name) <= 200


def test_readers_never_see_a_partial_generation(tmp_path: Path, repo: GitRepo, make_engine) -> None:
    deploy = tmp_path / "deploy"
    engine = make_engine(source(repo), deploy_dir=deploy, keep=10)
    repo.commit("base", {f"d{i}.yaml": dag_yaml(f"d{i}") for i in range(10)})
    engine.sync()
    stop = threading.Event()
    seen: list[int] = []
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            target = (deploy / "current").resolve()
            try:
                manifest = read_manifest(target)
                names = {p.name for p in target.iterdir()}
            except FileNotFoundError as exc:
                problems.append(f"vanished: {exc}")
                continue
            if not manifest:
                problems.append(f"{target.name}: no manifest beside it")
                continue
            expected = {f for d in manifest["dags"] for f in d["files"]}
            if names != expected:
                problems.append(f"{target.name}: {sorted(names ^ expected)}")
            seen.append(manifest["sequence"])

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(200):
            files = {
                f"d{i % 10}.yaml": dag_yaml(f"d{i % 10}", *(f"t{j}" for j in range(i % 4 + 1)))
            }
            if i % 7 == 0:
                files[f"extra{i}.yaml"] = dag_yaml(f"extra{i}")
            repo.commit(f"round {i}", files)
            (result,) = engine.sync()
            assert result.error is None
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert len(set(seen)) > 20  # the reader really watched the switches happen
    assert listing(deploy) == served(engine)


class _Capture(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.bodies.append(
            {
                "body": json.loads(self.rfile.read(length)),
                "signature": self.headers.get("X-Gitdags-Signature-256"),
            }
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_sink():
    _Capture.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/gitdags", _Capture.bodies
    server.shutdown()
    server.server_close()


def test_hooks_receive_the_changes(tmp_path: Path, repo: GitRepo, make_engine, http_sink) -> None:
    url, bodies = http_sink
    log = tmp_path / "hook.log"
    hooks = (
        HookConfig(
            name="cmd",
            command=(
                f'echo "$GITDAGS_COMMIT $GITDAGS_CHANGED_DAGS" >> {log}; '
                f"cat >> {log}; echo >> {log}"
            ),
        ),
        HookConfig(name="http", url=url, secret="k"),
    )
    engine = make_engine(source(repo), hooks=hooks)
    first = repo.commit("one", {"a.yaml": dag_yaml("a"), "b.yaml": dag_yaml("b")})
    engine.sync()
    engine.pause("b")
    engine.publisher.hooks.close()  # type: ignore[union-attr]  # flush the queue
    lines = log.read_text().splitlines()
    assert lines[0] == f"{first} a b"
    assert json.loads(lines[1]) == {
        "source": "main",
        "commit": first,
        "changes": [
            {"dag_id": "a", "change": "added", "version": 1},
            {"dag_id": "b", "change": "added", "version": 1},
        ],
    }
    assert [b["body"]["changes"] for b in bodies] == [
        [
            {"dag_id": "a", "change": "added", "version": 1},
            {"dag_id": "b", "change": "added", "version": 1},
        ],
        [{"dag_id": "b", "change": "pause", "version": 1}],
    ]
    assert all(b["signature"].startswith("sha256=") for b in bodies)
    (status,) = engine.status()
    assert {h.name: h.last_error for h in status.hooks} == {"cmd": None, "http": None}


def test_a_failing_hook_never_delays_a_sync(tmp_path: Path, repo: GitRepo, make_engine) -> None:
    gate = tmp_path / "gate"
    hooks = (
        HookConfig(
            name="slow",
            command=f"while [ ! -e {gate} ]; do sleep 0.05; done; exit 3",
            retries=0,
            timeout=30,
        ),
    )
    engine = make_engine(source(repo), hooks=hooks)
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    engine.sync()
    repo.commit("two", {"b.yaml": dag_yaml("b")})
    (second,) = engine.sync()  # the hook of the first sync is still blocked on the gate
    assert second.error is None and [c.dag_id for c in second.changes] == ["b"]
    assert engine.store.hooks() == ()  # nothing delivered yet
    gate.touch()
    engine.publisher.hooks.close()  # type: ignore[union-attr]
    (status,) = engine.status()
    (hook,) = status.hooks
    assert hook.failures == 2 and "command exited 3" in (hook.last_error or "")


def test_registry_from_another_process(tmp_path: Path, repo: GitRepo, make_engine) -> None:
    engine = make_engine(source(repo))
    repo.commit("one", {"a.yaml": dag_yaml("a"), "b.yaml": dag_yaml("b")})
    engine.sync()
    engine.pause("b")
    code = (
        "import json, sys; from gitdags.registry import Registry\n"
        "with Registry(sys.argv[1]) as r:\n"
        "    print(json.dumps({'served': [d['dag_id'] for d in r.served()],"
        " 'a': r.get('a')['spec']['tasks'][0]['id'], 'b': r.get('b'), 'n': r.change_counter()}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(engine.settings.database)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "served": ["a"],
        "a": "a",
        "b": None,
        "n": engine.generation(),
    }
    with Registry(engine.settings.database) as registry:
        before = registry.change_counter()
        engine.resume("b")
        assert registry.change_counter() == before + 1
        assert [d["dag_id"] for d in registry.served()] == ["a", "b"]


def test_publish_command(tmp_path: Path, repo: GitRepo) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = tmp_path / "config.toml"
    config.write_text(
        '[state]\ndatabase = "s.db"\n[publish]\ndeploy_dir = "deploy"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    run = [sys.executable, "-m", "gitdags", "--config", str(config)]
    assert subprocess.run([*run, "sync"], capture_output=True).returncode == 0
    done = subprocess.run([*run, "publish"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("Published 1 DAGs to ")
    assert listing(tmp_path / "deploy") == {"a": 1}


def test_long_or_unsafe_dag_ids_get_file_names_of_their_own() -> None:
    from gitdags.serve.deploy import safe_name

    long_a, long_b = "a" * 240 + "x", "a" * 240 + "y"
    assert safe_name(long_a) != safe_name(long_b)
    assert len(safe_name(long_a)) < 255
    assert safe_name("a/b") != safe_name("a_b") and "/" not in safe_name("a/b")
    assert safe_name("daily_sales_etl") == "daily_sales_etl"


def test_a_publish_failure_is_an_error_of_the_sync_and_the_next_sync_retries(
    tmp_path: Path, repo: GitRepo, make_engine
) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    deploy = tmp_path / "deploy"
    engine = make_engine(source(repo), deploy_dir=deploy)
    engine.sync()
    import shutil

    shutil.rmtree(deploy / ".generations")
    (deploy / ".generations").write_text("in the way\n")  # the folder cannot be written
    repo.commit("two", {"b.yaml": dag_yaml("b")})
    (result,) = engine.sync()
    assert result.error is None and [c.dag_id for c in result.changes] == ["b"]
    assert result.publish_error is not None
    assert result.publish_error.startswith(f"The deploy folder {deploy} was not brought up")
    assert "the next sync tries again" in result.publish_error
    from gitdags import render

    assert "NOT PUBLISHED: The deploy folder" in render.sync_result(result)
    (deploy / ".generations").unlink()
    (result,) = engine.sync()  # nothing new in git, but the folder is behind the database
    assert result.publish_error is None
    served = sorted(p.name for p in (deploy / "current").glob("*.json"))
    assert served == ["a.json", "b.json"]


def test_a_deploy_folder_of_the_old_layout_moves_its_manifest_out_of_the_tree(
    tmp_path: Path, repo: GitRepo, make_engine
) -> None:
    """Before, a generation kept gitdags' manifest.json among its files: doctor says so, and
    the next publish (the daemon makes one at start) writes the new layout."""
    from gitdags.doctor import examine
    from gitdags.serve.deploy import manifest_path

    repo.commit("one", {"a.yaml": dag_yaml("a")})
    deploy = tmp_path / "deploy"
    engine = make_engine(source(repo), deploy_dir=deploy)
    engine.sync()
    old = (deploy / "current").resolve()
    os.replace(manifest_path(old), old / "manifest.json")  # as gitdags wrote it before
    assert read_manifest(old)["name"] == old.name  # still read
    (finding,) = [f for f in examine(engine) if f.check == "deploy folder"]
    assert not finding.ok and "old layout" in finding.detail and "--repair" in finding.detail
    assert engine.publish(force=False) is not None  # nothing changed, but the layout did
    new = (deploy / "current").resolve()
    assert new != old and sorted(p.name for p in new.iterdir()) == ["a.json"]
    assert read_manifest(new)["sequence"] == 2
    (finding,) = [f for f in examine(engine) if f.check == "deploy folder"]
    assert finding.ok, finding.detail
    assert engine.publish(force=False) is None  # and then, as before, nothing to do
