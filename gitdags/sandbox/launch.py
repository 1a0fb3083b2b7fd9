"""Run as root by gitdags (`gitdags.sandbox.bwrap`) to start bubblewrap as uid 65534: it binds the
folders the sandbox may read into a private mount namespace (root can reach them; 65534 may
not, e.g. a pyenv under /root or a 0700 state folder), becomes 65534 and runs bwrap, which
binds them from there. Standard library only; its one argument is JSON: [bwrap's options,
[[source, destination], ...] to bind read-only, the options and command after the binds]."""

from __future__ import annotations

import ctypes
import json
import os
import sys

CLONE_NEWNS, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x20000, 2, 4, 4096, 16384, 1 << 18
# where a tmpfs of this mount namespace only holds the binds (bwrap finds it under its old
# root): the first of these folders that holds none of the folders to bind
STAGING = ("/mnt", "/media", "/srv", "/run", "/opt", "/tmp")
NOBODY = 65534


def main() -> None:
    head, binds, tail = json.loads(sys.argv[1])
    libc = ctypes.CDLL(None, use_errno=True)

    def check(result: int, what: str) -> None:
        if result != 0:
            number = ctypes.get_errno()
            sys.exit(f"bwrap: cannot {what}: {os.strerror(number)}")

    staging = next(
        (
            folder
            for folder in STAGING
            if os.path.isdir(folder) and not any(s.startswith(folder + "/") for s, _dest in binds)
        ),
        None,
    )
    if staging is None:
        sys.exit(f"bwrap: cannot stage the sandbox's folders: each of {STAGING} holds one")
    check(libc.unshare(CLONE_NEWNS), "make a mount namespace")
    check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    check(
        libc.mount(b"tmpfs", staging.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755"),
        "mount a tmpfs",
    )
    args = list(head)
    for number, (source, dest) in enumerate(binds):
        staged = f"{staging}/bind-{number}"
        if os.path.isdir(source):
            os.mkdir(staged)
        else:
            open(staged, "x").close()
        check(libc.mount(source.encode(), staged.encode(), None, MS_BIND | MS_REC, None), "bind")
        args += ["--ro-bind", staged, dest]
    args += tail
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
