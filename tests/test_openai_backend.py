"""The OpenAI-compatible backend (runners/openai.py) and its wire format (runners/chat_wire.py).

Error paths run against a real scripted HTTP server on loopback (tests/openai_stub_server.py):
retries are counted on the server side, every run finishes, failed requests carry one-line
reasons. The `slow` tests run a real llama-server (SmolLM2-135M-Instruct, and the tiny Gemma 4
GGUF with its projector for image and audio). Nothing is mocked.
"""

from __future__ import annotations

import base64
import io
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from openai_stub_server import Die, Drop, Malformed, Reply, Status, StubServer

from evals.generation import model_hash
from evals.schema import AudioPart, Completion, ImagePart, Message, Request, Sampling
from runners import chat_wire
from runners.chat_wire import MediaError
from runners.http_retry import RetryPolicy, n_limit, retry_after_seconds
from runners.llama_server import LlamaServer
from runners.openai import OpenAIBackend, OpenAIOptions
from runners.repeats import group_repeats

if TYPE_CHECKING:
    from conftest import TinyGemma4GGUF

SMOKE = Path(__file__).resolve().parents[1] / "tasks" / "smoke_data"
PNG = next((SMOKE / "mmmu_pro_images").glob("*.png"))
WAV = next((SMOKE / "covost2_audio").glob("*.wav"))


def chat(key: str, *parts: object, sampling: Sampling | None = None) -> Request:
    parts = parts or (key,)
    return Request(
        key=key,
        sample_id=key.split("/")[0],
        repeat=0,
        sampling=sampling or Sampling(max_tokens=16),
        messages=(Message.user(*parts),),  # type: ignore[arg-type]
    )


def repeats(prompt: str, k: int, sampling: Sampling) -> list[Request]:
    """k repeats of one prompt with seeds seed, seed+1, ... (as tasks build them)."""
    return [
        Request(
            key=f"{prompt}/{r}",
            sample_id=prompt,
            repeat=r,
            sampling=Sampling(**{**sampling.__dict__, "seed": sampling.seed + r}),
            messages=(Message.user(prompt),),
        )
        for r in range(k)
    ]


def by_key(completions: Iterator[Completion]) -> dict[str, Completion]:
    return {c.key: c for c in completions}


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def backend(server: StubServer, **options: object) -> OpenAIBackend:
    defaults: dict[str, object] = {"retry_backoff": 0.01, "progress": False}
    options = {**defaults, **options}
    return OpenAIBackend("stub-model", base_url=server.base_url, **options)  # type: ignore[arg-type]


# --- wire format: payloads ----------------------------------------------------------------


def test_chat_payload_sampling_fields_and_thinking() -> None:
    sampling = Sampling(
        temperature=0.7, top_p=0.9, top_k=20, max_tokens=99, seed=5, thinking=True, stop=("###",)
    )
    request = Request(
        key="k",
        sample_id="k",
        repeat=0,
        sampling=sampling,
        messages=(Message.system("be brief"), Message.user("hi")),
    )
    body = chat_wire.chat_payload(
        request, "m", n=3, extra_body={"chat_template_kwargs": {"x": 1}, "min_p": 0.1}
    )
    assert body == {
        "model": "m",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "max_tokens": 99,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 5,
        "top_k": 20,
        "stop": ["###"],
        "n": 3,
        "chat_template_kwargs": {"enable_thinking": True, "x": 1},
        "min_p": 0.1,
    }
    plain = chat_wire.chat_payload(chat("k"), "m")
    assert "top_k" not in plain and "stop" not in plain and "n" not in plain
    assert plain["chat_template_kwargs"] == {"enable_thinking": False}
    assert plain["temperature"] == 0.0 and plain["seed"] == 0


