"""Find and run a local `llama-server` (llama.cpp's HTTP server) for one model.

`find_llama_server` locates the binary (explicit path, `$EVALS_LLAMA_SERVER`, `llama-server` on
PATH, or the newest build made by `scripts/build_llama_cpp.sh` under `$EVALS_LLAMA_CPP_HOME`);
`llama_cpp_source` finds the llama.cpp sources that build kept (the GGUF converter).
`LlamaServer` starts the binary on a free loopback port with its own log file, waits for
`/health`, and stops it again: on `stop()`, on leaving a `with` block, when garbage collected, at
interpreter exit, and (Linux, when started from the main thread) when the harness process dies.
The server does not see `LLAMA_ARG_*` environment variables (llama.cpp reads them as arguments):
every setting is on its command line, where the backends can record it.

It does not talk the OpenAI protocol, build llama.cpp or convert models: see `runners.openai`,
`scripts/build_llama_cpp.sh` and `runners.gguf_convert`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

BINARY = "llama-server"
BUILD_SCRIPT = "scripts/build_llama_cpp.sh"
HOST = "127.0.0.1"
_BIND_ERRORS = ("address already in use", "couldn't bind", "failed to bind")
# Loopback is never reached through a proxy ($http_proxy would otherwise apply to /health).
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LlamaServerNotFound(ValueError):
    """No llama-server binary could be found."""


class LlamaServerError(RuntimeError):
    """llama-server exited or did not become healthy in time."""


# --- locating llama.cpp -------------------------------------------------------------------


def llama_cpp_home() -> Path:
    """The root under which `scripts/build_llama_cpp.sh` keeps one build per version."""
    if os.environ.get("EVALS_LLAMA_CPP_HOME"):
        return Path(os.environ["EVALS_LLAMA_CPP_HOME"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "evals" / "llama.cpp"


def cached_builds() -> list[Path]:
    """Complete builds under `llama_cpp_home()`, newest version first."""
    root = llama_cpp_home()
    if not root.is_dir():
        return []
    builds = [p for p in root.iterdir() if (p / ".complete").is_file() and (p / "bin" / BINARY).is_file()]
    return sorted(builds, key=lambda p: _version_key(p.name), reverse=True)


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


def locate_tool(
    binary: str, given: tuple[tuple[str, str | Path | None], ...], not_found: type[Exception]
) -> Path | None:
    """A llama.cpp tool: the first set path of `given` ((origin, path) pairs, e.g. an option then an
    environment variable), else `binary` on PATH, else the newest cached build that has it; None when
    it is nowhere. A given path that is not an executable file raises `not_found` naming its origin."""
    for origin, candidate in given:
        if candidate:
            path = Path(candidate).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise not_found(f"{origin} {str(candidate)!r} is not an executable {binary} binary")
            return path
    on_path = shutil.which(binary)
    if on_path:
        return Path(on_path)
    return next((b / "bin" / binary for b in cached_builds() if (b / "bin" / binary).is_file()), None)


def find_llama_server(explicit: str | None = None) -> Path:
    """The llama-server binary: `explicit` > $EVALS_LLAMA_SERVER > PATH > newest cached build."""
    given = (("server_binary", explicit), ("EVALS_LLAMA_SERVER", _env("EVALS_LLAMA_SERVER")))
    found = locate_tool(BINARY, given, LlamaServerNotFound)
    if found is None:
        raise LlamaServerNotFound(
            f"llama-server not found (not on PATH, no build under {llama_cpp_home()}); build it with "
            f"{BUILD_SCRIPT} or pass the server_binary option (or set EVALS_LLAMA_SERVER)"
        )
    return found


def llama_cpp_source() -> Path | None:
    """The `src/` directory of the newest cached build that kept llama.cpp's GGUF converter."""
    for build in cached_builds():
        if (build / "src" / "convert_hf_to_gguf.py").is_file():
            return build / "src"
    return None


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


@functools.cache
def server_version(binary: str) -> str:
    """`llama-server --version` as one line, e.g. "version: 1 (4ce1a2e) built with GNU 12.2.0"."""
    try:
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LlamaServerError(f"cannot run {binary} --version ({exc})") from exc
    lines = [line.strip() for line in (result.stdout + "\n" + result.stderr).splitlines() if line.strip()]
    version = next((line for line in lines if line.startswith("version:")), None)
    if version is None:
        raise LlamaServerError(f"{binary} --version printed no version line; is it a llama-server binary?")
    built = next((line for line in lines if line.startswith("built with")), "")
    return f"{version} {built}".strip()


# --- running a server ---------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on the loopback interface that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def last_log_line(path: Path) -> str:
    """The last line that looks like an error (else the last non-empty line) of a log file."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    errors = [line for line in lines if re.search(r"error|failed|invalid|unknown|cannot", line, re.I)]
    return (errors or lines or ["(empty log)"])[-1]


def server_environment() -> dict[str, str]:
    """This process's environment minus `LLAMA_ARG_*` settings, which llama-server would read as
    arguments: what changes outputs is on the command line (and in the fingerprint) only."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")}


