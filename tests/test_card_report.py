"""The Gemma 4 12B card end to end with a tiny random Gemma4Unified built in the test session
(same classes and chat template format as the real model): every card row appears in the report,
rows without a task as "not yet available", and the run directory records the protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals import registry
from evals.cli import main
from evals.records import Setting, UnavailableRow
from evals.run_dir import load_run_dir
from runners.tiny_gemma4 import save_tiny_gemma4

TEXT_TASKS = {"mmlu_pro", "aime", "gpqa_diamond", "livecodebench"}
pytestmark = pytest.mark.slow  # the whole card run (six rows, tiny model, sandboxed grading): about a minute


@pytest.fixture(scope="module")
def card_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("card")
    model = save_tiny_gemma4(root / "tiny-gemma4")
    out = root / "run"
    args = ["run", "--card", "gemma-4-12b-it", "--model", str(model), "--data", "builtin", "--limit", "4",
            "--max-tokens", "6", "--repeats", "2", "--cache", str(root / "cache.sqlite"), "--output", str(out),
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    return out, (out / "report.md").read_text()


def test_report_lists_all_six_rows(card_run: tuple[Path, str]) -> None:
    _, report = card_run
    table = [line for line in report.splitlines() if line.startswith("| ") and "Benchmark" not in line]
    labels = [line.split("|")[1].strip() for line in table[:6]]
    assert labels == [
        "MMLU Pro",
        "AIME 2026 no tools",
        "LiveCodeBench v6",
        "GPQA Diamond",
        "MMMU Pro",
        "CoVoST",
    ]
    tasks = ["mmlu_pro", "aime", "livecodebench", "gpqa_diamond", "mmmu_pro", "covost2"]
    for line, task in zip(table[:6], tasks, strict=True):
        assert ("not yet available" in line) == (task not in registry.TASKS), line
    mmlu = table[0]
    assert "| 77.2 |" in mmlu


def test_run_records_protocol_and_evidence(card_run: tuple[Path, str]) -> None:
    out, _ = card_run
    run = load_run_dir(out)
    row = run.results.scored[0]
    assert row.published == 77.2 and row.summary.n_samples == 4 and row.summary.n_scores == 8
    assert row.settings["thinking"] == Setting(
        True, "inferred",
        "the comparison column is labelled 'Gemma 3 27B (no think)', implying Gemma 4 ran with thinking",
    )  # fmt: skip
    assert row.settings["max_tokens"].evidence == "overridden"
    assert row.settings["repeats"] == Setting(2, "overridden", "card: 1")
    assert row.protocol.repeats == 2 and row.protocol.sampling["max_tokens"] == 6
    assert row.cost is not None and row.cost.generation.requested == 8
    # with 6 new tokens the tiny model never answers: every completion is truncated or unparsed
    assert row.summary.rate("truncated") + row.summary.rate("unparsed") == 1.0
    assert row.verdict.label in {"unclear", "below"}
    assert run.run.card is not None and run.run.card["name"] == "gemma-4-12b-it"
    assert len(run.run.card["sha256"]) == 64
    fingerprint = run.run.models[0].fingerprint
    assert fingerprint["model_class"] == "Gemma4UnifiedForConditionalGeneration"
    assert fingerprint["max_soft_tokens"] == 1120  # the card's MMMU-Pro image budget
    assert run.run.models[0].size_bytes and run.run.models[0].peak_rss_bytes
    available = [t.task for t in run.run.tasks if t.unavailable is None]
    assert available == [t for t in ["mmlu_pro", "aime", "livecodebench", "gpqa_diamond", "mmmu_pro", "covost2"]
                         if t in registry.TASKS]  # fmt: skip
    samples = run.samples
    assert len(samples) == len(available) * 4 * 2 and {s.repeat for s in samples} == {0, 1}
    aime = run.results.scored[1]
    assert aime.task == "aime" and set(aime.extra_metrics) == {"pass@2", "maj@2"}
    first_roles = {s.task: run.prompts[s.prompt_id][0]["role"] for s in samples if s.task in TEXT_TASKS}
    assert first_roles == {
        "mmlu_pro": "user",
        "aime": "user",
        "gpqa_diamond": "user",
        "livecodebench": "system",
    }
    covost = run.results.scored[-1]
    assert covost.task == "covost2" and covost.metric == "bleu"


def test_a_row_whose_task_does_not_exist_is_listed_not_dropped(tmp_path: Path) -> None:
    card = tmp_path / "future.toml"
    card.write_text(
        '[card]\nname = "future"\nmodel = "builtin:tiny-gemma4"\n'
        '[[rows]]\nlabel = "MMLU Pro"\ntask = "mmlu_pro"\ndata = "builtin"\npublished = 50.0\n'
        '[[rows]]\nlabel = "Some future benchmark"\ntask = "future_bench"\npublished = 12.3\n'
    )
    out = tmp_path / "run"
    args = ["run", "--card", str(card), "--limit", "1", "--max-tokens", "2", "--cache", str(tmp_path / "c.sqlite"),
            "--output", str(out), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    report = (out / "report.md").read_text()
    assert "| Some future benchmark | — | 12.3 | not yet available |" in report
    rows = load_run_dir(out).results.rows
    assert rows[1] == UnavailableRow("Some future benchmark", "future_bench", 12.3,
                                     "task 'future_bench' is not implemented yet")  # fmt: skip
