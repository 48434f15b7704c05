"""A resumed run equals an uninterrupted one, also where prompts repeat under different ids.

MMLU-Pro holds groups of identical questions under different ids. The generation loop generates
one completion per distinct request (cache key) and gives every request of the group its own copy,
fresh or from the cache. The backend here replays answers by request key, so it answers the copies
of a question differently if it is ever asked for them: exactly what would expose a fresh run and a
resumed run treating duplicates differently."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from realdata import GPT4O_GLOB, TEST_PARQUET, needs_real

from evals.cache import CompletionCache, cache_key
from evals.generation import generate_all, model_hash
from evals.schema import Completion, Message, Request, Sampling
from evals.scoring import score_all
from tasks.data import load_rows
from tasks.mmlu_pro import MMLUPro


class ReplayBackend:
    """Answers each request with the text recorded for its request key (a stand-in for a model)."""

    name = "replay"

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def fingerprint(self) -> dict[str, str]:
        return {"backend": "replay"}

    def generate(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for request in requests:
            self.asked.append(request.key)
            yield Completion(key=request.key, text=self.answers[request.key], completion_tokens=1)

    def close(self) -> None:
        pass


def _twins(n: int) -> list[Request]:
    """n pairs of requests with the same prompt under different keys."""
    return [
        Request(key=f"t/{i}/{twin}", sample_id=f"{i}{twin}", repeat=0, sampling=Sampling(),
                messages=(Message.user(f"question {i}"),))
        for i in range(n) for twin in "ab"
    ]  # fmt: skip


def test_identical_prompts_are_generated_once_and_each_request_keeps_its_own_key(tmp_path: Path) -> None:
    requests = _twins(3)
    backend = ReplayBackend({r.key: f"answer for {r.key}" for r in requests})
    cache = CompletionCache(tmp_path / "c.sqlite")
    fresh, stats = generate_all(backend, requests, cache, show_progress=False)
    assert len(backend.asked) == 3 and stats.generated == 3 and stats.shared == 3
    assert all(fresh[r.key].key == r.key for r in requests)
    assert fresh["t/0/a"].text == fresh["t/0/b"].text  # the twin shares the one generation
    assert fresh["t/0/a"] is not fresh["t/0/b"]  # ... as its own object
    resumed, stats2 = generate_all(ReplayBackend({}), requests, cache, show_progress=False)
    assert stats2.cached == 6 and stats2.generated == 0
    assert {k: (c.key, c.text) for k, c in resumed.items()} == {k: (c.key, c.text) for k, c in fresh.items()}


def test_a_partly_cached_group_is_answered_from_the_cache(tmp_path: Path) -> None:
    requests = _twins(2)
    cache = CompletionCache(tmp_path / "c.sqlite")
    generate_all(ReplayBackend({"t/0/a": "first"}), requests[:1], cache, show_progress=False)  # killed here
    backend = ReplayBackend({r.key: "later" for r in requests})
    done, _ = generate_all(backend, requests, cache, show_progress=False)
    assert done["t/0/a"].text == done["t/0/b"].text == "first"
    assert backend.asked == ["t/1/a"]


def test_fresh_regenerates_and_replaces_the_cached_completion(tmp_path: Path) -> None:
    requests = _twins(1)[:1]
    cache = CompletionCache(tmp_path / "c.sqlite")
    generate_all(ReplayBackend({"t/0/a": "old"}), requests, cache, show_progress=False)
    backend = ReplayBackend({"t/0/a": "new"})
    done, stats = generate_all(backend, requests, cache, show_progress=False, fresh=True)
    assert backend.asked == ["t/0/a"] and stats.cached == 0 and done["t/0/a"].text == "new"
    key = cache_key(model_hash(backend), requests[0])
    assert cache.get_many([key])[key].text == "new"


@pytest.fixture(scope="module")
def gpt4o_responses() -> dict[str, str]:
    return {str(r["question_id"]): r["response"] for r in load_rows(GPT4O_GLOB, "test")}


@needs_real
def test_replayed_mmlu_pro_scores_the_same_fresh_and_resumed(
    tmp_path: Path, gpt4o_responses: dict[str, str]
) -> None:
    task = MMLUPro("card", extractor="tiger")
    samples = task.load(str(TEST_PARQUET))
    requests = [r for s in samples for r in task.requests(s, task.default_sampling, 1)]
    answers = {r.key: gpt4o_responses[r.sample_id] for r in requests}
    cache = CompletionCache(tmp_path / "c.sqlite")
    fresh, stats = generate_all(ReplayBackend(answers), requests, cache, show_progress=False)
    resumed, stats2 = generate_all(ReplayBackend({}), requests, cache, show_progress=False)
    groups = Counter(cache_key(model_hash(ReplayBackend({})), r) for r in requests)
    duplicates = sum(n - 1 for n in groups.values())
    assert sum(n > 1 for n in groups.values()) >= 150  # MMLU-Pro's groups of identical questions
    assert stats.shared == duplicates and stats2.cached == len(requests)
    assert all(fresh[r.key].key == r.key and resumed[r.key].key == r.key for r in requests)
    first = score_all(task, samples, requests, fresh)
    second = score_all(task, samples, requests, resumed)
    assert first.summary.value == second.summary.value
    assert [s.outcome for s in first.scores] == [s.outcome for s in second.scores]
