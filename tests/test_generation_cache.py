"""The runner with the real SQLite cache: resume, no regeneration, errors retried, bad backends caught.

The backend here is a scripted stand-in for the Backend protocol (the real backends are tested in
their own files); it records every request it is asked to generate."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from evals.cache import CompletionCache, cache_key
from evals.generation import generate_all, model_hash
from evals.schema import Completion, ImagePart, Message, Request, Sampling


class ScriptedBackend:
    name = "scripted"

    def __init__(self, fail: set[str] | None = None, model: str = "m1") -> None:
        self.asked: list[str] = []
        self.fail = fail or set()
        self.model = model

    def fingerprint(self) -> dict[str, str]:
        return {"backend": "scripted", "model": self.model}

    def generate(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for request in requests:
            self.asked.append(request.key)
            if request.key in self.fail:
                yield Completion(key=request.key, text="", finish_reason="error", error="boom")
            else:
                yield Completion(
                    key=request.key, text=f"answer to {request.messages[0].text}", completion_tokens=3
                )

    def close(self) -> None:
        pass


def make_requests(n: int, **sampling: object) -> list[Request]:
    return [
        Request(key=f"t/v/{i}/0", sample_id=str(i), repeat=0, sampling=Sampling(**sampling),
                messages=(Message.user(f"q{i}"),))
        for i in range(n)
    ]  # fmt: skip


def test_second_run_generates_nothing(tmp_path: Path) -> None:
    cache = CompletionCache(tmp_path / "c.sqlite")
    first = ScriptedBackend()
    done, stats = generate_all(first, make_requests(5), cache, show_progress=False)
    assert len(done) == 5 and stats.generated == 5 and stats.cached == 0
    second = ScriptedBackend()
    again, stats2 = generate_all(second, make_requests(5), cache, show_progress=False)
    assert second.asked == [] and stats2.cached == 5
    assert {k: c.text for k, c in again.items()} == {k: c.text for k, c in done.items()}


def test_only_missing_requests_are_generated(tmp_path: Path) -> None:
    cache = CompletionCache(tmp_path / "c.sqlite")
    generate_all(ScriptedBackend(), make_requests(3), cache, show_progress=False)
    backend = ScriptedBackend()
    _, stats = generate_all(backend, make_requests(6), cache, show_progress=False)
    assert backend.asked == ["t/v/3/0", "t/v/4/0", "t/v/5/0"]
    assert (stats.cached, stats.generated) == (3, 3)


def test_errors_are_not_cached_and_are_retried(tmp_path: Path) -> None:
    cache = CompletionCache(tmp_path / "c.sqlite")
    done, stats = generate_all(
        ScriptedBackend(fail={"t/v/1/0"}), make_requests(3), cache, show_progress=False
    )
    assert done["t/v/1/0"].error == "boom" and stats.failed == 1
    retry = ScriptedBackend()
    done2, _ = generate_all(retry, make_requests(3), cache, show_progress=False)
    assert retry.asked == ["t/v/1/0"] and done2["t/v/1/0"].error is None


def test_cache_key_covers_model_sampling_and_media(tmp_path: Path) -> None:
    base = make_requests(1)[0]
    image_a, image_b = tmp_path / "a.png", tmp_path / "b.png"
    image_a.write_bytes(b"one")
    image_b.write_bytes(b"two")
    with_a = Request(key="k", sample_id="0", repeat=0, sampling=Sampling(),
                     messages=(Message.user(ImagePart(path=str(image_a)), "q0"),))  # fmt: skip
    with_b = Request(key="k", sample_id="0", repeat=0, sampling=Sampling(),
                     messages=(Message.user(ImagePart(path=str(image_b)), "q0"),))  # fmt: skip
    keys = {
        cache_key("m1", base),
        cache_key("m2", base),
        cache_key("m1", make_requests(1, temperature=1.0)[0]),
        cache_key("m1", make_requests(1, seed=7)[0]),
        cache_key("m1", make_requests(1, thinking=True)[0]),
        cache_key("m1", make_requests(1, max_tokens=5)[0]),
        cache_key("m1", with_a),
        cache_key("m1", with_b),
    }
    assert len(keys) == 8
    assert cache_key("m1", base) == cache_key("m1", make_requests(1)[0])


def test_other_model_does_not_reuse_cache(tmp_path: Path) -> None:
    cache = CompletionCache(tmp_path / "c.sqlite")
    generate_all(ScriptedBackend(model="a"), make_requests(2), cache, show_progress=False)
    other = ScriptedBackend(model="b")
    generate_all(other, make_requests(2), cache, show_progress=False)
    assert len(other.asked) == 2
    assert model_hash(other) != model_hash(ScriptedBackend(model="a"))


def test_each_completion_is_committed_as_it_arrives(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = CompletionCache(path)
    seen_rows = []

    class Watching(ScriptedBackend):
        def generate(self, requests: Sequence[Request]) -> Iterator[Completion]:
            for completion in super().generate(requests):
                # another connection (another process would do the same) sees earlier completions
                with sqlite3.connect(path) as other:
                    seen_rows.append(other.execute("SELECT COUNT(*) FROM completions").fetchone()[0])
                yield completion

    generate_all(Watching(), make_requests(4), cache, show_progress=False)
    assert seen_rows == [0, 1, 2, 3]


def test_duplicate_request_keys_are_rejected(tmp_path: Path) -> None:
    cache = CompletionCache(tmp_path / "c.sqlite")
    requests = make_requests(2) + make_requests(1)
    with pytest.raises(ValueError, match="appears twice"):
        generate_all(ScriptedBackend(), requests, cache, show_progress=False)


def test_backend_that_drops_a_request_yields_an_error_completion(tmp_path: Path) -> None:
    class Dropping(ScriptedBackend):
        def generate(self, requests: Sequence[Request]) -> Iterator[Completion]:
            yield from list(super().generate(requests))[:-1]

    done, stats = generate_all(Dropping(), make_requests(3), CompletionCache(tmp_path / "c.sqlite"),
                               show_progress=False)  # fmt: skip
    assert done["t/v/2/0"].error == "backend returned no completion" and stats.failed == 1


def test_model_location_does_not_change_the_cache_key(tmp_path: Path) -> None:
    class Located(ScriptedBackend):
        def __init__(self, where: str) -> None:
            super().__init__()
            self.where = where

        def fingerprint(self) -> dict:
            return {**super().fingerprint(), "location": {"path": self.where}}

    cache = CompletionCache(tmp_path / "c.sqlite")
    generate_all(Located("/venv-a/model.gguf"), make_requests(2), cache, show_progress=False)
    moved = Located("/venv-b/model.gguf")
    _, stats = generate_all(moved, make_requests(2), cache, show_progress=False)
    assert moved.asked == [] and stats.cached == 2
