"""OpenAI-compatible HTTP backend (`OpenAIBackend`, backend name "openai").

Sends each Request to a running server (`POST {base_url}/chat/completions`, or `/completions`
for raw prompts; payloads from `runners.chat_wire`) with bounded concurrency, and yields each
Completion the moment its response arrives. The HTTP client (httpx.AsyncClient) runs on an asyncio
loop in a background thread; results reach the caller through a queue. Closing the generator early
cancels the requests still in flight.

Failures stay per request: 429 (honouring Retry-After), 5xx, malformed JSON, dropped or refused
connections and timeouts are retried with exponential backoff and jitter (`runners.http_retry`);
a request that exhausts its retries, gets another 4xx (quoted in the error) or has unreadable
media becomes an error Completion (finish_reason "timeout" when it ran out of time) and the run
goes on. Once one request has spent its retries on refused connections (the server died), the
others fail at their first refused connection instead of each waiting out its own retries; one
that gets through resets this.

`use_n=True` sends the repeats of one prompt (requests identical except for `repeat` and a seed
that rises by one per repeat, as tasks build them) as one call with `n=k` and the first seed s.
Choice i is then sampled with seed s+i on llama-server (`add_child` in tools/server/server-task.h;
verified here: each choice equals the separate request with that seed) and on vLLM v1
(`ParentRequest._get_child_sampling_params`, read, not run), so the cache, which files choice i
under repeat i's own seed, stays truthful there; a server that seeds choices otherwise would break
that, so keep use_n off for other servers unless checked. llama-server allows n only up to its
slot count (`-np`) and answers 400 above it; the backend then splits the group (to the limit the
error names, else one per call) and keeps that cap for the rest of the run. A server that returns
fewer choices than asked gets the rest as separate requests.

What each server supports (V = verified here against the real server, tests/test_openai_backend.py;
D = read from the server's docs or source, not run here; "-" = not supported per its docs/source):

| server          | image_url      | input_audio         | n                  | seed | chat_template_kwargs |
|-----------------|----------------|---------------------|--------------------|------|----------------------|
| llama-server    | V (--mmproj)   | V (--mmproj)        | V (<= -np slots)   | V    | V (enable_thinking)  |
| vLLM serve      | D              | D (audio models)    | D                  | D    | D                    |
| SGLang          | D              | D? (audio models)   | D                  | D    | D                    |
| Ollama /v1      | D              | -                   | - (one choice)     | D    | - (reasoning_effort) |
| LM Studio       | D (VLMs)       | -                   | -                  | D    | -                    |
| mlx-lm server   | - (text only)  | -                   | -                  | D    | D                    |

With n > 1, llama-server reports usage for the first choice only (recognised by its `timings`
field) and vLLM over all choices; per-choice completion_tokens are estimates then (`share_usage`).

It does not start servers (the llama.cpp backend subclasses this one to manage llama-server),
stream tokens, count tokens itself, or cache: the runner caches and shows progress; `progress`
here only controls one-line notices on stderr about retries and n fallbacks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import queue
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from evals.schema import BackendOptions, Completion, Request, build_options, option
from runners import chat_wire
from runners.http_retry import (
    LoopThread,
    RequestFailed,
    RetryPolicy,
    Transient,
    n_limit,
    one_line,
    retry_after_seconds,
    server_message,
)
from runners.outputs import error_completion
from runners.repeats import RepeatGroup, group_repeats, split_group

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_MODEL_FIELDS = ("id", "owned_by", "meta", "max_model_len", "parent")
_DONE = object()


@dataclass(frozen=True)
class OpenAIOptions(BackendOptions):
    """The "openai" backend's options (`--backend-opt KEY=VALUE`)."""

    base_url: str = option(DEFAULT_BASE_URL, "the server's OpenAI-compatible root, ending in /v1")
    api_key: str | None = field(
        default=None,
        repr=False,  # never printed
        metadata={"help": "bearer token (default: $OPENAI_API_KEY; none for a local server)"},
    )
    concurrency: int = option(8, "requests in flight at once")
    timeout: float = option(600.0, "seconds one HTTP call may take before it is retried")
    max_retries: int = option(4, "retries of a call that failed transiently (429, 5xx, connection, timeout)")
    retry_backoff: float = option(1.0, "base of the exponential backoff between retries, in seconds")
    use_n: bool = option(
        False, "send the repeats of one prompt as one call with n choices (llama-server, vLLM)"
    )
    extra_body: Mapping[str, Any] | str | None = option(
        None, 'JSON object merged into every request body, e.g. {"min_p": 0.05} (part of the fingerprint)'
    )


