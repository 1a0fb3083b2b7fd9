"""Commit signature verification: ssh signers from `allowed_signers`, or gpg keys of `gpg_home`."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from gitdags.config import SourceConfig
from gitdags.errors import SourceError


def check_signatures(
    config: SourceConfig,
    mirror: Path,
    env: dict[str, str],
    commits: list[str],
    remaining: Callable[[float], float],
) -> None:
    """Raise unless every one of `commits` carries a good signature of an allowed signer of
    the source (`verify`: ssh with `allowed_signers`, or gpg with `gpg_home`); `remaining`
    shortens each git call to what is left of the sync's deadline."""
    with tempfile.TemporaryDirectory(prefix="gitdags-verify-") as empty:
        env = dict(env)
        if config.verify == "ssh":  # only ssh signatures: gpg sees no keys at all
            env["GNUPGHOME"] = empty
            options = ["-c", f"gpg.ssh.allowedSignersFile={config.allowed_signers}"]
        else:  # only gpg signatures, by the keys of gpg_home
            env["GNUPGHOME"] = str(config.gpg_home)
            options = ["-c", f"gpg.ssh.allowedSignersFile={os.devnull}"]
        for sha in commits:
            done = subprocess.run(
                ["git", "-C", str(mirror), *options, "verify-commit", sha],
                capture_output=True,
                env=env,
                timeout=remaining(30),
            )
            if done.returncode != 0:
                said = done.stderr.decode("utf-8", "replace").strip().splitlines()
                why = said[-1] if said else "no signature"
                raise SourceError(
                    f"Source {config.name!r}: commit {sha[:12]} is not signed by an "
                    f"allowed signer ({config.verify}: {why}); it is not served, the "
                    "last verified commit stays served."
                )
