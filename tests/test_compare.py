"""`evals compare` on run directories made for real by `evals score`: flips, McNemar against scipy, the
paired CI, corpus BLEU recomputed on resampled utterances, protocol refusal, bad input, the Markdown
and the HTML page (escaping, redaction, forest plot). Builtin MMLU-Pro and CoVoST data keep the fast
tests fast; the published GPT-4o MMLU-Pro outputs (shared real data) make the slow one."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
import sacrebleu
from realdata import GPT4O, GPT4O_GLOB, needs_real
from scipy.stats import binomtest

from evals.cli import main
from evals.compare import compare, pair_runs
from evals.paired_stats import paired_bootstrap
from evals.records import GenerationStats, ModelRecord, Results, RowCost
from evals.run_dir import RunDir, load_run_dir
from reports.comparison import render_comparison_html, render_markdown
from reports.html import REDACTED
from tasks.covost2 import CoVoST2
from tasks.mmlu_pro import MMLUPro

SAMPLES = MMLUPro().load("builtin")  # ten questions, ids 900001..900010


def score_run(
    tmp_path: Path, name: str, wrong: set[int], *, ids: range | None = None, repeats: int = 1,
    noise: str = "", options: tuple[str, ...] = (),
) -> Path:  # fmt: skip
    """A run directory scored from predictions that answer right except for the indices in `wrong`
    (a wrong answer is a valid letter other than the target; index 0 answers nothing)."""
    predictions = tmp_path / f"{name}.jsonl"
    with predictions.open("w") as handle:
        for i, sample in enumerate(SAMPLES):
            if ids is not None and i not in ids:
                continue
            for repeat in range(repeats):
                answer = sample.target
                if i in wrong and (repeats == 1 or repeat == 1):
                    answer = "nothing" if i == 0 else ("A" if sample.target != "A" else "B")
                response = f"{noise}Thinking.\nThe answer is ({answer})"
                handle.write(json.dumps({"id": sample.id, "repeat": repeat, "response": response}) + "\n")
    out = tmp_path / name
    args = ["score", str(predictions), "--task", "mmlu_pro", "--data", "builtin", "--output", str(out)]
    for option in options:
        args += ["--task-opt", option]
    assert main(args) == 0
    return out


def ids_of(indices: list[int]) -> tuple[str, ...]:
    return tuple(SAMPLES[i].id for i in indices)


@pytest.fixture
def two_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[RunDir, RunDir]:
    reference = score_run(tmp_path, "ref", {0, 1})
    candidate = score_run(tmp_path, "cand", {2, 3, 4, 5, 6})
    capsys.readouterr()
    return load_run_dir(reference), load_run_dir(candidate)


def test_flips_mcnemar_and_paired_ci(two_runs: tuple[RunDir, RunDir]) -> None:
    reference, candidate = two_runs
    (row,) = pair_runs(reference, candidate)
    assert row.label == "mmlu_pro" and row.sample_ids == ids_of(list(range(10)))
    assert row.right_to_wrong == ids_of([2, 3, 4, 5, 6])
    assert row.wrong_to_right == ids_of([0, 1])
    assert row.p_value == pytest.approx(binomtest(2, 7, 0.5).pvalue) and row.test == "McNemar exact"
    assert row.reference_matched == pytest.approx(0.8) and row.candidate_matched == pytest.approx(0.5)
    assert row.diff == pytest.approx(-0.3) and row.diff_low <= -0.3 <= row.diff_high
    expected = paired_bootstrap(row.reference_values, row.candidate_values)  # the same resamples
    assert (row.diff_low, row.diff_high) == (
        expected.low,
        expected.high,
    ) and row.diff_low < -0.3 < row.diff_high
    assert row.reference_values[0] == 0.0 and row.candidate_values[0] == 1.0
    # extracted answers agree on the three samples right in both runs only (index 0 is unparsed: None vs B)
    assert row.agreement == pytest.approx(0.3)
    assert row.reference_unparsed == pytest.approx(0.1) and row.unparsed_change == pytest.approx(-0.1)
    assert row.truncated_change == 0
    flip = next(f for f in row.flips if f.id == SAMPLES[2].id)
    assert flip.reference.outcome == "correct" and flip.candidate.outcome == "wrong"
    assert SAMPLES[2].inputs["question"] in flip.prompt and "The answer is" in flip.candidate.output


def test_repeats_use_the_sign_flip_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = load_run_dir(score_run(tmp_path, "ref", set(), repeats=2))
    candidate = load_run_dir(score_run(tmp_path, "cand", {3, 4}, repeats=2))
    (row,) = pair_runs(reference, candidate)
    assert row.test.startswith("sign-flip") and row.n_completions == 20
    assert row.right_to_wrong == (f"{SAMPLES[3].id}#1", f"{SAMPLES[4].id}#1") and not row.wrong_to_right
    assert row.candidate_values[3] == 0.5 and row.diff == pytest.approx(-0.1)
    assert row.p_value == pytest.approx(
        0.5
    )  # two equal non-zero differences: 2 of 4 sign patterns as extreme


def test_cli_prints_markdown_and_writes_both_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = score_run(tmp_path, "ref", {0, 1})
    cand = score_run(tmp_path, "cand", {2, 3, 4, 5, 6})
    third = score_run(tmp_path, "third", set())
    capsys.readouterr()
    md, page = tmp_path / "c.md", tmp_path / "c.html"
    assert main(["compare", str(cand), str(third), "--reference", str(ref), "--markdown", str(md),
                 "--html", str(page)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert printed.startswith("## Comparison against `ref`") and md.read_text() in printed
    assert "| cand | 50.0 |" in printed and "| -30.0 |" in printed and "| third | 100.0 |" in printed
    assert f"right→wrong: `{SAMPLES[2].id}`" in printed and "### Cost" in printed
    html_page = page.read_text()
    assert html_page.startswith("<!doctype html>") and "<svg class='forest'" in html_page
    assert html_page.count("<circle") == 2 and "http" not in html_page  # self-contained
    assert SAMPLES[2].inputs["question"] in html_page  # MMLU-Pro text is public


def test_html_escapes_outputs_and_redacts_private_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = load_run_dir(score_run(tmp_path, "ref", set()))
    candidate = load_run_dir(score_run(tmp_path, "cand", {2}, noise="<script>x</script>\x00\x1b[31m"))
    page = render_comparison_html(compare([reference, candidate]))
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "\x00" not in page and "\x1b" not in page and "\\x00\\x1b[31m" in page
    question = SAMPLES[2].inputs["question"]
    private = [replace(run, results=Results(run.results.header, [replace(run.results.scored[0], public_text=False)]))
               for run in (reference, candidate)]  # fmt: skip
    hidden = render_comparison_html(compare(private))
    assert question not in hidden and "&lt;script&gt;" not in hidden and REDACTED.split(":")[0] in hidden
    assert question in render_comparison_html(compare(private), redact=False)
    assert question not in render_comparison_html(compare([reference, candidate]), redact=True)
    assert question not in render_markdown(compare(private))


def test_a_different_extractor_is_refused_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = score_run(tmp_path, "ref", set())
    cand = score_run(tmp_path, "cand", {2}, options=("extractor=tiger-2024-05",))
    capsys.readouterr()
    assert main(["compare", str(ref), str(cand)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "row 'mmlu_pro'" in err and "config.extractor" in err and "--allow-protocol-diff" in err
    assert main(["compare", str(ref), str(cand), "--allow-protocol-diff"]) == 0
    printed = capsys.readouterr().out
    assert "| cand ⚠ |" in printed and "protocol differs: config.extractor" in printed


def test_a_subset_pairs_on_its_samples_and_disjoint_runs_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = score_run(tmp_path, "full", set())
    first = score_run(tmp_path, "first", {1}, ids=range(0, 5))
    last = score_run(tmp_path, "last", set(), ids=range(5, 10))
    capsys.readouterr()
    (row,) = pair_runs(load_run_dir(full), load_run_dir(first))  # data fingerprints differ: targets agree
    assert row.sample_ids == ids_of([0, 1, 2, 3, 4]) and row.right_to_wrong == ids_of([1])
    assert main(["compare", str(first), str(last)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == "evals: error: first and last have no samples in common; compare runs of the same card/tasks"
    )


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = score_run(tmp_path, "ref", set())
    old = tmp_path / "old"
    old.mkdir()
    for name in ("run.json", "results.json", "samples.jsonl", "prompts.jsonl"):
        (old / name).write_text((ref / name).read_text())
    results = json.loads((old / "results.json").read_text())
    del results["format_version"]
    (old / "results.json").write_text(json.dumps(results))
    capsys.readouterr()
    for argv, expected in (
        (["compare", str(ref)], "at least two"),
        (["compare", str(ref), str(ref)], "at least two"),
        (["compare", str(ref), str(tmp_path / "missing")], "is not a run directory"),
        (["compare", str(ref), str(old)], "run format 1 (unversioned)"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and expected in err, err


def test_corpus_bleu_difference_recomputes_the_corpus_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = CoVoST2().load("builtin")
    hypotheses: dict[str, list[dict[str, list[str]]]] = {}
    runs = []
    for name, drop in (("ref", 0), ("cand", 2)):
        predictions = tmp_path / f"{name}.jsonl"
        with predictions.open("w") as handle:
            for sample in samples:
                words = sample.target.split()
                hypothesis = " ".join(words[: max(1, len(words) - drop)])
                by_pair = hypotheses.setdefault(name, [{}])[0]
                by_pair.setdefault(sample.category or "", []).append(hypothesis)
                answer = f"{sample.inputs['source_sentence']}\nEnglish: {hypothesis}"
                handle.write(json.dumps({"id": sample.id, "response": answer}) + "\n")
        out = tmp_path / name
        assert (
            main(["score", str(predictions), "--task", "covost2", "--data", "builtin", "--output", str(out)])
            == 0
        )
        runs.append(load_run_dir(out))
    capsys.readouterr()
    (row,) = pair_runs(runs[0], runs[1])
    references: dict[str, list[str]] = {}
    for sample in samples:
        references.setdefault(sample.category or "", []).append(sample.target)

    def macro(name: str) -> float:
        by_pair = hypotheses[name][0]
        scores = [sacrebleu.corpus_bleu(h, [references[p]], tokenize="13a").score for p, h in by_pair.items()]
        return sum(scores) / len(scores) / 100

    assert row.metric == "bleu" and not row.flips and "chrF" in row.test
    assert (
        row.reference_matched
        == pytest.approx(macro("ref"))
        == pytest.approx(runs[0].results.scored[0].summary.value)
    )
    assert row.candidate_matched == pytest.approx(macro("cand"))
    assert row.diff == pytest.approx(macro("cand") - macro("ref"))
    assert row.diff_low <= row.diff <= row.diff_high < 0


@needs_real
@pytest.mark.slow  # two `evals score` runs over 12,032 published outputs: ~40 s
def test_published_gpt4o_outputs_against_answers_changed_on_purpose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [row for path in sorted(GPT4O.glob("*_result.json")) for row in json.loads(path.read_text())]
    changed = set(random.Random(0).sample(range(len(rows)), 400))
    paths = []
    for name, edit in (("gpt4o", set()), ("edited", changed)):
        predictions = tmp_path / f"{name}.jsonl"
        with predictions.open("w") as handle:
            for i, row in enumerate(rows):
                response = row["response"]
                if (
                    i in edit
                ):  # a different final answer: the gold letter if it was wrong, else another letter
                    letter = (
                        row["answer"]
                        if row["pred"] != row["answer"]
                        else ("A" if row["answer"] != "A" else "B")
                    )
                    response = f"The answer is ({letter})."
                handle.write(json.dumps({"id": row["question_id"], "response": response}) + "\n")
        out = tmp_path / name
        assert main(["score", str(predictions), "--task", "mmlu_pro", "--task-opt", "extractor=tiger-2024-05",
                     "--data", GPT4O_GLOB, "--output", str(out)]) == 0  # fmt: skip
        paths.append(out)
    capsys.readouterr()
    (row,) = pair_runs(load_run_dir(paths[0]), load_run_dir(paths[1]))
    assert len(row.sample_ids) == len(rows) == 12032
    flipped = {str(rows[i]["question_id"]) for i in changed}
    assert set(row.right_to_wrong) | set(row.wrong_to_right) == flipped
    b, c = len(row.right_to_wrong), len(row.wrong_to_right)
    assert b + c == 400 and row.p_value == pytest.approx(binomtest(c, b + c, 0.5).pvalue)
    true_difference = (c - b) / len(rows)
    assert row.diff == pytest.approx(true_difference) and row.diff_low <= true_difference <= row.diff_high


def test_cost_side_by_side_and_points_lost_per_gb_saved(two_runs: tuple[RunDir, RunDir]) -> None:
    def with_model(run: RunDir, size: int, quantization: object, tokens: int, seconds: float) -> RunDir:
        model = ModelRecord(spec="m", resolved=None, backend="llamacpp", fingerprint={"dtype": "bfloat16"},
                            quantization=quantization, size_bytes=size, peak_rss_bytes=3 * 10**9)  # fmt: skip
        row = replace(
            run.results.scored[0],
            cost=RowCost("m", GenerationStats(completion_tokens=tokens, seconds=seconds)),
        )
        return replace(run, run=replace(run.run, models=[model]), results=replace(run.results, rows=[row]))

    reference = with_model(two_runs[0], 2 * 10**9, None, 100, 4.0)
    candidate = with_model(two_runs[1], 10**9, {"format": "gguf", "type": "Q4_K_M"}, 300, 4.0)
    comparison = compare([reference, candidate])
    ref_cost, cand_cost = comparison.costs
    assert ref_cost.quantization == "none (bfloat16)" and cand_cost.quantization == "Q4_K_M"
    assert ref_cost.tokens_per_second == 25 and cand_cost.tokens_per_second == 75
    assert cand_cost.points_lost_per_gb_saved == {"mmlu_pro": pytest.approx(30.0)}  # 80 -> 50 for 1 GB saved
    text = render_markdown(comparison)
    assert "| cand | llamacpp | m | Q4_K_M | 1.00 GB | 75.0 |" in text and "mmlu_pro: 30.00 |" in text
