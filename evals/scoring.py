"""Score completions with their task and aggregate them into one result per task configuration.

Used both after generation (`evals run`) and on existing generations (`evals score`). It does not
generate, cache or write files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evals.schema import Completion, Request, Sample, Score, Task
from evals.stats import (
    MetricSummary,
    guess_credited_accuracy,
    macro_mean,
    repeat_metrics,
    summarize,
    summarize_by,
)
from evals.verdict import Verdict, judge


@dataclass
class TaskResult:
    label: str
    task: Task
    samples: list[Sample]
    requests: list[Request]
    completions: dict[str, Completion]
    scores: list[Score]
    summary: MetricSummary
    by_category: dict[str, MetricSummary]
    published: float | None = None
    metric: str = "accuracy"
    guess_accuracy: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, MetricSummary] = field(default_factory=dict)  # pass@k, maj@k with repeats
    followups: dict[str, Completion] = field(default_factory=dict)  # by the first turn's request key
    corpus: dict[str, Any] | None = None  # corpus-level metrics (e.g. BLEU per language pair)

    @property
    def verdict(self) -> Verdict:
        return judge(self.published, self.summary)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "label": self.label,
            "task": self.task.name,
            "task_version": self.task.version,
            "variant": self.task.variant,
            "metric": self.metric,
            **self.summary.to_json(),
            "per_category": {name: s.to_json() for name, s in self.by_category.items()},
            "extra_metrics": {name: s.to_json() for name, s in self.extra.items()},
            "corpus_metrics": self.corpus,
            "published": self.published,
            "verdict": self.verdict.to_json(),
            "task_config": self.task.describe(),
            "public_text": getattr(self.task, "PUBLIC_TEXT", True),
            "settings": self.settings,
        }
        if self.guess_accuracy is not None:
            data["accuracy_with_guess_credit"] = self.guess_accuracy
        return data


def score_all(
    task: Task,
    samples: Sequence[Sample],
    requests: Sequence[Request],
    completions: dict[str, Completion],
    *,
    label: str | None = None,
    published: float | None = None,
    metric: str = "accuracy",
    settings: dict[str, Any] | None = None,
    followups: dict[str, Completion] | None = None,
) -> TaskResult:
    """Score every request that has a completion (requests without one are skipped); a follow-up
    turn's completion, keyed by the first turn's request key, goes to `task.score(followup=...)`."""
    by_id = {s.id: s for s in samples}
    followups = followups or {}
    items = [
        (by_id[r.sample_id], completions[r.key], r.repeat, followups.get(r.key))
        for r in requests
        if r.key in completions
    ]
    score_many = getattr(task, "score_many", None)
    if score_many is not None and not followups:  # e.g. code tasks grade programs in parallel
        scores = list(score_many([(sample, completion, repeat) for sample, completion, repeat, _ in items]))
    else:
        scores = [_score_one(task, *item) for item in items]
    categories = {s.id: s.category for s in samples}
    corpus_metrics = getattr(task, "corpus_metrics", None)
    corpus = corpus_metrics(list(samples), scores) if corpus_metrics is not None else None
    return TaskResult(
        label=label or task.name,
        task=task,
        samples=list(samples),
        requests=list(requests),
        completions=completions,
        scores=scores,
        summary=headline(task, scores, categories, corpus),
        corpus=corpus,
        by_category=summarize_by(scores, categories),
        published=published,
        metric=metric,
        guess_accuracy=guess_credited_accuracy(scores),
        settings=settings or {},
        extra=repeat_metrics(scores),
        followups=followups,
    )


def headline(
    task: Task,
    scores: Sequence[Score],
    categories: dict[str, str | None],
    corpus: dict[str, Any] | None = None,
) -> MetricSummary:
    """The row's headline metric: the mean over samples; for a task whose `HEADLINE` is
    "macro_by_category", the unweighted mean of its categories (e.g. MMMU-Pro overall); for
    "corpus", the macro corpus metric its `corpus_metrics` returns (e.g. BLEU, in points /100 so
    that it prints and compares like a percentage)."""
    kind = getattr(task, "HEADLINE", "mean")
    if kind == "macro_by_category":
        return macro_mean(scores, categories)
    base = summarize(scores)
    if kind != "corpus" or not corpus or corpus.get(f"macro_{corpus['metric']}") is None:
        return base
    value = corpus[f"macro_{corpus['metric']}"] / 100
    low, high = (v / 100 for v in corpus["ci95"]) if corpus.get("ci95") else (value, value)
    stderr = (high - low) / (2 * 1.96)
    return MetricSummary(value, stderr, low, high, base.n_samples, base.n_scores, base.outcomes, base.flags)


def _score_one(
    task: Task, sample: Sample, completion: Completion, repeat: int, followup: Completion | None
) -> Score:
    if followup is None:
        return task.score(sample, completion, repeat)
    return task.score(sample, completion, repeat, followup=followup)  # type: ignore[call-arg]


def sample_records(result: TaskResult) -> list[dict[str, Any]]:
    """One JSON-able record per scored completion, for samples.jsonl."""
    by_id = {s.id: s for s in result.samples}
    requests = {(r.sample_id, r.repeat): r for r in result.requests}
    records = []
    for score in result.scores:
        request = requests[(score.sample_id, score.repeat)]
        completion = result.completions[request.key]
        sample = by_id[score.sample_id]
        records.append(
            {
                "task": result.task.name,
                "variant": result.task.variant,
                "id": score.sample_id,
                "repeat": score.repeat,
                "category": sample.category,
                "prompt": _prompt_text(request),
                "raw": completion.raw,
                "reasoning": completion.reasoning,
                "answer": completion.text,
                "extracted": score.extracted,
                "target": sample.target,
                "outcome": score.outcome.value,
                "value": score.value,
                "finish_reason": completion.finish_reason,
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "seconds": completion.seconds,
                "error": completion.error,
                "flags": list(score.flags),
                "details": score.details,
                "followup": _followup_record(result.followups.get(request.key)),
            }
        )
    return records


def _followup_record(completion: Completion | None) -> dict[str, Any] | None:
    if completion is None:
        return None
    return {"raw": completion.raw, "answer": completion.text, "finish_reason": completion.finish_reason,
            "completion_tokens": completion.completion_tokens, "error": completion.error}  # fmt: skip


def _prompt_text(request: Request) -> Any:
    if request.prompt is not None:
        return request.prompt
    return [{"role": m.role, "content": [_part_text(p) for p in m.content]} for m in request.messages]


def _part_text(part: Any) -> str:
    if part.type == "text":
        return part.text
    return f"<{part.type} {part.path or part.sha256[:12]}>"
