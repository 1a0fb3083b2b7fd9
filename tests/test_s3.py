"""The served set in S3-compatible storage and `gitdags pull`, against a real S3 API server
(moto's server mode) on 127.0.0.1, with boto3 as the client: no mocks of S3 calls."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitdags.config import SourceConfig
from gitdags.s3 import Puller, S3Settings
from tests.conftest import GitRepo, dag_yaml

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3_server(monkeypatch) -> Iterator[str]:
    pytest.importorskip("moto")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the S3 server never started"
                time.sleep(0.05)
        for key, value in CREDENTIALS.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        import boto3

        boto3.client("s3", endpoint_url=url).create_bucket(Bucket="dags")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def files_in(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def test_publish_then_pull_exactly_the_served_set(
    tmp_path: Path, repo: GitRepo, make_engine, s3_server: str
) -> None:
    repo.commit("one", {f"d{i}.yaml": dag_yaml(f"d{i}") for i in range(20)})
    deploy = tmp_path / "deploy"
    s3 = S3Settings(bucket="dags", prefix="prod", endpoint_url=s3_server)
    engine = make_engine(SourceConfig("main", str(repo.path)), deploy_dir=deploy, s3=s3)
    (result,) = engine.sync()
    assert result.publish_error is None, result.publish_error
    into = tmp_path / "scheduler"
    first = Puller("s3://dags/prod", into).pull()
    assert first.error is None and first.downloaded == 20 and first.linked == 0
    assert files_in(into / "current") == files_in((deploy / "current").resolve())

    repo.commit("two", {"d3.yaml": dag_yaml("d3", "x", "y")})
    target = engine.publisher.s3  # type: ignore[union-attr]
    before = target.requests
    (result,) = engine.sync()
    assert result.publish_error is None
    assert target.requests - before <= 1 + 3  # the changed object, manifest, pointer, a prune
    second = Puller("s3://dags/prod", into).pull()
    assert (second.downloaded, second.linked) == (1, 19)  # only what changed is fetched
    assert second.requests <= 1 + 2
    assert files_in(into / "current") == files_in((deploy / "current").resolve())
    assert len(list((into / ".generations").iterdir())) == 2


def test_a_corrupt_object_or_a_missing_manifest_keeps_the_last_good_copy(
    tmp_path: Path, repo: GitRepo, make_engine, s3_server: str
) -> None:
    import boto3

    repo.commit("one", {"a.yaml": dag_yaml("a")})
    s3 = S3Settings(bucket="dags", endpoint_url=s3_server)
    engine = make_engine(SourceConfig("main", str(repo.path)), deploy_dir=tmp_path / "d", s3=s3)
    engine.sync()
    into = tmp_path / "scheduler"
    assert Puller("s3://dags", into).pull().error is None
    good = files_in(into / "current")
    repo.commit("two", {"a.yaml": dag_yaml("a", "x", "y")})
    engine.sync()
    client = boto3.client("s3", endpoint_url=s3_server)
    pointer = json.loads(client.get_object(Bucket="dags", Key="main/current.json")["Body"].read())
    manifest = json.loads(client.get_object(Bucket="dags", Key=pointer["manifest"])["Body"].read())
    sha = manifest["files"]["a.json"]["sha256"]
    client.put_object(Bucket="dags", Key=f"main/objects/{sha}", Body=b"tampered")
    bad = Puller("s3://dags", into).pull()
    assert bad.error is not None and "does not match its checksum" in bad.error
    assert files_in(into / "current") == good  # the last good copy stays
    client.put_object(
        Bucket="dags",
        Key="main/current.json",
        Body=json.dumps({**pointer, "manifest": "main/generations/nope.json"}).encode(),
    )
    gone = Puller("s3://dags", into).pull()
    assert gone.error is not None and "cannot be read" in gone.error
    assert files_in(into / "current") == good


def test_s3_failures_are_one_sentence(
    tmp_path: Path, repo: GitRepo, make_engine, s3_server: str, monkeypatch
) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    missing = S3Settings(bucket="no-such-bucket", endpoint_url=s3_server)
    engine = make_engine(
        SourceConfig("main", str(repo.path)), deploy_dir=tmp_path / "d", s3=missing
    )
    (result,) = engine.sync()
    assert result.error is None  # the DAGs are recorded ...
    assert result.publish_error is not None and "does not exist" in result.publish_error
    unreachable = Puller("s3://dags", tmp_path / "x")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    failed = Puller("s3://dags", tmp_path / "x").pull()
    assert failed.error is not None and "\n" not in failed.error and "testing" not in failed.error
    assert unreachable is not None
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gitdags",
            "pull",
            "s3://dags",
            "--into",
            str(tmp_path / "y"),
            "--once",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_ENDPOINT_URL": s3_server},
        timeout=120,
    )
    assert done.returncode == 1 and done.stderr.startswith("error: ")  # no pointer there yet


def test_status_and_metrics_show_each_publish_target(
    tmp_path: Path, repo: GitRepo, make_engine, s3_server: str
) -> None:
    from prometheus_client import generate_latest

    from gitdags.metrics import DaemonMetrics

    repo.commit("one", {"a.yaml": dag_yaml("a")})
    s3 = S3Settings(bucket="dags", endpoint_url=s3_server)
    engine = make_engine(
        SourceConfig("main", str(repo.path)),
        deploy_dir=tmp_path / "d",
        git_repo=tmp_path / "served.git",
        s3=s3,
    )
    engine.sync()
    (status,) = engine.status()
    assert set(status.publish) == {"deploy folder", "served branch", "s3"}
    assert all(t["error"] is None and t["generation"] for t in status.publish.values())
    from gitdags import render

    text = render.status([status])
    assert "published\n  deploy folder: g000001" in text and "  s3: g000001" in text
    metrics = DaemonMetrics(lambda: {}, lambda: {}, engine.store.publish_targets)
    exposed = generate_latest(metrics.registry).decode()
    assert 'gitdags_publish_ok{generation="' in exposed and 'target="s3"} 1.0' in exposed


def test_a_publish_killed_halfway_leaves_the_pointer_and_the_next_completes(
    tmp_path: Path, repo: GitRepo, s3_server: str
) -> None:
    import signal

    from tests.conftest import killed_at

    repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = tmp_path / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{tmp_path / "g.db"}"\n'
        f'[publish]\ndeploy_dir = "{tmp_path / "deploy"}"\n'
        f'[publish.s3]\nbucket = "dags"\nendpoint_url = "{s3_server}"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    cmd = [sys.executable, "-m", "gitdags", "--config", str(config), "sync"]
    assert subprocess.run(cmd, capture_output=True, timeout=120).returncode == 0
    into = tmp_path / "scheduler"
    first = Puller("s3://dags", into).pull()
    repo.commit("two", {"a.yaml": dag_yaml("a", "x", "y")})
    killed = subprocess.run(cmd, capture_output=True, env=killed_at("in-s3"), timeout=120)
    assert killed.returncode == -signal.SIGKILL  # objects and manifest written, not the pointer
    stale = Puller("s3://dags", into).pull()
    assert stale.error is None and stale.generation == first.generation  # still the old one
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)  # nothing new in git
    assert done.returncode == 0, done.stderr
    caught_up = Puller("s3://dags", into).pull()
    assert caught_up.error is None and caught_up.generation != first.generation
    assert json.loads((into / "current" / "a.json").read_text())["version"] == 2