def test_image_and_audio_parts_become_data_uri_and_input_audio() -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 20
    request = chat(
        "k", ImagePart(path=str(PNG)), ImagePart(data=jpeg), AudioPart(path=str(WAV)), "what is this?"
    )
    content = chat_wire.chat_payload(request, "m")["messages"][0]["content"]
    assert [part["type"] for part in content] == ["image_url", "image_url", "input_audio", "text"]
    prefix, encoded = content[0]["image_url"]["url"].split(",", 1)
    assert prefix == "data:image/png;base64" and base64.b64decode(encoded) == PNG.read_bytes()
    assert content[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert content[2]["input_audio"]["format"] == "wav"
    assert base64.b64decode(content[2]["input_audio"]["data"]) == WAV.read_bytes()
    assert content[3] == {"type": "text", "text": "what is this?"}


def test_audio_formats_are_recognised_from_bytes() -> None:
    assert chat_wire.audio_format(b"fLaC\x00\x00\x00\x22") == "flac"
    assert chat_wire.audio_format(b"ID3\x04\x00\x00") == "mp3"
    assert chat_wire.audio_format(b"\xff\xfb\x90\x64") == "mp3"
    assert chat_wire.audio_format(b"OggS\x00\x02") == "ogg"
    with pytest.raises(MediaError, match=r"audio \(bytes\) is not WAV.*convert it to WAV"):
        chat_wire.audio_format(b"hello world")
    with pytest.raises(MediaError, match="not PNG, JPEG"):
        chat_wire.image_mime(b"plain text", None)


def test_missing_media_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "gone.png"
    with pytest.raises(
        MediaError,
        match=r"image file '.*gone.png' cannot be read \(No such file or directory\); check the path",
    ):
        chat_wire.chat_payload(chat("k", ImagePart(path=str(missing)), "x"), "m")


def test_raw_prompt_goes_to_completions() -> None:
    request = Request(key="k", sample_id="k", repeat=0, sampling=Sampling(max_tokens=5), prompt="1 2 3")
    assert chat_wire.endpoint(request) == "completions"
    body = chat_wire.payload(request, "m")
    assert body["prompt"] == "1 2 3" and "messages" not in body and "chat_template_kwargs" not in body
    with pytest.raises(ValueError, match="raw prompt; build it with completion_payload"):
        chat_wire.chat_payload(request, "m")
    with pytest.raises(ValueError, match="chat messages; build it with chat_payload"):
        chat_wire.completion_payload(chat("k"), "m")


# --- wire format: responses ---------------------------------------------------------------


def test_completion_from_plain_choice_and_usage() -> None:
    choice = {"index": 0, "message": {"role": "assistant", "content": " Paris. "}, "finish_reason": "stop"}
    completion = chat_wire.completion_from_choice(
        "k", choice, {"prompt_tokens": 11, "completion_tokens": 4}, 0.5
    )
    assert (completion.text, completion.raw, completion.reasoning) == ("Paris.", " Paris. ", None)
    assert (completion.prompt_tokens, completion.completion_tokens, completion.seconds) == (11, 4, 0.5)
    assert completion.finish_reason == "stop" and completion.error is None
    text_choice = {"index": 0, "text": "42", "finish_reason": "length"}
    assert chat_wire.completion_from_choice("k", text_choice, None, 0).finish_reason == "length"


def test_reasoning_from_server_fields_and_from_markers() -> None:
    separated = {"message": {"content": "B", "reasoning_content": "think think"}, "finish_reason": "stop"}
    completion = chat_wire.completion_from_choice("k", separated, None, 0)
    assert (completion.text, completion.reasoning, completion.thought_open) == ("B", "think think", False)
    vllm_style = {"message": {"content": "B", "reasoning": "hmm"}, "finish_reason": "stop"}
    assert chat_wire.completion_from_choice("k", vllm_style, None, 0).reasoning == "hmm"
    gemma = {
        "message": {"content": "<|channel>thought\nstep 1<channel|>The answer is C<turn|>"},
        "finish_reason": "stop",
    }
    completion = chat_wire.completion_from_choice("k", gemma, None, 0)
    assert (completion.text, completion.reasoning) == ("The answer is C", "step 1")
    think = {"message": {"content": "<think>long"}, "finish_reason": "length"}
    completion = chat_wire.completion_from_choice("k", think, None, 0)
    assert completion.thought_open and completion.text == "" and completion.reasoning == "long"


def test_budget_spent_inside_server_side_reasoning_leaves_thought_open() -> None:
    cut = {"message": {"content": None, "reasoning_content": "still thinking"}, "finish_reason": "length"}
    completion = chat_wire.completion_from_choice("k", cut, None, 0)
    assert completion.thought_open and completion.finish_reason == "length" and completion.text == ""
    answered = {"message": {"content": "A", "reasoning_content": "done"}, "finish_reason": "length"}
    assert not chat_wire.completion_from_choice("k", answered, None, 0).thought_open


def test_finish_reason_mapping() -> None:
    assert chat_wire.finish_reason("stop") == ("stop", None)
    assert chat_wire.finish_reason(None) == ("stop", None)
    assert chat_wire.finish_reason("length") == ("length", None)
    reason, error = chat_wire.finish_reason("content_filter")
    assert reason == "error" and error == "server finished the completion with finish_reason 'content_filter'"


def test_share_usage_between_choices() -> None:
    choices = [
        {"message": {"content": "ab"}, "finish_reason": "stop"},
        {"message": {"content": "abcdef"}, "finish_reason": "stop"},
        {"message": {"content": "x" * 50}, "finish_reason": "length"},
    ]
    total = chat_wire.share_usage({"prompt_tokens": 9, "completion_tokens": 18}, choices, 10)
    assert [u["completion_tokens"] for u in total] == [2, 6, 10]
    assert {u["prompt_tokens"] for u in total} == {9}
    first_only = chat_wire.share_usage(
        {"prompt_tokens": 9, "completion_tokens": 1}, choices, 10, covers_all=False
    )
    assert [u["completion_tokens"] for u in first_only] == [1, 3, 10]


# --- planning, retry policy ---------------------------------------------------------------


def test_repeats_with_consecutive_seeds_are_grouped() -> None:
    sampling = Sampling(temperature=1.0, seed=10)
    a, b = repeats("a", 3, sampling), repeats("b", 2, sampling)
    other_seed = repeats("a", 1, Sampling(temperature=1.0, seed=20))[0]
    other_seed = Request(**{**other_seed.__dict__, "key": "a/x", "repeat": 7})
    requests = [a[0], b[0], a[1], b[1], a[2], other_seed]
    assert [len(job.requests) for job in group_repeats(requests, use_n=False)] == [1] * 6
    jobs = group_repeats(requests, use_n=True)
    assert [[r.key for r in job.requests] for job in jobs] == [["a/0", "a/1", "a/2"], ["b/0", "b/1"], ["a/x"]]
    capped = group_repeats(requests, use_n=True, n_cap=2)
    assert [[r.key for r in job.requests] for job in capped] == [
        ["a/0", "a/1"],
        ["b/0", "b/1"],
        ["a/2"],
        ["a/x"],
    ]


def test_retry_helpers() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2099 07:28:00 GMT") > 0  # type: ignore[operator]
    policy = RetryPolicy(max_retries=3, backoff=1.0)
    assert all(0.5 * 2**a <= policy.delay(a) <= 2**a for a in range(4))
    assert policy.delay(0, retry_after=7) == 7 and policy.delay(30) <= 60
    assert n_limit("[json.exception] Value must be between 1 <= value <= 2") == 2
    assert n_limit("bad request") is None


def test_bad_options_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="concurrency must be a whole number >= 1"):
        OpenAIBackend("m", concurrency=0)
    with pytest.raises(ValueError, match="timeout must be > 0"):
        OpenAIBackend("m", timeout=0)
    with pytest.raises(ValueError, match="is not an http"):
        OpenAIBackend("m", base_url="localhost:8000")
    with pytest.raises(ValueError, match="must not carry credentials") as caught:
        OpenAIBackend("m", base_url="https://user:secret@example.com/v1")
    assert "secret" not in str(caught.value)
    with pytest.raises(ValueError, match="extra_body is not valid JSON"):
        OpenAIBackend("m", extra_body="{min_p")
    assert OpenAIBackend("m", extra_body='{"min_p": 0.05}').extra_body == {"min_p": 0.05}
    with pytest.raises(ValueError, match="backend 'openai' has no option 'concurency'; its options: api_key"):
        OpenAIBackend("m", concurency=2)
    with pytest.raises(ValueError, match="backend 'openai' option 'use_n' takes bool, got 'yes'"):
        OpenAIBackend("m", use_n="yes")


