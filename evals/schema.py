"""The contract between tasks, backends and the orchestrator.

This is a leaf module: it imports nothing of this project. Tasks build `Sample`s and `Request`s
and turn `Completion`s into `Score`s; backends turn `Request`s into `Completion`s; the orchestrator
(cache, runner, statistics, reports) only moves these objects around. It does not load data,
talk to models, or score anything itself.

Media (images, audio) are referenced by path or carried as bytes, never decoded here, so a whole
dataset of requests stays small in memory; backends decode media per batch.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import types
from collections import abc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import (
    Any,
    Literal,
    Protocol,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    runtime_checkable,
)


class Outcome(enum.StrEnum):
    """What happened to one sample (one repeat)."""

    CORRECT = "correct"
    WRONG = "wrong"
    UNPARSED = "unparsed"  # the model answered, but no answer could be read from it
    TRUNCATED = "truncated"  # hit the token budget (or left its thought block open) without an answer
    ERROR = "error"  # the backend or the sample's inputs failed
    TIMEOUT = "timeout"  # the backend (or a sandbox) ran out of wall-clock time


FAILURE_OUTCOMES = (Outcome.UNPARSED, Outcome.TRUNCATED, Outcome.ERROR, Outcome.TIMEOUT)


# --- request side -------------------------------------------------------------------------


@dataclass(frozen=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True)
class ImagePart:
    """An image by file path or encoded bytes (PNG/JPEG/...); `sha256` identifies it in cache keys."""

    path: str | None = None
    data: bytes | None = None
    type: Literal["image"] = "image"

    @property
    def sha256(self) -> str:
        return _media_hash(self.path, self.data)


@dataclass(frozen=True)
class AudioPart:
    """An audio clip by file path or encoded bytes (WAV/FLAC/...); backends resample to 16 kHz mono."""

    path: str | None = None
    data: bytes | None = None
    type: Literal["audio"] = "audio"

    @property
    def sha256(self) -> str:
        return _media_hash(self.path, self.data)


Part = TextPart | ImagePart | AudioPart


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: tuple[Part, ...]

    @staticmethod
    def user(*parts: Part | str) -> Message:
        return Message("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))

    @staticmethod
    def system(text: str) -> Message:
        return Message("system", (TextPart(text),))

    @staticmethod
    def assistant(text: str) -> Message:
        return Message("assistant", (TextPart(text),))

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@dataclass(frozen=True)
class Sampling:
    """Every generation setting that changes the output. temperature 0 means greedy."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    max_tokens: int = 1024
    seed: int = 0
    thinking: bool = False
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    """One generation: chat `messages`, or a raw completion `prompt` (no chat template).

    `key` names the request (task/variant/sample/repeat) and is unique within a run; the cache key
    (`cache_identity`) additionally covers everything that changes the output.
    """

    key: str
    sample_id: str
    repeat: int
    sampling: Sampling
    messages: tuple[Message, ...] = ()
    prompt: str | None = None

    def __post_init__(self) -> None:
        if (self.prompt is None) == (not self.messages):
            raise ValueError(f"request {self.key}: give exactly one of messages or prompt")

    def cache_identity(self) -> dict[str, Any]:
        """A JSON-able description of the request with media replaced by their hashes. Built once
        per request (the cache key, the prompt id and the shard all read it); each call returns a
        new top-level dict, so a caller may replace its entries."""
        identity: dict[str, Any] | None = self.__dict__.get("_identity")
        if identity is None:
            sampling = self.sampling
            identity = {
                "prompt": self.prompt,
                "messages": [
                    {"role": m.role, "content": [_part_identity(p) for p in m.content]} for m in self.messages
                ],
                "sampling": {name: getattr(sampling, name) for name in _SAMPLING_FIELDS},
                "repeat": self.repeat,
            }
            object.__setattr__(self, "_identity", identity)  # a memo, not a field: eq and repr ignore it
        return dict(identity)


# --- result side --------------------------------------------------------------------------

FinishReason = Literal["stop", "length", "error", "timeout"]


@dataclass
class Completion:
    """What a backend returns for one request.

    `text` is the final answer only (thinking stripped); `reasoning` is the thought block, if any;
    `raw` is the full decoded output with special tokens kept. `thought_open` is True when the
    model opened a thought block and never closed it (the answer is then unusable).
    """

    key: str
    text: str
    raw: str = ""
    reasoning: str | None = None
    thought_open: bool = False
    finish_reason: FinishReason = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _COMPLETION_FIELDS}  # all plain values

    @staticmethod
    def from_json(data: dict[str, Any]) -> Completion:
        return Completion(**data)


