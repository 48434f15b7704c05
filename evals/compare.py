"""Compare runs of the same rows, sample by sample: the engine behind `evals compare` (and `evals gate`).

Rows are matched by label and task, completions by (sample id, repeat), whatever backend made each
run. For each row of each candidate against the reference: the paired difference with a paired
bootstrap 95% CI (for corpus BLEU, utterances are resampled and the corpus score recomputed), an
exact McNemar test on 0/1 outcomes (one repeat) or a sign-flip test on per-sample means, the flipped
samples both ways, agreement of extracted answers and the change in unparsed and truncated rates;
and each run's cost side by side. Rows whose protocol differs are refused unless allowed. This
module reads typed run records and returns evals.comparison_records; it renders nothing
(reports/comparison.py does) and writes nothing.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evals import registry
from evals.comparison_records import (
    RIGHT_TO_WRONG,
    WRONG_TO_RIGHT,
    Comparison,
    Flip,
    FlipSide,
    PairedRow,
    RunCost,
    UnmatchedRow,
)
from evals.paired_stats import mcnemar_exact, paired_bootstrap, paired_bootstrap_indices, paired_sign_flip
from evals.records import GenerationStats, ModelRecord, RowResult, SampleRecord
from evals.run_dir import RunDir

LEVEL = 0.95
GB = 1e9
Key = tuple[str, int]  # (sample id, repeat)


def run_name(run: RunDir) -> str:
    return run.path.name or str(run.path)


def _names(runs: Sequence[RunDir]) -> list[str]:
    """Short names for the runs: their folder names, or their paths where folder names clash."""
    short = [run_name(run) for run in runs]
    return [name if short.count(name) == 1 else str(run.path) for name, run in zip(short, runs, strict=True)]


def _rows(run: RunDir) -> dict[tuple[str, str], RowResult]:
    return {(row.label, row.task): row for row in run.results.scored}


def _samples_by_row(run: RunDir) -> dict[str, dict[Key, SampleRecord]]:
    out: dict[str, dict[Key, SampleRecord]] = defaultdict(dict)
    for sample in run.samples:
        out[sample.row][(sample.id, sample.repeat)] = sample
    return out


def _protocol_differences(
    ref_row: RowResult, cand_row: RowResult, ref: dict[Key, SampleRecord], cand: dict[Key, SampleRecord],
    keys: Sequence[Key],
) -> list[str]:  # fmt: skip
    """Protocol differences of two runs of a row. The data fingerprint is left out (runs of different
    subsets of one dataset differ there); the targets and prompts of the matched samples are compared
    instead, and a changed one names the two data fingerprints (the dataset changed between the runs)."""
    found = [
        d for d in ref_row.protocol.differences(cand_row.protocol) if not d.startswith("data_fingerprint:")
    ]
    fingerprints = (str(row.protocol.data_fingerprint)[:12] for row in (ref_row, cand_row))
    data = "data_fingerprint {} vs {}".format(*fingerprints)
    for key in keys:
        if ref[key].target != cand[key].target:
            found.append(f"target of sample {key[0]}: {ref[key].target} vs {cand[key].target} ({data})")
            break
    for key in keys:
        if ref[key].prompt_id != cand[key].prompt_id:
            found.append(f"prompt of sample {key[0]} differs ({data})")
            break
    return found


def unmatched_rows(reference: RunDir, candidate: RunDir) -> list[UnmatchedRow]:
    """Rows present in only one of the two runs, or present in both with no sample in common."""
    ref_name, cand_name = _names([reference, candidate])
    ref_rows, cand_rows = _rows(reference), _rows(candidate)
    out = [
        UnmatchedRow(label, task, (ref_name,), f"not in {cand_name}")
        for (label, task) in ref_rows
        if (label, task) not in cand_rows
    ]
    out += [
        UnmatchedRow(label, task, (cand_name,), f"not in {ref_name}")
        for (label, task) in cand_rows
        if (label, task) not in ref_rows
    ]
    ref_samples, cand_samples = _samples_by_row(reference), _samples_by_row(candidate)
    for label, task in ref_rows:
        if (label, task) in cand_rows and not set(ref_samples[label]) & set(cand_samples[label]):
            out.append(UnmatchedRow(label, task, (ref_name, cand_name), "no sample in common"))
    return out


def pair_runs(
    reference: RunDir, candidate: RunDir, *, allow_protocol_diff: bool = False, level: float = LEVEL
) -> list[PairedRow]:
    """Every row of `candidate` paired with the same row of `reference` over their common samples,
    the difference with its paired bootstrap interval at two-sided `level`.
    Raises ValueError (one line) when the runs share no sample, or when a row's protocol differs and
    `allow_protocol_diff` is false (allowed differences are recorded in each PairedRow)."""
    ref_name, cand_name = _names([reference, candidate])
    ref_rows, cand_rows = _rows(reference), _rows(candidate)
    ref_samples, cand_samples = _samples_by_row(reference), _samples_by_row(candidate)
    paired = []
    for (label, task), ref_row in ref_rows.items():
        cand_row = cand_rows.get((label, task))
        if cand_row is None:
            continue
        ref, cand = ref_samples[label], cand_samples[label]
        keys = [key for key in ref if key in cand]
        if not keys:
            continue
        differences = _protocol_differences(ref_row, cand_row, ref, cand, keys)
        if differences and not allow_protocol_diff:
            raise ValueError(
                f"row '{label}' was run with a different protocol in {cand_name} than in {ref_name} "
                f"({differences[0]}); compare runs of the same protocol, or pass --allow-protocol-diff"
            )
        paired.append(
            _pair_row(
                ref_row,
                cand_row,
                ref,
                cand,
                keys,
                (ref_name, cand_name),
                reference.prompts,
                differences,
                level,
            )
        )
    if not paired:
        raise ValueError(
            f"{ref_name} and {cand_name} have no samples in common; compare runs of the same card/tasks"
        )
    return paired


def _pair_row(
    ref_row: RowResult,
    cand_row: RowResult,
    ref: dict[Key, SampleRecord],
    cand: dict[Key, SampleRecord],
    keys: list[Key],
    names: tuple[str, str],
    prompts: dict[str, Any],
    differences: list[str],
    level: float,
) -> PairedRow:
    ids = list(dict.fromkeys(sample_id for sample_id, _ in keys))
    repeats_of: dict[str, list[Key]] = defaultdict(list)
    for key in keys:
        repeats_of[key[0]].append(key)
    ref_values = np.array([np.mean([ref[k].value for k in repeats_of[i]]) for i in ids], dtype=float)
    cand_values = np.array([np.mean([cand[k].value for k in repeats_of[i]]) for i in ids], dtype=float)
    binary = all(ref[k].value in (0.0, 1.0) and cand[k].value in (0.0, 1.0) for k in keys)
    one_repeat = len(keys) == len(ids)

    kind = _headline(ref_row)
    if kind == "corpus":
        difference, ref_point, cand_point = _corpus_difference(ids, repeats_of, ref, cand)
        interval = paired_bootstrap_indices(len(ids), difference, level=level)
    elif kind == "macro_by_category":
        groups = [ref[repeats_of[i][0]].category or "" for i in ids]
        difference, ref_point, cand_point = _macro_difference(groups, ref_values, cand_values)
        interval = paired_bootstrap_indices(len(ids), difference, level=level)
    else:
        interval = paired_bootstrap(ref_values, cand_values, level=level)
        ref_point, cand_point = float(ref_values.mean()), float(cand_values.mean())

    flips = _flips(keys, ref, cand, prompts, with_repeat=not one_repeat) if binary else []
    right_to_wrong = tuple(_flip_id(f, one_repeat) for f in flips if f.direction == RIGHT_TO_WRONG)
    wrong_to_right = tuple(_flip_id(f, one_repeat) for f in flips if f.direction == WRONG_TO_RIGHT)
    if binary and one_repeat:
        test, p_value = "McNemar exact", mcnemar_exact(len(right_to_wrong), len(wrong_to_right))
    else:
        test = "sign-flip on per-sample " + ("sentence chrF" if kind == "corpus" else "means")
        p_value = paired_sign_flip(ref_values, cand_values)

    def rate(side: dict[Key, SampleRecord], outcome: str) -> float:
        return sum(1 for k in keys if side[k].outcome == outcome) / len(keys)

    return PairedRow(
        label=ref_row.label,
        task=ref_row.task,
        metric=ref_row.metric,
        reference_run=names[0],
        candidate_run=names[1],
        reference=ref_row,
        candidate=cand_row,
        sample_ids=tuple(ids),
        reference_values=tuple(float(v) for v in ref_values),
        candidate_values=tuple(float(v) for v in cand_values),
        n_completions=len(keys),
        reference_matched=ref_point,
        candidate_matched=cand_point,
        diff=interval.diff,
        diff_low=interval.low,
        diff_high=interval.high,
        level=interval.level,
        test=test,
        p_value=p_value,
        right_to_wrong=right_to_wrong,
        wrong_to_right=wrong_to_right,
        flips=tuple(flips),
        agreement=sum(1 for k in keys if ref[k].extracted == cand[k].extracted) / len(keys),
        reference_unparsed=rate(ref, "unparsed"),
        candidate_unparsed=rate(cand, "unparsed"),
        reference_truncated=rate(ref, "truncated"),
        candidate_truncated=rate(cand, "truncated"),
        protocol_differences=tuple(differences),
        public_text=ref_row.public_text and cand_row.public_text,
    )


@functools.cache
def _task_headline(task: str, variant: str) -> str:
    try:
        return str(registry.make_task(task, variant or None, {}).headline)
    except Exception:  # a task that cannot be built here (missing extra): its rows are plain means
        return "mean"


def _headline(row: RowResult) -> str:
    """How the row's number is made: "mean" over samples, "macro_by_category" or "corpus"."""
    if row.corpus_metrics and row.corpus_metrics.get("metric") == row.metric:
        return "corpus"
    return _task_headline(row.task, row.variant)


