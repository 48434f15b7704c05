"""The Ray executor (`evals run --executor ray`) on a local Ray cluster (2 CPUs): the smoke card in
2 shards on the HF backend (SmolLM2 and the tiny random Gemma 4, greedy), shard 1's worker SIGKILLed
after its 2nd completion on its first attempt (EVALS_TEST_KILL_SHARD). Ray retries it; the retry
takes the 2 completions the killed attempt stored and generates only the rest; the driver's cache
holds each completion once; the merged run equals the single-process run. Then `--fresh` on that
full cache, killed after 1 of 2 completions: nothing from before the run counts as cached, the
retry keeps the one its killed attempt made. The flags' bad input is one line each, without Ray."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_sharding import normalised_results

from evals.cache import CompletionCache
from evals.cli import main
from evals.planning import RunOptions
from evals.ray_executor import KILL_HOOK_ENV, KILL_MARKER, RayOutcome, gpus_per_shard
from evals.run_dir import load_run_dir


def smoke(out: Path, cache: Path, show_progress: bool = False) -> RunOptions:
    return RunOptions(
        card="smoke",
        limit=2,
        sampling={"max_tokens": 8},
        backend_options={"batch_size": 1},  # one prompt per forward pass: outputs do not depend on batching
        output=out,
        cache=cache,
        show_progress=show_progress,
    )


def without_generation_counts(path: Path) -> tuple[dict[str, Any], str]:
    """results.json and report.md with the per-row cost reduced to what does not depend on which
    completions came from the cache (requests, failed, shared)."""
    results = normalised_results(path)
    for row in results["rows"]:
        generation = row["cost"]["generation"]
        row["cost"]["generation"] = {k: generation[k] for k in ("requested", "failed", "shared")}
    report = re.sub(r"\*\*started\*\*: \S+", "", (path / "report.md").read_text())
    report = re.sub(r"- generation: \d+ requests \(.*", "- generation", report)
    return results, report


@pytest.mark.slow
def test_two_shards_on_ray_with_a_killed_worker_equal_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import ray

    from evals.pipeline import run
    from evals.ray_executor import run_on_ray

    whole = run(smoke(tmp_path / "whole", tmp_path / "whole.sqlite"))
    total = whole.run_info.generation.requested
    assert total == whole.run_info.generation.generated == 12
    capfd.readouterr()

    monkeypatch.setenv(KILL_HOOK_ENV, "1:2")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 1024 * 1024, log_to_driver=False)
    try:
        outcome: RayOutcome = run_on_ray(
            smoke(tmp_path / "ray", tmp_path / "driver.sqlite", show_progress=True), shards=2
        )
        progress = capfd.readouterr().err
        driver = CompletionCache(tmp_path / "driver.sqlite").rows()  # before the --fresh run below
        # --fresh on a full driver cache, killed after 1 of 2 completions: the retry keeps that one
        monkeypatch.setenv(KILL_HOOK_ENV, "1:1")
        before_fresh = time.time()
        fresh_options = replace(
            smoke(tmp_path / "fresh", tmp_path / "driver.sqlite"), tasks=["mmlu_pro"], fresh=True
        )
        fresh = run_on_ray(fresh_options, shards=1)
    finally:
        ray.shutdown()
    assert fresh.shards[0].attempts == 2 and fresh.shards[0].stored == 2 and fresh.shards[0].stored_again == 0
    fresh_generation = fresh.run.run_info.generation
    assert (fresh_generation.cached, fresh_generation.generated) == (1, 1)  # none from before the run
    regenerated = [
        r for r in CompletionCache(tmp_path / "driver.sqlite").rows() if r["created"] > before_fresh
    ]
    assert len(regenerated) == 2

    assert "shard 1/2" in progress and "shard 2/2" in progress and "attempt 2" in progress
    first, second = outcome.shards
    assert (first.attempts, second.attempts) == (2, 1)  # the killed shard was retried, once
    assert (first.directory / KILL_MARKER).read_text() == "killed after 2 completions\n"
    assert first.stored_again == second.stored_again == 0  # no completion stored twice
    assert first.stored + second.stored == total

    reference = CompletionCache(tmp_path / "whole.sqlite").rows()
    assert sorted(r["cache_key"] for r in driver) == sorted(r["cache_key"] for r in reference)
    own = CompletionCache(first.directory / "cache.sqlite").rows()
    by_key = {r["cache_key"]: r["completion"] for r in driver}
    assert len(own) == first.stored and all(by_key[r["cache_key"]] == r["completion"] for r in own)

    generation = outcome.run.run_info.generation
    assert (generation.requested, generation.cached, generation.generated) == (total, 2, total - 2)
    assert without_generation_counts(tmp_path / "ray") == without_generation_counts(tmp_path / "whole")
    merged_samples = [{**s.to_json(), "seconds": None} for s in load_run_dir(tmp_path / "ray").samples]
    assert merged_samples == [
        {**s.to_json(), "seconds": None} for s in load_run_dir(tmp_path / "whole").samples
    ]
    assert (tmp_path / "ray" / "prompts.jsonl").read_text() == (
        tmp_path / "whole" / "prompts.jsonl"
    ).read_text()
    assert json.loads((tmp_path / "ray" / "run.json").read_text())["kind"] == "run"


def test_gpus_per_shard_follow_the_backend() -> None:
    assert gpus_per_shard("hf", {}, 0) == 0 and gpus_per_shard("hf", {}, 8) == 1
    assert gpus_per_shard("llamacpp", {}, 8) == 1 and gpus_per_shard("openai", {}, 8) == 0
    assert gpus_per_shard("vllm", {"tensor_parallel_size": 2, "data_parallel_size": 2}, 8) == 4
    assert gpus_per_shard("vllm", {}, 8) == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--shards", "2"], "--shards needs --executor ray"),
        (["--ray-address", "auto"], "--ray-address needs --executor ray"),
        (["--executor", "ray", "--shard", "1/2"], "give one of the two"),
        (["--shard", "3/2"], "--shard 3/2: expected I/N with 1 <= I <= N"),
    ],
)
def test_scale_out_flags_bad_input_is_one_line(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["run", "--card", "smoke", "--cache", str(tmp_path / "c.sqlite"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evals: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "c.sqlite").exists()  # refused before anything ran
