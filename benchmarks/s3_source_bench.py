"""An S3 prefix as a source at 10,000 objects, against a real S3 API server on 127.0.0.1 (moto's
server mode, or SeaweedFS `weed mini` with --server seaweedfs), boto3 as the client.

Reported, in one run:
- the first sync of the prefix (every object read into the source's mirror);
- an idle poll (nothing changed): S3 requests and time of the poll alone and of the whole
  `sync`, against the baselines measured on the same prefix: `aws s3 sync --dryrun`'s run over
  a local copy that is up to date (its listing and its compare; requests counted from its
  --debug log), and boto3's plain paginated listing (ListObjectsV2);
- a one-object change to served (the deploy folder switched), with `settle = "0s"` and with the
  default `settle = "2s"`;
- a prefix that gitdags' own S3 publishing writes (the same 10,000 DAGs published by a gitdags
  upstream), followed through its pointer: idle poll requests and time, and one changed DAG
  from the upstream's publish to the downstream's deploy folder.

    python benchmarks/s3_source_bench.py [--n 10000] [--rounds 5] [--server moto|seaweedfs]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from repo import WORK, airflow_file, commit_all, dag_spec, git  # noqa: E402

from gitdags.config import S3Settings, Settings, SourceConfig  # noqa: E402
from gitdags.engine import build_engine  # noqa: E402
from tests.test_s3_source import start_moto, start_seaweedfs  # noqa: E402

PREFIX = "prod/pipeline_processing/dags/"


def ms(values: list[float]) -> str:
    return f"{min(values) * 1000:.0f} / {statistics.median(values) * 1000:.0f} ms"


def upload(s3: Any, bucket: str, n: int) -> dict[str, bytes]:
    rnd = random.Random(7)
    files = {
        f"{PREFIX}group_{i % 50:02}/dag_{i:05}.yaml": yaml.safe_dump(dag_spec(i, rnd)).encode()
        for i in range(n)
    }
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(lambda kv: s3.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), files.items())
        )
    return files


def aws_dryrun(url: str, bucket: str, local: Path) -> tuple[list[float], int, str]:
    """`aws s3 sync --dryrun` over an up-to-date local copy: times, requests, what it said."""
    aws = shutil.which("aws")
    if aws is None:
        return [], 0, "awscli is not installed"
    args = [aws, "s3", "sync", "--dryrun", "--endpoint-url", url, f"s3://{bucket}/{PREFIX}"]
    args.append(str(local))
    times = []
    for _ in range(3):
        start = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            return [], 0, f"aws s3 sync failed: {done.stderr.strip()[:200]}"
        if done.stdout.strip():
            return [], 0, f"the local copy is not up to date: {done.stdout[:200]}"
    debug = subprocess.run([*args, "--debug"], capture_output=True, text=True)
    requests = debug.stderr.count("Making request for OperationModel")
    version = subprocess.run([aws, "--version"], capture_output=True, text=True)
    return times, requests, (version.stdout or version.stderr).split()[0]


def boto3_listing(s3: Any, bucket: str) -> tuple[float, int]:
    start = time.perf_counter()
    pages = 0
    for _page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        pages += 1
    return time.perf_counter() - start, pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--server", choices=("moto", "seaweedfs"), default="moto")
    parser.add_argument("--no-pointer", action="store_true", help="skip the published prefix")
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    state = WORK / f"s3src-{args.n}"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    weed_dir = Path(tempfile.mkdtemp(prefix="weed-"))
    server, url = start_moto() if args.server == "moto" else start_seaweedfs(weed_dir)
    out: dict[str, Any] = {}
    try:
        import boto3

        s3 = boto3.client("s3", endpoint_url=url)
        s3.create_bucket(Bucket="dags")
        start = time.perf_counter()
        files = upload(s3, "dags", args.n)
        out["upload"] = time.perf_counter() - start
        local = state / "aws-copy"  # up to date as `aws s3 sync` leaves it: the objects'
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="dags", Prefix=PREFIX):
            for item in page.get("Contents", []):  # bytes, with their LastModified as mtime
                target = local / item["Key"][len(PREFIX) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(files[item["Key"]])
                stamp = item["LastModified"].timestamp()
                os.utime(target, (stamp, stamp))

        def engine_with(settle: float, name: str) -> Any:
            config = SourceConfig(
                "pipeline_processing",
                f"s3://dags/{PREFIX}",
                endpoint_url=url,
                settle=settle,
                namespace="",
            )
            settings = Settings(
                database=state / name / "g.db", listen="", deploy_dir=state / name / "deploy"
            )
            return build_engine(settings.with_sources(config)), config

        engine, config = engine_with(0.0, "settle0")
        start = time.perf_counter()
        (first,) = engine.sync()
        out["first"] = time.perf_counter() - start
        assert first.error is None and first.added == args.n, first
        poll_s, poll_requests, sync_s = [], [], []
        for _ in range(args.rounds):
            source = engine.git(config)
            start = time.perf_counter()
            source.fetch()
            poll_s.append(time.perf_counter() - start)
            poll_requests.append(source.requests)
            start = time.perf_counter()
            (idle,) = engine.sync()
            sync_s.append(time.perf_counter() - start)
            assert idle.nothing_new, idle
        out["aws"] = aws_dryrun(url, "dags", local)
        listings = [boto3_listing(s3, "dags") for _ in range(args.rounds)]

        def change_to_served(engine: Any, rounds: int, offset: int = 0) -> list[float]:
            times = []
            for round_ in range(rounds):
                key = f"{PREFIX}group_{round_:02}/dag_{round_:05}.yaml"
                spec = dag_spec(round_, random.Random(round_), revision=offset + round_ + 1)
                start = time.perf_counter()
                s3.put_object(Bucket="dags", Key=key, Body=yaml.safe_dump(spec).encode())
                (result,) = engine.sync()
                times.append(time.perf_counter() - start)
                assert result.changed == 1 and result.publish_error is None, result
            return times

        served0 = change_to_served(engine, args.rounds)
        engine.close()
        slow, _ = engine_with(2.0, "settle2")
        slow.sync()
        served2 = change_to_served(slow, min(args.rounds, 3), offset=100)
        slow.close()
        if not args.no_pointer:
            out["pointer"] = pointer_mode(url, state, args.n, args.rounds)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(weed_dir, ignore_errors=True)
    pages = listings[0][1]
    print(f"An S3 prefix as a source, {args.n:,} objects ({args.server} server on 127.0.0.1)")
    print(f"upload of the prefix (16 threads, setup)       {out['upload']:.1f} s")
    print(f"first sync (every object read, mirrored)       {out['first']:.1f} s")
    print(
        f"idle poll, gitdags (the poll alone)            {ms(poll_s)} min/median, "
        f"{statistics.median(poll_requests):.0f} requests"
    )
    print(f"idle sync, gitdags (poll + database check)     {ms(sync_s)}")
    aws_times, aws_requests, said = out["aws"]
    if aws_times:
        print(
            f"baseline: aws s3 sync --dryrun ({said})  {ms(aws_times)}, "
            f"{aws_requests} requests (local copy up to date)"
        )
    else:
        print(f"baseline: aws s3 sync --dryrun                 not measured ({said})")
    print(
        f"baseline: boto3 paginated listing              {ms([t for t, _ in listings])}, "
        f"{pages} requests"
    )
    print(f"one object changed -> served, settle 0s        {ms(served0)}")
    print(f"one object changed -> served, settle 2s        {ms(served2)} (waits for quiet)")
    if "pointer" in out:
        p = out["pointer"]
        print(
            f"published prefix: idle poll (pointer GET)      {ms(p['poll'])}, "
            f"{statistics.median(p['requests']):.0f} requests"
        )
        print(
            f"published prefix: one DAG changed upstream     {ms(p['served'])} from the "
            f"upstream's publish to the downstream's deploy folder, "
            f"{statistics.median(p['change_requests']):.0f} requests"
        )


def py_repo(n: int) -> tuple[Path, Path]:
    """A working repository of N Airflow DAG files and its bare remote (cached per N)."""
    root = WORK / f"s3py{n}"
    work, bare = root / "work", root / "remote.git"
    if (root / "generated").exists():
        return work, bare
    shutil.rmtree(root, ignore_errors=True)
    work.mkdir(parents=True)
    rnd = random.Random(n)
    for i in range(n):
        path = work / "dags" / f"group_{i % 50:02}" / f"dag_{i:05}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(airflow_file(dag_spec(i, rnd)))
    commit_all(work, bare)
    (root / "generated").write_text("ok\n")
    return work, bare


def pointer_mode(url: str, state: Path, n: int, rounds: int) -> dict[str, list[float]]:
    """A gitdags upstream publishes N Airflow DAG files to S3; a downstream follows its
    pointer (the distribution design with gitdags on the publishing side too)."""
    work, bare = py_repo(n)
    py = ("**/*.py",)
    upstream = build_engine(
        Settings(
            database=state / "up" / "g.db",
            listen="",
            deploy_dir=state / "up" / "deploy",
            s3=S3Settings(bucket="dags", prefix="published", endpoint_url=url),
            sources=(SourceConfig("main", bare.as_uri(), subdir="dags", include=py),),
        )
    )
    (published,) = upstream.sync()
    assert published.publish_error is None, published.publish_error
    config = SourceConfig("mirror", "s3://dags/published/main/", endpoint_url=url, include=py)
    down = build_engine(
        Settings(
            database=state / "down" / "g.db", listen="", deploy_dir=state / "down" / "deploy"
        ).with_sources(config)
    )
    (first,) = down.sync()
    assert first.error is None and first.added == n, first
    result: dict[str, list[float]] = {"poll": [], "requests": [], "served": []}
    result["change_requests"] = []
    for _ in range(rounds):
        source = down.git(config)
        start = time.perf_counter()
        source.fetch()
        result["poll"].append(time.perf_counter() - start)
        result["requests"].append(source.requests)
    for round_ in range(rounds):
        path = work / "dags" / "group_00" / f"dag_{round_ * 50:05}.py"
        commits = int(git(work, "rev-list", "--count", "HEAD"))  # new content every run
        spec = dag_spec(round_ * 50, random.Random(round_), revision=commits * 1000 + round_)
        path.write_text(airflow_file(spec))
        git(work, "commit", "--quiet", "-am", f"round {round_}")
        git(work, "push", "--quiet", str(bare), "main")
        upstream.sync()
        source = down.git(config)
        start = time.perf_counter()
        source.fetch()
        (changed,) = down.sync()
        result["served"].append(time.perf_counter() - start)
        result["change_requests"].append(source.requests)
        assert changed.changed == 1, changed
    upstream.close()
    down.close()
    return result


if __name__ == "__main__":
    main()
