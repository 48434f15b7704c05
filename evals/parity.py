"""Cross-backend parity: run the same requests on two backends and say where they differ.

Three levels, each with its own count and rate:
1. prompt tokens: the rendered prompt token ids of every text request are compared (and each side
   must start with exactly one BOS where its model uses one);
2. greedy tokens: both backends continue the *same* prompt ids greedily, one request at a time
   (side A's rendering, so a prompt difference does not hide a generation difference); the report
   gives identical continuations, the mean share of tokens agreeing before the first divergence,
   and whether each divergence happened at a near-tie: where side A can score its own path
   (`top2_margins`), a divergence at a step whose top-2 logit gap is below `tie_margin` is float
   rounding deciding a tie (llama.cpp's fp16 GELU table alone moves logits by ~1e-3), while one
   at a clear margin means the two backends compute different things; a divergence after side A
   generated one of its media placeholder tokens (`placeholder_ids`; transformers' multimodal
   models swap their embeddings even then, llama.cpp does not) is counted apart, since trained
   models do not emit those;
3. answers: both backends answer every request through their normal generation path (cached like
   any run), the task scores both, and the extracted answers are compared per sample (two
   unparsed answers count as agreeing; each side's accuracy is listed beside).

Media requests take part in level 3 only: prompt ids with soft tokens are backend-specific.
A backend takes part in levels 1 and 2 when it implements `schema.TokenLevelBackend` (hf,
llamacpp); with any other backend (openai, vllm) only answers are compared, and the report says so. This module loads
backends and compares; it does not score anything itself (tasks do) and writes no run directory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from evals import registry
from evals.cache import CompletionCache, default_cache_path
from evals.generation import generate_all
from evals.models import resolve_model
from evals.planning import (
    PlannedRow,
    RunOptions,
    backend_options,
    card_for,
    check_model_spec,
    check_task_inputs,
    plan_row,
)
from evals.schema import Backend, Completion, MarginBackend, Request, TokenLevelBackend, iter_parts

EXAMPLES_KEPT = 3


@dataclass(frozen=True)
class Side:
    """One side of the comparison: backend name, model spec and backend options."""

    backend: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.backend}:{self.model}"


@dataclass
class Rate:
    agree: int = 0
    total: int = 0

    @property
    def rate(self) -> float | None:
        return self.agree / self.total if self.total else None

    def wilson(self, z: float = 1.96) -> tuple[float, float] | None:
        """95% Wilson score interval of the rate."""
        if not self.total:
            return None
        n, p = self.total, self.agree / self.total
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)

    def to_json(self) -> dict[str, Any]:
        return {"agree": self.agree, "total": self.total, "rate": self.rate, "ci95": self.wilson()}


@dataclass
class RowParity:
    label: str
    task: str
    prompts: Rate = field(default_factory=Rate)
    one_bos: dict[str, Rate] = field(default_factory=dict)  # "A"/"B" -> prompts with exactly one BOS
    greedy: Rate = field(default_factory=Rate)
    greedy_prefix: list[float] = field(default_factory=list)  # per request: agreeing share before divergence
    greedy_ties: int = 0  # diverged at a step where A's top-2 logit gap was below tie_margin
    greedy_after_placeholder: int = 0  # diverged after A generated a media placeholder token
    greedy_diverged: int = 0  # diverged at a clear margin (or with no margin known)
    answers: Rate = field(default_factory=Rate)
    accuracy: dict[str, Rate] = field(default_factory=dict)  # "A"/"B"
    media_requests: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)  # first few differences

    @property
    def mean_prefix(self) -> float | None:
        return sum(self.greedy_prefix) / len(self.greedy_prefix) if self.greedy_prefix else None

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "task": self.task,
            "prompt_ids_identical": self.prompts.to_json(),
            "exactly_one_bos": {k: v.to_json() for k, v in self.one_bos.items()},
            "greedy_identical": self.greedy.to_json(),
            "greedy_mean_agreeing_prefix": self.mean_prefix,
            "greedy_diverged_at_near_tie": self.greedy_ties,
            "greedy_diverged_after_placeholder": self.greedy_after_placeholder,
            "greedy_diverged": self.greedy_diverged,
            "answers_agree": self.answers.to_json(),
            "accuracy": {k: v.to_json() for k, v in self.accuracy.items()},
            "media_requests": self.media_requests,
            "examples": self.examples,
        }


@dataclass
class ParityOptions:
    a: Side
    b: Side
    card: str | None = "smoke"
    tasks: list[str] = field(default_factory=list)
    variant: str | None = None
    task_options: dict[str, Any] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    limit: int | None = 8
    max_tokens: int = 32  # greedy continuation length for level 2
    tie_margin: float = 5e-3  # top-2 logit gap below which a divergence counts as a near-tie
    answer_max_tokens: int | None = None  # level 3 budget; None = the card's
    cache: Any = None
    fresh: bool = False  # regenerate the answers, ignoring the cache
    show_progress: bool = False


@dataclass
class ParityReport:
    a: Side
    b: Side
    rows: list[RowParity]
    fingerprints: dict[str, Any]
    token_level: bool = True  # False: a side cannot render prompt ids; answers only

    @property
    def consistent(self) -> bool:
        """Every prompt identical with one BOS, every greedy continuation identical up to near-ties."""
        return all(
            r.prompts.agree == r.prompts.total
            and r.greedy_diverged == 0
            and all(b.agree == b.total for b in r.one_bos.values())
            for r in self.rows
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "a": asdict(self.a),
            "b": asdict(self.b),
            "fingerprints": self.fingerprints,
            "token_level": self.token_level,
            "rows": [r.to_json() for r in self.rows],
        }


def run_parity(options: ParityOptions) -> ParityReport:
    """Compare two backends on the requests of a card (or task list); see the module docstring."""
    run_options = RunOptions(
        card=options.card,
        tasks=options.tasks,
        variant=options.variant,
        model=options.a.model,
        task_options=options.task_options,
        data=options.data,
        limit=options.limit,
        repeats=1,
        sampling={"temperature": 0.0}
        | ({"max_tokens": options.answer_max_tokens} if options.answer_max_tokens else {}),
    )
    card = card_for(run_options)
    check_task_inputs(card, run_options)
    for side in (options.a, options.b):  # each side's backend options and model, before anything loads
        backend_options(side.backend, dict(side.options), card.rows, show_progress=False, resolve=False)
        if side.backend != "openai":
            check_model_spec(side.model)
    plans = [p for p in (plan_row(row, run_options) for row in card.rows) if p.task is not None]
    requests = [r for p in plans for r in p.requests]
    rows = {p.row.label: RowParity(p.row.label, p.row.task) for p in plans}
    completions: dict[str, dict[str, Completion]] = {}
    fingerprints: dict[str, Any] = {}
    rendered_a: dict[str, list[int]] = {}
    greedy_a: dict[str, list[int]] = {}
    margins_a: dict[str, list[float]] = {}
    placeholders_a: set[int] = set()
    token_level = all(_token_level(side) for side in (options.a, options.b))
    cache = CompletionCache(options.cache or default_cache_path())
    try:
        for name, side in (("A", options.a), ("B", options.b)):
            first = name == "A"
            backend = _load(side, plans, options.show_progress)
            try:
                fingerprints[name] = backend.fingerprint()
                for plan in plans:
                    row = rows[plan.row.label]
                    row.one_bos.setdefault(name, Rate())
                    for request in plan.requests:
                        if not token_level or not isinstance(backend, TokenLevelBackend):
                            continue
                        if _has_media(request):
                            row.media_requests += first
                            continue
                        _compare_tokens(
                            backend,
                            name,
                            request,
                            row,
                            (rendered_a, greedy_a, margins_a),
                            options,
                            frozenset(placeholders_a),
                        )
                if name == "A" and isinstance(backend, TokenLevelBackend):
                    placeholders_a.update(backend.placeholder_ids())
                completions[name], _ = generate_all(
                    backend,
                    requests,
                    cache,
                    show_progress=options.show_progress,
                    label=f"answers · {side.label}",
                    fresh=options.fresh,
                )
            finally:
                backend.close()
    finally:
        cache.close()
    for plan in plans:
        _compare_answers(plan, rows[plan.row.label], completions)
    return ParityReport(options.a, options.b, list(rows.values()), fingerprints, token_level)


def _token_level(side: Side) -> bool:
    return issubclass(registry.backend_class(side.backend), TokenLevelBackend)


def _load(side: Side, plans: Sequence[PlannedRow], show_progress: bool) -> Backend:
    backend_cls, options = backend_options(
        side.backend, dict(side.options), [p.row for p in plans], show_progress=show_progress
    )
    backend: Backend = backend_cls(resolve_model(side.model, side.backend), options)
    return backend


def _has_media(request: Request) -> bool:
    return any(part.type != "text" for part in iter_parts(request.messages))


def _compare_tokens(
    backend: TokenLevelBackend,
    name: str,
    request: Request,
    row: RowParity,
    side_a: tuple[dict[str, list[int]], dict[str, list[int]], dict[str, list[float]]],
    options: ParityOptions,
    placeholders_a: frozenset[int] = frozenset(),
) -> None:
    rendered_a, greedy_a, margins_a = side_a
    ids = list(backend.render(request))
    bos = backend.prompt_bos()
    if bos is not None:  # models without a BOS are not counted
        row.one_bos[name].total += 1
        row.one_bos[name].agree += ids[:1] == [bos] and ids.count(bos) == 1
    if name == "A":
        rendered_a[request.key] = ids
        greedy_a[request.key] = list(backend.greedy_ids(ids, options.max_tokens))
        if isinstance(backend, MarginBackend):
            margins_a[request.key] = list(backend.top2_margins(ids, greedy_a[request.key]))
        return
    reference = rendered_a[request.key]
    row.prompts.total += 1
    row.prompts.agree += ids == reference
    if ids != reference and len(row.examples) < EXAMPLES_KEPT:
        at = _first_difference(reference, ids)
        row.examples.append(
            {
                "key": request.key,
                "level": "prompt",
                "position": at,
                "a": reference[at : at + 8],
                "b": ids[at : at + 8],
            }
        )
    continuation = list(backend.greedy_ids(reference, options.max_tokens))
    expected = greedy_a[request.key]
    row.greedy.total += 1
    row.greedy.agree += continuation == expected
    longest = max(len(expected), len(continuation))
    at = _first_difference(expected, continuation)
    row.greedy_prefix.append(at / longest if longest else 1.0)
    if continuation == expected:
        return
    margins = margins_a.get(request.key, [])
    margin = margins[at] if at < len(margins) else None
    if placeholders_a.intersection(expected[:at]):
        row.greedy_after_placeholder += 1
    elif margin is not None and margin < options.tie_margin:
        row.greedy_ties += 1
    else:
        row.greedy_diverged += 1
    if len(row.examples) < EXAMPLES_KEPT:
        row.examples.append(
            {
                "key": request.key,
                "level": "greedy",
                "position": at,
                "a_top2_margin": margin,
                "a": expected[at : at + 8],
                "b": continuation[at : at + 8],
            }
        )


def _first_difference(a: Sequence[int], b: Sequence[int]) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def _compare_answers(
    plan: PlannedRow,
    row: RowParity,
    completions: dict[str, dict[str, Completion]],
) -> None:
    assert plan.task is not None
    samples = {s.id: s for s in plan.samples}
    for request in plan.requests:
        sample = samples[request.sample_id]
        scores = {
            name: plan.task.score(sample, completions[name][request.key], request.repeat)
            for name in ("A", "B")
        }
        a, b = scores["A"], scores["B"]
        row.answers.total += 1
        row.answers.agree += a.extracted == b.extracted
        for label, score in scores.items():
            rate = row.accuracy.setdefault(label, Rate())
            rate.total += 1
            rate.agree += score.value >= 1.0
        if a.extracted != b.extracted and len(row.examples) < EXAMPLES_KEPT:
            row.examples.append({"key": request.key, "level": "answer", "a": a.extracted, "b": b.extracted})


def render_parity(report: ParityReport) -> str:
    """A plain-text table: one line per row and level, rates with 95% Wilson intervals."""
    lines = [f"parity: A = {report.a.label}", f"        B = {report.b.label}", ""]
    if not report.token_level:
        lines[-1:] = ["        answers only: prompt ids and greedy tokens need two of hf, llamacpp", ""]
    for row in report.rows:
        prefix = row.mean_prefix
        token_entries = [
            ("prompt token ids identical", _fmt(row.prompts)),
            *(
                (f"exactly one BOS ({side})", _fmt(rate) if rate.total else "n/a (the model adds no BOS)")
                for side, rate in row.one_bos.items()
            ),
            (
                "greedy tokens identical",
                _fmt(row.greedy) + (f"; mean agreeing prefix {prefix:.1%}" if prefix is not None else ""),
            ),
            ("  diverged at a near-tie", str(row.greedy_ties)),
            ("  after a generated placeholder", str(row.greedy_after_placeholder)),
            ("  diverged at a clear margin", str(row.greedy_diverged)),
        ]
        entries = [
            *(token_entries if report.token_level else []),
            ("answers agree", _fmt(row.answers)),
            *((f"accuracy ({side})", _fmt(rate)) for side, rate in row.accuracy.items()),
        ]
        if row.media_requests:
            entries.append(("media requests (answers only)", str(row.media_requests)))
        lines.append(f"{row.label} ({row.task})")
        lines.extend(f"  {name:<31} {value}" for name, value in entries)
        lines.extend(f"  differs: {example}" for example in row.examples)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _fmt(rate: Rate) -> str:
    if not rate.total:
        return "n/a (nothing compared)"
    low, high = rate.wilson() or (0.0, 0.0)
    return f"{rate.agree}/{rate.total} = {rate.rate:.1%} (95% CI {low:.1%}-{high:.1%})"
