"""S3 publishing and `gitdags pull` at 10,000 DAGs, against a real S3 API server (moto's server
mode on 127.0.0.1, boto3 as the client).

Reported, for a commit changing 10 DAG files: the requests of the incremental publish (target
<= changed + 3) and of the incremental pull (<= changed + 2), against, in the same run, what an
`aws s3 sync`-style reader needs just to list the prefix; and the time from the commit to a
puller's switched folder with `--interval 1s` (target p50 <= 2 s).

    python benchmarks/s3_bench.py [--n 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from repo import WORK, commit_change, make_repo  # noqa: E402

from gitdags.config import (  # noqa: E402
    S3Settings,
    Settings,
    SourceConfig,
)
from gitdags.engine import build_engine  # noqa: E402
from gitdags.serve.s3 import Puller  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    os.environ["AWS_ENDPOINT_URL"] = url
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        import boto3

        s3 = boto3.client("s3", endpoint_url=url)
        s3.create_bucket(Bucket="dags")
        work, bare = make_repo(args.n)
        state = WORK / f"s3-{args.n}"
        shutil.rmtree(state, ignore_errors=True)
        settings = Settings(
            database=state / "g.db",
            listen="",
            deploy_dir=state / "deploy",
            s3=S3Settings(bucket="dags", prefix="prod", endpoint_url=url),
            sources=(SourceConfig("main", bare.as_uri(), subdir="dags"),),
        )
        engine = build_engine(settings)
        start = time.perf_counter()
        (first,) = engine.sync()
        first_s = time.perf_counter() - start
        assert first.publish_error is None, first.publish_error
        into = state / "scheduler"
        puller = Puller("s3://dags/prod", into)
        start = time.perf_counter()
        full = puller.pull()
        full_s = time.perf_counter() - start
        assert full.error is None, full.error
        target = engine.publisher.s3  # type: ignore[union-attr]
        publish_requests, pull_requests, switch_s = [], [], []
        for round_ in range(args.rounds):
            switched = threading.Event()
            generation_before = (into / "current").resolve().name

            def follow(
                switched: threading.Event = switched, generation_before: str = generation_before
            ) -> None:
                while not switched.is_set():
                    result = Puller("s3://dags/prod", into).pull()
                    if result.generation and result.generation != generation_before:
                        pull_requests.append(result.requests)
                        switched.set()
                        return
                    time.sleep(1.0)  # --interval 1s

            reader = threading.Thread(target=follow)
            reader.start()
            committed = time.perf_counter()
            commit_change(work, bare, args.n, round_, files=10, deletes=0)
            before = target.requests
            (result,) = engine.sync()
            assert result.publish_error is None, result.publish_error
            publish_requests.append(target.requests - before)
            switched.wait(60)
            switch_s.append(time.perf_counter() - committed)
            reader.join()
        engine.close()
        pages = 0
        token = None
        while True:  # what `aws s3 sync` needs before it compares anything
            kwargs = {"Bucket": "dags", "Prefix": "prod/"}
            if token:
                kwargs["ContinuationToken"] = token
            listed = s3.list_objects_v2(**kwargs)
            pages += 1
            token = listed.get("NextContinuationToken")
            if not token:
                break
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"S3 publishing at {args.n:,} DAGs (moto server on 127.0.0.1)")
    print(f"first sync + full publish                 {first_s:.1f} s")
    print(f"first pull (every object)                 {full_s:.1f} s, {full.downloaded:,} objects")
    print(
        f"incremental publish, 10 files changed     {statistics.median(publish_requests):.0f} "
        "requests (target <= 13)"
    )
    print(
        f"incremental pull                          {statistics.median(pull_requests):.0f} "
        "requests (target <= 12)"
    )
    print(f"baseline: listing the prefix (s3 sync)    {pages} list requests, before any compare")
    print(
        f"commit to a puller's switched folder      p50 {statistics.median(switch_s):.2f} s "
        "(--interval 1s; target <= 2 s)"
    )


if __name__ == "__main__":
    main()
