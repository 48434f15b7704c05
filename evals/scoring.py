"""Score completions with their task and aggregate them into one result per task configuration.

Used both after generation (`evals run`) and on existing generations (`evals score`). It turns a
scored row into the typed records of evals.records; it does not generate, cache or write files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from evals.faults import fault_point
from evals.prompt_store import PromptStore
from evals.records import (
    FollowupRecord,
    MetricValue,
    RowCost,
    RowProtocol,
    RowResult,
    SampleRecord,
    Setting,
    VerdictRecord,
)
from evals.schema import (
    BatchScoringTask,
    Completion,
    CorpusTask,
    FollowupTask,
    Outcome,
    Request,
    Sample,
    Sampling,
    Score,
    Task,
)
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
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> Setting fields
    extra: dict[str, MetricSummary] = field(default_factory=dict)  # pass@k, maj@k with repeats
    followups: dict[str, Completion] = field(default_factory=dict)  # by the first turn's request key
    corpus: dict[str, Any] | None = None  # corpus-level metrics (e.g. BLEU per language pair)

    @property
    def verdict(self) -> Verdict:
        return judge(self.published, self.summary)

    def to_row(self, *, protocol: RowProtocol, cost: RowCost | None = None) -> RowResult:
        """The typed results.json row."""
        verdict = self.verdict
        return RowResult(
            label=self.label,
            task=self.task.name,
            metric=self.metric,
            summary=metric_value(self.summary),
            verdict=VerdictRecord(verdict.label, verdict.gap_points, verdict.reason),
            protocol=protocol,
            published=self.published,
            per_category={name: metric_value(s) for name, s in self.by_category.items()},
            extra_metrics={name: metric_value(s) for name, s in self.extra.items()},
            corpus_metrics=self.corpus,
            accuracy_with_guess_credit=self.guess_accuracy,
            public_text=self.task.public_text,
            settings={name: Setting(**value) for name, value in self.settings.items()},
            cost=cost,
        )

    def protocol(self, sampling: Sampling, repeats: int) -> RowProtocol:
        """This row's protocol identity (see evals.records.RowProtocol)."""
        config = self.task.describe()
        return RowProtocol(
            task=self.task.name,
            task_version=self.task.version,
            variant=self.task.variant,
            config=config,
            sampling=asdict(sampling),
            repeats=repeats,
            data_fingerprint=config.get("data_fingerprint"),
        )


def metric_value(summary: MetricSummary) -> MetricValue:
    return MetricValue(
        value=summary.value,
        stderr=summary.stderr,
        ci95=(summary.ci_low, summary.ci_high),
        n_samples=summary.n_samples,
        n_scores=summary.n_scores,
        outcomes=summary.outcomes,
        rates={o.value: summary.rate(o) for o in Outcome},
        flags=summary.flags,
    )


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
    fault_point("score", label or task.name)
    by_id = {s.id: s for s in samples}
    followups = followups or {}
    items = [
        (by_id[r.sample_id], completions[r.key], r.repeat, followups.get(r.key))
        for r in requests
        if r.key in completions
    ]
    if isinstance(task, BatchScoringTask) and not followups:  # e.g. code tasks grade programs in parallel
        scores = list(
            task.score_many([(sample, completion, repeat) for sample, completion, repeat, _ in items])
        )
    elif isinstance(task, FollowupTask):  # asked once: a protocol check per sample costs more than scoring
        scores = [task.score_with_followup(*item) for item in items]
    else:
        scores = [task.score(sample, completion, repeat) for sample, completion, repeat, _ in items]
    categories = {s.id: s.category for s in samples}
    corpus = task.corpus_metrics(list(samples), scores) if isinstance(task, CorpusTask) else None
    if task.headline == "corpus" and corpus and corpus.get("metric"):
        metric = str(corpus["metric"])  # the row's number is that corpus metric (e.g. bleu)
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
    """The row's headline metric as the task's `headline` says (see schema.Headline)."""
    kind = task.headline
    if kind == "macro_by_category":
        return macro_mean(scores, categories)
    base = summarize(scores)
    if kind != "corpus" or not corpus or corpus.get(f"macro_{corpus['metric']}") is None:
        return base
    value = corpus[f"macro_{corpus['metric']}"] / 100
    low, high = (v / 100 for v in corpus["ci95"]) if corpus.get("ci95") else (value, value)
    stderr = (high - low) / (2 * 1.96)
    return MetricSummary(value, stderr, low, high, base.n_samples, base.n_scores, base.outcomes, base.flags)


def sample_records(result: TaskResult, prompts: PromptStore) -> list[SampleRecord]:
    """One typed record per scored completion (samples.jsonl); prompts go to `prompts` once."""
    by_id = {s.id: s for s in result.samples}
    requests = {(r.sample_id, r.repeat): r for r in result.requests}
    records = []
    for score in result.scores:
        request = requests[(score.sample_id, score.repeat)]
        completion = result.completions[request.key]
        sample = by_id[score.sample_id]
        records.append(
            SampleRecord(
                row=result.label,
                task=result.task.name,
                variant=result.task.variant,
                id=score.sample_id,
                repeat=score.repeat,
                request_key=request.key,
                prompt_id=prompts.add(request),
                category=sample.category,
                raw=None if completion.raw == completion.text else completion.raw,
                reasoning=completion.reasoning,
                answer=completion.text,
                extracted=score.extracted,
                target=sample.target,
                outcome=score.outcome.value,
                value=score.value,
                finish_reason=completion.finish_reason,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                seconds=completion.seconds,
                error=completion.error,
                flags=tuple(score.flags),
                details=score.details,
                followup=_followup_record(result.followups.get(request.key)),
            )
        )
    return records


def _followup_record(completion: Completion | None) -> FollowupRecord | None:
    if completion is None:
        return None
    return FollowupRecord(
        raw=completion.raw,
        answer=completion.text,
        finish_reason=completion.finish_reason,
        completion_tokens=completion.completion_tokens,
        error=completion.error,
    )
