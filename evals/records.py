"""Typed, versioned records of a run directory: run.json, results.json, samples.jsonl, prompts.jsonl.

Every writer builds these records and every reader (reports, and anything that compares, gates or
exports runs) reads them back through `from_json`, so a field is named in one place. Each file
carries `format_version` ("MAJOR.MINOR"): a reader accepts any minor version of its major one and
refuses another major version with one line naming both versions. This module defines and
(de)serialises records; it does not compute scores (evals.scoring) or write files (evals.run_dir).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union, cast, get_args, get_origin, get_type_hints

T = TypeVar("T")

FORMAT_VERSION = "2.0"
FORMAT_MAJOR = 2


class RecordFormatError(ValueError):
    """A run directory written in another major format version, or a malformed record."""


def check_format(found: object, where: str) -> None:
    """Refuse a record of another major format version (unversioned files are format 1)."""
    text = str(found) if found is not None else "1 (unversioned)"
    try:
        major = int(text.split(".")[0].split(" ")[0])
    except ValueError:
        major = -1
    if major != FORMAT_MAJOR:
        raise RecordFormatError(
            f"{where} is in run format {text}; this version of evals reads format {FORMAT_MAJOR}.x: "
            "re-run or re-score to write it again (completions come from the cache)"
        )


# --- results.json ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricValue:
    """A metric with its clustered standard error, 95% CI, outcome counts and rates, and flag counts.
    Values are fractions (0..1); corpus metrics such as BLEU are stored in points / 100."""

    value: float
    stderr: float
    ci95: tuple[float, float]
    n_samples: int
    n_scores: int
    outcomes: dict[str, int] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)

    def rate(self, outcome: str) -> float:
        return self.rates.get(outcome, 0.0)


@dataclass(frozen=True)
class VerdictRecord:
    label: str  # reproduced | above | below | unclear | n/a
    gap_points: float | None  # ours minus published, in points
    reason: str = ""


@dataclass(frozen=True)
class Setting:
    """One generation setting as it ran, with its evidence (confirmed, inferred, task default,
    overridden) and a note."""

    value: Any
    evidence: str
    note: str = ""


@dataclass(frozen=True)
class RowProtocol:
    """What must be equal for two runs of a row to be compared: task version and variant, the task's
    configuration (prompt, extractor, dataset revision...), sampling, repeats and the data read."""

    task: str
    task_version: str
    variant: str
    config: dict[str, Any]
    sampling: dict[str, Any]
    repeats: int
    data_fingerprint: str | None = None

    def differences(self, other: RowProtocol) -> list[str]:
        """Human-readable differences, e.g. "sampling.temperature: 0.0 vs 1.0"; empty when equal."""
        out = []
        for name in ("task", "task_version", "variant", "repeats", "data_fingerprint"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                out.append(f"{name}: {mine} vs {theirs}")
        for name in ("config", "sampling"):
            mine_map, theirs_map = getattr(self, name), getattr(other, name)
            for key in sorted(set(mine_map) | set(theirs_map)):
                if key != "data_fingerprint" and mine_map.get(key) != theirs_map.get(key):
                    out.append(f"{name}.{key}: {mine_map.get(key)} vs {theirs_map.get(key)}")
        return out


@dataclass
class GenerationStats:
    """What generating a set of requests took. Counts are of requests: `cached` were answered by
    the cache, `generated` by the backend, `failed` got an error completion, `shared` reused the
    completion of an identical request; `completion_tokens` and `seconds` (wall time) cover what
    the backend generated."""

    requested: int = 0
    cached: int = 0
    generated: int = 0
    failed: int = 0
    shared: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def merged(self, other: GenerationStats) -> GenerationStats:
        return GenerationStats(
            *(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True))
        )

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class RowCost:
    """What generating a row cost, and on which model (run.json's `models[].spec`)."""

    model: str
    generation: GenerationStats = field(default_factory=GenerationStats)


@dataclass(frozen=True)
class RowResult:
    """One card row as scored: headline metric, breakdowns, verdict, settings, protocol and cost."""

    label: str
    task: str
    metric: str  # what `summary.value` is: accuracy, bleu, ...
    summary: MetricValue
    verdict: VerdictRecord
    protocol: RowProtocol
    published: float | None = None
    per_category: dict[str, MetricValue] = field(default_factory=dict)
    extra_metrics: dict[str, MetricValue] = field(default_factory=dict)  # pass@k, maj@k
    corpus_metrics: dict[str, Any] | None = None  # e.g. BLEU per language pair
    accuracy_with_guess_credit: float | None = None
    public_text: bool = True
    settings: dict[str, Setting] = field(default_factory=dict)
    cost: RowCost | None = None

    @property
    def task_version(self) -> str:
        return self.protocol.task_version

    @property
    def variant(self) -> str:
        return self.protocol.variant


@dataclass(frozen=True)
class UnavailableRow:
    """A card row that could not run (its task is not implemented)."""

    label: str
    task: str
    published: float | None
    unavailable: str  # why


Row = RowResult | UnavailableRow


@dataclass(frozen=True)
class ReportHeader:
    title: str
    model: str = ""
    backend: str = ""
    card: str = ""
    started: str = ""
    harness: str = ""


@dataclass(frozen=True)
class Results:
    """results.json: the report header and the card rows in order."""

    header: ReportHeader
    rows: list[Row]
    format_version: str = FORMAT_VERSION

    @property
    def scored(self) -> list[RowResult]:
        return [row for row in self.rows if isinstance(row, RowResult)]

    def to_json(self) -> dict[str, Any]:
        return cast(dict[str, Any], to_json(self))

    @staticmethod
    def from_json(data: dict[str, Any], where: str = "results.json") -> Results:
        check_format(data.get("format_version"), where)
        rows: list[Row] = [
            from_json(UnavailableRow, row) if "unavailable" in row else from_json(RowResult, row)
            for row in data["rows"]
        ]
        return Results(from_json(ReportHeader, data["header"]), rows, data["format_version"])


# --- run.json -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelRecord:
    """A model as it ran: how it was named, what it resolved to, its fingerprint and footprint."""

    spec: str
    resolved: str | None
    backend: str
    rows: list[str] = field(default_factory=list)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    quantization: Any = None  # the fingerprint's quantization (e.g. GGUF file type), None for full precision
    size_bytes: int | None = None  # weights on disk
    load_seconds: float | None = None
    peak_rss_bytes: int | None = None  # the harness process (in-process backends run in it)
    server_peak_rss_bytes: int | None = None  # a server the backend manages (llama-server), where it says
    peak_gpu_bytes: int | None = None


@dataclass(frozen=True)
class TaskInfo:
    label: str
    task: str
    version: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    samples: int = 0
    requests: int = 0
    sampling: dict[str, Any] | None = None
    unavailable: str | None = None


@dataclass(frozen=True)
class ShardInfo:
    """A shard of a run (`evals run --shard INDEX/COUNT`): the request keys it owns, each row's
    protocol (so that `evals merge` can refuse shards that do not belong to one run) and cost."""

    index: int  # from 1
    count: int
    request_keys: list[str] = field(default_factory=list)
    protocols: dict[str, RowProtocol] = field(default_factory=dict)  # by row label
    costs: dict[str, RowCost] = field(default_factory=dict)  # by row label: what this shard generated


@dataclass(frozen=True)
class RunInfo:
    """run.json: how the run was made (configuration, models, environment, totals)."""

    kind: str  # "run" (generated here), "score" (existing generations rescored) or "shard"
    started: str
    finished: str
    environment: dict[str, Any]
    card: dict[str, Any] | None = None
    models: list[ModelRecord] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    tasks: list[TaskInfo] = field(default_factory=list)
    generation: GenerationStats = field(default_factory=GenerationStats)
    wall_seconds: float = 0.0
    predictions: dict[str, Any] | None = None  # kind "score": the predictions file read
    gold_mismatches: list[dict[str, Any]] = field(default_factory=list)
    shard: ShardInfo | None = None  # kind "shard": a partial run that `evals merge` combines
    format_version: str = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return cast(dict[str, Any], to_json(self))

    @staticmethod
    def from_json(data: dict[str, Any], where: str = "run.json") -> RunInfo:
        check_format(data.get("format_version"), where)
        return from_json(RunInfo, data)


# --- samples.jsonl --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowupRecord:
    raw: str
    answer: str
    finish_reason: str
    completion_tokens: int = 0
    error: str | None = None


@dataclass(frozen=True)
class SampleRecord:
    """One scored completion. The prompt is stored once in prompts.jsonl under `prompt_id`."""

    row: str  # the card row label
    task: str
    variant: str
    id: str
    repeat: int
    request_key: str
    prompt_id: str
    category: str | None
    raw: str | None  # the full decoded output (special tokens kept); None when it equals `answer`
    reasoning: str | None
    answer: str
    extracted: str | None
    target: Any
    outcome: str
    value: float
    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    error: str | None = None
    flags: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    followup: FollowupRecord | None = None
    format_version: str = FORMAT_VERSION

    @property
    def output(self) -> str:
        """The full output as the model produced it."""
        return self.answer if self.raw is None else self.raw

    def to_json(self) -> dict[str, Any]:
        return cast(dict[str, Any], to_json(self))

    @staticmethod
    def from_json(data: dict[str, Any], where: str = "samples.jsonl") -> SampleRecord:
        check_format(data.get("format_version"), where)
        return from_json(SampleRecord, data)


# --- generic (de)serialisation of the dataclasses above -------------------------------------------


def to_json(record: Any) -> Any:
    """A JSON-able form: dataclasses as dicts (field order kept), tuples as lists, NaN as None."""
    if record is None or isinstance(record, str | int):  # the common leaves first (bool is an int)
        return record
    if isinstance(record, float):
        return None if math.isnan(record) else record
    if isinstance(record, dict):
        return {str(k): to_json(v) for k, v in record.items()}
    if isinstance(record, list | tuple):
        return [to_json(v) for v in record]
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {name: to_json(getattr(record, name)) for name in _field_names(type(record))}
    return record


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def from_json(cls: type[T], data: Any) -> T:
    """Build dataclass `cls` from its JSON form; a missing required field is a RecordFormatError."""
    if not isinstance(data, dict):
        raise RecordFormatError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    hints = get_type_hints(cls)
    values = {}
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        if spec.name in data:
            values[spec.name] = _decode(hints[spec.name], data[spec.name])
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise RecordFormatError(f"{cls.__name__}: missing field '{spec.name}'")
    return cls(**values)


def _decode(hint: Any, value: Any) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _decode(args[0], value) if len(args) == 1 else value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return from_json(hint, value)
    if value is None and hint is float:
        return math.nan
    if origin is list:
        (item,) = get_args(hint)
        return [_decode(item, v) for v in value]
    if origin is tuple:
        parts = get_args(hint)
        if len(parts) == 2 and parts[1] is Ellipsis:
            return tuple(_decode(parts[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(parts, value, strict=True))
    if origin is dict:
        _, item = get_args(hint)
        return {k: _decode(item, v) for k, v in value.items()}
    return value
