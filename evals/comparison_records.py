"""Typed records of a comparison of runs: what `evals compare` computes and reports/comparison.py renders.

Plain frozen dataclasses, standard library and the run records (evals.records) only, so the reports
can read them without importing the comparison engine. Nothing here computes anything: evals.compare
builds these records from run directories.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evals.records import RowResult

RIGHT_TO_WRONG = "right->wrong"
WRONG_TO_RIGHT = "wrong->right"


@dataclass(frozen=True)
class FlipSide:
    """One run's completion of a flipped sample."""

    outcome: str
    extracted: str | None
    output: str


@dataclass(frozen=True)
class Flip:
    """A completion that is right in one run and not in the other (0/1 outcomes only). `prompt` is the
    reference run's prompt as text."""

    id: str
    repeat: int
    direction: str  # RIGHT_TO_WRONG (reference right, candidate not) or WRONG_TO_RIGHT
    target: str
    prompt: str
    reference: FlipSide
    candidate: FlipSide


@dataclass(frozen=True)
class PairedRow:
    """One card row of a candidate run paired with the same row of the reference run, over the
    samples both ran (matched by sample id and repeat).

    Values are fractions (0..1; BLEU in points / 100); differences are candidate minus reference.
    `reference_values`/`candidate_values` hold one value per matched sample (the mean over its
    matched repeats), in `sample_ids` order. `reference_matched`/`candidate_matched` are the row's
    metric over the matched samples only (the runs' own values are in `reference.summary`)."""

    label: str
    task: str
    metric: str
    reference_run: str
    candidate_run: str
    reference: RowResult
    candidate: RowResult
    sample_ids: tuple[str, ...]
    reference_values: tuple[float, ...]
    candidate_values: tuple[float, ...]
    n_completions: int  # matched (sample, repeat) pairs
    reference_matched: float
    candidate_matched: float
    diff: float
    diff_low: float
    diff_high: float
    level: float
    test: str  # which paired test gave `p_value`
    p_value: float
    right_to_wrong: tuple[str, ...]  # sample ids (with "#repeat" when the row has repeats)
    wrong_to_right: tuple[str, ...]
    flips: tuple[Flip, ...]
    agreement: float  # share of matched completions whose extracted answers are equal
    reference_unparsed: float  # rates over the matched completions
    candidate_unparsed: float
    reference_truncated: float
    candidate_truncated: float
    protocol_differences: tuple[str, ...] = ()  # non-empty only when compared with allow_protocol_diff
    public_text: bool = True

    @property
    def unparsed_change(self) -> float:
        return self.candidate_unparsed - self.reference_unparsed

    @property
    def truncated_change(self) -> float:
        return self.candidate_truncated - self.reference_truncated


@dataclass(frozen=True)
class UnmatchedRow:
    """A row that could not be paired: present in one run only, or with no sample in common."""

    label: str
    task: str
    present_in: tuple[str, ...]  # run names
    reason: str


@dataclass(frozen=True)
class RunCost:
    """What a run cost and on what: generation throughput and time, memory, model size and quantization.
    `points_lost_per_gb_saved` is, per row, (reference - this run) in points over the GB of weights
    saved against the reference (None where no size is known or nothing is saved)."""

    run: str
    backend: str
    model: str
    quantization: str | None
    completion_tokens: int
    generation_seconds: float
    tokens_per_second: float | None
    wall_seconds: float
    size_bytes: int | None
    peak_rss_bytes: int | None
    server_peak_rss_bytes: int | None
    peak_gpu_bytes: int | None
    points_lost_per_gb_saved: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """Every candidate run against the reference, row by row, with the runs' costs side by side."""

    reference: str  # run name
    runs: tuple[str, ...]  # reference first
    paths: tuple[str, ...]  # run directories, in `runs` order
    rows: tuple[PairedRow, ...]
    unmatched: tuple[UnmatchedRow, ...]
    costs: tuple[RunCost, ...]
    protocol_diff_allowed: bool = False

    def pairs_of(self, label: str) -> list[PairedRow]:
        return [row for row in self.rows if row.label == label]
