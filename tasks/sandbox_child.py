"""The sandbox's in-child supervisor: the code that runs between the harness and the program.

tasks/sandbox.py starts `python -I -S -c <this file's text> key=value...` in a new session. `-S`
means no site-packages, so this file may import only the standard library (a test parses its
imports and checks that). Process tree: B (the process the harness spawned) unshares the namespaces
it is asked for and forks C, the init of the new PID namespace, which sets up the mounts, forks D,
waits for it and reports on the status pipe; D applies the rlimits, drops to the sandbox uid and
execs the program (`python -I -B main.py args...`).

Status pipe protocol (one line each, read by tasks/sandbox.py): `caps _ <features...>`,
`exit <code> <cpu seconds> <wall fired 0|1>`, `signal <number> <cpu seconds> <wall fired 0|1>`,
`error <text>`.

The same text, run as `... -c <text> sweep=<uid>`, kills every process of a sandbox uid from a
process of that uid (used as root without a PID namespace).

What this file does not do: choose limits, mounts or uids (the harness passes them as arguments),
or judge the outcome (the harness classifies the report).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource
import signal
import sys


class Supervisor:
    """Processes B, C and D of the module docstring; `main()` is B's entry point."""

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


def sweep(uid: int) -> None:
    """Become `uid` and SIGKILL every process of it (kill(-1) reaches the caller's uid only)."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGKILL)


def main(argv: list[str]) -> None:
    if len(argv) == 1 and argv[0].startswith("sweep="):
        sweep(int(argv[0].partition("=")[2]))
    else:
        Supervisor(argv).main()


if __name__ == "__main__":
    main(sys.argv[1:])
