"""The served set in S3-compatible storage (`[publish.s3]`), and `gitdags pull`, its reader.

Layout, per source under `<prefix>/<source>/` (a source writes only under its own prefix):

    objects/<sha256>                 each served file's bytes, content-addressed, written once
    generations/<sha256>.json        a manifest, named by the digest of its own bytes:
                                     {"name", "created_at", "files": {path: {"sha256", "size"}},
                                     "commit"}
    current.json                     the pointer: {"generation", "manifest", "sha256"}, written
                                     last, conditionally (If-Match on the ETag it replaces)

A reader that follows the pointer only ever finds a manifest whose objects are all there: the
objects, then the manifest, then the pointer are written, in that order. A manifest's key is its
digest, so two publishers never write different bytes under one key: the manifest a pointer
names always matches the pointer's checksum, whoever wins the pointer. The served files live
only in `objects/`: no file of the served tree shares a key with gitdags' bookkeeping. Rollback
in gitdags is a new generation like any other change. Uploads run in parallel, with boto3's
retries, and only for objects not already in the bucket. Credentials come only from boto3's
standard chain (environment, profile, instance role): gitdags never logs or stores them.

Everything the reader reads from the bucket is untrusted: the generation's name, the
manifest's key, its paths and checksums are checked against strict patterns before any of them
names a file, and a bucket that fails a check is refused in one sentence, the local copy kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitdags import faults
from gitdags.config import S3Settings
from gitdags.errors import GitdagsError
from gitdags.git.s3layout import (
    GENERATION_NAME,
    POINTER,
    SHA256,
    checked_files,
    refused,
    s3_client,
    shown,
)

log = logging.getLogger(__name__)
STATE = ".gitdags-pull.json"  # in the puller's folder: what its current generation holds


def client(settings: S3Settings) -> Any:
    return s3_client(settings.endpoint_url, settings.region, "S3 publishing")


def _explain(exc: Exception, bucket: str) -> GitdagsError:
    """One sentence for what S3 said (no credentials in it: boto3 never puts them there)."""
    code = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
    if code in ("NoSuchBucket", "404"):
        return GitdagsError(
            f"The S3 bucket {bucket!r} does not exist; create it or fix [publish.s3] bucket."
        )
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
        return GitdagsError(
            f"S3 refused the credentials for bucket {bucket!r} ({code}); check the "
            "environment, profile or instance role boto3 uses."
        )
    if code == "PreconditionFailed":
        return GitdagsError(
            f"Another publisher moved the pointer in bucket {bucket!r} meanwhile; the next "
            "publish tries again."
        )
    name = type(exc).__name__
    return GitdagsError(f"S3 at bucket {bucket!r} failed ({name}: {str(exc)[:200]}).")


class S3Target:
    """Publishes deploy-folder generations to S3, one prefix per source."""

    def __init__(self, settings: S3Settings, state: Path | None = None) -> None:
        self.settings = settings
        self.s3 = client(settings)
        self.requests = 0  # S3 requests made (the benchmark counts them)
        # what this publisher last wrote, per source (pointer ETag, files, generations), so
        # that a change costs its new objects + manifest + pointer, not a listing
        self.state = state
        try:
            self.known: dict[str, Any] = json.loads(state.read_text()) if state else {}
        except (OSError, ValueError):
            self.known = {}

    def _remember(self) -> None:
        if self.state is not None:
            temp = self.state.with_name(self.state.name + ".tmp")
            temp.write_text(json.dumps(self.known))
            os.replace(temp, self.state)

    def _key(self, source: str, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.settings.prefix, source, *parts) if p)

    def publish(self, generation: Path, manifest: dict[str, Any], commit: str | None) -> None:
        from gitdags.serve.branches import files_by_source

        try:
            for source, paths in sorted(files_by_source(manifest).items()):
                self._publish_source(source, generation, manifest["name"], paths, commit)
        except GitdagsError:
            raise
        except Exception as exc:  # botocore's errors: one sentence
            raise _explain(exc, self.settings.bucket) from exc

    def _publish_source(
        self, source: str, generation: Path, name: str, paths: dict[str, str], commit: str | None
    ) -> None:
        """`paths`: path -> what identifies its content (the deploy manifest's): a file whose
        identity this publisher wrote before is not read and hashed again."""
        bucket = self.settings.bucket
        seen = (self.known.get(source) or {}).get("keys", {})
        before = (self.known.get(source) or {}).get("files", {})
        files = {}
        for path, key in sorted(paths.items()):
            if seen.get(path) == key and path in before:
                files[path] = before[path]
                continue
            data = (generation / path).read_bytes()
            files[path] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        mine = self.known.get(source)
        if mine is None:  # first publish from here: read what the bucket holds
            pointer, etag = self._pointer(source)
            old = self._manifest(source, pointer) if pointer else {}
            mine = {"etag": etag, "files": old.get("files", {}), "generations": []}
        if mine["files"] == files:
            return  # this source's part did not change
        known = {f["sha256"] for f in mine["files"].values()}
        wanted = {f["sha256"]: p for p, f in files.items() if f["sha256"] not in known}
        fresh = self.known.get(source) is None  # the bucket may hold objects we never wrote
        missing = [
            sha for sha in wanted if not (fresh and self._exists(self._key(source, "objects", sha)))
        ]

        def upload(sha: str) -> None:
            body = (generation / wanted[sha]).read_bytes()
            self.s3.put_object(Bucket=bucket, Key=self._key(source, "objects", sha), Body=body)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(upload, missing))
        self.requests += len(missing)
        record = {"name": name, "created_at": _now(), "commit": commit, "files": files}
        body = json.dumps(record, sort_keys=True).encode()
        digest = hashlib.sha256(body).hexdigest()
        manifest_key = self._key(source, "generations", f"{digest}.json")  # by its content
        faults.point("s3-manifest")
        self.s3.put_object(Bucket=bucket, Key=manifest_key, Body=body)
        point = json.dumps(
            {"generation": name, "manifest": manifest_key, "sha256": digest}
        ).encode()
        faults.point("in-s3")
        extra = {"IfMatch": mine["etag"]} if mine.get("etag") else {"IfNoneMatch": "*"}
        try:
            put = self.s3.put_object(
                Bucket=bucket, Key=self._key(source, POINTER), Body=point, **extra
            )
        except Exception:
            self.known.pop(source, None)  # someone else moved it: read it again next time
            self._remember()
            raise
        self.requests += 2
        generations = [*mine.get("generations", []), manifest_key]
        keep = max(self.settings.keep, 1)
        for old_key in generations[:-keep]:  # the older manifests (objects stay: shared)
            if old_key in generations[-keep:]:
                continue  # the same bytes published again: still named by a kept generation
            self.s3.delete_object(Bucket=bucket, Key=old_key)
            self.requests += 1
        self.known[source] = {
            "etag": put.get("ETag"),
            "files": files,
            "keys": paths,
            "generations": generations[-keep:],
        }
        self._remember()

    def _exists(self, key: str) -> bool:
        self.requests += 1
        try:
            self.s3.head_object(Bucket=self.settings.bucket, Key=key)
            return True
        except Exception as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def _pointer(self, source: str) -> tuple[dict[str, Any] | None, str | None]:
        self.requests += 1
        try:
            got = self.s3.get_object(Bucket=self.settings.bucket, Key=self._key(source, POINTER))
        except Exception as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404"):
                return None, None
            raise
        return json.loads(got["Body"].read()), got.get("ETag")

    def _manifest(self, source: str, pointer: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        try:
            got = self.s3.get_object(Bucket=self.settings.bucket, Key=pointer["manifest"])
            return json.loads(got["Body"].read())
        except Exception:
            return {}


def _now() -> str:
    from gitdags.history.store import now

    return now()


# -- the reader -------------------------------------------------------------------------------
@dataclass
class PullResult:
    generation: str | None
    downloaded: int
    linked: int
    requests: int
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class Puller:
    """Follows a source's pointer into a local folder: DIR/current -> DIR/.generations/<name>."""

    def __init__(self, url: str, into: Path, source: str | None = None, keep: int = 5) -> None:
        if not url.startswith("s3://"):
            raise GitdagsError(f"{url!r} is not an s3:// URL; give s3://BUCKET/PREFIX.")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        self.settings = S3Settings(
            bucket=bucket,
            prefix=prefix.strip("/"),
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL", ""),
        )
        self.s3 = client(self.settings)
        self.into = into
        self.source = source
        self.keep = keep

    def _key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.settings.prefix, *parts) if p)

    def _source(self) -> str:
        if self.source:
            return self.source
        listed = self.s3.list_objects_v2(
            Bucket=self.settings.bucket,
            Prefix=self._key() + "/" if self.settings.prefix else "",
            Delimiter="/",
        )
        names = [
            p["Prefix"].rstrip("/").rsplit("/", 1)[-1] for p in listed.get("CommonPrefixes", [])
        ]
        if len(names) != 1:
            raise GitdagsError(
                f"s3://{self.settings.bucket}/{self.settings.prefix} holds {len(names)} sources "
                f"({', '.join(names) or 'none'}); name one with --source."
            )
        return names[0]

    def pull(self) -> PullResult:
        try:
            return self._pull()
        except GitdagsError as exc:
            return PullResult(None, 0, 0, 0, str(exc))
        except Exception as exc:
            return PullResult(None, 0, 0, 0, str(_explain(exc, self.settings.bucket)))

    def _pull(self) -> PullResult:
        bucket = self.settings.bucket
        source = self._source()
        requests = 1
        raw = self.s3.get_object(Bucket=bucket, Key=self._key(source, POINTER))["Body"].read()
        name, manifest_key, digest = self._checked_pointer(source, raw)
        gens = self.into / ".generations"
        current = self.into / "current"
        if current.is_symlink() and current.resolve().name == name:
            return PullResult(name, 0, 0, requests)  # already there
        try:
            raw = self.s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read()
        except Exception as exc:
            raise GitdagsError(
                f"The pointer names manifest {manifest_key!r}, which cannot be read "
                f"({type(exc).__name__}); the local copy stays as it was."
            ) from exc
        requests += 1
        if hashlib.sha256(raw).hexdigest() != digest:
            raise GitdagsError(
                "The manifest does not match its pointer's checksum; the local copy stays "
                "as it was."
            )
        files = checked_files(raw, name)
        previous = current.resolve() if current.is_symlink() else None
        have: dict[str, Path] = {}
        if previous is not None:
            try:  # what the last pull verified: no need to read and hash it again
                last = json.loads((self.into / STATE).read_text())
            except (OSError, ValueError):
                last = {}
            try:
                kept = checked_files(json.dumps(last).encode(), previous.name)
            except GitdagsError:
                kept = {}  # not what this puller writes: read and hash the files instead
            if last.get("generation") == previous.name and kept:
                for path, meta in kept.items():
                    have.setdefault(meta["sha256"], previous / path)
            else:
                for path in files:
                    local = previous / path
                    if local.is_file():
                        have.setdefault(hashlib.sha256(local.read_bytes()).hexdigest(), local)
        staging = gens / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        downloaded = linked = 0
        try:
            for path, meta in sorted(files.items()):
                target = staging / path  # a checked relative path: inside staging
                target.parent.mkdir(parents=True, exist_ok=True)
                sha = meta["sha256"]
                if sha in have:
                    os.link(have[sha], target)
                    linked += 1
                    continue
                body = self.s3.get_object(Bucket=bucket, Key=self._key(source, "objects", sha))[
                    "Body"
                ].read()
                requests += 1
                if hashlib.sha256(body).hexdigest() != sha or len(body) != meta["size"]:
                    raise GitdagsError(
                        f"Object {sha[:12]} for {path} does not match its checksum; the local "
                        "copy stays as it was."
                    )
                target.write_bytes(body)
                downloaded += 1
            final = gens / name
            shutil.rmtree(final, ignore_errors=True)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        link = self.into / f".current.tmp-{os.getpid()}"
        link.unlink(missing_ok=True)
        os.symlink(Path(".generations") / name, link)
        os.replace(link, current)  # one rename: a reader sees the old tree or the new one
        state = self.into / f"{STATE}.tmp"
        state.write_text(json.dumps({"generation": name, "files": files}))
        os.replace(state, self.into / STATE)
        for old in sorted(p for p in gens.iterdir() if not p.name.startswith("."))[: -self.keep]:
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        return PullResult(name, downloaded, linked, requests)

    def _checked_pointer(self, source: str, raw: bytes) -> tuple[str, str, str]:
        """The pointer's generation name, manifest key and checksum, each checked: they come
        from the bucket, and the name becomes a folder of the puller's."""
        try:
            pointer = json.loads(raw)
        except ValueError:
            pointer = None
        if not isinstance(pointer, dict):
            raise refused(f"The pointer {self._key(source, POINTER)} is not a JSON object")
        name, key, digest = (pointer.get(k) for k in ("generation", "manifest", "sha256"))
        if not isinstance(name, str) or not GENERATION_NAME.fullmatch(name):
            raise refused(
                f"The pointer names generation {shown(name)}, which is not a generation name "
                "(like g000042-3f2a1c0d9e1b)"
            )
        folder = self._key(source, "generations") + "/"
        stem = key[len(folder) : -len(".json")] if isinstance(key, str) else ""
        named = isinstance(key, str) and key.startswith(folder) and key.endswith(".json")
        # a manifest is named by its digest; a bucket of the old layout named it by generation
        if not named or not (SHA256.fullmatch(stem) or GENERATION_NAME.fullmatch(stem)):
            raise refused(
                f"The pointer names manifest {shown(key)}, which is not a manifest of "
                f"{folder.rstrip('/')}"
            )
        if not isinstance(digest, str) or not SHA256.fullmatch(digest):
            raise refused(f"The pointer's checksum {shown(digest)} is not a SHA-256 digest")
        return name, key, digest


def pull_loop(puller: Puller, interval: float, once: bool, report: Any) -> int:
    """`gitdags pull`: pull, report, wait (longer after failures), again; 1 if --once failed."""
    failures = 0
    while True:
        result = puller.pull()
        report(result)
        failures = failures + 1 if result.error else 0
        if once:
            return 1 if result.error else 0
        time.sleep(min(interval * (2 ** min(failures, 5)), 300) if failures else interval)
