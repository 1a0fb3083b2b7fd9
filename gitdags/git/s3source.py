"""A source whose files live under an S3 prefix (`url = "s3://bucket/prefix/"`): each poll
brings the prefix into the source's bare mirror as a commit (s3mirror.py), and from there on
everything is as for a git source (diff, kinds, checks, history, last good, rollback, pin,
pause, serving). Credentials come only from boto3's chain.

A poll, by the layout of the prefix:
- gitdags' own S3 publishing (`current.json`, `generations/`, `objects/`): one GET of the
  pointer with If-None-Match; only when it moved, its manifest and the objects it names that
  the mirror lacks (each checked against its SHA-256). One generation is one commit.
- anything else: a listing (ListObjectsV2, one request per 1,000 keys) compared with the last
  commit's objects by ETag. A change waits for the publisher to be done: it is taken when every
  changed object is older than `settle` by the server's clock (to the second), or when two
  listings `settle` apart agree, re-listing at most SETTLE_ROUNDS times. A publisher still
  busy then is seen as the state at that moment (the state says "unsettled"), and the next
  polls take the rest only once it is quiet, without waiting: an upload is at most two
  commits. Changed
  objects are read in parallel, each GET conditional on its listed ETag, so that a read never
  mixes in a newer upload (the poll lists again instead).
Keys that cannot be git paths (`..`, absolute, empty parts, control characters, `.git`, a file
that is also a folder) are left out, named in the commit message and in the sync's note.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gitdags import faults
from gitdags.errors import GitdagsError, SourceError
from gitdags.git.s3layout import POINTER, checked_files, error_code, path_problem, s3_client
from gitdags.git.s3mirror import Change, Read, head_or_none, read_state, write
from gitdags.git.source import GitSource

log = logging.getLogger(__name__)

SETTLE_ROUNDS = 5
RETRIES = 3  # polls started again when an object changed between its listing and its read
Listed = tuple[str, int, float]  # ETag, size, last modified (the server's epoch seconds)


class _Moved(Exception):
    """An object changed between the listing and its read: list again."""


def split_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix/` -> ("bucket", "prefix/") (the prefix "" or ending in "/")."""
    bucket, _, prefix = url[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    return bucket, prefix + "/" if prefix else ""


class S3Source(GitSource):
    """An S3 prefix polled into a bare mirror; reading, diffs and checkouts are GitSource's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bucket, self.prefix = split_url(self.config.url)
        self.requests = 0  # S3 requests made (the tests and the benchmark count them)
        self._client: Any = None

    @property
    def s3(self) -> Any:
        if self._client is None:
            self._client = s3_client(
                self.config.endpoint_url, self.config.region, "An s3:// source", attempts=3
            )
        return self._client

    def local_path(self) -> Path | None:
        return None

    def fetch(self) -> str:
        """Poll the prefix, commit what changed, return the branch's head."""
        with self.locked():
            self.ensure_mirror()
            for _attempt in range(RETRIES):
                try:
                    return self._poll()
                except _Moved:
                    continue
                except GitdagsError:
                    raise
                except Exception as exc:  # botocore's errors: one sentence
                    raise self._failed(exc) from exc
        raise SourceError(
            f"Source {self.config.name!r}: objects under {self.config.url} kept changing while "
            "they were read; the next poll tries again."
        )

    def _poll(self) -> str:
        head = head_or_none(self)
        state = read_state(self, head, self.config.url)
        if state.get("mode") == "pointer":
            followed = self._follow_pointer(state, head)
            if followed is not None:
                return followed
            state = {}  # the pointer is gone: the prefix is read as plain objects again
        listing, skipped, server_now = self._list()
        if POINTER in listing and any(p.startswith("generations/") for p in listing):
            followed = self._follow_pointer(state if state.get("mode") == "pointer" else {}, head)
            if followed is not None:
                return followed
        known: dict[str, dict[str, Any]] = state.get("files", {})
        changed = _changed(listing, known)
        busy = self._busy(listing, changed, server_now)
        if busy and state.get("unsettled") and head is not None:
            return head  # the rest of an upload it stopped waiting for: taken once quiet
        rounds = 0
        while busy and rounds < SETTLE_ROUNDS:
            faults.point("s3-settle")
            time.sleep(self.remaining(self.config.settle))
            again, skipped, server_now = self._list()
            rounds += 1
            quiet = {p: o[0] for p, o in again.items()} == {p: o[0] for p, o in listing.items()}
            listing, changed = again, _changed(again, known)
            busy = not quiet and self._busy(listing, changed, server_now)
        if skipped:
            first, why = min(skipped.items())
            self.note = (
                f"{len(skipped)} key(s) under {self.config.url} cannot be file paths and were "
                f"left out, e.g. {first!r} ({why}); the mirror's commit names them all"
            )
        if head is not None and state and not changed and state.get("skipped") == sorted(skipped):
            return head
        wanted = sorted(p for p in changed if p in listing)
        faults.point("s3-read")
        reads = self._read_all([(p, self._key(p), listing[p][0]) for p in wanted])
        deleted = sorted(p for p in known if p not in listing)
        lines = [f"{'changed' if r.path in known else 'added':<8} {r.path}" for r in reads]
        lines += [f"deleted  {p}" for p in deleted]
        lines += [f"skipped  {key}: {why}" for key, why in sorted(skipped.items())]
        added = sum(1 for r in reads if r.path not in known)
        title = f"s3: {added} added, {len(reads) - added} changed, {len(deleted)} deleted"
        kept = {p: r for p, r in known.items() if p in listing and p not in changed}
        change = Change(
            title,
            reads,
            deleted,
            lines,
            [
                f"S3-Object: {r.path} etag={r.record['etag']} version={r.record['version']}"
                for r in reads
            ],
            {
                "url": self.config.url,
                "mode": "list",
                "files": kept,
                "skipped": sorted(skipped),
                "unsettled": busy,  # still uploading: the rest waits until it is quiet
            },
            max((listing[p][2] for p in wanted), default=server_now),
        )
        return write(self, head, change, reset=not state)

    def _key(self, path: str) -> str:
        return self.prefix + path

    def _busy(self, listing: dict[str, Listed], changed: set[str], server_now: float) -> bool:
        """Whether a changed object is younger than `settle` by the server's clock (whose
        times are whole seconds)."""
        if not changed or self.config.settle <= 0:
            return False
        newest = max((listing[p][2] for p in changed if p in listing), default=0.0)
        return newest + self.config.settle + 1 > server_now

    def _list(self) -> tuple[dict[str, Listed], dict[str, str], float]:
        """Every object under the prefix by its path below it, the keys left out (and why),
        and the server's clock."""
        listing: dict[str, Listed] = {}
        skipped: dict[str, str] = {}
        server_now = time.time()
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        while True:
            self.remaining(60)
            page = self.s3.list_objects_v2(**args)
            self.requests += 1
            server_now = _server_time(page, server_now)
            for item in page.get("Contents", []):
                path = item["Key"][len(self.prefix) :]
                if path.endswith("/") and not item.get("Size"):
                    continue  # a folder marker, as consoles write them
                problem = git_path_problem(path)
                if problem:
                    skipped[item["Key"]] = problem
                    continue
                listing[path] = (item["ETag"], int(item["Size"]), item["LastModified"].timestamp())
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
            args["ContinuationToken"] = token
        folders = {"/".join(p.split("/")[:i]) for p in listing for i in range(1, p.count("/") + 1)}
        for path in sorted(folders & listing.keys()):
            skipped[self._key(path)] = "a file that is also a folder"
            del listing[path]
        return listing, skipped, server_now

    def _read_all(self, wanted: list[tuple[str, str, str]]) -> list[Read]:
        """(path, key, ETag or "") -> each object read, in parallel (conditional on the ETag
        when one is given); its bytes spill to a temporary file past the file-size limit."""

        def read(item: tuple[str, str, str]) -> Read:
            path, key, etag = item
            args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
            if etag:
                args["IfMatch"] = etag
            self.remaining(60)
            try:
                got = self.s3.get_object(**args)
            except Exception as exc:
                if etag and error_code(exc) in ("PreconditionFailed", "412", "NoSuchKey"):
                    raise _Moved from exc
                raise
            # closed by s3mirror.write once in the mirror
            body = tempfile.SpooledTemporaryFile(max_size=self.max_file_size + 1)  # noqa: SIM115
            size = 0
            for chunk in got["Body"].iter_chunks(1 << 20):
                body.write(chunk)
                size += len(chunk)
            body.seek(0)
            version = got.get("VersionId") or "null"
            record = {"etag": got.get("ETag") or etag, "size": size, "version": version}
            return Read(path, body, size, record)

        if not wanted:
            return []
        with ThreadPoolExecutor(max_workers=min(16, len(wanted))) as pool:
            reads = list(pool.map(read, wanted))
        self.requests += len(wanted)
        return reads

    # -- gitdags' own published layout --------------------------------------------------------
    def _follow_pointer(self, state: dict[str, Any], head: str | None) -> str | None:
        """Follow `current.json`: the head, a new commit when it moved, or None when there is
        no gitdags pointer (the prefix is then read as plain objects)."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(POINTER)}
        if state.get("etag") and head is not None:
            args["IfNoneMatch"] = state["etag"]
        self.requests += 1
        try:
            got = self.s3.get_object(**args)
        except Exception as exc:
            code = error_code(exc)
            if code in ("304", "NotModified") and head is not None:
                return head  # the idle poll: one request
            if code in ("NoSuchKey", "404"):
                return None
            raise
        try:
            pointer = json.loads(got["Body"].read())
            generation, key, digest = (pointer[k] for k in ("generation", "manifest", "sha256"))
        except (ValueError, TypeError, KeyError):
            return None  # not gitdags' pointer: a plain file of the prefix
        if not isinstance(key, str) or not key.startswith(self._key("generations/")):
            raise self._refused(f"its pointer names manifest {key!r}, outside the prefix")
        (manifest,) = self._read_all([("", key, "")])
        body = manifest.body.read()
        if hashlib.sha256(body).hexdigest() != digest:
            raise self._refused("its manifest does not match the pointer's checksum")
        try:
            files = checked_files(body, str(generation))
        except GitdagsError as exc:
            raise self._refused(str(exc).partition("; refused")[0]) from exc
        odd = next((p for p in files if git_path_problem(p)), None)
        if odd is not None:
            raise self._refused(f"its manifest names {odd!r}, {git_path_problem(odd)}")
        known: dict[str, dict[str, Any]] = state.get("files", {})
        wanted = sorted(
            p for p, m in files.items() if known.get(p, {}).get("sha256") != m["sha256"]
        )
        reads = self._read_all(
            [(p, self._key(f"objects/{files[p]['sha256']}"), "") for p in wanted]
        )
        for r in reads:
            sha = files[r.path]["sha256"]
            if hashlib.sha256(r.body.read()).hexdigest() != sha:
                raise self._refused(f"object {sha[:12]} for {r.path} does not match its checksum")
            r.record = {"sha256": sha, "size": r.size}
        deleted = sorted(p for p in known if p not in files)
        lines = [f"{'changed' if r.path in known else 'added':<8} {r.path}" for r in reads]
        lines += [f"deleted  {p}" for p in deleted]
        trailers = [f"S3-Generation: {generation}", f"S3-Pointer-ETag: {got.get('ETag')}"]
        upstream = json.loads(body).get("commit")
        if isinstance(upstream, str):
            trailers.append(f"Published-From: {upstream[:40]}")
        kept = {p: r for p, r in known.items() if p in files and p not in wanted}
        new_state = {"url": self.config.url, "mode": "pointer", "files": kept}
        new_state.update(etag=got.get("ETag"), generation=str(generation))
        title = f"s3: generation {generation} ({len(reads)} new, {len(deleted)} deleted)"
        change = Change(title, reads, deleted, lines, trailers, new_state, time.time())
        return write(self, head, change, reset=not state)

    # -- errors ---------------------------------------------------------------------------------
    def _refused(self, what: str) -> SourceError:
        return SourceError(
            f"Source {self.config.name!r}: {self.config.url} is refused, {what}; the last good "
            "state stays served."
        )

    def _failed(self, exc: Exception) -> SourceError:
        """What boto3 said, as one sentence (boto3 never puts credentials in it)."""
        name, url = self.config.name, self.config.url
        code = error_code(exc)
        kind = type(exc).__name__
        endpoint = self.config.endpoint_url or "AWS"
        if kind in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
            return SourceError(
                f"Source {name!r}: the S3 endpoint {endpoint} cannot be reached; the last good "
                "state stays served and the next poll tries again."
            )
        if kind in ("NoCredentialsError", "PartialCredentialsError"):
            return SourceError(
                f"Source {name!r}: boto3 found no credentials for {url}; set them in the "
                "environment, a profile or an instance role."
            )
        if code == "NoSuchBucket":
            return SourceError(
                f"Source {name!r}: bucket {self.bucket!r} does not exist at {endpoint}; check "
                "its url."
            )
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return SourceError(
                f"Source {name!r}: S3 refused the credentials for {url} ({code}); check the "
                "environment, profile or instance role boto3 uses."
            )
        return SourceError(f"Source {name!r}: S3 failed on {url} ({kind}: {str(exc)[:200]}).")


def _changed(listing: dict[str, Listed], known: dict[str, dict[str, Any]]) -> set[str]:
    """Paths added, changed (by ETag) or deleted since the state."""
    changed = {p for p, o in listing.items() if known.get(p, {}).get("etag") != o[0]}
    return changed | (known.keys() - listing.keys())


def git_path_problem(path: str) -> str | None:
    """Why an object's path below the prefix cannot be a file in git, or None."""
    if path.startswith("/"):
        return "an absolute path"
    problem = path_problem(path)
    if problem is not None:
        return problem.removeprefix("which ").removeprefix("is ")
    if any(part.lower() == ".git" for part in path.split("/")):
        return "a .git folder"
    return None


def _server_time(page: dict[str, Any], default: float) -> float:
    """The S3 server's clock, from a response's Date header (objects' times are its own)."""
    header = page.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return email.utils.parsedate_to_datetime(header).timestamp() if header else default
    except (TypeError, ValueError):
        return default
