"""Deterministic sharding (`evals run --shard I/N`) and its merge (`evals merge`) without Ray.

Which shard owns a request depends only on the request and N (a sha256 of its cache identity),
identical prompts share a shard, and N shards partition the request set. End to end, a card of
real tasks (MMLU-Pro, AIME with its follow-up turn, CoVoST's corpus BLEU, two repeats each) is run
whole and in three shards through the real pipeline, cache, scoring and run directory, and the
merged run equals the whole one except for the fields `assert_same_run` names. The model is a
stand-in (`EchoBackend`: a fixed answer derived from each prompt's hash, as a greedy model gives
the same answer to the same prompt), because what is tested is the split and the merge, not
generation; the real model runs through Ray in tests/test_ray_executor.py.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from evals import registry
from evals.cache import CompletionCache
from evals.cli import main
from evals.merge import merge
from evals.pipeline import RunOutcome, run
from evals.planning import RunOptions
from evals.run_dir import load_run_dir
from evals.schema import BackendOptions, Completion, Message, Request, Sampling, stable_hash
from evals.sharding import parse_shard, read_shard, shard_of

CARD = """
[card]
name = "shard-test"
title = "Sharding test card"
model = "echo-model"
backend = "echo"
data = "builtin"

[defaults.temperature]
value = 0.0
evidence = "confirmed"

[defaults.repeats]
value = 2
evidence = "confirmed"

[[rows]]
label = "MMLU Pro"
task = "mmlu_pro"
variant = "card"

[[rows]]
label = "AIME"
task = "aime"
variant = "2026"
options = { last_chance = true }