@dataclass
class Sample:
    """One benchmark item. `inputs` is task-specific (question, options, media paths...)."""

    id: str
    inputs: dict[str, Any]
    target: Any
    category: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Score:
    """The verdict on one completion of one sample. `value` is 1.0/0.0 for accuracy-style tasks.

    `extracted` is the normalised answer (majority voting compares these). `flags` name things a
    report counts separately without changing the outcome, e.g. "last_integer_fallback" when an
    answer was read by a fallback rule, or "last_chance" when a follow-up turn supplied it.
    """

    sample_id: str
    repeat: int
    outcome: Outcome
    value: float
    extracted: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    flags: tuple[str, ...] = ()


# --- protocols ----------------------------------------------------------------------------

Headline = Literal["mean", "macro_by_category", "corpus"]
"""How a row's headline number is made from its scores: the mean over samples; the unweighted mean
of the categories (e.g. MMMU-Pro overall); or the macro corpus metric of `CorpusTask.corpus_metrics`
(e.g. CoVoST BLEU, in points / 100 so that it prints and compares like a percentage)."""


@runtime_checkable
class Task(Protocol):
    """A benchmark. One module per benchmark implements it; instances carry variant and options.

    Options are the constructor's keyword-only parameters: `Task(variant: str | None, **options)`.
    Optional capabilities are the small protocols below (`FollowupTask`, `BatchScoringTask`,
    `CorpusTask`); the orchestrator asks for them with `isinstance` and reads nothing else.
    """

    name: str
    version: str  # changes whenever prompt, extraction or scoring changes
    variant: str
    variants: Mapping[str, str]  # every accepted variant (or pattern) -> what it means, for listings
    default_sampling: Sampling  # the variant's own settings; cards and the CLI override them
    public_text: bool  # False: question text must stay out of published pages (GPQA's authors ask)
    headline: Headline

    def load(self, data: str | None = None, *, limit: int | None = None) -> list[Sample]:
        """The samples (the first `limit` of them when given, fetching no more than needed);
        `data` overrides the hub source with local files."""
        ...

    def requests(self, sample: Sample, sampling: Sampling, repeats: int) -> list[Request]:
        """One request per repeat, in repeat order (repeat i is element i)."""
        ...

    def score(self, sample: Sample, completion: Completion, repeat: int) -> Score:
        """Score one completion (one repeat of one sample)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Settings that identify this task configuration (variant, extractor, dataset revision...)."""
        ...


@runtime_checkable
class FollowupTask(Protocol):
    """A task that may send one more turn after a completion (e.g. AIME's "last chance" prompt
    when no boxed answer was given). The orchestrator generates (and caches) the follow-up
    requests after the first round and passes their completions to `score_with_followup`."""

    def followup(self, sample: Sample, request: Request, completion: Completion) -> Request | None:
        """The follow-up request (its key must differ from `request.key`), or None."""
        ...

    def score_with_followup(
        self, sample: Sample, completion: Completion, repeat: int, followup: Completion | None
    ) -> Score:
        """`Task.score`, given also the follow-up turn's completion (None when none was sent)."""
        ...


@runtime_checkable
class BatchScoringTask(Protocol):
    """A task whose scoring is expensive (e.g. running programs) and parallel: the orchestrator
    hands it every (sample, completion, repeat) at once and expects the scores in that order."""

    def score_many(self, items: Sequence[tuple[Sample, Completion, int]]) -> list[Score]: ...


@runtime_checkable
class CorpusTask(Protocol):
    """A task with corpus-level metrics (e.g. BLEU over all utterances of a language pair).

    The returned dict names its metric under "metric" and gives the macro value under
    `"macro_" + metric` (None when there is nothing to score) and its 95% CI under "ci95"."""

    def corpus_metrics(self, samples: Sequence[Sample], scores: Sequence[Score]) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class BackendOptions:
    """Options every backend takes. Each backend declares its own options as a frozen dataclass
    that extends this one (each field's help text in `metadata["help"]`); the CLI validates
    `--backend-opt KEY=VALUE` and prints help from those fields, nothing else."""

    progress: bool = field(default=True, metadata={"help": "show the backend's own progress bars"})


def option(default: Any, help: str) -> Any:
    """A backend option field with its help text."""
    if isinstance(default, list | dict | set):
        raise TypeError("backend options are immutable: use a tuple")
    return field(default=default, metadata={"help": help})


@runtime_checkable
class Backend(Protocol):
    """A way to run a model. Batching, concurrency and retries live inside; caching does not.

    Backend classes are built as `cls(model: str, options: cls.options_type)`; see `BackendClass`."""

    name: str

    def fingerprint(self) -> dict[str, Any]:
        """Everything that identifies the model as it runs: weights, quantization, backend version,
        chat template hash. Changes here invalidate cached completions, except under the key
        "location" (paths and other facts that do not change outputs)."""
        ...

    def generate(self, requests: Sequence[Request]) -> Iterator[Completion]:
        """Yield one Completion per request, in any order, as each one finishes."""
        ...

    def close(self) -> None: ...


