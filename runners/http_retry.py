"""The HTTP plumbing of the OpenAI-compatible client (`runners.openai`): what a failed call was,
whether and when to try it again, the message a server put in an error body, and the background
thread whose asyncio loop runs the calls.

Retried (`Transient`): 429 (honouring Retry-After, capped at 300 s), 5xx, malformed JSON, dropped
or refused connections and timeouts, with exponential backoff and jitter (`RetryPolicy`). Given up
(`RequestFailed`): anything else, and a Transient once the retries are spent. It sends no request
itself and knows nothing of payloads or Completions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

_MAX_DELAY = 60.0
_MAX_RETRY_AFTER = 300.0

# --- what failed, and when to try again ---------------------------------------------------


class RequestFailed(Exception):
    """A call that failed for good; `reason` is one line, `timeout` says it ran out of time."""

    def __init__(self, reason: str, *, status: int | None = None, timeout: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.timeout = timeout


class Transient(RequestFailed):
    """A failure worth retrying (429, 5xx, connection trouble, timeout, malformed JSON)."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        timeout: bool = False,
        retry_after: float | None = None,
        refused: bool = False,
    ) -> None:
        super().__init__(reason, status=status, timeout=timeout)
        self.retry_after = retry_after
        self.refused = refused  # no connection could be made at all


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt a waits backoff * 2**a * U(0.5, 1), at most 60 s;
    a server's Retry-After (capped at 300 s) replaces the computed wait."""

    max_retries: int = 4
    backoff: float = 1.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), _MAX_RETRY_AFTER)
        return min(self.backoff * 2**attempt, _MAX_DELAY) * random.uniform(0.5, 1.0)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date (None when absent or unreadable)."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def server_message(response: httpx.Response) -> str:
    """The error message a server put in its body (OpenAI, vLLM, FastAPI or llama-server shape)."""
    try:
        data = response.json()
    except ValueError:
        return one_line(response.text) or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return one_line(str(error["message"]))
        for value in (error, data.get("message"), data.get("detail")):
            if value:
                return one_line(value if isinstance(value, str) else json.dumps(value))
    return one_line(response.text)


def n_limit(message: str) -> int | None:
    """The n limit an error names ("... <= 2"), if any."""
    found = re.findall(r"<=\s*(\d+)", message)
    return int(found[-1]) if found else None


# --- the background loop ------------------------------------------------------------------


class LoopThread:
    """Runs one coroutine on a private asyncio loop in a daemon thread; `stop()` cancels it and
    waits for the thread (bounded)."""

    def __init__(self, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._main = main
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="openai-client", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._task = self._loop.create_task(self._main())
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                self._loop.call_soon_threadsafe(self._cancel)
            self._thread.join(timeout)
