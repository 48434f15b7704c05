"""CoVoST 2 through `evals score`: the row's headline is the macro corpus BLEU over language pairs
(not a mean of sentence scores), with per-pair BLEU, its CI and the sacrebleu signature in the
results and the report."""

from __future__ import annotations

import json
from pathlib import Path

import sacrebleu

from evals.cli import main
from evals.run_dir import load_run_dir
from tasks.covost2 import CoVoST2


def test_macro_corpus_bleu_is_the_headline(tmp_path: Path) -> None:
    samples = CoVoST2().load("builtin")  # X->en pairs fr_en and de_en in the default variant
    predictions = tmp_path / "covost.jsonl"
    hypotheses: dict[str, tuple[list[str], list[str]]] = {}
    with predictions.open("w") as handle:
        for i, sample in enumerate(samples):
            words = sample.target.split()
            hypothesis = " ".join(words[: max(1, len(words) - i % 3)])  # drop up to two words
            pair = sample.category or ""
            hyps, refs = hypotheses.setdefault(pair, ([], []))
            hyps.append(hypothesis)
            refs.append(sample.target)
            answer = f"{sample.inputs['source_sentence']}\nEnglish: {hypothesis}"
            handle.write(json.dumps({"id": sample.id, "response": answer}) + "\n")
    out = tmp_path / "run"
    assert (
        main(["score", str(predictions), "--task", "covost2", "--data", "builtin", "--output", str(out)]) == 0
    )
    row = load_run_dir(out).results.scored[0]
    expected = {p: sacrebleu.corpus_bleu(h, [r], tokenize="13a").score for p, (h, r) in hypotheses.items()}
    macro = sum(expected.values()) / len(expected)
    assert abs(100 * row.summary.value - macro) < 1e-6
    assert row.corpus_metrics is not None
    per_pair = row.corpus_metrics["per_pair"]
    assert {p: round(m["bleu"], 6) for p, m in per_pair.items()} == {
        p: round(v, 6) for p, v in expected.items()
    }
    assert row.summary.ci95[0] <= row.summary.value <= row.summary.ci95[1]
    report = (out / "report.md").read_text()
    assert "| fr_en |" in report and "sacrebleu signatures" in report