def test_options_are_declared_once_and_keywords_override_them() -> None:
    assert OpenAIBackend.options_type is OpenAIOptions and OpenAIBackend.takes_image_budget is False
    given = OpenAIOptions(concurrency=3, api_key="sk-secret", progress=False)
    backend = OpenAIBackend("m", given, timeout=5)
    assert backend.options == OpenAIOptions(concurrency=3, api_key="sk-secret", progress=False, timeout=5)
    assert (backend.concurrency, backend.timeout, backend.api_key) == (3, 5.0, "sk-secret")
    assert given.timeout == 600.0  # the caller's options are not changed
    assert "sk-secret" not in repr(backend.options)


# --- against the stub server: the happy path ----------------------------------------------


def test_every_request_answered_with_its_key_and_payload(stub: StubServer) -> None:
    raw = Request(key="raw", sample_id="raw", repeat=0, sampling=Sampling(max_tokens=3), prompt="count:")
    requests = [chat(f"q{i}") for i in range(10)] + [raw]
    results = by_key(backend(stub, api_key="secret").generate(requests))
    assert set(results) == {r.key for r in requests}
    assert all(results[f"q{i}"].text == f"echo:q{i}" for i in range(10))
    assert results["raw"].text == "echo:count:" and results["raw"].prompt_tokens == 7
    assert stub.paths.count("/v1/completions") == 1 and stub.paths.count("/v1/chat/completions") == 10
    assert set(stub.auth) == {"Bearer secret"}