class BackendClass(Protocol):
    """What the registry returns for a backend name: the class with its declared options."""

    name: str
    options_type: type[BackendOptions]
    takes_image_budget: bool  # True: `options_type` has `max_soft_tokens` and the backend applies it

    def __call__(self, model: str, options: Any = None) -> Backend: ...


@runtime_checkable
class TokenLevelBackend(Protocol):
    """A backend that exposes prompt token ids and greedy continuations (parity levels 1 and 2).

    Methods only, so that `issubclass(cls, TokenLevelBackend)` can be asked before loading."""

    def render(self, request: Request) -> list[int]:
        """The prompt token ids exactly as this backend would feed them to the model."""
        ...

    def greedy_ids(self, prompt_ids: Sequence[int], max_tokens: int) -> list[int]:
        """Greedy continuation of `prompt_ids`, at most `max_tokens` ids, stopping at end of turn."""
        ...

    def prompt_bos(self) -> int | None:
        """The BOS id every rendered prompt must start with exactly once (None: the model adds none)."""
        ...

    def placeholder_ids(self) -> tuple[int, ...]:
        """Media placeholder token ids (a divergence after one of them is not a real difference)."""
        ...


@runtime_checkable
class MarginBackend(Protocol):
    """A token-level backend that can score its own greedy path (parity's near-tie test)."""

    def top2_margins(self, prompt_ids: Sequence[int], continuation: Sequence[int]) -> list[float]:
        """Per step of `continuation`, the gap between the top-2 logits."""
        ...


OptionsT = TypeVar("OptionsT", bound=BackendOptions)


@runtime_checkable
class ResourceReporter(Protocol):
    """A backend that knows memory the harness process cannot see (a managed server, a GPU)."""

    def peak_memory(self) -> dict[str, int]:
        """Peak bytes so far: "rss" of processes the backend runs, "gpu" on its devices (either may
        be absent)."""
        ...


@runtime_checkable
class TokenProgress(Protocol):
    """A backend that reports tokens while a batch is still generating (for progress bars)."""

    def on_tokens(self, callback: Callable[[int], None] | None) -> None:
        """From now on call `callback(n)` as n more tokens are generated (None: stop reporting)."""
        ...


def build_options(options_type: type[OptionsT], given: Mapping[str, Any], *, owner: str) -> OptionsT:
    """`options_type` with the fields in `given`; an unknown name or a value of the wrong type is
    a one-line ValueError naming the option and what it takes."""
    declared = {f.name: f for f in fields(options_type)}
    hints = get_type_hints(options_type)
    for name, value in given.items():
        if name not in declared:
            raise ValueError(f"{owner} has no option '{name}'; its options: {', '.join(sorted(declared))}")
        if not _fits(value, hints[name]):
            raise ValueError(f"{owner} option '{name}' takes {_type_name(hints[name])}, got {value!r}")
    return options_type(**given)


def option_help(options_type: type[BackendOptions]) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, help) for every option, for `--help` listings."""
    hints = get_type_hints(options_type)
    return [
        (f.name, _type_name(hints[f.name]), f.default, str(f.metadata.get("help", "")))
        for f in fields(options_type)
    ]


def _fits(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_fits(value, arg) for arg in get_args(hint))
    if origin is Literal:
        return value in get_args(hint)
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (tuple, abc.Sequence):
        return isinstance(value, tuple | list)
    if origin in (dict, abc.Mapping):
        return isinstance(value, dict)
    return isinstance(value, origin or hint)


def _type_name(hint: Any) -> str:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in get_args(hint))
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(hint))
    if hint is type(None):
        return "none"
    return getattr(origin or hint, "__name__", str(hint))


# --- helpers ------------------------------------------------------------------------------


_SAMPLING_FIELDS = tuple(f.name for f in fields(Sampling))
_COMPLETION_FIELDS = tuple(f.name for f in fields(Completion))


# The canonical JSON form that stable_hash hashes (one encoder for every call; encoding keeps no state).
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def stable_hash(obj: Any) -> str:
    """sha256 of the canonical JSON form of `obj`. Lone surrogates (text decoded with errors) hash
    too; any other text hashes exactly as plain UTF-8."""
    blob = _CANONICAL_JSON.encode(obj)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def _media_hash(path: str | None, data: bytes | None) -> str:
    if data is not None:
        return hashlib.sha256(data).hexdigest()
    if path is None:
        raise ValueError("media part has neither path nor data")
    if not os.path.isfile(path):  # the backend reports it per request; the key must still exist
        return hashlib.sha256(f"missing:{path}".encode()).hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _part_identity(part: Part) -> dict[str, str]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    return {"type": part.type, "sha256": part.sha256}


def iter_parts(messages: Iterable[Message]) -> Iterator[Part]:
    for message in messages:
        yield from message.content
