"""A small, real OpenAI-compatible HTTP server for the backend's error-path tests.

`StubServer` listens on a free 127.0.0.1 port (stdlib `http.server`, one thread per connection)
and answers POST /v1/chat/completions and /v1/completions, and GET /v1/models. Each request is
scripted by its prompt (the last message's text, or the raw prompt): `script(prompt, [actions])`
queues what the next calls with that prompt get, in order, e.g. `[Status(500), Reply()]`; once a
prompt's queue is empty it gets `default` (an echo of the prompt). The server records every body
it received, the number of calls per prompt and the most requests in flight at once.

It does not run a model; the real-server tests use llama-server.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """A 200 with one choice per requested n (up to `choices` when set). `text=None` echoes the
    prompt; with n > 1 each choice's text ends in `#index`."""

    text: str | None = None
    finish_reason: str = "stop"
    reasoning: str | None = None
    delay: float = 0.0
    choices: int | None = None
    prompt_tokens: int = 7
    completion_tokens: int = 3


@dataclass(frozen=True)
class Status:
    """An error status with a JSON (dict) or plain-text (str) body and extra headers."""

    code: int
    body: dict[str, Any] | str = field(default_factory=lambda: {"error": {"message": "stub error"}})
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Malformed:
    """A 200 whose body is not JSON."""


@dataclass(frozen=True)
class Drop:
    """Headers promising a body, half of it, then the connection closes."""


@dataclass(frozen=True)
class Die:
    """The server stops: this connection closes unanswered, later connections are refused."""


Action = Reply | Status | Malformed | Drop | Die


class StubServer:
    def __init__(
        self, *, default: Action | None = None, max_n: int | None = None, models: list[dict] | None = None
    ):
        self.default: Action = default or Reply()
        self.max_n = max_n  # n above this gets llama-server's 400
        self.models = (
            models if models is not None else [{"id": "stub-model", "owned_by": "stub", "object": "model"}]
        )
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.auth: list[str | None] = []
        self.calls: defaultdict[str, int] = defaultdict(int)
        self.in_flight = 0
        self.max_in_flight = 0
        self.dead = False
        self._scripts: defaultdict[str, list[Action]] = defaultdict(list)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.stub = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if self.dead:
                return
            self.dead = True
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, prompt: str, actions: list[Action]) -> None:
        with self._lock:
            self._scripts[prompt].extend(actions)

    def _next(self, prompt: str) -> Action:
        with self._lock:
            self.calls[prompt] += 1
            queue = self._scripts[prompt]
            return queue.pop(0) if queue else self.default

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def prompt_of(body: dict[str, Any]) -> str:
    if "prompt" in body:
        return str(body["prompt"])
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


def reply_body(body: dict[str, Any], action: Reply) -> dict[str, Any]:
    prompt = prompt_of(body)
    n = int(body.get("n", 1))
    count = n if action.choices is None else min(n, action.choices)
    chat = "messages" in body
    choices = []
    for index in range(count):
        text = f"echo:{prompt}" if action.text is None else action.text
        if n > 1:
            text += f"#{index}"
        if chat:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if action.reasoning is not None:
                message["reasoning_content"] = action.reasoning
            choice = {"index": index, "message": message, "finish_reason": action.finish_reason}
        else:
            choice = {"index": index, "text": text, "finish_reason": action.finish_reason}
        choices.append(choice)
    usage = {
        "prompt_tokens": action.prompt_tokens,
        "completion_tokens": action.completion_tokens * count,
        "total_tokens": action.prompt_tokens + action.completion_tokens * count,
    }
    choices.reverse()  # servers need not list choices in index order
    return {"object": "chat.completion" if chat else "text_completion", "choices": choices, "usage": usage}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    @property
    def stub(self) -> StubServer:
        return self.server.stub  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._json(200, {"object": "list", "data": self.stub.models})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        if self.stub.dead:
            self._drop()
            return
        self.stub.bodies.append(body)
        self.stub.paths.append(self.path)
        self.stub.auth.append(self.headers.get("Authorization"))
        self.stub._enter()
        try:
            self._answer(body, self.stub._next(prompt_of(body)))
        finally:
            self.stub._leave()

    def _answer(self, body: dict[str, Any], action: Action) -> None:
        n = int(body.get("n", 1))
        if isinstance(action, Reply):
            time.sleep(action.delay)
            if self.stub.max_n is not None and n > self.stub.max_n:
                message = f"[json.exception.n_cmpl] Value must be between 1 <= value <= {self.stub.max_n}"
                self._json(400, {"error": {"code": 400, "message": message, "type": "invalid_request_error"}})
            else:
                self._json(200, reply_body(body, action))
        elif isinstance(action, Status):
            payload = action.body if isinstance(action.body, str) else json.dumps(action.body)
            self._send(action.code, payload.encode(), action.headers)
        elif isinstance(action, Malformed):
            self._send(200, b'{"choices": [{"message": ', {})
        elif isinstance(action, Drop):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"choices": [')
            self.wfile.flush()
            self._drop()
        elif isinstance(action, Die):
            self._drop()
            threading.Thread(target=self.stub.stop, daemon=True).start()

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _json(self, code: int, data: dict[str, Any]) -> None:
        self._send(code, json.dumps(data).encode(), {"Content-Type": "application/json"})

    def _send(self, code: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
