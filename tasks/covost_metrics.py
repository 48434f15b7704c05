"""CoVoST 2's metrics: corpus BLEU, sentence chrF, ASR error rates, and the corpus summary of a run.

`corpus_metrics` turns the scores of tasks/covost2.py (hypothesis and transcription in each
score's details) into per-pair corpus BLEU (sacrebleu; every scored utterance, repeats pooled), the
macro average over pairs (the card's number) with a percentile bootstrap CI (scipy's bootstrap,
utterances resampled within each pair, 200 seeded resamples), and per-pair WER (CER for zh-CN and ja
sources) of the transcriptions. Conventions: docs/protocols/covost2.md.

Pairs are named `{source}_{target}` (the hub configs). This module does not read data, build
prompts or parse answers (tasks/covost2.py does).
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import jiwer
import numpy as np
from numpy.typing import NDArray
from sacrebleu.metrics.bleu import BLEU, BLEUScore
from sacrebleu.metrics.chrf import CHRF

from evals.schema import Sample, Score

NO_LABEL_FALLBACK = "no_label_fallback"  # score flag: no "<Target>:" label, the last line was used
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95
NO_SPACE_LANGUAGES = frozenset({"zh-CN", "ja"})  # ASR error as CER
_CHRF = CHRF()


# --- BLEU, chrF, ASR error ------------------------------------------------------------------------


@functools.cache
def _mecab_available() -> bool:
    try:
        BLEU(tokenize="ja-mecab")
    except (ImportError, RuntimeError):  # sacrebleu raises RuntimeError without mecab-python3/ipadic
        return False
    return True


def bleu_tokenizer(target_language: str | None) -> str:
    """sacrebleu tokenizer for a target language: zh for zh-CN, ja-mecab (or char) for ja, else 13a."""
    if target_language == "zh-CN":
        return "zh"
    if target_language == "ja":
        return "ja-mecab" if _mecab_available() else "char"
    return "13a"


def corpus_bleu(
    hypotheses: Sequence[str],
    references: Sequence[str],
    target_lang: str | None = None,
    tokenize: str | None = None,
) -> dict[str, Any]:
    """sacrebleu corpus BLEU (one reference per segment) with the target language's tokenizer,
    unless `tokenize` names one. Precisions in percent, as sacrebleu prints them."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("corpus BLEU of an empty corpus")
    tokenize = tokenize or bleu_tokenizer(target_lang)
    metric = BLEU(tokenize=tokenize)
    result = metric.corpus_score(list(hypotheses), [list(references)])
    return _bleu_dict(result, len(hypotheses), tokenize, str(metric.get_signature()))


def _bleu_dict(result: BLEUScore, n: int, tokenize: str, signature: str) -> dict[str, Any]:
    return {
        "score": result.score,
        "precisions": list(result.precisions),
        "bp": result.bp,
        "ratio": result.ratio,
        "sys_len": result.sys_len,
        "ref_len": result.ref_len,
        "n": n,
        "tokenize": tokenize,
        "signature": signature,
        "text": str(result),
    }


def sentence_chrf(hypothesis: str, reference: str) -> float:
    """Sentence-level chrF (sacrebleu defaults) in points (0-100)."""
    return float(_CHRF.sentence_score(hypothesis, [reference]).score)