# --- the backend --------------------------------------------------------------------------


class OpenAIBackend:
    """Run Requests against an OpenAI-compatible server (see the module docstring)."""

    name = "openai"

    options_type: type[BackendOptions] = OpenAIOptions
    takes_image_budget = False  # the server decides how many soft tokens an image gets
    options: BackendOptions

    def __init__(self, model: str, options: OpenAIOptions | None = None, **overrides: Any) -> None:
        build_options(OpenAIOptions, overrides, owner=f"backend '{self.name}'")  # names and types
        opts = dataclasses.replace(options or OpenAIOptions(), **overrides)
        self.options = opts
        concurrency, timeout, max_retries = opts.concurrency, opts.timeout, opts.max_retries
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(
                f"concurrency must be a whole number >= 1, got {concurrency!r}; e.g. concurrency=8"
            )
        if not timeout or timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}; e.g. timeout=600")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(
                f"max_retries must be a whole number >= 0, got {max_retries!r}; e.g. max_retries=4"
            )
        if opts.retry_backoff < 0:
            raise ValueError(
                f"retry_backoff must be >= 0 seconds, got {opts.retry_backoff!r}; e.g. retry_backoff=1"
            )
        self.model = model
        self.base_url = opts.base_url
        self.api_key = os.environ.get("OPENAI_API_KEY", "") if opts.api_key is None else opts.api_key
        self.concurrency = concurrency
        self.timeout = float(timeout)
        self.retry = RetryPolicy(max_retries, float(opts.retry_backoff))
        self.use_n = bool(opts.use_n)
        self.extra_body = _extra_body(opts.extra_body)
        self.progress = opts.progress
        self.n_cap: int | None = None  # the largest n the server accepted, once it refused one
        self.unreachable = False  # a request spent its retries on refused connections, none got through since
        self._fingerprint: dict[str, Any] | None = None
        self._location: dict[str, Any] = {}  # facts _server_identity found that do not change outputs

    @property
    def base_url(self) -> str:
        return self._base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"base_url {value!r} is not an http(s) URL; e.g. base_url=http://127.0.0.1:8000/v1"
            )
        if parts.username or parts.password:  # it would land in run.json and error messages
            raise ValueError(
                "base_url must not carry credentials; pass the key as api_key (or $OPENAI_API_KEY)"
            )
        self._base_url = value.rstrip("/")

    # --- identity ---

    def fingerprint(self) -> dict[str, Any]:
        """Backend, served model name, what the server says about it (computed once) and
        extra_body when set; the URL, a served file path and the name asked for, where it differs,
        are under "location" (not part of the cache key)."""
        if self._fingerprint is None:
            server = self._server_identity()
            served = server.get("served_model", {}).get("id", self.model)
            location = {"base_url": self.base_url, **self._location}
            if served != self.model:  # llama-server answers to any name: the name asked is no identity
                location["requested_model"] = self.model
            self._fingerprint = {
                "backend": self.name,
                "model": served,
                "server": server,
                "location": location,
            }
            if self.extra_body:  # sampling or template settings sent with every request
                self._fingerprint["extra_body"] = self.extra_body
        return self._fingerprint

    def _server_identity(self) -> dict[str, Any]:
        """What /models reports about the served model (id, owned_by, meta, max_model_len; an id
        that is a file path is cut to its file name, the path goes under "location"). A subclass
        adds what it knows (server version, quantization)."""
        served = self.served_models()
        entry = next((m for m in served if m.get("id") == self.model), None)
        if entry is None and len(served) == 1:
            entry = served[0]  # single-model servers (llama-server) answer to any model name
        if entry is None:
            names = ", ".join(str(m.get("id")) for m in served) or "none"
            raise ValueError(
                f"model {self.model!r} is not served at {self.base_url} (served: {names}); pass one of them"
            )
        served_model = {k: entry[k] for k in _MODEL_FIELDS if k in entry}
        served_id = str(entry.get("id", ""))
        if served_id.startswith(("/", "~", ".")) or "\\" in served_id:  # a file path (llama-server)
            served_model["id"] = served_id.replace("\\", "/").rsplit("/", 1)[-1]
            self._location["served_model_path"] = served_id
        return {"served_model": served_model}

    def served_models(self) -> list[dict[str, Any]]:
        """The entries of GET {base_url}/models (connection trouble retried as for generation)."""
        for attempt in range(self.retry.max_retries + 1):
            try:
                with httpx.Client(
                    headers=self._headers(), timeout=30.0, trust_env=self._trust_env()
                ) as client:
                    response = client.get(f"{self.base_url}/models")
                break
            except httpx.TransportError as exc:
                if attempt == self.retry.max_retries:
                    raise ValueError(
                        f"cannot reach {self.base_url}/models ({type(exc).__name__}); "
                        "start the server or fix base_url"
                    ) from exc
                time.sleep(self.retry.delay(attempt))
        if response.status_code != 200:
            raise ValueError(
                f"GET {self.base_url}/models answered HTTP {response.status_code}: "
                f"{server_message(response)}; "
                "check base_url and api_key"
            )
        try:
            data = response.json().get("data")
        except (ValueError, AttributeError):
            data = None
        if not isinstance(data, list):
            raise ValueError(
                f"GET {self.base_url}/models did not return a model list; is base_url the /v1 root?"
            )
        return [m for m in data if isinstance(m, dict)]

    # --- generation ---

    def generate(self, requests: Sequence[Request]) -> Iterator[Completion]:
        """Yield one Completion per request as each finishes (in any order)."""
        jobs = group_repeats(requests, use_n=self.use_n, n_cap=self.n_cap)
        if not jobs:
            return
        results: queue.Queue[Any] = queue.Queue()
        loop = LoopThread(lambda: self._serve(jobs, results.put))
        loop.start()
        try:
            while True:
                item = results.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            loop.stop()

    async def _serve(self, jobs: Sequence[RepeatGroup], emit: Callable[[Any], None]) -> None:
        """Run every job with `concurrency` workers; emit Completions, then _DONE (or the exception
        that stopped the run)."""
        try:
            async with self.http_client() as client:
                pending: asyncio.Queue[RepeatGroup] = asyncio.Queue()
                for job in jobs:
                    pending.put_nowait(job)
                workers = [
                    asyncio.create_task(self._worker(client, pending, emit))
                    for _ in range(min(self.concurrency, len(jobs)))
                ]
                try:
                    await pending.join()
                finally:
                    for worker in workers:
                        worker.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
            emit(_DONE)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            emit(exc)

    def http_client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        return httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=self._headers(),
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 30.0)),
            limits=limits,
            trust_env=self._trust_env(),
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _trust_env(self) -> bool:
        """Proxy settings from the environment apply, except to a server on this machine."""
        return urlsplit(self.base_url).hostname not in _LOOPBACK

    async def _worker(
        self, client: httpx.AsyncClient, pending: asyncio.Queue[RepeatGroup], emit: Callable
    ) -> None:
        while True:
            job = await pending.get()
            try:
                completions, retry = await self.run_job(client, job)
                for completion in completions:
                    emit(completion)
                for part in retry:
                    pending.put_nowait(part)
            except Exception as exc:  # a bug must not hang the run: fail this job's requests
                for request in job.requests:
                    emit(error_completion(request, exc))
            finally:
                pending.task_done()

    async def run_job(
        self, client: httpx.AsyncClient, job: RepeatGroup
    ) -> tuple[list[Completion], list[RepeatGroup]]:
        """One HTTP call: the finished Completions, and the jobs still to run (n fallback)."""
        start = time.perf_counter()
        try:
            body = chat_wire.payload(job.first, self.model, n=job.n, extra_body=self.extra_body)
            response = await self.post(client, chat_wire.endpoint(job.first), body)
            completions = self.completions(job, response, time.perf_counter() - start)
        except RequestFailed as exc:
            # a 4xx other than 429 (rate limits that outlasted the retries) may be the n refused
            if job.n > 1 and exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                return [], self._n_refused(job, exc.reason)
            seconds = (time.perf_counter() - start) / job.n
            return [
                error_completion(r, exc.reason, seconds=seconds, timed_out=exc.timeout) for r in job.requests
            ], []
        except ValueError as exc:  # unreadable media, an answer in an unknown shape
            return [error_completion(r, exc) for r in job.requests], []
        missing = job.requests[len(completions) :]
        if missing:
            self._lower_n_cap(
                max(len(completions), 1), f"server returned {len(completions)} of n={job.n} choices"
            )
        return completions, [RepeatGroup((r,)) for r in missing]

    def _n_refused(self, job: RepeatGroup, reason: str) -> list[RepeatGroup]:
        limit = n_limit(reason)
        cap = limit if limit is not None and 1 <= limit < job.n else 1
        self._lower_n_cap(cap, reason)
        return split_group(job, cap)

    def _lower_n_cap(self, cap: int, reason: str) -> None:
        if self.n_cap is None or cap < self.n_cap:
            self.n_cap = cap
            self._notice(f"n > {cap} not accepted ({reason}); sending at most n={cap} per call")

    async def post(self, client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST with retries; the parsed JSON object, or RequestFailed once retries are spent."""
        for attempt in range(self.retry.max_retries + 1):
            try:
                return await self.attempt(client, path, body)
            except Transient as exc:
                if exc.refused and self.unreachable:  # a dead server: fail fast, not retries x requests
                    raise RequestFailed(
                        f"{exc.reason} (not retried: the server keeps refusing connections)"
                    ) from exc
                if attempt == self.retry.max_retries:
                    self.unreachable = exc.refused
                    raise RequestFailed(
                        f"{exc.reason} (gave up after {attempt + 1} attempts)",
                        status=exc.status,
                        timeout=exc.timeout,
                    ) from exc
                delay = self.retry.delay(attempt, exc.retry_after)
                self._notice(
                    f"retry {attempt + 1}/{self.retry.max_retries} of {path} in {delay:.1f} s: {exc.reason}"
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def attempt(self, client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One POST: the parsed JSON object; Transient for what is worth retrying."""
        try:
            async with asyncio.timeout(self.timeout):
                response = await client.post(path, json=body)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise Transient(f"no response from {path} within {self.timeout:g} s", timeout=True) from exc
        except httpx.TransportError as exc:
            detail = one_line(str(exc)) or "connection failed"
            refused = isinstance(exc, httpx.ConnectError)
            raise Transient(f"{type(exc).__name__} on {path}: {detail}", refused=refused) from exc
        self.unreachable = False
        status = response.status_code
        if status == 429 or status >= 500:
            raise Transient(
                f"HTTP {status} from {path}: {server_message(response)}",
                status=status,
                retry_after=retry_after_seconds(response.headers.get("retry-after")),
            )
        if status >= 400:
            raise RequestFailed(f"HTTP {status} from {path}: {server_message(response)}", status=status)
        try:
            data = response.json()
        except ValueError as exc:
            raise Transient(
                f"malformed JSON from {path}: {one_line(response.text, 80)!r}", status=status
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
            raise RequestFailed(
                f"response from {path} has no choices: {one_line(response.text, 120)}", status=status
            )
        return data

    def completions(self, job: RepeatGroup, response: dict[str, Any], seconds: float) -> list[Completion]:
        """The job's Completions from one response, in choice-index order (fewer when the server
        returned fewer choices than asked)."""
        choices = sorted(response["choices"], key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
        if not all(isinstance(c, dict) for c in choices):
            raise ValueError("response choices are not JSON objects; the server answered in an unknown shape")
        choices = choices[: job.n]
        usage = response.get("usage")
        usages: Sequence[Any]
        if len(choices) == 1:
            usages = [usage]
        else:
            covers_all = self.usage_covers_all_choices(response)
            usages = chat_wire.share_usage(
                usage, choices, job.first.sampling.max_tokens, covers_all=covers_all
            )
        each = seconds / len(choices)
        return [
            chat_wire.completion_from_choice(request.key, choice, choice_usage, each)
            for request, choice, choice_usage in zip(job.requests, choices, usages, strict=False)
        ]

    def usage_covers_all_choices(self, response: dict[str, Any]) -> bool:
        """Whether an n > 1 response's usage counts all choices (OpenAI, vLLM) rather than the
        first only (llama-server, recognised by its `timings` field)."""
        return "timings" not in response

    def _notice(self, text: str) -> None:
        if self.progress:
            print(f"openai backend: {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Nothing is held between generate() calls; present for the Backend protocol."""


def _extra_body(value: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """extra_body as a dict; a string (from the command line) is parsed as a JSON object."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"extra_body is not valid JSON ({exc.msg}); pass a JSON object, e.g. '{{\"min_p\": 0.05}}'"
            ) from exc
    if not isinstance(value, Mapping):
        raise ValueError(
            f'extra_body must be a JSON object, got {type(value).__name__}; e.g. {{"min_p": 0.05}}'
        )
    return dict(value)
