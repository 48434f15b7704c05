"""The code sandbox under attack: one test per hostile program, each checking the verdict and that the
harness is unharmed (it can still spawn processes, no process of a sandbox uid is left over)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tasks import sandbox, sandbox_uids
from tasks.sandbox import SAFE_PATH, Limits, SandboxPool, run_python, sandbox_capabilities
from tasks.sandbox_uids import SANDBOX_UIDS

pytestmark = pytest.mark.slow  # every test starts sandboxed interpreters

FAST = Limits(cpu_seconds=1, wall_seconds=10)
REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-test-0123456789abcdef"


@pytest.fixture(scope="module")
def caps() -> dict[str, bool]:
    return sandbox_capabilities()


def sandbox_processes() -> dict[int, list[int]]:
    """Live (non-zombie) processes owned by a sandbox uid, by uid."""
    found: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = {line.split(":")[0]: line.split()[1:] for line in status.splitlines() if ":" in line}
        uid = int(fields["Uid"][0])
        if uid in SANDBOX_UIDS and fields["State"][0] != "Z":  # zombies only await the system's init
            found.setdefault(uid, []).append(int(entry))
    return found


def leftover_processes() -> list[int]:
    """Processes of sandbox uids that no run holds a lease on (another harness may be running)."""
    if os.geteuid() != 0:
        return []
    leftovers = []
    for uid, pids in sandbox_processes().items():
        fd = os.open(sandbox_uids.lock_dir() / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # leased right now
        finally:
            os.close(fd)
        leftovers += [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    return leftovers


def assert_harness_unharmed() -> None:
    assert subprocess.run(["true"], check=False).returncode == 0
    assert leftover_processes() == []


def require(caps: dict[str, bool], *names: str) -> None:
    missing = [name for name in names if not caps[name]]
    if missing:
        pytest.skip(f"weaker sandbox on this machine: {', '.join(missing)} unavailable")


# Ordinary use ---------------------------------------------------------------------------------------


def test_stdin_args_and_files_round_trip() -> None:
    program = "import sys\ndata = sys.stdin.buffer.read()\nprint(data[::-1].decode(), sys.argv[1:], open('extra.txt').read())"
    result = run_python(program, stdin=b"abc\n", args=["x y", "--z=1"], files={"extra.txt": b"EXTRA"})
    assert result.status == "ok", result
    assert result.stdout == b"\ncba ['x y', '--z=1'] EXTRA\n"
    assert result.returncode == 0 and result.channel == b"" and result.cpu_seconds > 0


def test_channel_round_trip_and_absent_without_channel() -> None:
    program = "import os\ntry:\n    os.write(3, b'{\"passed\": 3}')\nexcept OSError as e:\n    print('no fd 3', e.errno)"
    with_channel = run_python(program, channel=True)
    assert (
        with_channel.status == "ok"
        and with_channel.channel == b'{"passed": 3}'
        and with_channel.stdout == b""
    )
    without = run_python(program)
    assert without.status == "ok" and without.channel == b"" and without.stdout.startswith(b"no fd 3")


def test_runtime_error_and_scrubbed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    program = "import json, os\nprint(json.dumps(dict(os.environ)))\nprint(os.getcwd())\nraise SystemExit(3)"
    result = run_python(program)
    assert result.status == "runtime_error" and result.returncode == 3 and "exit code 3" in result.detail
    env_line, cwd = result.stdout.decode().splitlines()
    env = json.loads(env_line)
    expected = {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE"}
    assert set(env) - {"LC_CTYPE"} == expected  # LC_CTYPE only where Python coerces a C locale
    assert env["PATH"] == SAFE_PATH and env["HOME"] == env["TMPDIR"] == cwd
    assert SECRET not in result.stdout.decode()


def test_temp_dir_removed_after_run_and_after_kill() -> None:
    program = "import os, sys, time\nprint(os.getcwd(), flush=True)\nopen('junk', 'w').write('x')\nif sys.argv[1:]:\n    time.sleep(60)"
    normal = run_python(program)
    killed = run_python(program, args=["hang"], limits=Limits(cpu_seconds=1, wall_seconds=1))
    assert normal.status == "ok" and killed.status == "timeout"
    for result in (normal, killed):
        workdir = Path(result.stdout.decode().strip())
        assert not workdir.exists() and not workdir.parent.exists()


# Attacks --------------------------------------------------------------------------------------------


def test_infinite_loop_times_out_on_cpu() -> None:
    result = run_python("while True:\n    pass", limits=FAST)
    assert result.status == "timeout" and "CPU" in result.detail, result
    assert 0.8 < result.cpu_seconds < 2.5 and result.wall_seconds < 5  # wait4 may read a bit under 1 s
    assert_harness_unharmed()


def test_ignoring_signals_does_not_escape_the_limits() -> None:
    program = (
        "import signal\nfor s in (signal.SIGTERM, signal.SIGALRM, signal.SIGXCPU, signal.SIGINT, signal.SIGHUP):\n"
        "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass"
    )
    result = run_python(program, limits=FAST)
    assert result.status == "timeout" and result.returncode == -signal.SIGKILL, result
    assert result.wall_seconds < 5
    assert_harness_unharmed()


def test_sleeping_program_hits_the_wall_backstop() -> None:
    result = run_python("import time\ntime.sleep(60)", limits=Limits(cpu_seconds=1, wall_seconds=1))
    assert result.status == "timeout" and "wall" in result.detail, result
    assert result.wall_seconds < 3
    assert_harness_unharmed()


def test_default_wall_backstop_rule() -> None:
    assert Limits().wall_limit == 3 * 6 + 5
    assert Limits(cpu_seconds=2).wall_limit == 11 and Limits(wall_seconds=4).wall_limit == 4
    assert Limits(cpu_seconds=0.5).cpu_rlimit == (1, 2)


def test_fork_bomb_is_contained() -> None:
    program = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    start = time.monotonic()
    result = run_python(program, limits=Limits(cpu_seconds=1, wall_seconds=3, processes=32))
    assert result.status == "timeout", result
    assert time.monotonic() - start < 8
    assert_harness_unharmed()
    assert run_python("print('alive')").stdout == b"alive\n"


def test_memory_bomb() -> None:
    program = "blocks = []\nwhile True:\n    blocks.append(bytearray(10**7))"
    result = run_python(program, limits=Limits(cpu_seconds=5, memory_bytes=256 * 1024**2))
    assert result.status == "memory", result
    assert_harness_unharmed()


def test_huge_output_is_capped() -> None:
    cap = 1024**2
    program = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)"
    result = run_python(program, limits=Limits(cpu_seconds=5, output_bytes=cap))
    assert result.status == "output_limit" and len(result.stdout) == cap, result.detail
    assert result.wall_seconds < 5
    assert_harness_unharmed()


def test_printing_success_is_only_data() -> None:
    program = "print('All tests passed')\nprint('{\"passed\": 100, \"total\": 100}')"
    result = run_python(program, channel=True)
    assert result.status == "ok" and result.channel == b""
    assert result.stdout == b'All tests passed\n{"passed": 100, "total": 100}\n'


def test_early_exit_zero_without_output() -> None:
    result = run_python("import sys\nsys.exit(0)\nprint('never')", channel=True)
    assert result.status == "ok" and result.stdout == b"" and result.channel == b""


def test_closed_stdout() -> None:
    result = run_python("import os\nos.close(1)\nprint('lost')")
    assert result.status in ("ok", "runtime_error") and result.stdout == b""
    assert_harness_unharmed()


def test_writing_outside_the_work_dir_fails(caps: dict[str, bool], tmp_path: Path) -> None:
    require(caps, "uid_dropped")
    tmp_path.chmod(0o755)
    targets = [tmp_path / "pwned.txt", REPO / "tests" / "pwned-by-sandbox.txt", Path("/pwned-by-sandbox.txt")]
    program = (
        "import sys\nfor path in sys.argv[1:]:\n    try:\n        open(path, 'w').write('x')\n        print('WROTE', path)\n"
        "    except OSError as e:\n        print('denied', path, type(e).__name__)"
    )
    result = run_python(program, args=[str(t) for t in targets])
    assert result.status == "ok" and b"WROTE" not in result.stdout, result.stdout
    assert not any(target.exists() for target in targets)
    assert_harness_unharmed()


def test_deleting_or_changing_harness_files_fails(caps: dict[str, bool]) -> None:
    require(caps, "uid_dropped")
    harness_file = REPO / "tasks" / "sandbox.py"
    digest = hashlib.sha256(harness_file.read_bytes()).hexdigest()
    victim_dir = Path(tempfile.mkdtemp(dir=REPO / "tests", prefix=".sandbox-victim-"))
    try:
        victim_dir.chmod(0o755)
        victim = victim_dir / "results.json"
        victim.write_text("{}")
        victim.chmod(0o644)
        program = (
            "import os, shutil, sys\nvictim, harness = sys.argv[1:]\nattempts = [\n"
            "    lambda: os.remove(victim), lambda: os.rename(victim, victim + '.x'),\n"
            "    lambda: shutil.rmtree(os.path.dirname(victim)), lambda: open(harness, 'a').close(),\n"
            "    lambda: os.chmod(harness, 0o777),\n]\nfor attempt in attempts:\n    try:\n"
            "        attempt()\n        print('SUCCEEDED')\n    except OSError as e:\n        print('denied', type(e).__name__)"
        )
        result = run_python(program, args=[str(victim), str(harness_file)])
        assert result.status == "ok" and b"SUCCEEDED" not in result.stdout, result.stdout
        assert victim.read_text() == "{}"
        assert hashlib.sha256(harness_file.read_bytes()).hexdigest() == digest
    finally:
        for path in sorted(victim_dir.rglob("*"), reverse=True):
            path.unlink()
        victim_dir.rmdir()
    assert_harness_unharmed()


def test_reading_the_harness_environment_fails(
    caps: dict[str, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", SECRET)
    program = (
        "import os, sys\nprint(os.environ.get('HF_TOKEN'))\n"
        "for pid in {os.getppid(), 1, int(sys.argv[1])}:\n    try:\n"
        "        print('READ', pid, open(f'/proc/{pid}/environ', 'rb').read())\n"
        "    except OSError as e:\n        print('denied', pid, type(e).__name__)"
    )
    result = run_python(program, args=[str(os.getpid())])
    assert result.status == "ok", result
    assert SECRET.encode() not in result.stdout and result.stdout.startswith(b"None\n")
    if caps["uid_dropped"] or caps["proc_hidden"]:
        assert b"READ" not in result.stdout, result.stdout


def test_network_is_unreachable(caps: dict[str, bool]) -> None:
    require(caps, "network_isolated")
    program = (
        "import socket, sys\ntry:\n    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=3)\n"
        "    print('CONNECTED')\nexcept OSError as e:\n    print('blocked', type(e).__name__)"
    )
    with socket.create_server(("127.0.0.1", 0)) as server:
        result = run_python(program, args=[str(server.getsockname()[1])])
        pending, _, _ = select.select([server], [], [], 0)  # a completed handshake waits in the backlog
    assert result.status == "ok" and result.stdout.startswith(b"blocked"), result.stdout
    assert pending == []


def test_private_tmp(caps: dict[str, bool]) -> None:
    require(caps, "private_tmp")
    name = f"evals-sandbox-probe-{os.getpid()}"
    program = (
        f"for d in ('/tmp', '/dev/shm', '/var/tmp'):\n    open(d + '/{name}', 'w').write('x')\nprint('ok')"
    )
    result = run_python(program)
    assert result.status == "ok" and result.stdout == b"ok\n", result
    assert not any(Path(d, name).exists() for d in ("/tmp", "/dev/shm", "/var/tmp"))


def test_killing_the_parent_or_the_harness_fails(caps: dict[str, bool]) -> None:
    if not (caps["uid_dropped"] or caps["pid_namespace"]):
        pytest.skip("weaker sandbox on this machine: neither uid drop nor PID namespace")
    bystander = subprocess.Popen(["sleep", "30"])
    program = (
        "import os, signal, sys\nharness, group, bystander = map(int, sys.argv[1:])\nattacks = [\n"
        "    lambda: os.kill(os.getppid(), signal.SIGKILL), lambda: os.killpg(group, signal.SIGKILL),\n"
        "    lambda: os.kill(harness, signal.SIGKILL), lambda: os.kill(bystander, signal.SIGKILL),\n"
        "    lambda: os.kill(-1, signal.SIGKILL), lambda: os.killpg(os.getpgrp(), signal.SIGKILL),\n]\n"
        "for attack in attacks:\n    try:\n        attack()\n    except OSError as e:\n"
        "        print('denied', type(e).__name__, flush=True)"
    )
    try:
        result = run_python(program, args=[str(os.getpid()), str(os.getpgrp()), str(bystander.pid)])
        assert bystander.poll() is None, "a harness process was killed"
    finally:
        bystander.kill()
        bystander.wait()
    assert result.status in ("ok", "runtime_error"), result
    assert_harness_unharmed()
    assert run_python("print(1)").stdout == b"1\n"


DETACH = (
    "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n"
    "    os._exit(0)\ntime.sleep(0.2)\nprint('parent done')"
)


def test_detached_children_are_killed(caps: dict[str, bool]) -> None:
    require(caps, "pid_namespace")
    result = run_python(DETACH, limits=FAST)
    assert result.status == "ok" and result.wall_seconds < 3, result
    assert_harness_unharmed()


def test_detached_children_are_swept_without_pid_namespace(
    caps: dict[str, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    require(caps, "uid_dropped", "mount_namespace")  # the interpreter may need the mount namespace
    monkeypatch.setattr(sandbox, "_NAMESPACES", ("net", "mnt"))
    result = run_python(DETACH, limits=FAST)
    assert result.status == "ok" and result.wall_seconds < 3, result
    assert_harness_unharmed()


# Pool -----------------------------------------------------------------------------------------------


def test_pool_preserves_order_and_runs_concurrently() -> None:
    def job(i: int) -> bytes:
        return run_python(f"import time\ntime.sleep(1)\nprint({i})").stdout

    start = time.monotonic()
    with SandboxPool(workers=2) as pool:
        outputs = pool.map(job, range(4))
    elapsed = time.monotonic() - start
    assert outputs == [b"0\n", b"1\n", b"2\n", b"3\n"]
    assert 2 <= elapsed < 3
    assert_harness_unharmed()


def test_pool_rejects_zero_workers_and_bad_file_names() -> None:
    with pytest.raises(ValueError):
        SandboxPool(workers=0)
    with pytest.raises(ValueError):
        run_python("pass", files={"../escape.py": b""})
    assert SandboxPool().workers == (os.cpu_count() or 1)


def test_sandbox_uses_the_current_interpreter() -> None:
    result = run_python("import sys\nprint(sys.version)\nprint(sys.flags.isolated)")
    assert result.stdout == f"{sys.version}\n1\n".encode()


def test_an_interpreter_inside_a_scratch_directory_stays_reachable(tmp_path: Path) -> None:
    """The harness's venv may live under /tmp (CI clones there), which the sandbox covers with a
    private tmpfs: the interpreter tree must be bound back or nothing can run."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    repo = Path(__file__).resolve().parents[1]
    code = (
        f"import sys; sys.path.insert(0, {str(repo)!r})\n"
        "from tasks.sandbox import run_python\n"
        "result = run_python('print(6 * 7)')\n"
        "print(result.status, result.stdout.decode().strip(), result.detail)"
    )
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split()[:2] == ["ok", "42"], out.stdout + out.stderr
