"""Commit signature verification: real commits signed with ssh keys made by ssh-keygen (and gpg
keys where gnupg is installed); an unverified commit is never served."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitdags.config import SourceConfig
from tests.conftest import GitRepo, dag_yaml, git


def ssh_key(tmp_path: Path, name: str) -> Path:
    key = tmp_path / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    return key


def signed_commit(repo: GitRepo, files: dict[str, str], key: Path | None, *extra: str) -> str:
    for rel, text in files.items():
        repo.write(rel, text)
    git(repo.path, "add", "--all")
    sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}"] if key else []
    git(repo.path, *sign, *extra, "commit", "--quiet", *(["-S"] if key or extra else []), "-m", "x")
    return repo.head()


def test_only_commits_signed_by_an_allowed_ssh_key_are_served(
    tmp_path: Path, repo: GitRepo, make_engine
) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    good, other = ssh_key(tmp_path, "good"), ssh_key(tmp_path, "other")
    signers = tmp_path / "allowed_signers"
    signers.write_text(f'ops@example.com namespaces="git" {Path(f"{good}.pub").read_text()}')
    config = SourceConfig(
        "main", str(repo.path), verify="ssh", allowed_signers=signers, verify_scope="all"
    )
    engine = make_engine(config)
    first = signed_commit(repo, {"a.yaml": dag_yaml("a")}, good)
    (result,) = engine.sync()
    assert result.error is None and engine.dag("a").served_commit == first

    signed_commit(repo, {"a.yaml": dag_yaml("a", "x", "y")}, other)  # a key not allowed
    (result,) = engine.sync()
    assert result.error is not None and "is not signed by an allowed signer" in result.error
    assert engine.dag("a").served_version == 1  # the last verified state stays served
    (status,) = engine.status()
    assert status.served_commit == first and "allowed signer" in (status.last_error or "")

    signed_commit(repo, {"b.yaml": dag_yaml("b")}, None)  # unsigned, on top
    (result,) = engine.sync()
    assert result.error is not None  # scope "all": the bad commit in between still counts

    head_only = SourceConfig("main", str(repo.path), verify="ssh", allowed_signers=signers)
    engine2 = make_engine(head_only)
    (result,) = engine2.sync()
    assert result.error is not None and "not signed" in result.error  # head is unsigned
    last = signed_commit(repo, {"c.yaml": dag_yaml("c")}, good)
    (result,) = engine2.sync()
    assert result.error is None and engine2.dag("c").served_commit == last


@pytest.fixture
def gnupg_homes(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Two GnuPG homes (one with a key, one empty); the gpg-agent that gpg starts in each
    is stopped when the test ends (gpg would leave it running, daemonized)."""
    if shutil.which("gpg") is None:
        pytest.skip("gnupg is not installed")
    homes = tmp_path / "gnupg", tmp_path / "empty-gnupg"
    for home in homes:
        home.mkdir(mode=0o700)
    try:
        yield homes
    finally:
        for home in homes:
            subprocess.run(
                ["gpgconf", "--kill", "all"],
                env={**os.environ, "GNUPGHOME": str(home)},
                capture_output=True,
                timeout=60,
            )


def test_gpg_signatures_are_checked_against_gpg_home(
    repo: GitRepo, make_engine, gnupg_homes: tuple[Path, Path]
) -> None:
    home, empty = gnupg_homes
    env = {**os.environ, "GNUPGHOME": str(home)}
    made = subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "ops@example.com", "ed25519"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    if made.returncode != 0:
        pytest.skip("gpg cannot make a key here")
    os.environ["GNUPGHOME"] = str(home)  # the committer signs with the key of `home`
    try:
        signed_commit(
            repo, {"a.yaml": dag_yaml("a")}, None, "-c", "user.signingkey=ops@example.com"
        )
    finally:
        del os.environ["GNUPGHOME"]
    trusting = SourceConfig("main", str(repo.path), verify="gpg", gpg_home=home)
    doubting = SourceConfig("other", str(repo.path), verify="gpg", gpg_home=empty)
    ok, refused = make_engine(trusting, doubting).sync()
    assert ok.error is None, ok.error
    assert refused.error is not None and "is not signed by an allowed signer" in refused.error


def test_an_allowed_signers_file_that_cannot_be_read_is_a_config_error_naming_it(
    tmp_path: Path, repo: GitRepo
) -> None:
    from typer.testing import CliRunner

    from gitdags.cli import app
    from gitdags.config import load_settings
    from gitdags.errors import ConfigError

    repo.commit("one", {"a.yaml": dag_yaml("a")})
    config = tmp_path / "config.toml"
    for signers, why in (
        (tmp_path / "missing_signers", "does not exist"),
        (tmp_path, "Is a directory"),  # root reads every file: a folder cannot be read as one
    ):
        config.write_text(
            f'[state]\ndatabase = "{tmp_path / "g.db"}"\n[[sources]]\nname = "main"\n'
            f'url = "{repo.path}"\nverify = "ssh"\nallowed_signers = "{signers}"\n'
        )
        with pytest.raises(ConfigError) as caught:
            load_settings(str(config))
        assert f"allowed_signers {signers} cannot be read ({why})" in str(caught.value)
        done = CliRunner().invoke(app, ["--config", str(config), "sync"])
        assert done.exit_code == 1, done.output
        assert f"allowed_signers {signers} cannot be read" in done.stderr
        assert "not signed" not in done.output  # the commit is not blamed
    assert not (tmp_path / "g.db").exists()


def test_an_allowed_signers_file_this_user_may_not_read_is_named_at_load() -> None:
    """Read by a user without permission (uid 65534): the sentence names the file, at load."""
    import tempfile

    from tests.test_doctor import reader_python

    if os.geteuid() != 0:
        pytest.skip("running gitdags as another user needs root")
    python, path = reader_python()
    base = Path(tempfile.mkdtemp(prefix="gitdags-signers-"))
    try:
        signers = base / "allowed_signers"
        signers.write_text('ops@example.com namespaces="git" ssh-ed25519 AAAA\n')
        signers.chmod(0o600)  # root's alone
        config = base / "config.toml"
        config.write_text(
            f'[state]\ndatabase = "{base / "g.db"}"\n[[sources]]\nname = "main"\n'
            f'url = "{base}"\nverify = "ssh"\nallowed_signers = "{signers}"\n'
        )
        base.chmod(0o755)
        config.chmod(0o644)
        done = subprocess.run(
            [python, "-m", "gitdags", "--config", str(config), "status"],
            capture_output=True,
            text=True,
            user=65534,
            group=65534,
            extra_groups=[],
            cwd=base,
            env={"PATH": os.environ["PATH"], "HOME": str(base), "PYTHONPATH": path},
            timeout=120,
        )
        assert done.returncode == 1, done
        assert done.stderr.strip() == (
            f"error: [[sources]] main: allowed_signers {signers} cannot be read (Permission "
            "denied); fix the path or the file's permissions, or no commit can be verified."
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