@functools.cache
def _punctuation_to_space() -> dict[int, str]:
    """A str.translate table mapping every Unicode punctuation character (categories P*) to a space."""
    return {i: " " for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P")}


def normalize_for_asr(text: str) -> str:
    """NFKC, lower-case, Unicode punctuation → space, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_punctuation_to_space())
    return " ".join(text.split())


def asr_error(references: Sequence[str], hypotheses: Sequence[str], unit: str = "word") -> dict[str, Any]:
    """Corpus WER (`unit="word"`) or CER (`"char"`, whitespace removed) after `normalize_for_asr`.
    References that normalise to nothing are skipped (counted in `n_skipped`)."""
    pairs = [
        (normalize_for_asr(r), normalize_for_asr(h)) for r, h in zip(references, hypotheses, strict=True)
    ]
    if unit == "char":
        pairs = [(r.replace(" ", ""), h.replace(" ", "")) for r, h in pairs]
    kept = [(r, h) for r, h in pairs if r]
    result: dict[str, Any] = {
        "unit": unit,
        "error_rate": None,
        "n": len(kept),
        "n_skipped": len(pairs) - len(kept),
    }
    if not kept:
        return result
    refs, hyps = [r for r, _ in kept], [h for _, h in kept]
    out = jiwer.process_characters(refs, hyps) if unit == "char" else jiwer.process_words(refs, hyps)
    errors = out.substitutions + out.deletions + out.insertions
    result.update(
        error_rate=errors / (out.substitutions + out.deletions + out.hits),
        substitutions=out.substitutions,
        deletions=out.deletions,
        insertions=out.insertions,
        hits=out.hits,
    )
    return result


def segment_stats(
    hypotheses: Sequence[str], references: Sequence[str], tokenize: str
) -> tuple[NDArray[np.int64], str]:
    """Per-segment BLEU statistics, one row each: sys_len, ref_len, 4 n-gram matches, 4 totals
    (sacrebleu's own layout, from the method its paired bootstrap uses), and the signature."""
    metric = BLEU(tokenize=tokenize)
    stats = metric._extract_corpus_statistics(list(hypotheses), [list(references)])
    return np.asarray(stats, dtype=np.int64), str(metric.get_signature())


def _bleu_score(totals: NDArray[np.int64]) -> BLEUScore:
    values = [int(v) for v in totals]
    return BLEU.compute_bleu(values[2:6], values[6:10], values[0], values[1], smooth_method="exp")


def bleu_from_stats(totals: NDArray[np.int64]) -> float:
    """Corpus BLEU from summed segment statistics (same smoothing as `corpus_bleu`)."""
    return float(_bleu_score(totals).score)


def _resampled_totals(stats: NDArray[np.int64], index: NDArray[np.intp]) -> NDArray[np.int64]:
    """Summed segment statistics of each resample: `index` holds one row of utterance numbers per
    resample; counting each utterance's draws and weighting its statistics by them gives the sums."""
    batch, n = index.shape
    offsets = index + n * np.arange(batch)[:, None]
    counts = np.bincount(offsets.ravel(), minlength=batch * n).reshape(batch, n)
    totals: NDArray[np.int64] = counts @ stats
    return totals


def bootstrap_intervals(
    pair_stats: Sequence[NDArray[np.int64]], resamples: int, seed: int
) -> tuple[list[list[float]], list[float]]:
    """Percentile bootstrap CIs (`CI_LEVEL`) of each pair's corpus BLEU and of their macro average,
    from the same resamples: utterances are resampled within each pair (scipy's bootstrap with one
    sample per pair, so pairs are independent strata), seeded with `seed`."""
    from scipy.stats import bootstrap

    point = np.array([bleu_from_stats(stats.sum(axis=0)) for stats in pair_stats], dtype=np.float64)
    varying = [column for column, stats in enumerate(pair_stats) if len(stats) > 1]
    if not varying:  # one utterance per pair: every resample is the data itself
        return [[float(v), float(v)] for v in point], [float(point.mean())] * 2

    def statistic(*indices: NDArray[np.intp], axis: int = -1) -> NDArray[np.float64]:
        bleu = np.repeat(point[:, None], indices[0].shape[0], axis=1)
        for column, index in zip(varying, indices, strict=True):
            bleu[column] = [bleu_from_stats(t) for t in _resampled_totals(pair_stats[column], index)]
        return np.vstack([bleu, bleu.mean(axis=0)])

    utterances = sum(len(pair_stats[column]) for column in varying)
    result = bootstrap(
        [np.arange(len(pair_stats[column])) for column in varying],
        statistic,
        n_resamples=resamples,
        batch=max(1, min(resamples, 4_000_000 // utterances)),  # bounds the index arrays' memory
        vectorized=True,
        method="percentile",
        confidence_level=CI_LEVEL,
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    intervals = [[float(a), float(b)] for a, b in zip(low, high, strict=True)]
    return intervals[:-1], intervals[-1]


# --- corpus metrics of a run ----------------------------------------------------------------------


def corpus_metrics(
    samples: Sequence[Sample],
    scores: Sequence[Score],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """Per-pair corpus BLEU (every scored utterance; repeats pooled), the macro average over pairs
    with a percentile bootstrap CI (utterances resampled within each pair), and per-pair ASR error
    of the transcriptions. BLEU values are in sacrebleu points (0-100)."""
    by_id = {s.id: s for s in samples}
    grouped: dict[str, list[tuple[Sample, Score]]] = defaultdict(list)
    for score in scores:
        sample = by_id.get(score.sample_id)
        if sample is not None and sample.category is not None:
            grouped[sample.category].append((sample, score))
    sample_counts = Counter(s.category for s in samples)
    per_pair: dict[str, dict[str, Any]] = {}
    pair_stats: list[NDArray[np.int64]] = []
    for pair in sorted(grouped):
        summary, stats = _pair_metrics(pair, grouped[pair], sample_counts[pair])
        per_pair[pair] = summary
        pair_stats.append(stats)
    result: dict[str, Any] = {
        "metric": "bleu",
        "macro_bleu": None,
        "ci95": None,
        "bootstrap": {
            "resamples": resamples,
            "seed": seed,
            "unit": "utterance within pair",
            "level": CI_LEVEL,
        },
        "n_pairs": len(per_pair),
        "pairs": list(per_pair),
        "missing_pairs": sorted(p for p in sample_counts if p is not None and p not in per_pair),
        "macro_wer": _macro_asr(per_pair, "word"),
        "macro_cer": _macro_asr(per_pair, "char"),
        "signatures": sorted({p["signature"] for p in per_pair.values()}),
        "per_pair": per_pair,
    }
    if not per_pair:
        return result
    result["macro_bleu"] = float(np.mean([p["bleu"] for p in per_pair.values()]))
    if resamples > 0:
        per_pair_ci, result["ci95"] = bootstrap_intervals(pair_stats, resamples, seed)
        for summary, interval in zip(per_pair.values(), per_pair_ci, strict=True):
            summary["ci95"] = interval
    return result


def _pair_metrics(
    pair: str, items: Sequence[tuple[Sample, Score]], n_samples: int
) -> tuple[dict[str, Any], NDArray[np.int64]]:
    """One pair's summary and its per-utterance BLEU statistics (repeats summed)."""
    source, _, target = pair.partition("_")  # language codes have no underscore
    tokenize = bleu_tokenizer(target)
    hypotheses = [str(score.details.get("hypothesis") or "") for _, score in items]
    references = [str(sample.target) for sample, _ in items]
    segment, signature = segment_stats(hypotheses, references, tokenize)
    bleu = _bleu_dict(_bleu_score(segment.sum(axis=0)), len(items), tokenize, signature)
    utterances = {sid: i for i, sid in enumerate(dict.fromkeys(sample.id for sample, _ in items))}
    stats = np.zeros((len(utterances), segment.shape[1]), dtype=np.int64)
    np.add.at(stats, [utterances[sample.id] for sample, _ in items], segment)
    transcripts = [str(score.details.get("transcription") or "") for _, score in items]
    asr = asr_error(
        [str(sample.inputs.get("source_sentence", "")) for sample, _ in items],
        transcripts,
        "char" if source in NO_SPACE_LANGUAGES else "word",
    )
    summary = {
        "bleu": bleu["score"],
        "ci95": None,
        "precisions": bleu["precisions"],
        "bp": bleu["bp"],
        "ratio": bleu["ratio"],
        "sys_len": bleu["sys_len"],
        "ref_len": bleu["ref_len"],
        "tokenize": tokenize,
        "signature": bleu["signature"],
        "n_samples": n_samples,
        "n_utterances": len(utterances),
        "n_scores": len(items),
        "n_hypotheses": sum(1 for h in hypotheses if h),
        "n_empty_hypothesis": sum(1 for h in hypotheses if not h),
        "n_no_label": sum(1 for _, score in items if NO_LABEL_FALLBACK in score.flags),
        "n_empty_reference": sum(1 for r in references if not r.strip()),
        "outcomes": dict(sorted(Counter(score.outcome.value for _, score in items).items())),
        "mean_chrf": float(np.mean([score.value for _, score in items]) * 100),
        "asr": asr,
    }
    return summary, stats


def _macro_asr(per_pair: dict[str, dict[str, Any]], unit: str) -> float | None:
    rates = [p["asr"]["error_rate"] for p in per_pair.values() if p["asr"]["unit"] == unit]
    rates = [r for r in rates if r is not None]
    return float(np.mean(rates)) if rates else None
