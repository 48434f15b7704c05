"""A deterministic stand-in model behind a real OpenAI-compatible HTTP server, for the reliability
suite's `evals run` child processes (backend "openai").

Its answer is a function of the request (messages with their media bytes, seed and token budget),
written to exercise every task: a multiple-choice letter ("The answer is (X)", "Answer: X"), a
`\\boxed{}` integer on two requests in three (so AIME asks its "last chance" follow-up on the rest),
a fenced Python program (LiveCodeBench runs it in the sandbox) and reasoning in `reasoning_content`.
The server counts every generation it served per request identity: that is how the tests tell a
completion generated twice. `unique=True` appends a serial number to each answer, so two
generations of one request differ; `delay` slows each answer (to make two runs overlap).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_ID = "reliability-model"


def identity(body: dict[str, Any]) -> str:
    """What makes two requests the same request for this model."""
    same = {k: body.get(k) for k in ("messages", "prompt", "seed", "max_tokens", "temperature", "top_p")}
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()


def answer(ident: str) -> tuple[str, str]:
    """(final answer, reasoning) for a request identity."""
    h = int(ident[:12], 16)
    letter = "ABCD"[h % 4]
    boxed = f"\\boxed{{{h % 1000}}}\n" if h % 3 else ""
    code = "```python\nimport sys\nprint(sys.stdin.read().strip())\n```\n" if h % 2 else ""
    text = f"The cat sat on the mat {h % 97}. The answer is ({letter}).\nAnswer: {letter}\n{boxed}{code}"
    return text, f"thinking about {ident[:8]}"


class ModelServer:
    def __init__(self, *, unique: bool = False, delay: float = 0.0) -> None:
        self.unique = unique
        self.delay = delay
        self.generations: Counter[str] = Counter()  # request identity -> times generated
        self.auth: set[str] = set()  # Authorization headers received
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.model = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.generations.values())

    def twice(self) -> int:
        """Generations beyond the first of each request identity."""
        with self._lock:
            return sum(n - 1 for n in self.generations.values())

    def __enter__(self) -> ModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        ident = identity(body)
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.generations[ident] += 1
            serial = sum(self.generations.values())
        text, reasoning = answer(ident)
        if self.unique:
            text += f"\n(generation {serial})"
        usage = {"prompt_tokens": 11, "completion_tokens": len(text.split()), "total_tokens": 0}
        if "prompt" in body:
            choice: dict[str, Any] = {"index": 0, "text": text, "finish_reason": "stop"}
            return {"object": "text_completion", "choices": [choice], "usage": usage}
        message = {"role": "assistant", "content": text, "reasoning_content": reasoning}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return {"object": "chat.completion", "choices": [choice], "usage": usage}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._json({"object": "list", "data": [{"id": MODEL_ID, "object": "model", "owned_by": "tests"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.model.auth.add(self.headers.get("Authorization") or "")  # type: ignore[attr-defined]
        self._json(self.server.model.reply(body))  # type: ignore[attr-defined]

    def _json(self, data: dict[str, Any]) -> None:
        blob = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        self.wfile.write(blob)
