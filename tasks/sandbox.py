"""Run untrusted Python programs (model-written code) in a fresh, limited, killable process.

Every `run_python` call writes the program as `main.py` into a fresh directory and starts
`sys.executable -I -B main.py` under a small supervisor. `-I` ignores PYTHON* variables and the user
site; it also implies `-P`, so the script directory is *not* on `sys.path` (a driver that imports an
extra file does `sys.path.insert(0, "")`). The venv's site-packages stay importable.

What is protected (kernel permitting; `sandbox_capabilities()` says what this machine gives):
- Fresh process per call in its own session; verdicts come from exit status, never from the output.
- rlimits on the program: CPU seconds (SIGXCPU at the limit, SIGKILL one second later), address space,
  processes (per uid), file size, open files; core dumps off; no_new_privs (setuid binaries gain nothing).
- Wall-clock backstop enforced twice: by the supervisor (kills the whole tree) and by the harness
  (SIGKILL to the process group, `wall + 5 s`).
- Scrubbed environment: exactly `PATH`, `HOME` and `TMPDIR` (the work dir), `LANG`, `PYTHONHASHSEED`,
  `PYTHONDONTWRITEBYTECODE`. Nothing else of the harness environment (tokens, keys) is inherited.
- Output: stdout, stderr and the result channel (fd 3, `channel=True`) are read incrementally and capped
  at `output_bytes` each; overflow kills the tree ("output_limit"). The channel is a separate pipe, so
  printing cannot pose as a result, but any code in the program can write it: treat it as data from
  untrusted code and keep expected outputs outside the sandbox.
- As root, the program runs as a dedicated uid/gid leased per concurrent call (61000..61183, skipping any
  that exist in passwd/group; a flock per uid makes leases exclusive across harness processes), so it
  cannot signal the harness, touch root-owned files or read files that are not world-readable, and
  RLIMIT_NPROC counts only its own processes.
- New PID namespace: the supervisor is init there; when it exits the kernel kills every process left in
  the namespace, so children that called setsid() or double-forked cannot outlive the run. Without it (as
  root) the harness kills every process of the leased uid with kill(-1) from a process of that uid.
- New network namespace: no interfaces but a down loopback, so no TCP/UDP, not even to 127.0.0.1, and no
  abstract unix sockets of the host.
- New mount namespace: fresh size-limited tmpfs on /tmp, /var/tmp, /dev/shm, /run/lock and on the work
  dir itself (disk use is bounded; nothing persists), every other mount bind-remounted read-only (in the
  namespace only), a fresh /proc with hidepid (the program sees only its own processes; the harness's
  /proc/<pid>/environ does not exist for it). Home directories (/root, the harness user's) and
  directories the sandbox uid cannot traverse on the way to the interpreter are covered by an empty
  tmpfs; only the interpreter and venv trees are bound back (read-only), so ~/.cache/huggingface/token,
  ~/.ssh and the like are invisible.
- The staging directory is removed after every run, also after a kill.

What is NOT protected:
- No seccomp syscall filter, so the kernel's full attack surface is exposed (kernel exploits).
- CPU and cache side channels, timing, Rowhammer; memory bandwidth and disk I/O are not throttled.
- World-readable host files stay readable (read-only): do not keep secrets in world-readable files.
- Unix sockets on the filesystem (e.g. a world-writable docker.sock) are reachable despite the netns.
- tmpfs use counts against host memory, not RLIMIT_AS (bounded by the tmpfs sizes: 4 x file_bytes for the
  scratch dirs plus 2 x file_bytes + inputs for the work dir).
- RLIMIT_AS limits virtual memory, not RSS; the kernel OOM killer is not reported as "memory".
- "memory" relies on the program's stderr (MemoryError and friends): a program can fake or hide it.
- `cpu_seconds` is rounded up to whole seconds (RLIMIT_CPU granularity) and is per process: children
  burning CPU are stopped by the wall backstop, not the CPU limit.

Fallbacks (detected per run, never silent about the verdicts):
- Namespaces refused (container without CAP_SYS_ADMIN): each namespace is tried on its own; without
  the mount namespace, /tmp and /dev/shm are the host's and the interpreter must be reachable by the
  sandbox uid, else every run is a "sandbox_error" (fails closed, never runs as root).
- Not root: no uid change. If unprivileged user namespaces are allowed, the same network, PID and mount
  namespaces are built inside a new user namespace; the program is uid 0 there but execs without any
  capability (securebits NOROOT, locked), and the supervisor is not dumpable, so it cannot undo the
  mounts or ptrace the supervisor. It still runs as the harness user on the host: it can read what that
  user can read outside the hidden home directories, and RLIMIT_NPROC counts all of that user's
  processes. Without user namespaces there is no isolation beyond rlimits, the scrubbed environment and
  the process-group kill: the program can read and write the harness user's files, read the harness's
  /proc/<pid>/environ, signal it, and stragglers that left the process group survive the run.

Timeouts under load (2-core VM, `python bench/sandbox_overhead.py --calibrate`, a fixed ~1 s of pure
CPU work per program, 3 rounds):
    alone                        cpu 0.99 s  wall 1.01 s  (max wall/cpu 1.03)
    pool of 2 + 1 CPU hog        cpu 1.00 s  wall 2.05 s  (max 2.12)
    pool of 4 + 2 CPU hogs       cpu 1.03 s  wall 3.07 s  (max 3.17)
CPU time stays within ~10% of the idle figure whatever the load; wall time grows with it. So the verdict
comes from RLIMIT_CPU, and the wall backstop defaults to `3 * cpu_seconds + 5` (23 s for LiveCodeBench's
6 s), which a program using its whole CPU budget only reaches beyond a ~3.8x slowdown; it exists for
programs that sleep or block, and for CPU burnt in child processes. Keep the pool at about one worker
per core (the default): at 3 runnable programs per core the slowdown was 3.2x. wait4() may report a
few % less CPU than the limit that fired (0.93 s for a 1 s limit, seen under load).
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import grp
import inspect
import math
import os
import pwd
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Status = Literal["ok", "runtime_error", "timeout", "memory", "output_limit", "sandbox_error"]

SANDBOX_UIDS = range(61000, 61184)  # below systemd's DynamicUser range (61184-65519)
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
WALL_FACTOR = 3.0
WALL_SLACK_SECONDS = 5.0
HARNESS_GRACE_SECONDS = 5.0  # the harness's own backstop beyond the supervisor's wall limit
SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
MEMORY_MARKERS = (b"MemoryError", b"Cannot allocate memory", b"std::bad_alloc", b"out of memory")
STATUS_CAP = 64 * 1024

# Namespaces the supervisor asks for; tests shrink this to exercise the fallbacks.
_NAMESPACES: tuple[str, ...] = ("net", "pid", "mnt")


@dataclass(frozen=True)
class Limits:
    """Per-run limits. `wall_seconds=None` means `3 * cpu_seconds + 5` (see the module docstring)."""

    cpu_seconds: float = 6.0
    wall_seconds: float | None = None
    memory_bytes: int = 2 * 1024**3
    processes: int = 64
    file_bytes: int = 32 * 1024**2
    open_files: int = 64
    output_bytes: int = 8 * 1024**2

    def __post_init__(self) -> None:
        if self.cpu_seconds <= 0 or (self.wall_seconds is not None and self.wall_seconds <= 0):
            raise ValueError("cpu_seconds and wall_seconds must be positive")
        if min(self.memory_bytes, self.processes, self.file_bytes, self.open_files, self.output_bytes) < 1:
            raise ValueError("limits must be positive")

    @property
    def cpu_rlimit(self) -> tuple[int, int]:
        """RLIMIT_CPU (soft, hard): SIGXCPU at the limit rounded up, SIGKILL a second later."""
        soft = max(1, math.ceil(self.cpu_seconds))
        return soft, soft + 1

    @property
    def wall_limit(self) -> float:
        """The wall-clock backstop in seconds."""
        if self.wall_seconds is not None:
            return self.wall_seconds
        return WALL_FACTOR * self.cpu_seconds + WALL_SLACK_SECONDS


@dataclass(frozen=True)
class Execution:
    """What one run produced; `stdout`, `stderr` and `channel` are data, never verdicts."""

    status: Status
    returncode: int | None
    stdout: bytes
    stderr: bytes
    channel: bytes
    cpu_seconds: float
    wall_seconds: float
    detail: str = ""


# --------------------------------------------------------------------------------------------------
# Supervisor. Its source is sent to a fresh `python -I -S -c`, so it may use only the modules imported
# in _BOOT_HEADER and its own class attributes. Process tree: B (spawned by the harness, new session)
# unshares namespaces and forks C (init of the PID namespace), which sets up mounts, forks D, waits for
# it and reports on the status pipe. D applies rlimits, drops to the sandbox uid and execs the program.

_BOOT_HEADER = "import ctypes\nimport fcntl\nimport os\nimport resource\nimport signal\nimport sys\n"


class _Boot:
    """Runs inside the sandbox's supervisor processes (see the comment above)."""

    CLONE_NEWNS = 0x00020000
    CLONE_NEWUSER = 0x10000000
    CLONE_NEWPID = 0x20000000
    CLONE_NEWNET = 0x40000000
    MS_RDONLY = 0x1
    MS_NOSUID = 0x2
    MS_NODEV = 0x4
    MS_NOEXEC = 0x8
    MS_REMOUNT = 0x20
    MS_NOATIME = 0x400
    MS_NODIRATIME = 0x800
    MS_BIND = 0x1000
    MS_REC = 0x4000
    MS_PRIVATE = 0x40000
    MS_RELATIME = 0x200000
    MS_STRICTATIME = 0x1000000
    PR_SET_PDEATHSIG = 1
    PR_SET_DUMPABLE = 4
    PR_SET_SECUREBITS = 28
    PR_SET_NO_NEW_PRIVS = 38
    SECBIT_NOROOT_LOCKED = 0x3  # exec as uid 0 grants no capabilities, for good
    SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 0xC0

    def __init__(self, argv: list[str]) -> None:
        self.opts: dict[str, list[str]] = {}
        for item in argv:
            key, _, value = item.partition("=")
            self.opts.setdefault(key, []).append(value)
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.status = self.hide_fd(int(self.one("status")))
        channel = int(self.one("channel"))
        self.channel = self.hide_fd(channel) if channel >= 0 else -1
        self.features: list[str] = []
        self.uid = int(self.one("uid"))

    def one(self, key: str) -> str:
        return self.opts[key][0]

    def many(self, key: str) -> list[str]:
        return self.opts.get(key, [])

    @staticmethod
    def hide_fd(fd: int) -> int:
        """Move an inherited fd above 10 and mark it close-on-exec, so the program never sees it."""
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return moved

    def report(self, kind: str, text: str) -> None:
        os.write(self.status, f"{kind} {text}".replace("\n", " ").encode()[:4000] + b"\n")

    def check(self, result: int, what: str) -> None:
        if result != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    def prctl(self, option: int, value: int) -> None:
        zero = ctypes.c_ulong(0)
        self.check(self.libc.prctl(option, ctypes.c_ulong(value), zero, zero, zero), "prctl")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
        def enc(text: str | None) -> bytes | None:
            return text.encode() if text else None

        result = self.libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))
        self.check(result, f"mount {target}")

    def unshare(self, flags: int) -> None:
        self.check(self.libc.unshare(flags), "unshare")

    # B ------------------------------------------------------------------------------------------------
    def main(self) -> None:
        try:
            self.prctl(self.PR_SET_PDEATHSIG, signal.SIGKILL)
            self.enter_namespaces()
            child = os.fork()
        except BaseException as exc:
            self.report("error", f"supervisor setup: {exc!r}")
            os._exit(70)
        if child == 0:
            self.supervise()
        _, status = os.waitpid(child, 0)
        os._exit(0 if status == 0 else 1)

    def enter_namespaces(self) -> None:
        flags = {"net": self.CLONE_NEWNET, "pid": self.CLONE_NEWPID, "mnt": self.CLONE_NEWNS}
        wanted = [name for name in self.many("ns") if name in flags]
        if os.geteuid() != 0:
            if wanted:
                self.enter_user_namespace(sum(flags[name] for name in wanted), wanted)
            return
        try:
            self.unshare(sum(flags[name] for name in wanted))
            self.features = wanted
        except OSError:
            for name in wanted:
                try:
                    self.unshare(flags[name])
                    self.features.append(name)
                except OSError:
                    pass

    def enter_user_namespace(self, flags: int, wanted: list[str]) -> None:
        uid, gid = os.getuid(), os.getgid()
        try:
            self.unshare(self.CLONE_NEWUSER | flags)
        except OSError:
            return
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as handle:
                handle.write(text)
        self.features = ["user", *wanted]

    # C ------------------------------------------------------------------------------------------------
    def supervise(self) -> None:
        try:
            self.prctl(self.PR_SET_PDEATHSIG, signal.SIGKILL)
            self.prctl(self.PR_SET_DUMPABLE, 0)  # no ptrace or /proc/<pid>/fd by a same-uid program
            if "mnt" in self.features:
                self.setup_mounts()
            self.report("caps", " ".join(["_", *self.features]))
            program = os.fork()
        except BaseException as exc:
            self.report("error", f"namespace setup: {exc!r}")
            os._exit(70)
        if program == 0:
            self.exec_program()
        self.wait_for(program)
        os._exit(0)

    def wait_for(self, program: int) -> None:
        fired: list[bool] = []

        def on_alarm(signum: int, frame: object) -> None:
            fired.append(True)
            # As init of the PID namespace, kill(-1) reaches every other process in it.
            os.kill(-1 if "pid" in self.features else program, signal.SIGKILL)

        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, float(self.one("wall")))
        while True:
            pid, status, usage = os.wait4(-1, 0)
            if pid == program:
                break
        signal.setitimer(signal.ITIMER_REAL, 0)
        cpu = usage.ru_utime + usage.ru_stime
        if os.WIFSIGNALED(status):
            self.report("signal", f"{os.WTERMSIG(status)} {cpu:.6f} {int(bool(fired))}")
        else:
            self.report("exit", f"{os.WEXITSTATUS(status)} {cpu:.6f} {int(bool(fired))}")

    def setup_mounts(self) -> None:
        self.mount(None, "/", None, self.MS_REC | self.MS_PRIVATE)
        workdir = self.one("workdir")
        source = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
        binds = [(path, os.open(path, os.O_PATH)) for path in self.many("bind")]
        size = self.one("scratch_size")
        secure = self.MS_NOSUID | self.MS_NODEV
        writable = []
        for path in self.many("scratch"):
            self.mount("tmpfs", path, "tmpfs", secure, f"mode=1777,size={size},nr_inodes=4096")
            writable.append(path)
        for path in self.many("mask"):
            self.mount("tmpfs", path, "tmpfs", secure, "mode=0755,size=1m,nr_inodes=1024")
        for path, fd in binds:
            os.makedirs(path, exist_ok=True)
            self.mount(f"/proc/self/fd/{fd}", path, None, self.MS_BIND | self.MS_REC)
        uid = self.uid if self.uid >= 0 else os.getuid()
        os.makedirs(workdir, exist_ok=True)
        options = f"mode=0700,uid={uid},gid={uid},size={self.one('work_size')},nr_inodes=4096"
        self.mount("tmpfs", workdir, "tmpfs", secure, options)
        writable.append(workdir)
        self.copy_files(source, workdir, uid)
        if self.remount_readonly(writable):
            self.features.append("ro")
        if "pid" in self.features:
            self.mount_proc()

    def copy_files(self, source: int, workdir: str, uid: int) -> None:
        for name in os.listdir(source):
            src = os.open(name, os.O_RDONLY, dir_fd=source)
            dst = os.open(os.path.join(workdir, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            while chunk := os.read(src, 1 << 20):
                os.write(dst, chunk)
            os.fchown(dst, uid, uid)
            os.close(src)
            os.close(dst)
        os.close(source)

    def remount_readonly(self, writable: list[str]) -> bool:
        """Bind-remount every other mount read-only, in this namespace only. True if / is now ro."""
        keep = {
            "nosuid": self.MS_NOSUID,
            "nodev": self.MS_NODEV,
            "noexec": self.MS_NOEXEC,
            "noatime": self.MS_NOATIME,
            "nodiratime": self.MS_NODIRATIME,
            "relatime": self.MS_RELATIME,
            "strictatime": self.MS_STRICTATIME,
        }
        skip = ["/proc", *writable]
        root_done = False
        with open("/proc/self/mountinfo") as handle:
            rows = [line.split() for line in handle]
        for row in rows:
            point = row[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            point = point.replace("\\134", "\\")
            if any(point == s or point.startswith(s.rstrip("/") + "/") for s in skip):
                continue
            flags = self.MS_BIND | self.MS_REMOUNT | self.MS_RDONLY
            flags |= sum(keep.get(option, 0) for option in set(row[5].split(",")))
            try:
                self.mount(None, point, None, flags)
                root_done = root_done or point == "/"
            except OSError:
                pass
        return root_done

    def mount_proc(self) -> None:
        flags = self.MS_NOSUID | self.MS_NODEV | self.MS_NOEXEC
        for options in ("hidepid=invisible", "hidepid=2", ""):
            try:
                self.mount("proc", "/proc", "proc", flags, options)
                self.features.append("hidepid" if options else "proc")
                return
            except OSError:
                continue

    # D ------------------------------------------------------------------------------------------------
    def exec_program(self) -> None:
        try:
            for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            for spec in self.many("rlimit"):
                name, soft, hard = spec.split(":")
                resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (int(soft), int(hard)))
            if self.uid >= 0:
                os.setgroups([])
                os.setgid(self.uid)
                os.setuid(self.uid)
            if "user" in self.features:  # uid 0 of our user namespace: exec without capabilities
                bits = self.SECBIT_NOROOT_LOCKED | self.SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED
                self.prctl(self.PR_SET_SECUREBITS, bits)
            self.prctl(self.PR_SET_NO_NEW_PRIVS, 1)
            os.chdir(self.one("workdir"))
            if self.channel >= 0:
                os.dup2(self.channel, 3)
            python = self.one("python")
            os.execve(python, [python, "-I", "-B", "main.py", *self.many("arg")], dict(os.environ))
        except BaseException as exc:
            self.report("error", f"program start: {exc!r}")
        os._exit(71)


_SWEEP = (
    "import os, sys\nuid = int(sys.argv[1])\nos.setgroups([])\nos.setgid(uid)\nos.setuid(uid)\n"
    "try:\n    os.kill(-1, 9)\nexcept ProcessLookupError:\n    pass\n"
)


@functools.cache
def _boot_source() -> str:
    return _BOOT_HEADER + inspect.getsource(_Boot) + "\n_Boot(sys.argv[1:]).main()\n"


# --------------------------------------------------------------------------------------------------
# Harness side.


@dataclass
class _Report:
    """What the supervisor wrote on the status pipe."""

    features: set[str] | None = None
    kind: str = ""  # "exit" | "signal" | "" (no report)
    value: int = 0
    cpu: float = 0.0
    wall_fired: bool = False
    errors: list[str] = field(default_factory=list)


def _parse_report(raw: bytes) -> _Report:
    report = _Report()
    for line in raw.decode(errors="replace").splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "caps":
            report.features = set(rest.split()) - {"_"}
        elif kind in ("exit", "signal"):
            value, cpu, fired = rest.split()
            report.kind, report.value, report.cpu = kind, int(value), float(cpu)
            report.wall_fired = fired == "1"
        elif kind == "error":
            report.errors.append(rest)
    return report


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _memory_error(stderr: bytes) -> bool:
    tail = stderr[-4096:]
    return any(marker in tail for marker in MEMORY_MARKERS)


def _classify(report: _Report, stderr: bytes, killed: str, limits: Limits) -> tuple[Status, int | None, str]:
    """Status, returncode (negative for a signal) and detail from the supervisor's report."""
    returncode = None
    if report.kind == "exit":
        returncode = report.value
    elif report.kind == "signal":
        returncode = -report.value
    if killed and returncode is None:
        returncode = -signal.SIGKILL  # the harness killed the tree before the supervisor could report
    if killed == "output":
        return "output_limit", returncode, f"output over {limits.output_bytes} bytes"
    if killed == "wall" or report.wall_fired:
        return "timeout", returncode, f"wall-clock limit {limits.wall_limit:g} s"
    if report.errors or not report.kind:
        reason = "; ".join(report.errors) or "supervisor ended without a report"
        return "sandbox_error", returncode, reason
    # wait4() can report a few % less CPU than the RLIMIT_CPU check saw (measured under load).
    cpu_hit = report.cpu >= 0.9 * limits.cpu_rlimit[0]
    if report.kind == "signal":
        name = _signal_name(report.value)
        if report.value == signal.SIGXCPU or (report.value == signal.SIGKILL and cpu_hit):
            return "timeout", returncode, f"CPU limit {limits.cpu_rlimit[0]} s ({name})"
        if _memory_error(stderr):
            return "memory", returncode, f"out of memory ({name})"
        return "runtime_error", returncode, f"killed by {name}"
    if report.value == 0:
        return "ok", 0, ""
    if _memory_error(stderr):
        return "memory", returncode, "MemoryError"
    if cpu_hit:  # e.g. a handler caught SIGXCPU and exited
        return "timeout", returncode, f"CPU limit {limits.cpu_rlimit[0]} s (exit code {report.value})"
    return "runtime_error", returncode, f"exit code {report.value}"


@functools.cache
def _free_uids() -> tuple[int, ...]:
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
def _lock_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "evals-sandbox-uids"
    with suppress(FileExistsError):
        path.mkdir(mode=0o700)
    st = path.lstat()
    if not path.is_dir() or path.is_symlink() or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise RuntimeError(f"{path} is not a private directory of this user")
    return path


@contextmanager
def _uid_lease() -> Iterator[int | None]:
    """An exclusive sandbox uid while running as root (flock per uid), else None."""
    if os.geteuid() != 0:
        yield None
        return
    lock_dir = _lock_dir()
    while True:
        for uid in _free_uids():
            fd = os.open(lock_dir / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
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


def _remove_tree(path: Path) -> None:
    try:
        shutil.rmtree(path)
    except OSError:
        for parent, dirs, _ in os.walk(path):
            for name in dirs:
                with suppress(OSError):
                    os.chmod(os.path.join(parent, name), 0o700)
        shutil.rmtree(path, ignore_errors=True)


def _check_files(files: Mapping[str, bytes] | None) -> None:
    for name in files or {}:
        if not name or "/" in name or name in (".", "..", "main.py") or "\0" in name:
            raise ValueError(f"extra file names must be plain names other than main.py, got {name!r}")


@contextmanager
def _staging(source: str, files: Mapping[str, bytes] | None, stdin: bytes, uid: int | None) -> Iterator[Path]:
    """A root-private temp dir with `work/` (main.py and files) and `stdin`; always removed."""
    root = Path(tempfile.mkdtemp(prefix="evals-sandbox-"))
    try:
        root.chmod(0o711)
        work = root / "work"
        work.mkdir(mode=0o700)
        (work / "main.py").write_bytes(source.encode())
        for name, data in (files or {}).items():
            (work / name).write_bytes(data)
        (root / "stdin").write_bytes(stdin)
        if uid is not None:
            for path in (work, *work.iterdir()):
                os.chown(path, uid, uid)
        yield work
    finally:
        _remove_tree(root)


def _child_env(workdir: Path) -> dict[str, str]:
    return {
        "PATH": SAFE_PATH,
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@functools.cache
def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _home_dirs() -> set[str]:
    """The harness user's home directories (tokens, caches, ssh keys live there)."""
    homes = {os.path.expanduser("~"), "/root"}
    with suppress(KeyError):
        homes.add(pwd.getpwuid(os.geteuid()).pw_dir)
    return {os.path.realpath(h) for h in homes if os.path.isdir(h) and os.path.realpath(h) != "/"}


@functools.cache
def _hidden_mounts() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(masks, binds) for the mount namespace: directories to cover with an empty tmpfs (home
    directories, and those the sandbox uid cannot traverse on the way to the interpreter), and the
    interpreter and venv trees under them or under the scratch directories to bind back."""
    paths = (sys.prefix, sys.base_prefix, os.path.dirname(sys.executable))
    targets = {os.path.realpath(p) for p in paths} | {os.path.dirname(os.path.realpath(sys.executable))}
    targets = {t for t in targets if not any(t != o and _inside(t, o) for o in targets)}
    masks = _home_dirs()
    for target in sorted(targets):
        parts = Path(target).parts
        for depth in range(2, len(parts)):
            ancestor = os.path.join(*parts[:depth])
            if not os.stat(ancestor).st_mode & 0o001:
                masks.add(ancestor)
                break
    scratch = _scratch_dirs()  # covered by fresh tmpfs anyway: nothing under them needs a mask
    masks = {m for m in masks if not any(_inside(m, d) for d in scratch)}
    masks = {m for m in masks if not any(m != o and _inside(m, o) for o in masks)}
    # Trees under a masked directory or a scratch directory (a venv in /tmp, say) are bound back.
    covered = [*masks, *scratch]
    binds = {t for t in targets if any(_inside(t, m) for m in covered)}
    return tuple(sorted(masks)), tuple(sorted(binds))


def _scratch_dirs() -> list[str]:
    found = {os.path.realpath(p) for p in SCRATCH_DIRS if os.path.isdir(p)}
    return sorted(found)


def _boot_args(
    workdir: Path, uid: int | None, status: int, channel: int, limits: Limits, inputs: int
) -> list[str]:
    masks, binds = _hidden_mounts()
    cpu_soft, cpu_hard = limits.cpu_rlimit
    rlimits = {
        "CORE": (0, 0),
        "CPU": (cpu_soft, cpu_hard),
        "AS": (limits.memory_bytes,) * 2,
        "NPROC": (limits.processes,) * 2,
        "FSIZE": (limits.file_bytes,) * 2,
        "NOFILE": (limits.open_files,) * 2,
    }
    args = [
        f"python={sys.executable}",
        f"workdir={workdir}",
        f"status={status}",
        f"channel={channel}",
        f"uid={-1 if uid is None else uid}",
        f"wall={limits.wall_limit}",
        f"scratch_size={limits.file_bytes}",
        f"work_size={2 * limits.file_bytes + inputs}",
    ]
    args += [f"ns={name}" for name in _NAMESPACES]
    args += [f"rlimit={name}:{soft}:{hard}" for name, (soft, hard) in rlimits.items()]
    args += [f"scratch={path}" for path in _scratch_dirs()]
    args += [f"mask={path}" for path in masks] + [f"bind={path}" for path in binds]
    return args


def _sweep_uid(uid: int) -> None:
    """Kill every process of `uid` (stragglers that left the process group, no PID namespace)."""
    subprocess.run([sys.executable, "-I", "-S", "-c", _SWEEP, str(uid)], timeout=30, check=False)


def _uid_processes(uid: int) -> list[int]:
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


def _await_uid_exit(uid: int, timeout: float = 5.0) -> None:
    """Wait until the dying processes of `uid` are gone, so the next lease starts with none (they
    still count against its RLIMIT_NPROC). SIGKILLed processes die within milliseconds."""
    deadline = time.monotonic() + timeout
    while _uid_processes(uid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _kill_group(pgid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class _Collector:
    """Reads the pipes of one run incrementally, capping each stream."""

    def __init__(self, streams: dict[int, str], cap: int) -> None:
        self.names = streams
        self.cap = cap
        self.data = {name: bytearray() for name in streams.values()}
        self.selector = selectors.DefaultSelector()
        for fd in streams:
            self.selector.register(fd, selectors.EVENT_READ)

    def read(self, timeout: float) -> bool:
        """Read what is ready; False once a capped stream overflowed."""
        for key, _ in self.selector.select(timeout):
            chunk = os.read(key.fd, 1 << 16)
            if not chunk:
                self.selector.unregister(key.fd)
                continue
            name = self.names[key.fd]
            buffer = self.data[name]
            buffer += chunk
            cap = STATUS_CAP if name == "status" else self.cap
            if len(buffer) > cap:
                del buffer[cap:]
                if name != "status":
                    return False
        return True

    @property
    def open(self) -> bool:
        return bool(self.selector.get_map())

    def close(self) -> None:
        self.selector.close()


def _exited(pid: int) -> bool:
    """Whether the supervisor has exited, without reaping it: an unreaped pid keeps its process-group
    number reserved, so killpg() cannot hit an unrelated group that reused it."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _collect(proc: subprocess.Popen[bytes], collector: _Collector, deadline: float, uid: int | None) -> str:
    """Drain the pipes until EOF; returns why the harness killed the tree ("", "output", "wall")."""
    exited = False
    while collector.open:
        now = time.monotonic()
        if now >= deadline:
            return "wall"
        if not collector.read(min(deadline - now, 0.1)):
            return "output"
        if not exited and _exited(proc.pid):
            # Supervisor gone but a pipe still open: stragglers outside a PID namespace.
            exited = True
            _kill_group(proc.pid)
            if uid is not None:
                _sweep_uid(uid)
            deadline = min(deadline, now + 1.0)
    return ""


def _execute(
    workdir: Path, uid: int | None, args: Sequence[str], limits: Limits, channel: bool, inputs: int
) -> tuple[Execution, _Report]:
    start = time.monotonic()
    status_r, status_w = os.pipe()
    chan_r, chan_w = os.pipe() if channel else (-1, -1)
    stdin_fd = os.open(workdir.parent / "stdin", os.O_RDONLY)
    boot = _boot_args(workdir, uid, status_w, chan_w, limits, inputs) + [f"arg={a}" for a in args]
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _boot_source(), *boot],
            stdin=stdin_fd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=[fd for fd in (status_w, chan_w) if fd >= 0],
            start_new_session=True,
            env=_child_env(workdir),
            cwd="/",
        )
    except BaseException:
        _close_fds(status_r, chan_r)
        raise
    finally:
        _close_fds(status_w, chan_w, stdin_fd)
    assert proc.stdout is not None and proc.stderr is not None
    streams = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr", status_r: "status"}
    if channel:
        streams[chan_r] = "channel"
    collector = _Collector(streams, limits.output_bytes)
    try:
        killed = _collect(proc, collector, start + limits.wall_limit + HARNESS_GRACE_SECONDS, uid)
    finally:
        _kill_group(proc.pid)  # before reaping, see _exited
        proc.wait()
        collector.close()
        proc.stdout.close()
        proc.stderr.close()
        _close_fds(status_r, chan_r)
    report = _parse_report(bytes(collector.data["status"]))
    if uid is not None and (killed or report.features is None or "pid" not in report.features):
        # Killed by the harness, the PID namespace may still be tearing down; without one, stragglers.
        _sweep_uid(uid)
        _await_uid_exit(uid)
    stderr = bytes(collector.data["stderr"])
    status, returncode, detail = _classify(report, stderr, killed, limits)
    execution = Execution(
        status=status,
        returncode=returncode,
        stdout=bytes(collector.data["stdout"]),
        stderr=stderr,
        channel=bytes(collector.data.get("channel", b"")),
        cpu_seconds=report.cpu,
        wall_seconds=time.monotonic() - start,
        detail=detail,
    )
    return execution, report


def _close_fds(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            os.close(fd)


def _run(
    source: str,
    stdin: bytes,
    args: Sequence[str],
    limits: Limits,
    channel: bool,
    files: Mapping[str, bytes] | None,
) -> tuple[Execution, _Report]:
    _check_files(files)
    start = time.monotonic()
    inputs = len(source.encode()) + sum(len(data) for data in (files or {}).values())
    try:
        with _uid_lease() as uid, _staging(source, files, stdin, uid) as workdir:
            return _execute(workdir, uid, args, limits, channel, inputs)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"
        return Execution(
            "sandbox_error", None, b"", b"", b"", 0.0, time.monotonic() - start, detail
        ), _Report()


def run_python(
    source: str,
    *,
    stdin: bytes = b"",
    args: Sequence[str] = (),
    limits: Limits = Limits(),
    channel: bool = False,
    files: Mapping[str, bytes] | None = None,
) -> Execution:
    """Run `source` as main.py in a fresh sandboxed process; `channel=True` opens fd 3 for results.

    `files` are extra plain-named files next to main.py. Never raises for anything the program does;
    a failure of the sandbox itself is status "sandbox_error" with the reason in `detail`.
    """
    return _run(source, stdin, args, limits, channel, files)[0]


@functools.cache
def _probe() -> dict[str, bool]:
    code = "import os\nprint(os.getuid())\n"
    execution, report = _run(code, b"", (), Limits(cpu_seconds=5, wall_seconds=30), False, None)
    if execution.status != "ok":
        raise RuntimeError(
            f"sandbox does not work: {execution.status}: {execution.detail} {execution.stderr!r}"
        )
    features = report.features or set()
    return {
        "root": os.geteuid() == 0,
        "uid_dropped": int(execution.stdout) in SANDBOX_UIDS,
        "network_isolated": "net" in features,
        "pid_namespace": "pid" in features,
        "mount_namespace": "mnt" in features,
        "private_tmp": "mnt" in features,
        "readonly_root": "ro" in features,
        "proc_hidden": "hidepid" in features,
        "rlimits": True,
        "no_new_privs": True,
    }


def sandbox_capabilities() -> dict[str, bool]:
    """Which protections this machine gives (probed once by running a trivial program)."""
    return dict(_probe())


class SandboxPool:
    """Bounded parallel runner (default workers = os.cpu_count()); order-preserving map."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else os.cpu_count() or 1
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sandbox")

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`[fn(item) for item in items]`, at most `workers` at a time, in input order."""
        return list(self._executor.map(fn, items))

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
