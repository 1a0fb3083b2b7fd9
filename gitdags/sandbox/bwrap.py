"""The sandbox that repository code runs in: bubblewrap (`bwrap`), the one Flatpak runs every
app in, around the Airflow parse worker (and so around every process a DAG file starts).

What the worker sees is an allow-list, read-only: the interpreter's prefixes (from
`airflow_python`), the system library folders, a few files of /etc, the parse worker's own file
and the folders gitdags hands it (the tree being parsed). Never the database or its folder,
config.toml, the mirrors, the deploy folder, the served-branch repository or the gitdags user's
home. Every namespace is new (user, PID, IPC, UTS, network, mount, cgroup), no capability is
held, the uid inside is 65534, /proc, /dev, /tmp and /dev/shm are its own, the environment is
built from nothing, and the sandbox dies with gitdags.

Run as root, gitdags starts bwrap through `sandbox_launch.py`, which binds the allowed folders
in a private mount namespace and becomes uid 65534 before it runs bwrap: the processes inside are
then not root on the host either (a user namespace made by root maps its users to root, whose
files and /proc/sys entries it would own).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from gitdags.errors import SourceError

NOBODY = 65534
LAUNCHER = Path(__file__).with_name("launch.py")
SYSTEM = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
ETC = ("ld.so.cache", "ld.so.conf", "localtime", "timezone", "nsswitch.conf", "hosts", "mime.types")
PASSWD = (
    "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/tmp/home:/usr/sbin/nologin\n"
)
GROUP = "root:x:0:\nnogroup:x:65534:\n"
SETUP = (
    "Install bubblewrap (the `bubblewrap` package: apt-get install bubblewrap, dnf install "
    "bubblewrap) and allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 "
    "where it exists, user.max_user_namespaces > 0, and on Ubuntu 24.04 an AppArmor profile for "
    'bwrap or kernel.apparmor_restrict_unprivileged_userns=0), or set sandbox = "none" on the '
    "source to parse its files unsandboxed."
)


@functools.lru_cache(maxsize=16)
def interpreter_paths(python: str) -> tuple[str, ...]:
    """The folders `python` needs to run: its prefixes, its real executable's folder and its
    site-packages (a venv's python links into its base installation)."""
    code = (
        "import json, os, sys, sysconfig; p = sysconfig.get_paths(); print(json.dumps(["
        "sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, "
        "os.path.dirname(os.path.realpath(sys.executable)), p['purelib'], p['platlib'], "
        "p['stdlib'], p['platstdlib']]))"
    )
    try:
        done = subprocess.run(
            [python, "-I", "-c", code], capture_output=True, text=True, timeout=60
        )
        paths = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        paths = None
    if not paths:
        raise SourceError(
            f"Cannot run {python} (the source's airflow_python or dagster_python); point it at "
            "the python of the environment the orchestrator runs."
        )
    return _outermost(os.path.realpath(p) for p in paths)


def _outermost(paths: object) -> tuple[str, ...]:
    """The paths, without those inside another one."""
    out: list[str] = []
    for path in sorted(set(paths)):  # type: ignore[call-overload]
        if not any(path == o or path.startswith(o.rstrip("/") + "/") for o in out):
            out.append(path)
    return tuple(out)


def where_seen(prefixes: tuple[str, ...]) -> list[tuple[str, str]]:
    """Where each interpreter folder is bound: at its own path, but for one under /tmp (each
    parse gets an empty /tmp of its own, which would hide it): /interp/N. A venv moves with
    its folder; a base installation that a venv names by absolute path (pyvenv.cfg) cannot."""
    out, stuck = [], []
    for number, path in enumerate(prefixes):
        if path != "/tmp" and not path.startswith("/tmp/"):
            out.append((path, path))
            continue
        out.append((path, f"/interp/{number}"))
        if len(prefixes) > 1 and not (Path(path) / "pyvenv.cfg").exists():
            stuck.append(path)
    if stuck:
        raise SourceError(
            f"The Python that airflow_python runs lives under /tmp ({stuck[0]}), which each "
            "parse gets empty; install it in another folder."
        )
    return out


def inside_path(path: str, seen: dict[str, str]) -> str:
    """`path` as the sandbox sees it."""
    for host, dest in sorted(seen.items(), key=lambda item: -len(item[0])):
        if path == host or path.startswith(host + "/"):
            return dest + path[len(host) :]
    return path


def check_binds(paths: tuple[str, ...], private: list[Path]) -> None:
    """No bound folder may hold gitdags' own state (the database, config, mirrors, deploy
    folder, home): refuse rather than show it to repository code."""
    for bound in paths:
        for secret in private:
            real = os.path.realpath(secret)
            if bound == "/" or real == bound or real.startswith(bound.rstrip("/") + "/"):
                raise SourceError(
                    f"The Airflow environment folder {bound} holds {secret}, which repository "
                    "code must never see; install Airflow in a folder of its own (for example "
                    "/opt/airflow-venv) and point airflow_python there."
                )


DAGS_FOLDER = "/sources/0"  # the first readable folder: the DAGs folder as Airflow has it


def inside(readable: tuple[Path, ...], served_under: str = "") -> list[tuple[str, str]]:
    """Where each readable folder is seen in the sandbox: /sources/0, /sources/1, ...; the
    first (a source's files as served) under `served_under` in /sources/0, as a source's
    `deploy_subdir` puts them in the deploy folder."""
    first = f"{DAGS_FOLDER}/{served_under}".rstrip("/")
    return [
        (str(path), first if number == 0 else f"/sources/{number}")
        for number, path in enumerate(readable)
    ]


def command(
    python: str, worker: Path, scratch: Path, mounts: list[tuple[str, str]], private: list[Path]
) -> list[str]:
    """The command that runs `python worker` in the sandbox, with `mounts` (the trees it
    parses: (folder here, where the sandbox sees it), from `inside`) bound read-only;
    `scratch` is a folder of gitdags' own for the sandbox's /etc/passwd and /etc/group."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SourceError(
            f'bubblewrap (bwrap) is not installed, and python = "airflow" '
            f"parses repository code only inside it. {SETUP}"
        )
    prefixes = interpreter_paths(python)
    check_binds(prefixes, private)
    seen = dict(where_seen(prefixes))
    binds: list[tuple[str, str]] = list(seen.items())
    binds.append((str(worker), "/run/gitdags/parse_worker.py"))
    binds += mounts
    scratch.mkdir(parents=True, exist_ok=True)
    for name, text in (("passwd", PASSWD), ("group", GROUP)):
        (scratch / name).write_text(text)
        binds.append((str(scratch / name), f"/etc/{name}"))
    args = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"]
    args += ["--cap-drop", "ALL", "--uid", str(NOBODY), "--gid", str(NOBODY)]
    args += ["--hostname", "gitdags-parse", "--clearenv", "--chdir", "/tmp"]
    for name, value in (
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("LANG", "C.UTF-8"),
        ("HOME", "/tmp/home"),
        ("TMPDIR", "/tmp"),
        ("GITDAGS_PARSE_SCRATCH", "/tmp"),
        ("PYTHONDONTWRITEBYTECODE", "1"),
    ):
        args += ["--setenv", name, value]
    for folder in SYSTEM:
        if os.path.islink(folder):
            args += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            args += ["--ro-bind", folder, folder]
    for name in ETC:
        if os.path.isfile(f"/etc/{name}"):
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/tmp/home"]
    binding = [flag for source, dest in binds for flag in ("--ro-bind", source, dest)]
    tail = ["--remount-ro", "/", inside_path(python, seen), "-I", "/run/gitdags/parse_worker.py"]
    if os.geteuid() == 0:
        return [sys.executable, "-I", str(LAUNCHER), json.dumps([args, binds, tail])]
    return [*args, *binding, *tail]