def _macro_difference(
    groups: Sequence[str], ref_values: NDArray[np.float64], cand_values: NDArray[np.float64]
) -> tuple[Callable[[NDArray[np.intp]], float], float, float]:
    """The difference of unweighted means of per-group means on resampled indices, and both points."""
    names = sorted(set(groups))
    codes = np.array([names.index(g) for g in groups], dtype=np.intp)

    def macro(values: NDArray[np.float64], index: NDArray[np.intp]) -> float:
        counts = np.bincount(codes[index], minlength=len(names))
        sums = np.bincount(codes[index], weights=values[index], minlength=len(names))
        present = counts > 0
        return float(np.mean(sums[present] / counts[present]))

    def difference(index: NDArray[np.intp]) -> float:
        return macro(cand_values, index) - macro(ref_values, index)

    everything = np.arange(len(groups))
    return difference, macro(ref_values, everything), macro(cand_values, everything)


def _corpus_difference(
    ids: Sequence[str], repeats_of: dict[str, list[Key]], ref: dict[Key, SampleRecord],
    cand: dict[Key, SampleRecord],
) -> tuple[Callable[[NDArray[np.intp]], float], float, float]:  # fmt: skip
    """Macro corpus BLEU over language pairs (in points / 100) of candidate minus reference on
    resampled utterances (repeats pooled per utterance), and both points on all matched utterances."""
    from tasks.covost_metrics import bleu_from_stats, bleu_tokenizer, segment_stats

    pairs = sorted({ref[repeats_of[i][0]].category or "" for i in ids})
    codes = np.array([pairs.index(ref[repeats_of[i][0]].category or "") for i in ids], dtype=np.intp)

    def utterance_stats(side: dict[Key, SampleRecord]) -> NDArray[np.int64]:
        rows: list[NDArray[np.int64]] = []
        for sample_id in ids:
            keys = repeats_of[sample_id]
            target = (side[keys[0]].category or "").partition("_")[2]
            hypotheses = [str(side[k].details.get("hypothesis") or "") for k in keys]
            references = [str(side[k].target) for k in keys]
            segment, _ = segment_stats(hypotheses, references, bleu_tokenizer(target or None))
            rows.append(segment.sum(axis=0))
        return np.vstack(rows)

    ref_stats, cand_stats = utterance_stats(ref), utterance_stats(cand)
    masks = np.array([codes == p for p in range(len(pairs))], dtype=np.int64)

    def macro_bleu(stats: NDArray[np.int64], counts: NDArray[np.int64]) -> float:
        totals = (masks * counts) @ stats  # one row of summed statistics per pair
        present = (masks * counts).sum(axis=1) > 0
        return float(np.mean([bleu_from_stats(t) for t, ok in zip(totals, present, strict=True) if ok])) / 100

    def difference(index: NDArray[np.intp]) -> float:
        counts = np.bincount(index, minlength=len(ids)).astype(np.int64)
        return macro_bleu(cand_stats, counts) - macro_bleu(ref_stats, counts)

    everything = np.ones(len(ids), dtype=np.int64)
    return difference, macro_bleu(ref_stats, everything), macro_bleu(cand_stats, everything)


