"""Sandbox uids: as root, every concurrent run gets its own uid, and what a uid left behind is killed.

A lease is an exclusive flock on `<tmp>/evals-sandbox-uids/<uid>` (so leases are exclusive across
harness processes too) on a uid of `SANDBOX_UIDS` that names no user or group on this machine.
Not root: no uid change, `uid_lease()` yields None. This module does not start programs (see
tasks/sandbox.py) and does not run inside the sandbox (see tasks/sandbox_child.py).
"""

from __future__ import annotations

import fcntl
import functools
import grp
import os
import pwd
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tasks import sandbox_child

SANDBOX_UIDS = range(61000, 61184)  # below systemd's DynamicUser range (61184-65519)


@functools.cache
def child_source() -> str:
    """The text of tasks/sandbox_child.py, which the harness runs with `python -I -S -c`."""
    return Path(sandbox_child.__file__).read_text(encoding="utf-8")


@functools.cache
def free_uids() -> tuple[int, ...]:
    """Sandbox uids that name no user or group on this machine."""

    def unused(uid: int) -> bool:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            try:
                grp.getgrgid(uid)
            except KeyError:
                return True
        return False

    return tuple(uid for uid in SANDBOX_UIDS if unused(uid))


@functools.cache
def lock_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "evals-sandbox-uids"
    with suppress(FileExistsError):
        path.mkdir(mode=0o700)
    st = path.lstat()
    if not path.is_dir() or path.is_symlink() or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise RuntimeError(f"{path} is not a private directory of this user")
    return path


@contextmanager
def uid_lease() -> Iterator[int | None]:
    """An exclusive sandbox uid while running as root (flock per uid), else None."""
    if os.geteuid() != 0:
        yield None
        return
    locks = lock_dir()
    while True:
        for uid in free_uids():
            fd = os.open(locks / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield uid
            finally:
                os.close(fd)
            return
        time.sleep(0.05)


def sweep_uid(uid: int) -> None:
    """Kill every process of `uid` (stragglers that left the process group, no PID namespace)."""
    subprocess.run(
        [sys.executable, "-I", "-S", "-c", child_source(), f"sweep={uid}"], timeout=30, check=False
    )


def uid_processes(uid: int) -> list[int]:
    """Live (non-zombie) processes whose real uid is `uid`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with suppress(OSError):
                lines = Path(f"/proc/{entry}/status").read_text().splitlines()
                fields = dict(line.split(":", 1) for line in lines if ":" in line)
                if int(fields["Uid"].split()[0]) == uid and fields["State"].split()[0] != "Z":
                    found.append(int(entry))
    return found


def await_uid_exit(uid: int, timeout: float = 5.0) -> None:
    """Wait until the dying processes of `uid` are gone, so the next lease starts with none (they
    still count against its RLIMIT_NPROC). SIGKILLed processes die within milliseconds."""
    deadline = time.monotonic() + timeout
    while uid_processes(uid) and time.monotonic() < deadline:
        time.sleep(0.01)
