"""Progress: the bar names the row and model and counts tokens, also while a static batch of the real
transformers backend is still generating (schema.TokenProgress)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.cache import CompletionCache
from evals.generation import generate_all
from evals.schema import Message, Request, Sampling, TokenProgress
from runners.hf import HFBackend
from runners.tiny_gemma4 import save_tiny_gemma4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> HFBackend:
    return HFBackend(str(save_tiny_gemma4(tmp_path_factory.mktemp("tiny"))), batch_size=4, progress=False)


def requests(n: int, max_tokens: int = 12) -> list[Request]:
    return [
        Request(key=f"k{i}", sample_id=str(i), repeat=0, sampling=Sampling(max_tokens=max_tokens),
                messages=(Message.user("count " * (i + 1)),))
        for i in range(n)
    ]  # fmt: skip


def test_hf_reports_tokens_step_by_step_while_a_batch_runs(tiny: HFBackend) -> None:
    assert isinstance(tiny, TokenProgress)
    reports: list[int] = []
    tiny.on_tokens(reports.append)
    try:
        completions = list(tiny.generate(requests(4)))
    finally:
        tiny.on_tokens(None)
    assert len(completions) == 4
    assert len(reports) > 1  # several reports during the one static batch of four
    assert sum(reports) == sum(c.completion_tokens for c in completions)
    list(tiny.generate(requests(1)))  # after on_tokens(None) nothing is reported
    assert sum(reports) == sum(c.completion_tokens for c in completions)


@pytest.mark.parametrize("options", [{}, {"refill_every": 2, "refill_share": 0.5}])
def test_token_counts_stop_at_each_rows_end_with_mixed_budgets_and_stop_strings(
    tiny: HFBackend, options: dict[str, object]
) -> None:
    """Rows of different budgets in one batch, rows cut by a stop string (static and refilled):
    the padding generated after a row's end is not counted as progress."""
    backend = HFBackend(str(tiny.loaded_from), batch_size=3, progress=False, **options)  # type: ignore[arg-type]
    batch = [
        Request(key=f"m{i}", sample_id=str(i), repeat=0, messages=(Message.user("count " * (i + 1)),),
                sampling=Sampling(max_tokens=n, temperature=1.0, seed=i, stop=("e",)))
        for i, n in enumerate((3, 16, 7, 12, 5, 20))
    ]  # fmt: skip
    reports: list[int] = []
    backend.on_tokens(reports.append)
    completions = list(backend.generate(batch))
    backend.close()
    assert {c.finish_reason for c in completions} == {"stop", "length"}
    assert sum(reports) == sum(c.completion_tokens for c in completions)


def test_the_bar_names_row_and_model_and_counts_tokens(
    tiny: HFBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    label = "MMLU Pro · hf:tiny-gemma4"
    _, stats = generate_all(tiny, requests(3, 6), CompletionCache(tmp_path / "c.sqlite"), label=label)
    err = capsys.readouterr().err
    assert label in err and f"{stats.completion_tokens} tokens" in err and "3/3" in err
