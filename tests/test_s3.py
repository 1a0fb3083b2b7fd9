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

from gitdags.config import S3Settings, SourceConfig
from gitdags.serve.s3 import Puller
from tests.conftest import GitRepo, dag_yaml, free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3_server(monkeypatch) -> Iterator[str]:
    pytest.importorskip("moto")
    port = free_port()
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
        Body=json.dumps({**pointer, "manifest": f"main/generations/{'0' * 64}.json"}).encode(),
    )
    gone = Puller("s3://dags", into).pull()
    assert gone.error is not None and "cannot be read" in gone.error
    assert files_in(into / "current") == good


def test_s3_failures_are_one_sentence(
    tmp_path: Path, repo: GitRepo, make_engine, s3_server: str, monkeypatch
) -> None:
    repo.commit("one", {"a.yaml": dag_yaml("a")})
    missing = S3Settings(bucket="no-such-bucket", endpoint_url=s3_server)
    deploy, branches = tmp_path / "d", tmp_path / "served.git"
    engine = make_engine(
        SourceConfig("main", str(repo.path)), deploy_dir=deploy, git_repo=branches, s3=missing
    )
    (result,) = engine.sync()
    assert result.error is None  # the DAGs are recorded ...
    assert result.publish_error == (  # ... and the target that failed is named, not the others
        "S3 (s3://no-such-bucket) was not brought up to date (The S3 bucket 'no-such-bucket' "
        "does not exist; create it or fix [publish.s3] bucket); the deploy folder "
        f"{deploy} and the served-branch repository {branches} are up to date; the DAGs are "
        "recorded and the next sync tries again."
    )
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

    from gitdags.daemon.metrics import DaemonMetrics

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


def s3_config(folder: Path, repo: GitRepo, endpoint: str, bucket: str = "dags") -> Path:
    """A config.toml of a database of its own in `folder`, publishing to `bucket`."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    config.write_text(
        f'[state]\ndatabase = "{folder / "g.db"}"\n'
        f'[publish]\ndeploy_dir = "{folder / "deploy"}"\n'
        f'[publish.s3]\nbucket = "{bucket}"\nprefix = "prod"\nendpoint_url = "{endpoint}"\n'
        f'[[sources]]\nname = "main"\nurl = "{repo.path}"\n'
    )
    return config


def test_two_publishers_racing_never_tear_the_pointer(
    tmp_path: Path, repo: GitRepo, s3_server: str
) -> None:
    """The loser's manifest lands after the winner's pointer: the pointer still matches the
    manifest it names, and a puller follows it."""
    from tests.conftest import Gate

    repo.commit("one", {"a.yaml": dag_yaml("a"), "b.yaml": dag_yaml("b")})
    late = s3_config(tmp_path / "late", repo, s3_server)
    first = s3_config(tmp_path / "first", repo, s3_server)
    gate = Gate(tmp_path / "gate", "s3-manifest")
    loser = gate.start_sync(late)  # its objects written, stopped before its manifest
    try:
        gate.wait_reached(loser)
        won = subprocess.run(
            [sys.executable, "-m", "gitdags", "--config", str(first), "sync"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert won.returncode == 0, won.stderr  # its manifest, then its pointer
        gate.open()  # the loser's manifest now lands after the winner's pointer
        out, err = loser.communicate(timeout=120)
    finally:
        if loser.poll() is None:
            loser.kill()
            loser.wait()
    assert loser.returncode == 1  # its pointer refused: someone moved it meanwhile
    assert b"Another publisher moved the pointer" in out + err
    into = tmp_path / "scheduler"
    pulled = Puller("s3://dags/prod", into).pull()
    assert pulled.error is None, pulled.error
    deploy = (tmp_path / "first" / "deploy" / "current").resolve()
    assert files_in(into / "current") == files_in(deploy)


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every file (its bytes) and symlink (its target) under `folder`."""
    found: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            found[str(p.relative_to(folder))] = os.readlink(p)
        elif p.is_file():
            found[str(p.relative_to(folder))] = p.read_bytes()
    return found