def _flips(
    keys: Sequence[Key], ref: dict[Key, SampleRecord], cand: dict[Key, SampleRecord], prompts: dict[str, Any],
    *, with_repeat: bool,
) -> list[Flip]:  # fmt: skip
    flips = []
    for key in keys:
        a, b = ref[key], cand[key]
        if a.value == b.value:
            continue
        flips.append(
            Flip(
                id=a.id,
                repeat=a.repeat,
                direction=RIGHT_TO_WRONG if a.value > b.value else WRONG_TO_RIGHT,
                target=str(a.target),
                prompt=prompt_text(prompts.get(a.prompt_id)),
                reference=FlipSide(a.outcome, a.extracted, a.output),
                candidate=FlipSide(b.outcome, b.extracted, b.output),
            )
        )
    return flips


def _flip_id(flip: Flip, one_repeat: bool) -> str:
    return flip.id if one_repeat else f"{flip.id}#{flip.repeat}"


def prompt_text(prompt: Any) -> str:
    """A stored prompt (text, or chat messages) as text; media parts are named, not included."""
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    turns = []
    for turn in prompt:
        content = turn.get("content", "") if isinstance(turn, dict) else turn
        if not isinstance(content, str):
            content = "".join(
                part if isinstance(part, str) else f"[{type(part).__name__}]" for part in content
            )
        role = turn.get("role", "") if isinstance(turn, dict) else ""
        turns.append(f"[{role}] {content}")
    return "\n\n".join(turns)


