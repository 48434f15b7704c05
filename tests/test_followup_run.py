"""Follow-up turns (AIME's "last chance") through `evals run` with a real tiny Gemma4Unified: the
second turn is generated after the first round, cached like any completion, recorded per sample,
and a re-run generates nothing."""

from __future__ import annotations

from pathlib import Path

from evals.cli import main
from evals.records import SampleRecord
from evals.run_dir import load_run_dir
from runners.tiny_gemma4 import save_tiny_gemma4


def wants_last_chance(record: SampleRecord) -> bool:
    output = record.output
    failed = record.outcome in {"error", "timeout"} or output.count("<|channel>") > output.count("<channel|>")
    return not failed and "\\boxed" not in record.answer


def test_last_chance_turns_are_generated_cached_and_recorded(tmp_path: Path) -> None:
    model = save_tiny_gemma4(tmp_path / "tiny-gemma4")

    def run(out: str) -> dict:
        args = ["run", "--tasks", "aime", "--model", str(model), "--data", "builtin", "--max-tokens", "6",
                "--temperature", "0", "--task-opt", "last_chance=true", "--cache", str(tmp_path / "c.sqlite"),
                "--output", str(tmp_path / out), "--no-progress"]  # fmt: skip
        assert main(args) == 0
        return load_run_dir(tmp_path / out).run.generation

    first = run("first")
    records = load_run_dir(tmp_path / "first").samples
    followed = [r for r in records if r.followup is not None]
    # a random model never writes \boxed{}: every first turn that did not fail gets a last chance
    assert followed and len(followed) == sum(wants_last_chance(r) for r in records)
    assert first.requested == len(records) + len(followed)
    assert first.generated == first.requested and first.cached == 0
    assert all(r.followup and r.followup.raw and r.followup.completion_tokens > 0 for r in followed)
    row = load_run_dir(tmp_path / "first").results.scored[0]
    assert row.summary.flags.get("last_chance", 0) == len(followed)

    again = run("second")
    assert again.cached == again.requested == first.requested and again.generated == 0
