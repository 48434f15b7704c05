"""Run untrusted Python programs (model-written code) in a fresh, limited, killable process.

Every `run_python` call writes the program as `main.py` into a fresh directory and starts
`sys.executable -I -B main.py` under a small supervisor (tasks/sandbox_child.py, stdlib only; uid
leases in tasks/sandbox_uids.py). `-I` ignores PYTHON* variables and the user site; it also implies
`-P`, so the script directory is *not* on `sys.path` (a driver that imports an extra file does
`sys.path.insert(0, "")`). The venv's site-packages stay importable.

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

import functools
import math
import os
import pwd
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

from tasks.sandbox_uids import SANDBOX_UIDS, await_uid_exit, child_source, sweep_uid, uid_lease

T = TypeVar("T")
R = TypeVar("R")

Status = Literal["ok", "runtime_error", "timeout", "memory", "output_limit", "sandbox_error"]

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
# Harness side. The supervisor (tasks/sandbox_child.py) reports on the status pipe; see its docstring.


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
                sweep_uid(uid)
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
            [sys.executable, "-I", "-S", "-c", child_source(), *boot],
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
        sweep_uid(uid)
        await_uid_exit(uid)
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
        with uid_lease() as uid, _staging(source, files, stdin, uid) as workdir:
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