# --- cost -----------------------------------------------------------------------------------------


def _quantization(model: ModelRecord) -> str | None:
    quant = model.quantization if model.quantization is not None else model.fingerprint.get("quantization")
    if quant is None:
        dtype = model.fingerprint.get("dtype")
        return f"none ({dtype})" if dtype else None
    if isinstance(quant, dict):
        for key in ("type", "file_type", "quant_method", "format"):
            if quant.get(key):
                return str(quant[key])
    return str(quant)


def _max(values: Sequence[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def run_cost(run: RunDir, name: str) -> RunCost:
    """A run's cost: generation over its rows (or the run's total), time, memory, size, quantization."""
    models = run.run.models
    generation = GenerationStats()
    for row in run.results.scored:
        if row.cost is not None:
            generation = generation.merged(row.cost.generation)
    if generation.seconds == 0 and generation.completion_tokens == 0:
        generation = run.run.generation
    sizes = [m.size_bytes for m in models if m.size_bytes is not None]
    quants = [q for q in (_quantization(m) for m in models) if q]
    header = run.results.header
    return RunCost(
        run=name,
        backend=", ".join(dict.fromkeys(m.backend for m in models)) or header.backend,
        model=", ".join(dict.fromkeys(m.spec for m in models)) or header.model,
        quantization=", ".join(dict.fromkeys(quants)) or None,
        completion_tokens=generation.completion_tokens,
        generation_seconds=generation.seconds,
        tokens_per_second=generation.tokens_per_second if generation.seconds > 0 else None,
        wall_seconds=run.run.wall_seconds,
        size_bytes=sum(sizes) if sizes else None,
        peak_rss_bytes=_max([m.peak_rss_bytes for m in models]),
        server_peak_rss_bytes=_max([m.server_peak_rss_bytes for m in models]),
        peak_gpu_bytes=_max([m.peak_gpu_bytes for m in models]),
    )


def _points_per_gb(
    rows: Sequence[PairedRow], reference: RunCost, candidate: RunCost
) -> dict[str, float | None]:
    """Per row: points lost (reference minus candidate, over matched samples) per GB of weights saved."""
    out: dict[str, float | None] = {}
    for row in rows:
        saved = None
        if reference.size_bytes is not None and candidate.size_bytes is not None:
            saved = (reference.size_bytes - candidate.size_bytes) / GB
        lost = 100 * (row.reference_matched - row.candidate_matched)
        out[row.label] = lost / saved if saved is not None and saved > 0 else None
    return out


# --- N runs ---------------------------------------------------------------------------------------


def compare(
    runs: Sequence[RunDir], reference: RunDir | None = None, *, allow_protocol_diff: bool = False
) -> Comparison:
    """Each run against the reference (default: the first run), row by row, and every run's cost.
    One-line ValueError for fewer than two runs, no common samples or (unless allowed) a protocol
    difference."""
    reference = reference if reference is not None else (runs[0] if runs else None)
    if reference is None:
        raise ValueError("compare needs at least two runs; pass two or more run directories")
    same = Path(reference.path).resolve()
    candidates = [run for run in runs if Path(run.path).resolve() != same]
    if not candidates:
        raise ValueError("compare needs at least two different runs; pass two or more run directories")
    ordered = [reference, *candidates]
    names = _names(ordered)
    ref_cost = run_cost(reference, names[0])
    rows: list[PairedRow] = []
    unmatched: list[UnmatchedRow] = []
    costs = [ref_cost]
    for name, candidate in zip(names[1:], candidates, strict=True):
        pairs = pair_runs(reference, candidate, allow_protocol_diff=allow_protocol_diff)
        pairs = [_renamed(p, names[0], name) for p in pairs]
        rows += pairs
        unmatched += [
            u
            for u in unmatched_rows(reference, candidate)
            if not any(u.label == o.label and u.present_in == o.present_in for o in unmatched)
        ]
        cost = run_cost(candidate, name)
        costs.append(_with_points(cost, _points_per_gb(pairs, ref_cost, cost)))
    return Comparison(
        reference=names[0],
        runs=tuple(names),
        paths=tuple(str(run.path) for run in ordered),
        rows=tuple(rows),
        unmatched=tuple(unmatched),
        costs=tuple(costs),
        protocol_diff_allowed=allow_protocol_diff,
    )


def _renamed(row: PairedRow, reference: str, candidate: str) -> PairedRow:
    """The row with the run names used across the whole comparison (pair_runs names runs pairwise)."""
    return replace(row, reference_run=reference, candidate_run=candidate)


def _with_points(cost: RunCost, points: dict[str, float | None]) -> RunCost:
    return replace(cost, points_lost_per_gb_saved=points)