[[rows]]
label = "CoVoST"
task = "covost2"
variant = "x-en-no-zh"
"""


@dataclass(frozen=True)
class EchoOptions(BackendOptions):
    pass


class EchoBackend:
    """Answers each prompt with text fixed by the prompt's hash: an MMLU-Pro style letter, and a
    boxed integer or none (so that AIME's follow-up turn is asked for some of them)."""

    name = "echo"
    options_type = EchoOptions
    takes_image_budget = False
    generated: ClassVar[Counter[str]] = Counter()  # request identity hash -> times generated (all instances)

    def __init__(self, model: str, options: Any = None) -> None:
        self.model = model

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": "echo", "model": "echo-model", "location": self.model}

    def generate(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for request in requests:
            digest = stable_hash(request.cache_identity())
            EchoBackend.generated[digest] += 1
            letter, number = "ABCDEFGHIJ"[int(digest[0], 16) % 10], int(digest[1:3], 16)
            boxed = f" \\boxed{{{number}}}" if int(digest[3], 16) % 2 else ""
            text = f"the cat sat on the mat {number}. The answer is ({letter}).{boxed}"
            yield Completion(key=request.key, text=text, completion_tokens=12, prompt_tokens=30)

    def close(self) -> None:
        pass


@pytest.fixture
def echo(monkeypatch: pytest.MonkeyPatch) -> type[EchoBackend]:
    monkeypatch.setitem(registry.BACKENDS, "echo", f"{__name__}:EchoBackend")
    EchoBackend.generated.clear()
    return EchoBackend


@pytest.fixture
def card(tmp_path: Path) -> Path:
    path = tmp_path / "shard-test.toml"
    path.write_text(CARD)
    return path


def options(card: Path, out: Path, cache: Path, shard: tuple[int, int] | None = None) -> RunOptions:
    return RunOptions(card=str(card), output=out, cache=cache, show_progress=False, shard=shard)


# --- which shard owns a request ------------------------------------------------------------------


def request(key: str, text: str, repeat: int = 0) -> Request:
    return Request(key=key, sample_id=key, repeat=repeat, sampling=Sampling(), messages=(Message.user(text),))


def test_parse_shard_takes_i_of_n_and_refuses_anything_else_in_one_line() -> None:
    assert parse_shard("1/1") == (1, 1) and parse_shard("3/4") == (3, 4)
    for bad in ("0/2", "3/2", "1", "a/b", "1/0", "-1/2", "1/2/3"):
        with pytest.raises(ValueError, match=r"^--shard .*expected I/N with 1 <= I <= N") as error:
            parse_shard(bad)
        assert "\n" not in str(error.value)


def test_a_request_lands_in_the_shard_its_identity_hash_names_in_any_process() -> None:
    one = request("mmlu_pro/70/0", "What is 2+2?")
    # pinned: the owner is sha256-based, not Python's per-process hash(); a change here moves every
    # shard of every run on disk
    digest = stable_hash(one.cache_identity())
    assert [shard_of(one, n) for n in (1, 2, 3, 8)] == [int(digest[:16], 16) % n + 1 for n in (1, 2, 3, 8)]
    assert shard_of(one, 1) == 1
    twin = request("mmlu_pro/71/0", "What is 2+2?")  # same prompt, another id: one cache key
    assert all(shard_of(one, n) == shard_of(twin, n) for n in range(1, 17))
    other_repeat = request("mmlu_pro/70/1", "What is 2+2?", repeat=1)
    assert {shard_of(other_repeat, 7), shard_of(one, 7)} <= set(range(1, 8))


def test_n_shards_partition_the_requests_evenly() -> None:
    requests = [request(f"q/{i}/0", f"question {i}") for i in range(400)]
    for count in (2, 3, 5):
        owners = Counter(shard_of(r, count) for r in requests)
        assert sorted(owners) == list(range(1, count + 1))
        assert sum(owners.values()) == 400  # each request in exactly one shard
        assert min(owners.values()) > 400 / count * 0.7  # a hash spreads them; none is starved


# --- shard, then merge, equals the whole run ------------------------------------------------------


def normalised_results(path: Path) -> dict[str, Any]:
    """results.json without what measures the run rather than the model (see evals.merge)."""
    results: dict[str, Any] = json.loads((path / "results.json").read_text())
    results["header"]["started"] = None
    for row in results["rows"]:
        if row.get("cost"):
            row["cost"]["generation"]["seconds"] = None
    return results


def normalised_report(path: Path) -> str:
    text = (path / "report.md").read_text()
    text = re.sub(r"\*\*started\*\*: \S+", "**started**: -", text)
    return re.sub(r"tokens in [0-9.]+ s \([0-9.]+ tokens/s\)", "tokens in - s (- tokens/s)", text)


def assert_same_run(merged: Path, whole: Path) -> None:
    """The merged run equals the whole one: results.json, prompts.jsonl, samples.jsonl and report.md
    identical but for the start time, generation seconds (and tokens/s) and per-sample seconds."""
    assert normalised_results(merged) == normalised_results(whole)
    assert normalised_report(merged) == normalised_report(whole)
    assert (merged / "prompts.jsonl").read_text() == (whole / "prompts.jsonl").read_text()
    strip = [{**s.to_json(), "seconds": None} for s in load_run_dir(merged).samples]
    assert strip == [{**s.to_json(), "seconds": None} for s in load_run_dir(whole).samples]


def test_three_shards_merged_equal_the_whole_run(echo: type[EchoBackend], card: Path, tmp_path: Path) -> None:
    whole = run(options(card, tmp_path / "whole", tmp_path / "whole.sqlite"))
    whole_generated = Counter(echo.generated)
    echo.generated.clear()
    shards: list[RunOutcome] = [
        run(options(card, tmp_path / f"s{i}", tmp_path / f"cache{i}.sqlite", shard=(i, 3))) for i in (1, 2, 3)
    ]
    assert echo.generated == whole_generated  # the same prompts, each generated once over the shards
    assert max(echo.generated.values()) == 1
    keys = [set(s.run_info.shard.request_keys) for s in shards if s.run_info.shard]
    assert all(keys) and not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert sum(map(len, keys)) == sum(t.requests for t in whole.run_info.tasks) == 38  # first turns
    assert not (tmp_path / "s1" / "results.json").exists()  # a shard is not scored on its own
    cache_rows = [CompletionCache(tmp_path / f"cache{i}.sqlite").rows() for i in (1, 2, 3)]
    whole_rows = CompletionCache(tmp_path / "whole.sqlite").rows()
    assert sorted(r["cache_key"] for rows in cache_rows for r in rows) == sorted(
        r["cache_key"] for r in whole_rows
    )

    merged = merge([tmp_path / "s3", tmp_path / "s1", tmp_path / "s2"], tmp_path / "merged")  # any order
    assert_same_run(tmp_path / "merged", tmp_path / "whole")
    assert merged.run_info.generation == whole.run_info.generation.__class__(
        **{**vars(whole.run_info.generation), "seconds": merged.run_info.generation.seconds}
    )
    aime = next(r for r in merged.results.scored if r.task == "aime")
    assert aime.summary.n_scores == 2 * aime.summary.n_samples  # repeats grouped across shards
    assert any("last_chance" in s.flags for s in load_run_dir(tmp_path / "merged").samples)
    assert merged.results.scored[2].corpus_metrics  # corpus BLEU over the whole set


def test_a_rerun_shard_resumes_from_its_cache_and_the_cli_merges(
    echo: type[EchoBackend], card: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--card", str(card), "--no-progress", "--cache", str(tmp_path / "c.sqlite")]
    for i in (1, 2):
        assert main([*argv, "--shard", f"{i}/2", "--output", str(tmp_path / f"s{i}")]) == 0
    printed = capsys.readouterr().out
    assert "shard 1/2:" in printed and "shard 2/2:" in printed and "evals merge" in printed
    first = read_shard(tmp_path / "s1").run.generation
    echo.generated.clear()
    assert main([*argv, "--shard", "1/2", "--output", str(tmp_path / "s1")]) == 0  # run again
    again = read_shard(tmp_path / "s1").run.generation
    assert not echo.generated and again.cached == first.requested and again.generated == 0
    assert main(["merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m")]) == 0
    assert "| MMLU Pro |" in capsys.readouterr().out
    assert load_run_dir(tmp_path / "m").run.kind == "run"