def test_pull_never_writes_outside_its_folder(
    tmp_path: Path, repo: GitRepo, make_engine, s3_server: str
) -> None:
    """Every name read from the bucket is untrusted: the generation's name, the manifest's key
    and its paths are checked before any names a file; the last good copy stays."""
    import hashlib

    import boto3

    repo.commit("one", {"a.yaml": dag_yaml("a")})
    s3 = S3Settings(bucket="dags", prefix="prod", endpoint_url=s3_server)
    engine = make_engine(SourceConfig("main", str(repo.path)), deploy_dir=tmp_path / "d", s3=s3)
    engine.sync()
    into = tmp_path / "pulled"
    assert Puller("s3://dags/prod", into).pull().error is None
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "keep.txt").write_text("mine\n")
    client = boto3.client("s3", endpoint_url=s3_server)
    pointer = json.loads(
        client.get_object(Bucket="dags", Key="prod/main/current.json")["Body"].read()
    )
    before = snapshot(tmp_path)

    def point(**fields: object) -> None:
        body = json.dumps({**pointer, **fields}).encode()
        client.put_object(Bucket="dags", Key="prod/main/current.json", Body=body)

    point(generation="../../decoy")
    done = subprocess.run(
        [sys.executable, "-m", "gitdags", "pull", "s3://dags/prod", "--into", str(into), "--once"],
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_ENDPOINT_URL": s3_server},
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: The pointer names generation '../../decoy', which is")
    assert done.stderr.count("\n") == 1 and "refused, the local copy stays" in done.stderr
    assert snapshot(tmp_path) == before  # the decoy, the pulled copy: all as they were

    good = json.loads(client.get_object(Bucket="dags", Key=pointer["manifest"])["Body"].read())
    meta = good["files"]["a.json"]
    for bad in (
        "../escape.json",
        "/tmp/abs.json",
        "sub/../../escape.json",
        "..\\escape.json",
        "a\x00b.json",
        "./a.json",
        "sub//a.json",
        "",
    ):
        body = json.dumps({**good, "files": {bad: meta}}).encode()
        digest = hashlib.sha256(body).hexdigest()
        key = f"prod/main/generations/{digest}.json"
        client.put_object(Bucket="dags", Key=key, Body=body)
        point(generation="g000099-0123456789ab", manifest=key, sha256=digest)
        refused = Puller("s3://dags/prod", into).pull()
        assert refused.error is not None and "refused, the local copy stays" in refused.error
        assert snapshot(tmp_path) == before, bad
    for fields in (
        {"manifest": "prod/other/generations/" + pointer["manifest"].rsplit("/", 1)[1]},
        {"manifest": "prod/main/objects/" + meta["sha256"]},
        {"sha256": "../x"},
        {"generation": "g000001-0123456789ab/../../x"},
        {"generation": None},
    ):
        point(**fields)
        refused = Puller("s3://dags/prod", into).pull()
        assert refused.error is not None and "refused" in refused.error, fields
        assert snapshot(tmp_path) == before, fields
    point()  # the good pointer again: the pull goes on as before
    assert Puller("s3://dags/prod", into).pull().error is None


def test_a_dag_named_manifest_is_served_as_itself_everywhere(
    tmp_path: Path, repo: GitRepo, make_engine, s3_server: str
) -> None:
    """gitdags' bookkeeping never shares a name with a served file: a DAG whose file is
    `manifest.json` is that DAG in the deploy folder, on the served branch and in S3."""
    from gitdags.doctor import examine
    from gitdags.serve.deploy import manifest_path
    from tests.test_served_branch import served_git

    repo.commit("one", {"manifest.yaml": dag_yaml("manifest"), "b.yaml": dag_yaml("b")})
    deploy, branches = tmp_path / "deploy", tmp_path / "served.git"
    s3 = S3Settings(bucket="dags", endpoint_url=s3_server)
    engine = make_engine(
        SourceConfig("main", str(repo.path)), deploy_dir=deploy, git_repo=branches, s3=s3
    )
    (result,) = engine.sync()
    assert result.publish_error is None, result.publish_error
    current = (deploy / "current").resolve()
    assert sorted(p.name for p in current.iterdir()) == ["b.json", "manifest.json"]
    served = (current / "manifest.json").read_bytes()
    assert json.loads(served)["dag_id"] == "manifest"
    assert json.loads(manifest_path(current).read_text())["name"] == current.name
    assert served_git(branches, "show", "served/all:manifest.json").encode() + b"\n" == served
    into = tmp_path / "scheduler"
    assert Puller("s3://dags", into).pull().error is None
    assert (into / "current" / "manifest.json").read_bytes() == served
    assert sorted(p.name for p in (into / "current").iterdir()) == ["b.json", "manifest.json"]
    deploy_finding = next(f for f in examine(engine) if f.check == "deploy folder")
    assert deploy_finding.ok and "complete" in deploy_finding.detail
    manifest_path(current).unlink()  # gitdags' bookkeeping lost: doctor says so
    deploy_finding = next(f for f in examine(engine) if f.check == "deploy folder")
    assert not deploy_finding.ok and "no readable manifest" in deploy_finding.detail


def test_a_bucket_of_the_old_layout_is_still_pulled(
    tmp_path: Path, repo: GitRepo, make_engine, s3_server: str
) -> None:
    """Before, a manifest was named by its generation (generations/g000001-<commit>.json)."""
    import boto3

    repo.commit("one", {"a.yaml": dag_yaml("a")})
    s3 = S3Settings(bucket="dags", endpoint_url=s3_server)
    engine = make_engine(SourceConfig("main", str(repo.path)), deploy_dir=tmp_path / "d", s3=s3)
    engine.sync()
    client = boto3.client("s3", endpoint_url=s3_server)
    pointer = json.loads(client.get_object(Bucket="dags", Key="main/current.json")["Body"].read())
    body = client.get_object(Bucket="dags", Key=pointer["manifest"])["Body"].read()
    old_key = f"main/generations/{pointer['generation']}.json"
    client.put_object(Bucket="dags", Key=old_key, Body=body)
    client.delete_object(Bucket="dags", Key=pointer["manifest"])
    old_pointer = json.dumps({**pointer, "manifest": old_key}).encode()
    client.put_object(Bucket="dags", Key="main/current.json", Body=old_pointer)
    into = tmp_path / "scheduler"
    pulled = Puller("s3://dags", into).pull()
    assert pulled.error is None and pulled.generation == pointer["generation"]
    assert files_in(into / "current") == files_in((tmp_path / "d" / "current").resolve())


def test_status_exits_1_while_a_publish_target_fails(
    tmp_path: Path, repo: GitRepo, s3_server: str
) -> None:
    """Monitoring that reads `gitdags status`'s exit code sees a failing target, as it sees a
    failing source; and 0 again once the target caught up."""
    import boto3

    repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = s3_config(tmp_path / "g", repo, s3_server, bucket="later")

    def gitdags(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "gitdags", "--config", str(config), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    synced = gitdags("sync")
    assert synced.returncode == 1 and "S3 (s3://later/prod) was not brought up" in synced.stderr
    text = gitdags("status")
    assert text.returncode == 1, text.stdout
    assert "s3: FAILING since" in text.stdout and "deploy folder: g000001" in text.stdout
    as_json = gitdags("status", "--json")
    assert as_json.returncode == 1
    (record,) = json.loads(as_json.stdout)
    assert record["last_error"] is None and "does not exist" in record["publish"]["s3"]["error"]
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket="later")
    assert gitdags("sync").returncode == 0  # nothing new in git: S3 catches up
    assert gitdags("status").returncode == 0
    assert gitdags("status", "--json").returncode == 0
