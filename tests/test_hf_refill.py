"""Refilled batches in the transformers backend (`refill_every`, runners/hf_refill.py): the row
bookkeeping and the segment trigger on real tensors, the scheduler's order, out-of-memory back-off
and errors, and the backend on real models: SmolLM2 greedy and the tiny Gemma 4 with seeded
sampling and stop strings give the same completions as static batches, with rows refilled."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest
import torch

from evals.schema import Message, Request, Sampling
from runners import hf_refill
from runners.hf import HFBackend
from runners.hf_generation import BatchSizer, RowBudget
from runners.hf_refill import RefillTrigger, RowState, check_refill, rows_needed, run_refilled
from runners.tiny_gemma4 import save_tiny_gemma4

END = frozenset({0})


# --- row bookkeeping ------------------------------------------------------------------------


def test_row_extends_up_to_an_end_id_the_budget_or_a_stop_string() -> None:
    row: RowState[str] = RowState("a", prompt=[9, 9], budget=6)
    row.extend([5, 6, 7], END, None)
    assert (row.generated, row.finished, row.remaining) == ([5, 6, 7], False, 3)
    assert row.ids == [9, 9, 5, 6, 7]
    row.extend([8, 0, 3, 3], END, None)  # the end id is kept, what follows (padding) is not
    assert (row.generated, row.finished) == ([5, 6, 7, 8, 0], True)

    capped: RowState[str] = RowState("b", prompt=[1], budget=4)
    capped.extend([5, 6, 7, 8, 9, 9], END, None)
    assert (capped.generated, capped.finished, capped.stopped_at) == ([5, 6, 7, 8], True, None)

    stopped: RowState[str] = RowState("c", prompt=[1], budget=10, generated=[4, 4])
    stopped.extend([5, 6, 7], END, stopped_at=4)  # counted over all generated tokens: 4, 4, 5, 6
    assert (stopped.generated, stopped.finished, stopped.stopped_at) == ([4, 4, 5, 6], True, 4)

    padded: RowState[str] = RowState("d", prompt=[1], budget=3)
    padded.extend([5, 6, 7, 0, 0], END, stopped_at=5)  # a "stop" found in padding past the budget
    assert (padded.generated, padded.stopped_at, padded.finished) == ([5, 6, 7], None, True)


def test_trigger_waits_for_the_steps_and_the_share_of_finished_rows() -> None:
    budget = RowBudget([100, 100, 2, 100], prompt_len=3)
    trigger = RefillTrigger(every=2, need=rows_needed(4, 0.5), prompt_len=3, end_ids=END, budget=budget)
    assert rows_needed(4, 0.5) == 2 and rows_needed(1, 0.5) == 1 and rows_needed(5, 0.5) == 3
    assert rows_needed(64, 0.9) == 58 and rows_needed(10, 0.9) == 9 and rows_needed(3, 0.01) == 1
    ids = torch.tensor([[1, 1, 1, 5], [1, 1, 1, 0], [1, 1, 1, 5], [1, 1, 1, 5]])
    scores = torch.zeros(4, 10)
    assert not trigger(ids, scores).any()  # 1 step < every, though row 1 has ended
    ids = torch.cat([ids, torch.tensor([[5], [0], [5], [5]])], dim=1)
    assert trigger(ids, scores).all()  # 2 steps: row 1 ended, row 2 spent its budget of 2
    budget_only = RefillTrigger(2, 2, 3, END, RowBudget([100, 100, 100, 100], 3))
    assert not budget_only(ids, scores).any()  # one row done of the two needed
    assert budget(ids, scores).tolist() == [False, False, True, False]


def test_trigger_counts_stop_strings() -> None:
    budget = RowBudget([100, 100], prompt_len=1)
    stopped: list[int | None] = [None, 2]
    trigger = RefillTrigger(1, 1, 1, END, budget, stops=lambda: stopped)
    assert trigger(torch.tensor([[1, 5, 5], [1, 5, 5]]), torch.zeros(2, 10)).all()


# --- the scheduler ---------------------------------------------------------------------------


def rows(lengths: list[int], budget: int = 100) -> deque[RowState[int]]:
    return deque(RowState(length, prompt=[1], budget=budget) for length in lengths)


def segment_of(steps: int, log: list[list[int]]) -> object:
    """A stand-in model for the scheduler: row `item` emits tokens 5 until it has `item` tokens,
    then the end id; each segment decodes `steps` steps (or until every row has ended)."""

    def run(active: list[RowState[int]], more_waiting: bool) -> None:
        log.append([row.item for row in active])
        for row in active:
            left = row.item - len(row.generated)
            new = [5] * min(steps, left - 1) + ([0] if left <= steps else [])
            row.extend(new, END, None)

    return run


def test_scheduler_refills_finished_slots_and_yields_each_row_as_it_ends() -> None:
    log: list[list[int]] = []
    sizer = BatchSizer(2, adaptive=False)
    done = list(run_refilled(rows([9, 2, 3, 2]), lambda: 2, segment_of(4, log), sizer, lambda: None))  # type: ignore[arg-type]
    assert [row.item for row in done] == [2, 3, 9, 2]  # short rows leave first; 9 keeps its slot
    assert log == [[9, 2], [9, 3], [9, 2]]
    assert all(row.generated[-1] == 0 and len(row.generated) == row.item for row in done)


def test_scheduler_halves_on_out_of_memory_keeping_progress() -> None:
    log: list[list[int]] = []
    inner = segment_of(3, log)

    def segment(active: list[RowState[int]], more_waiting: bool) -> None:
        if len(active) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated for a batch over 2 rows)")
        inner(active, more_waiting)  # type: ignore[operator]

    sizer = BatchSizer(4, adaptive=True)
    done = list(run_refilled(rows([7, 7, 7, 7, 7]), lambda: 4, segment, sizer, lambda: None))
    assert sizer.size == 2
    assert sorted(len(row.generated) for row in done) == [7] * 5
    assert all(len(batch) <= 2 for batch in log)


def test_scheduler_fails_only_the_rows_of_a_failed_segment() -> None:
    calls: list[int] = []

    def segment(active: list[RowState[int]], more_waiting: bool) -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("device lost")
        for row in active:
            row.extend([0], END, None)

    done = list(run_refilled(rows([3, 3, 3]), lambda: 2, segment, BatchSizer(2, False), lambda: None))
    assert [type(row.error).__name__ if row.error else None for row in done] == ["RuntimeError"] * 2 + [None]


def test_refill_option_combinations_are_refused_in_one_line() -> None:
    check_refill(0, 0.9, static_cache=True, draft=True)
    with pytest.raises(ValueError, match="refill_every must be 0"):
        check_refill(-1, 0.9, static_cache=False, draft=False)
    with pytest.raises(ValueError, match="refill_share must be"):
        check_refill(64, 1.5, static_cache=False, draft=False)
    with pytest.raises(ValueError, match="cannot be combined"):
        check_refill(64, 0.9, static_cache=True, draft=False)
    with pytest.raises(ValueError, match="one request at a time"):
        check_refill(64, 0.9, static_cache=False, draft=True)


# --- the backend on real models ----------------------------------------------------------------


def chat(asks: list[str], sampling: Sampling) -> list[Request]:
    return [
        Request(key=f"q{i}", sample_id=f"q{i}", repeat=0, sampling=sampling, messages=(Message.user(a),))
        for i, a in enumerate(asks)
    ]


@pytest.mark.slow
def test_smollm2_greedy_refilled_equals_static(smollm2_gguf: Path) -> None:
    asks = ["What is 2 + 2? Answer with a number only.", "Write a short poem about the sea.",
            "Say yes.", "Explain photosynthesis in detail.", "Name a colour.", "List five fruits.",
            "Describe Paris in three sentences.", "Reply with the word 'ok'."]  # fmt: skip
    batch = chat(asks, Sampling(max_tokens=32))
    static = HFBackend(str(smollm2_gguf), batch_size=2, progress=False)
    static.generated_ids = {}
    expected = {c.key: (c.raw, c.finish_reason, c.completion_tokens) for c in static.generate(batch)}
    refilled = HFBackend(str(smollm2_gguf), batch_size=2, refill_every=4, refill_share=0.5, progress=False)
    refilled.generated_ids = {}
    completions = list(refilled.generate(batch))
    assert {c.key: (c.raw, c.finish_reason, c.completion_tokens) for c in completions} == expected
    assert refilled.generated_ids == static.generated_ids
    assert {c.finish_reason for c in completions} == {"stop", "length"}  # short and long rows both
    # Short answers left early and their slots were refilled: more segments than the four static
    # batches, never more rows than the batch size.
    assert static.batch_sizes == [2, 2, 2, 2]
    assert len(refilled.batch_sizes) > 4 and max(refilled.batch_sizes) == 2
    static.close()
    refilled.close()


@pytest.mark.slow
@pytest.mark.parametrize("chunk", [256, 4])
def test_tiny_gemma4_sampled_rows_with_stop_strings_equal_static(
    tmp_path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With chunk 4 every refilled prefill runs in chunks of the longest prompt (the same tokens)."""
    monkeypatch.setattr(hf_refill, "MIN_PREFILL_CHUNK", chunk)
    model = save_tiny_gemma4(tmp_path, with_processor=False)
    words = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "again", "and", "again"]
    asks = [" ".join(words[: 1 + (i * 5) % len(words)]) for i in range(9)]
    results = []
    for options in ({}, {"refill_every": 3, "refill_share": 0.5}):
        backend = HFBackend(str(model), batch_size=3, progress=False, **options)
        for stops in (("e",), ("a", "zz")):
            batch = [
                Request(
                    key=f"r{i}-{stops[0]}",
                    sample_id=f"r{i}",
                    repeat=0,
                    sampling=Sampling(max_tokens=20, temperature=1.0, seed=i, stop=stops),
                    messages=(Message.user(ask),),
                )
                for i, ask in enumerate(asks)
            ]
            results.append(
                {c.key: (c.raw, c.finish_reason, c.completion_tokens) for c in backend.generate(batch)}
            )
        results.append(backend.batch_sizes)
        backend.close()
    static_e, static_a, static_sizes, refill_e, refill_a, refill_sizes = results
    assert refill_e == static_e and refill_a == static_a
    lengths = sorted(n for _, _, n in static_e.values())
    assert lengths[0] < lengths[-1] == 20  # rows of different lengths: some stopped, some ran out
    assert len(refill_sizes) > len(static_sizes)  # refills happened