def _die_with_parent() -> None:  # runs in the child between fork and exec (Linux only)
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop_process(process: subprocess.Popen[bytes], log: IO[bytes] | None, log_dir: str | None) -> None:
    """Terminate, wait a bounded time, kill; close and remove the private log. Safe to repeat."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    if log is not None and not log.closed:
        log.close()
    if log_dir is not None:
        shutil.rmtree(log_dir, ignore_errors=True)


class LlamaServer:
    """One llama-server process serving `model` on 127.0.0.1 (see the module docstring).

    `parallel` is the number of slots (concurrent sequences); `ctx_size` the total KV context
    (split across slots unless `--kv-unified` is among `extra_args`). `log_path` keeps the log
    there; by default it goes to a private temporary file removed on `stop()`.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        mmproj: str | Path | None = None,
        parallel: int = 4,
        ctx_size: int = 4096,
        threads: int | None = None,
        seed: int = 0,
        extra_args: Sequence[str] = (),
        binary: str | Path | None = None,
        startup_timeout: float = 120.0,
        log_path: str | Path | None = None,
    ):
        self.model = _existing_file(model, "model")
        self.mmproj = _existing_file(mmproj, "mmproj") if mmproj is not None else None
        if parallel < 1 or ctx_size < 1 or (threads is not None and threads < 1):
            raise ValueError("parallel, ctx_size and threads must be positive integers")
        self.parallel, self.ctx_size, self.threads, self.seed = parallel, ctx_size, threads, seed
        self.extra_args = tuple(str(arg) for arg in extra_args)
        self.binary = find_llama_server(str(binary) if binary is not None else None)
        self.startup_timeout = startup_timeout
        self._requested_log = Path(log_path) if log_path is not None else None
        self.log_path: Path | None = None
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def version(self) -> str:
        return server_version(str(self.binary))

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise LlamaServerError("llama-server is not started; call start() first")
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self, port: int) -> list[str]:
        """The full command line for `port`."""
        args = [str(self.binary), "-m", str(self.model), "--host", HOST, "--port", str(port)]
        args += ["-np", str(self.parallel), "-c", str(self.ctx_size), "--seed", str(self.seed)]
        args += ["--jinja", "--no-webui", "--no-warmup"]
        if self.mmproj is not None:
            args += ["--mmproj", str(self.mmproj)]
        if self.threads is not None:
            args += ["-t", str(self.threads), "-tb", str(self.threads)]
        return args + list(self.extra_args)

    def start(self) -> LlamaServer:
        """Spawn the server and wait until `/health` answers 200; retries a port taken meanwhile."""
        if self.running:
            return self
        for attempt in range(3):
            self._spawn(free_port())
            try:
                self._wait_healthy()
                return self
            except LlamaServerError as exc:
                line = str(exc).lower()
                self.stop()
                if attempt == 2 or not any(marker in line for marker in _BIND_ERRORS):
                    raise
        raise AssertionError("unreachable")

    def _spawn(self, port: int) -> None:
        if self._requested_log is not None:
            log_dir, self.log_path = None, self._requested_log
        else:
            log_dir = tempfile.mkdtemp(prefix="llama-server-")
            self.log_path = Path(log_dir) / "server.log"
        log = self.log_path.open("wb")
        main_thread = threading.current_thread() is threading.main_thread()
        try:
            self.process = subprocess.Popen(
                self.command(port),
                stdin=subprocess.DEVNULL,
                env=server_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" and main_thread else None,
            )
        except OSError as exc:  # e.g. the binary is not executable: no log handle or folder left behind
            log.close()
            if log_dir is not None:
                shutil.rmtree(log_dir, ignore_errors=True)
            raise LlamaServerError(f"cannot start {self.binary}: {exc.strerror or exc}") from exc
        self.port = port
        self._finalizer = weakref.finalize(self, _stop_process, self.process, log, log_dir)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.05
        while True:
            assert self.process is not None and self.log_path is not None
            code = self.process.poll()
            if code is not None:
                raise LlamaServerError(
                    f"llama-server exited with code {code} during startup: {last_log_line(self.log_path)}"
                )
            if self._healthy():
                return
            if time.monotonic() > deadline:
                raise LlamaServerError(
                    f"llama-server not healthy after {self.startup_timeout:g} s (raise startup_timeout?): "
                    f"{last_log_line(self.log_path)}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _healthy(self) -> bool:
        try:
            with _NO_PROXY.open(f"{self.base_url}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):  # refused while binding, 503 while loading
            return False

    def stop(self) -> None:
        """Terminate the server (bounded wait, then kill); idempotent."""
        if self._finalizer is not None:
            self._finalizer()  # runs _stop_process once
        self.port = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.base_url if self.running else "stopped"
        return f"LlamaServer({self.model.name}, {state})"


def _existing_file(path: str | Path, what: str) -> Path:
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise ValueError(f"{what} file {str(path)!r} does not exist; pass the path of a .gguf file")
    return resolved.resolve()