def test_no_api_key_sends_no_authorization(stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    list(backend(stub).generate([chat("a")]))
    assert stub.auth == [None]


def test_concurrency_is_bounded(stub: StubServer) -> None:
    stub.default = Reply(delay=0.15)
    results = by_key(backend(stub, concurrency=3).generate([chat(f"q{i}") for i in range(12)]))
    assert len(results) == 12 and stub.max_in_flight == 3


def test_completions_are_yielded_as_they_finish(stub: StubServer) -> None:
    stub.script("slow", [Reply(delay=0.6)])
    start = time.perf_counter()
    arrivals = [
        (c.key, time.perf_counter() - start) for c in backend(stub).generate([chat("slow"), chat("fast")])
    ]
    assert [key for key, _ in arrivals] == ["fast", "slow"]
    assert arrivals[0][1] < 0.4


def test_fingerprint_reports_the_served_model(stub: StubServer) -> None:
    stub.models = [{"id": "stub-model", "owned_by": "me", "created": 123, "meta": {"n_params": 5}}]
    fingerprint = backend(stub).fingerprint()
    assert fingerprint == {
        "backend": "openai",
        "model": "stub-model",
        "server": {"served_model": {"id": "stub-model", "owned_by": "me", "meta": {"n_params": 5}}},
        "location": {"base_url": stub.base_url},
    }
    stub.models = [{"id": "x"}, {"id": "y"}]
    with pytest.raises(ValueError, match=r"model 'stub-model' is not served at .* \(served: x, y\)"):
        backend(stub).fingerprint()


def test_extra_body_is_part_of_the_fingerprint(stub: StubServer) -> None:
    plain = backend(stub).fingerprint()
    tuned = backend(stub, extra_body='{"min_p": 0.5}').fingerprint()
    assert "extra_body" not in plain and tuned == {**plain, "extra_body": {"min_p": 0.5}}
    assert model_hash(backend(stub)) != model_hash(backend(stub, extra_body={"min_p": 0.5}))


def test_fingerprint_of_an_unreachable_server_is_a_clear_error() -> None:
    with StubServer() as server:
        url = server.base_url
    with pytest.raises(ValueError, match=r"cannot reach .*/models .*start the server or fix base_url"):
        OpenAIBackend("m", base_url=url, max_retries=1, retry_backoff=0.01).fingerprint()


# --- against the stub server: error paths -------------------------------------------------


def test_429_is_retried_after_retry_after(stub: StubServer) -> None:
    stub.script("a", [Status(429, {"error": {"message": "slow down"}}, {"Retry-After": "0.4"}), Reply()])
    start = time.perf_counter()
    results = by_key(backend(stub).generate([chat("a")]))
    assert time.perf_counter() - start >= 0.4
    assert results["a"].text == "echo:a" and stub.calls["a"] == 2


def test_500_then_success(stub: StubServer) -> None:
    stub.script("a", [Status(500), Status(503, "overloaded"), Reply()])
    results = by_key(backend(stub).generate([chat("a"), chat("b")]))
    assert results["a"].text == "echo:a" and results["a"].error is None
    assert stub.calls["a"] == 3 and stub.calls["b"] == 1


def test_retries_exhausted_give_an_error_completion_and_the_run_goes_on(stub: StubServer) -> None:
    stub.script("a", [Status(500, {"error": {"message": "kaboom\nsecond line"}})] * 3)
    results = by_key(backend(stub, max_retries=2).generate([chat("a"), chat("b")]))
    assert stub.calls["a"] == 3
    assert results["a"].finish_reason == "error" and results["a"].text == ""
    assert (
        results["a"].error == "HTTP 500 from chat/completions: kaboom second line (gave up after 3 attempts)"
    )
    assert results["b"].text == "echo:b"


def test_400_is_not_retried_and_quotes_the_server(stub: StubServer) -> None:
    stub.script("a", [Status(400, {"error": {"message": "context length exceeded", "code": 400}})])
    stub.script("b", [Status(404, {"detail": "no such model"})])
    results = by_key(backend(stub).generate([chat("a"), chat("b")]))
    assert stub.calls["a"] == 1 and stub.calls["b"] == 1
    assert results["a"].error == "HTTP 400 from chat/completions: context length exceeded"
    assert results["b"].error == "HTTP 404 from chat/completions: no such model"


def test_malformed_json_and_dropped_connection_are_retried(stub: StubServer) -> None:
    stub.script("a", [Malformed(), Drop(), Reply()])
    stub.script("b", [Malformed()] * 3)
    results = by_key(backend(stub, max_retries=2).generate([chat("a"), chat("b")]))
    assert results["a"].text == "echo:a" and stub.calls["a"] == 3
    assert stub.calls["b"] == 3 and results["b"].finish_reason == "error"
    assert results["b"].error.startswith("malformed JSON from chat/completions: ")  # type: ignore[union-attr]


def test_timeouts_are_retried_then_reported_as_timeout(stub: StubServer) -> None:
    stub.script("slow", [Reply(delay=1.0)] * 2)
    start = time.perf_counter()
    results = by_key(backend(stub, timeout=0.3, max_retries=1).generate([chat("slow"), chat("ok")]))
    assert time.perf_counter() - start < 2.0
    assert stub.calls["slow"] == 2
    assert results["slow"].finish_reason == "timeout"
    assert (
        results["slow"].error == "no response from chat/completions within 0.3 s (gave up after 2 attempts)"
    )
    assert results["ok"].text == "echo:ok"


def test_server_dying_mid_run_fails_the_rest_and_finishes(stub: StubServer) -> None:
    stub.script("c", [Die()])
    requests = [chat(k) for k in "abcdef"]
    chosen = backend(stub, concurrency=1, max_retries=2)
    start = time.perf_counter()
    results = by_key(chosen.generate(requests))
    assert time.perf_counter() - start < 5
    assert set(results) == set("abcdef")
    assert results["a"].text == "echo:a" and results["b"].text == "echo:b"
    assert results["c"].error.endswith("(gave up after 3 attempts)")  # type: ignore[union-attr]
    gone = "(not retried: the server keeps refusing connections)"
    for key in "def":  # the server is known to be gone: no retries for each of them
        error = results[key].error or ""
        assert results[key].finish_reason == "error"
        assert error.startswith("ConnectError on chat/completions: ") and error.endswith(gone)
    with StubServer() as revived:  # a server that answers again resets that
        chosen.base_url = revived.base_url
        assert [c.text for c in chosen.generate([chat("g")])] == ["echo:g"]
        assert not chosen.unreachable


def test_unreadable_media_fails_only_its_request(stub: StubServer, tmp_path: Path) -> None:
    bad = chat("bad", ImagePart(path=str(tmp_path / "missing.png")), "look")
    results = by_key(backend(stub).generate([bad, chat("good")]))
    assert results["good"].text == "echo:good"
    assert results["bad"].finish_reason == "error"
    assert results["bad"].error == (
        f"MediaError: image file '{tmp_path / 'missing.png'}' cannot be read (No such file or directory); "
        "check the path"
    )
    assert stub.calls == {"good": 1}


def test_unknown_finish_reason_is_an_error_completion(stub: StubServer) -> None:
    stub.script("a", [Reply(text="", finish_reason="content_filter")])
    (completion,) = backend(stub).generate([chat("a")])
    assert completion.finish_reason == "error"
    assert "content_filter" in completion.error  # type: ignore[operator]


# --- n fan-out ----------------------------------------------------------------------------


def test_use_n_sends_repeats_as_one_call(stub: StubServer) -> None:
    sampling = Sampling(temperature=1.0, seed=40, max_tokens=10)
    requests = [*repeats("p", 3, sampling), chat("solo")]
    results = by_key(backend(stub, use_n=True).generate(requests))
    assert [r.key for r in requests] == sorted(results, key=[r.key for r in requests].index)
    assert stub.calls == {"p": 1, "solo": 1}
    sent = next(body for body in stub.bodies if body.get("n"))
    assert (sent["n"], sent["seed"]) == (3, 40)
    assert [results[f"p/{i}"].text for i in range(3)] == ["echo:p#0", "echo:p#1", "echo:p#2"]
    assert [results[f"p/{i}"].completion_tokens for i in range(3)] == [3, 3, 3]


def test_n_refused_falls_back_to_the_limit_the_server_names() -> None:
    with StubServer(max_n=2) as server:
        chosen = backend(server, use_n=True)
        sampling = Sampling(temperature=1.0, seed=0)
        results = by_key(chosen.generate(repeats("p", 3, sampling)))
        sent = [body.get("n", 1) for body in server.bodies]
        assert sent[0] == 3 and sorted(sent[1:]) == [1, 2]
        assert chosen.n_cap == 2
        assert [results[f"p/{i}"].text for i in range(3)] == ["echo:p#0", "echo:p#1", "echo:p"]
        assert all(c.error is None for c in results.values())
        list(chosen.generate(repeats("q", 3, sampling)))  # the cap holds for later runs
        assert sorted(body.get("n", 1) for body in server.bodies[3:]) == [1, 2]


def test_429_outlasting_the_retries_is_an_error_not_an_n_refusal(stub: StubServer) -> None:
    stub.script("p", [Status(429, {"error": {"message": "rate limited"}})] * 3)
    chosen = backend(stub, use_n=True, max_retries=2)
    results = by_key(chosen.generate(repeats("p", 3, Sampling(temperature=1.0))))
    assert [body.get("n") for body in stub.bodies] == [3, 3, 3] and chosen.n_cap is None
    for completion in results.values():
        assert completion.finish_reason == "error"
        assert completion.error == "HTTP 429 from chat/completions: rate limited (gave up after 3 attempts)"


def test_server_ignoring_n_gets_the_rest_separately(stub: StubServer) -> None:
    stub.default = Reply(choices=1)
    chosen = backend(stub, use_n=True)
    results = by_key(chosen.generate(repeats("p", 3, Sampling(temperature=1.0))))
    assert set(results) == {"p/0", "p/1", "p/2"} and stub.calls["p"] == 3
    assert chosen.n_cap == 1


# --- closing early ------------------------------------------------------------------------


def test_closing_the_generator_early_cancels_outstanding_work(stub: StubServer) -> None:
    stub.default = Reply(delay=0.5)
    stub.script("q0", [Reply()])
    before = threading.active_count()
    generator = backend(stub, concurrency=2).generate([chat(f"q{i}") for i in range(20)])
    first = next(generator)
    start = time.perf_counter()
    generator.close()
    assert time.perf_counter() - start < 2.0
    assert first.key == "q0"
    assert not any(t.name == "openai-client" for t in threading.enumerate())
    time.sleep(0.6)
    assert len(stub.bodies) <= 3 and threading.active_count() <= before + 3


# --- real llama-server (slow) -------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2_server(llama_server_binary: Path, smollm2_gguf: Path) -> Iterator[LlamaServer]:
    """SmolLM2-135M-Instruct on llama-server with 2 slots (fixtures from tests/conftest.py)."""
    with LlamaServer(
        smollm2_gguf, parallel=2, ctx_size=2048, threads=2, binary=llama_server_binary
    ) as server:
        yield server


def smol(server: LlamaServer, **options: object) -> OpenAIBackend:
    url = f"{server.base_url}/v1"
    return OpenAIBackend("smollm2", base_url=url, progress=False, **options)  # type: ignore[arg-type]


@pytest.mark.slow
def test_real_smollm2_answers_and_greedy_repeats(smollm2_server: LlamaServer) -> None:
    question = "What is the capital of France? Answer in one sentence."
    sampling = Sampling(max_tokens=24)
    raw = Request(key="raw", sample_id="raw", repeat=0, sampling=Sampling(max_tokens=4), prompt="1, 2, 3, 4,")
    requests = [chat("a", question, sampling=sampling), chat("b", question, sampling=sampling), raw]
    results = by_key(smol(smollm2_server, concurrency=2).generate(requests))
    assert "Paris" in results["a"].text
    assert results["a"].text == results["b"].text and results["a"].raw == results["b"].raw
    assert results["a"].prompt_tokens > 5 and 0 < results["a"].completion_tokens <= 24
    assert results["a"].finish_reason == "stop" and results["a"].error is None
    assert results["raw"].completion_tokens == 4 and results["raw"].finish_reason == "length"
    assert "5" in results["raw"].text


@pytest.mark.slow
def test_real_seeded_sampling_is_reproducible(smollm2_server: LlamaServer) -> None:
    def sampled(key: str, seed: int) -> Request:
        return chat(
            key,
            "Write a short poem about rain.",
            sampling=Sampling(temperature=1.0, max_tokens=24, seed=seed),
        )

    results = by_key(
        smol(smollm2_server).generate([sampled("s1", 1), sampled("s1again", 1), sampled("s2", 2)])
    )
    assert results["s1"].text == results["s1again"].text
    assert results["s1"].text != results["s2"].text


@pytest.mark.slow
def test_real_n_matches_separate_seeded_requests_and_falls_back(smollm2_server: LlamaServer) -> None:
    """llama-server seeds choice i of an n-call with seed+i, so n=2 equals two separate requests
    seeded s and s+1; n=3 on two slots is refused (400) and split to n=2 + n=1."""
    sampling = Sampling(temperature=1.0, max_tokens=16, seed=100)
    group = repeats("Name a colour.", 3, sampling)
    list(smol(smollm2_server).generate([chat("warm", "Name a colour.")]))  # the same cached prompt for all
    separate = by_key(smol(smollm2_server, concurrency=1).generate(group))
    pairs = smol(smollm2_server, use_n=True)
    paired = by_key(pairs.generate(group[:2]))
    assert pairs.n_cap is None  # n=2 was accepted
    assert [paired[r.key].text for r in group[:2]] == [separate[r.key].text for r in group[:2]]
    fallback = smol(smollm2_server, use_n=True)
    three = by_key(fallback.generate(group))
    assert fallback.n_cap == 2
    assert [three[r.key].text for r in group] == [separate[r.key].text for r in group]
    assert all(c.error is None and c.completion_tokens > 0 for c in three.values())


@pytest.mark.slow
def test_real_concurrency_across_slots(smollm2_server: LlamaServer) -> None:
    prompts = [f"What is {i} plus {i}?" for i in range(6)]
    requests = [chat(f"k{i}", p, sampling=Sampling(max_tokens=12)) for i, p in enumerate(prompts)]
    one = by_key(smol(smollm2_server, concurrency=1).generate(requests))
    two = by_key(smol(smollm2_server, concurrency=2).generate(requests))
    assert set(one) == set(two) == {r.key for r in requests}
    assert all(c.error is None and c.text for c in two.values())
    assert sum(one[k].text == two[k].text for k in one) >= 5  # slot batching may shift a last digit


@pytest.mark.slow
def test_real_fingerprint_from_llama_server(smollm2_server: LlamaServer) -> None:
    fingerprint = smol(smollm2_server).fingerprint()
    served = fingerprint["server"]["served_model"]
    assert fingerprint["model"] == served["id"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert served["owned_by"] == "llamacpp" and served["meta"]["n_params"] > 100_000_000
    assert served["meta"]["ftype"] == "Q4_1"
    location = fingerprint["location"]
    assert location["base_url"].startswith("http://127.0.0.1:") and location["requested_model"] == "smollm2"
    assert location["served_model_path"].endswith("/SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="module")
def gemma_server(llama_server_binary: Path, tiny_gemma4_gguf: TinyGemma4GGUF) -> Iterator[LlamaServer]:
    """The tiny random Gemma 4 (gemma4_unified) as GGUF + projector, on llama-server."""
    model, mmproj = tiny_gemma4_gguf.model, tiny_gemma4_gguf.mmproj
    with LlamaServer(
        model, mmproj=mmproj, parallel=2, ctx_size=2048, threads=2, binary=llama_server_binary
    ) as server:
        yield server


def _tone_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    import math

    frames = b"".join(
        int(8000 * math.sin(2 * math.pi * 440 * i / rate)).to_bytes(2, "little", signed=True)
        for i in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


@pytest.mark.slow
def test_real_gemma_image_audio_and_thinking(gemma_server: LlamaServer) -> None:
    url = f"{gemma_server.base_url}/v1"
    chosen = OpenAIBackend("tiny-gemma4", base_url=url, progress=False)
    sampling = Sampling(max_tokens=8)
    requests = [
        chat("text", "describe", sampling=sampling),
        chat("image", ImagePart(path=str(PNG)), "describe", sampling=sampling),
        chat("audio", AudioPart(data=_tone_wav(1.0)), "describe", sampling=sampling),
        chat("audio2", AudioPart(data=_tone_wav(2.0)), "describe", sampling=sampling),
        chat("think", "describe", sampling=Sampling(max_tokens=8, thinking=True)),
    ]
    results = by_key(chosen.generate(requests))
    assert all(c.error is None for c in results.values()), {k: c.error for k, c in results.items()}
    text_tokens = results["text"].prompt_tokens
    assert results["image"].prompt_tokens > text_tokens + 20  # the image's soft tokens
    # 25 audio tokens per second: one more second adds about 25 prompt tokens
    assert 20 <= results["audio2"].prompt_tokens - results["audio"].prompt_tokens <= 30
    assert results["audio"].prompt_tokens > text_tokens + 20
    # enable_thinking changes the rendered Gemma 4 prompt (system turn with <|think|>)
    assert results["think"].prompt_tokens != text_tokens
    assert all(0 < c.completion_tokens <= 8 for c in results.values())
