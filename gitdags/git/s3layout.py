"""S3 as gitdags reads it: the boto3 client (credentials from boto3's chain only), and the
checks of what a bucket says in the layout gitdags' own S3 publishing writes (the pointer
`current.json`, content-addressed manifests and objects), shared by `gitdags pull` and the
S3 source. Everything read from a bucket is untrusted: names, keys, paths and checksums are
checked against strict patterns before any of them names a file."""

from __future__ import annotations

import json
import re
from typing import Any

from gitdags.errors import GitdagsError

POINTER = "current.json"
GENERATION_NAME = re.compile(r"g[0-9]{6,12}-[0-9a-f]{12}")  # as the deploy folder names them
SHA256 = re.compile(r"[0-9a-f]{64}")


def s3_client(endpoint_url: str, region: str, what: str, *, attempts: int = 5) -> Any:
    """A boto3 S3 client; `what` names the feature in the sentence said when boto3 is missing."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise GitdagsError(f"{what} needs boto3; install it: pip install 'gitdags[s3]'.") from exc
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        config=Config(
            retries={"max_attempts": attempts, "mode": "standard"},
            max_pool_connections=16,
            connect_timeout=5,
            read_timeout=60,
        ),
    )


def error_code(exc: BaseException) -> str:
    """The error code S3 answered with ("" when it did not answer)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def shown(value: object) -> str:
    """An untrusted value in a message: quoted, escaped, short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def refused(what: str) -> GitdagsError:
    return GitdagsError(f"{what}; refused, the local copy stays as it was.")


def path_problem(path: object) -> str | None:
    """Why a path from a manifest cannot name a file inside the puller's folder, or None: a
    plain relative path, `/`-separated, without `.`/`..`/empty parts, backslashes, control
    characters or over-long names."""
    if not isinstance(path, str) or not path:
        return "which is not a path"
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        return "which is not valid UTF-8"
    if path.startswith("/"):
        return "an absolute path"
    if "\\" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "which holds a backslash or a control character"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "which is not a plain relative path (it has an empty, . or .. part)"
    if len(encoded) > 4096 or any(len(part.encode()) > 255 for part in parts):
        return "which is too long a name"
    return None


def checked_files(raw: bytes, name: str) -> dict[str, dict[str, Any]]:
    """A manifest's files (path -> {"sha256", "size"}), each path and checksum checked."""
    try:
        files = json.loads(raw).get("files")
    except (ValueError, AttributeError):
        files = None
    if not isinstance(files, dict):
        raise refused(f"The manifest of generation {name} holds no list of files")
    folders: set[str] = set()
    for path, meta in files.items():
        problem = path_problem(path)
        if problem is not None:
            raise refused(f"The manifest of generation {name} names {shown(path)}, {problem}")
        sha, size = (meta.get("sha256"), meta.get("size")) if isinstance(meta, dict) else (0, 0)
        if not isinstance(sha, str) or not SHA256.fullmatch(sha):
            raise refused(f"The manifest of generation {name} gives {path!r} no SHA-256")
        if type(size) is not int or size < 0:
            raise refused(f"The manifest of generation {name} gives {path!r} no size")
        parts = path.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    clash = sorted(folders & files.keys())
    if clash:
        raise refused(
            f"The manifest of generation {name} names {clash[0]!r} as a file and as a folder"
        )
    return files
