"""MMLU-Pro: 12,032 multiple-choice questions (up to 10 options) in 14 categories; micro accuracy.

Variants
- `card` (default): 0-shot chat prompt, thinking on, sampling 1.0/0.95/64. Our best guess at the
  Gemma 4 model-card protocol, which Google did not publish (docs/protocols/mmlu_pro.md § Google's settings).
- `tiger-5shot`: the official TIGER-Lab 5-shot chain-of-thought completion prompt, greedy, stop
  "Question:" (docs/protocols/mmlu_pro.md § Prompt), to cross-check against published numbers.

Extractors (`EXTRACTORS`, chosen by name, each versioned)
- `tiger-2024-05`: `answer is \\(?([A-J])\\)?`, first match: the one behind the published GPT-4o
  numbers (TIGER-AI-Lab/MMLU-Pro `evaluate_from_api.py` @ ff991b5, 2024-05-20).
- `tiger`: the current three-stage extractor of `evaluate_from_local.py` (@ f418b11).
- `card`: ours, for the 0-shot chat prompt: markdown removed, last answer statement wins, only the
  row's letters count, no free-standing-letter fallback.

Sources
- Data: HF `TIGER-Lab/MMLU-Pro` (test 12,032 rows; validation 70 rows = 5 per category), pinned at
  the revision lighteval pins. Local copies: `--data` (see tasks/data.py).
- Prompts and extraction: TIGER-AI-Lab/MMLU-Pro `evaluate_from_local.py`, `evaluate_from_api.py`,
  `cot_prompt_lib/initial_prompt.txt` (as summarised in docs/protocols/mmlu_pro.md § Prompt).

Official quirks kept or exposed
- "N/A" padding options are dropped (the gold letter moves with its option).
- The gold is the `answer` letter, as the official scorer compares against it; one row of newer
  dataset copies (question 3983) has an `answer_index` that disagrees, noted in `Sample.metadata`.
- The official scorer credits a random guess for unanswered items; here only with
  `guess_unparsed=True`, recorded in `Score.details` while the outcome stays unanswered.
- Not reproduced: the official script lowers k below 5 when the prompt exceeds 2048 tokens
  (4096 context minus 2048 new tokens); tasks have no tokenizer, so k is always 5.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evals.schema import Completion, Message, Outcome, Request, Sample, Sampling, Score
from tasks.common import failure_outcome, no_answer_outcome, repeat_requests, unanswered_score
from tasks.data import (
    DataError,
    builtin_path,
    data_description,
    hub_rows,
    load_rows,
    plain,
    rows_fingerprint,
    source_dir,
)

VERSION = "1"  # bump whenever a prompt, an extractor or the scoring changes

HUB_DATASET = "TIGER-Lab/MMLU-Pro"
HUB_REVISION = "3373e0b32277875b8db2aa555a333b78a08477ea"
TEST_SPLIT = "test"
FEWSHOT_SPLIT = "validation"
FEWSHOT_K = 5
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
NA_OPTION = "N/A"
FINGERPRINT_FIELDS = ("question_id", "question", "options", "answer")

# Per-category test sizes of the full dataset (MMLU-Pro paper; they sum to 12,032).
TEST_CATEGORY_SIZES = {
    "biology": 717,
    "business": 789,
    "chemistry": 1132,
    "computer science": 410,
    "economics": 844,
    "engineering": 969,
    "health": 818,
    "history": 381,
    "law": 1101,
    "math": 1351,
    "other": 924,
    "philosophy": 499,
    "physics": 1299,
    "psychology": 798,
}

# --- prompts ----------------------------------------------------------------------------------

# 0-shot chat prompt; the closing instruction is the official evaluate_from_api.py wording.
CARD_PROMPT = (
    "The following is a multiple choice question about {category}.\n\n"
    "Question: {question}\n"
    "Options:\n"
    "{options}\n\n"
    'Think step by step and then output the answer in the format of "The answer is (X)" at the end, '
    "where X is the letter of the correct option."
)

# Official 5-shot completion prompt: initial_prompt.txt ends with three newlines, the code adds one.
TIGER_INITIAL_PROMPT = (
    "The following are multiple choice questions (with answers) about {category}. "
    'Think step by step and then finish your answer with "the answer is (X)" '
    "where X is the correct letter choice.\n\n\n\n"
)
TIGER_QUESTION = "Question:\n{question}\nOptions:\n{options}"
TIGER_ANSWER_CUE = "Answer: Let's think step by step."
TIGER_COT_PREFIX = "A: Let's think step by step."  # how validation `cot_content` starts

VARIANTS = ("card", "tiger-5shot")
VARIANT_MEANINGS = {
    "card": "protocol: 0-shot chat prompt, thinking on, sampling 1.0/0.95/64 (our reading of the "
    "model card's row)",
    "tiger-5shot": "protocol: TIGER-Lab's official 5-shot chain-of-thought completion prompt, greedy, "
    "stop at 'Question:' (cross-checks published numbers)",
}
DEFAULT_SAMPLING = {
    "card": Sampling(temperature=1.0, top_p=0.95, top_k=64, max_tokens=32768, thinking=True),
    "tiger-5shot": Sampling(temperature=0.0, max_tokens=2048, stop=("Question:",), thinking=False),
}
DEFAULT_EXTRACTOR = {"card": "card", "tiger-5shot": "tiger"}

# --- extractors -------------------------------------------------------------------------------

_TIGER_ANSWER_IS = re.compile(r"answer is \(?([A-J])\)?")
# The official stage 2 is `re.search(r".*[aA]nswer:\s*([A-J])", text)`: on the first line where an
# "answer: X" starts, the last one starting on that line. Its leading `.*` is quadratic in the line
# length; `_first_line_last_answer` gives the same result in linear time.
_TIGER_ANSWER_COLON = re.compile(r"[aA]nswer:\s*([A-J])")
# The official stage 3 is `\b[A-J]\b(?!.*\b[A-J]\b)` with DOTALL, i.e. the last lone letter; that
# lookahead is quadratic in the text length, so we take the last of all matches instead (same result).
_TIGER_LONE_LETTER = re.compile(r"\b[A-J]\b")

# A capital letter standing alone: not followed by a word character or an apostrophe ("I'm"),
# and not the pronoun "I" followed by a verb ("Answer: I think ...").
_PRONOUN_VERBS = r"am|think|believe|guess|would|will|can|cannot|need|must|should|suppose|was|have|do"
_LETTER = rf"\$?[(\[]?([A-Z])(?![\w'’])(?!\s+(?:{_PRONOUN_VERBS})\b)"
_ANSWER_PATTERNS = (  # both start with the word "answer" (any case)
    re.compile(r"(?i:answer\s+is)\s*:?\s*(?i:(?:option|choice)\s+)?" + _LETTER),
    re.compile(r"(?i:answer)\s*:\s*(?i:(?:option|choice)\s+)?" + _LETTER),
)
_ANSWER_WORD = re.compile(r"(?i:answer)")
_BOXED = re.compile(r"\\boxed\{\s*(?:\\(?:text|textbf|mathrm|mathbf)\{\s*)?" + _LETTER)
_LETTER_ONLY = re.compile(r"\s*[(\[]?([A-Z])[)\]]?[.:]?\s*")


def extract_tiger_2024_05(text: str, letters: str) -> str | None:
    """First `answer is (X)` in the raw text (X in A-J, whatever the row's option count)."""
    match = _TIGER_ANSWER_IS.search(text)
    return match.group(1) if match else None


def _first_line_last_answer(text: str) -> re.Match[str] | None:
    last = _TIGER_ANSWER_COLON.search(text)
    if last is None:
        return None
    line_end = text.find("\n", last.start())
    line_end = len(text) if line_end < 0 else line_end
    while True:  # matches may overlap ("answer:Answer: C"), so step one character past each start
        following = _TIGER_ANSWER_COLON.search(text, last.start() + 1)
        if following is None or following.start() >= line_end:
            return last
        last = following


def extract_tiger(text: str, letters: str) -> str | None:
    """Official three stages: first `answer is (X)`; `Answer: X` on its first line; last lone A-J."""
    match = _TIGER_ANSWER_IS.search(text) or _first_line_last_answer(text)
    if match:
        return match.group(1)
    lone = _TIGER_LONE_LETTER.findall(text)
    return lone[-1] if lone else None


def extract_card(text: str, letters: str) -> str | None:
    """The last answer statement ("answer is (X)", "Answer: X", `\\boxed{X}`) or a letter-only reply.

    Markdown emphasis is removed first. The letter must be one of the row's `letters`; an
    out-of-range last answer yields None rather than an earlier answer.
    """
    clean = _strip_markdown(text)
    only = _LETTER_ONLY.fullmatch(clean)
    if only:
        found = only.group(1)
    else:
        hits = _answer_hits(clean) + [(m.start(1), m.group(1)) for m in _BOXED.finditer(clean)]
        if not hits:
            return None
        found = max(hits)[1]
    return found if found in letters else None


def _answer_hits(clean: str) -> list[tuple[int, str]]:
    """(position, letter) of every match of each `_ANSWER_PATTERNS` pattern, exactly the matches its
    `finditer` gives: one scan finds where the word "answer" occurs (it cannot overlap itself, so
    every occurrence is found), and each pattern is tried only there, from the end of its previous
    match on. One scan of the text instead of one per pattern: case-insensitive patterns are slow
    to scan for."""
    starts = [m.start() for m in _ANSWER_WORD.finditer(clean)]
    hits = []
    for pattern in _ANSWER_PATTERNS:
        end = 0
        for start in starts:
            match = pattern.match(clean, start) if start >= end else None
            if match:
                hits.append((match.start(1), match.group(1)))
                end = match.end()
    return hits


def _strip_markdown(text: str) -> str:
    """`text` without Markdown emphasis: every `*`, `_` and backtick removed (plain string
    replacement, several times faster than the equivalent regular expression on long answers)."""
    return text.replace("*", "").replace("_", "").replace("`", "")


@dataclass(frozen=True)
class Extractor:
    name: str
    version: str
    extract: Callable[[str, str], str | None]  # (final answer text, the row's letters) -> letter


EXTRACTORS = {
    e.name: e
    for e in (
        Extractor("tiger-2024-05", "ff991b5", extract_tiger_2024_05),
        Extractor("tiger", "f418b11", extract_tiger),
        Extractor("card", "1", extract_card),
    )
}

# --- task ---------------------------------------------------------------------------------------


class MMLUPro:
    """MMLU-Pro with the `card` (0-shot chat) or `tiger-5shot` (official completion) protocol."""

    name = "mmlu_pro"
    version = VERSION
    variants = VARIANT_MEANINGS
    public_text = True  # questions and options are public on the hub
    headline = "mean"  # micro accuracy over all questions

    def __init__(
        self,
        variant: str | None = None,
        *,
        extractor: str | None = None,
        guess_unparsed: bool = False,
        guess_seed: int = 12345,
    ) -> None:
        self.variant = variant or VARIANTS[0]
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown mmlu_pro variant '{variant}'; choose one of: {', '.join(VARIANTS)}")
        extractor_name = extractor or DEFAULT_EXTRACTOR[self.variant]
        if extractor_name not in EXTRACTORS:
            raise ValueError(
                f"unknown mmlu_pro extractor '{extractor}'; choose one of: {', '.join(EXTRACTORS)}"
            )
        self.extractor = EXTRACTORS[extractor_name]
        self.default_sampling = DEFAULT_SAMPLING[self.variant]
        self.guess_unparsed = guess_unparsed
        self.guess_seed = guess_seed
        self.source: str | None = None
        self.data_fingerprint: str | None = None
        self.fewshot_fingerprint: str | None = None
        self._fewshot: dict[str, list[tuple[Sample, str]]] = {}

    # --- data -----------------------------------------------------------------------------------

    def load(self, data: str | None = None, *, limit: int | None = None) -> list[Sample]:
        """Test samples (the first `limit` of them) from the pinned hub revision, local files
        (`data`), or "builtin" smoke data."""
        rows = [_clean_row(row) for row in self._read(data, TEST_SPLIT)]
        self.source = "hub" if data is None else data
        samples = [_sample(row) for row in rows]
        if data is None:
            _check_full_test_set(samples)
        if limit is not None:
            rows, samples = rows[:limit], samples[:limit]
        self.data_fingerprint = rows_fingerprint(rows, FINGERPRINT_FIELDS)
        if self.variant == "tiger-5shot":
            self._load_fewshot(data, samples)
        return samples

    def _read(self, data: str | None, split: str) -> list[dict[str, Any]]:
        if data is None:
            return hub_rows(HUB_DATASET, split, HUB_REVISION)
        if data == "builtin":
            return load_rows(str(builtin_path(self.name)), TEST_SPLIT)
        return load_rows(data, split)

    def _load_fewshot(self, data: str | None, samples: Sequence[Sample]) -> None:
        if data is None or data == "builtin":
            rows = self._read(data, FEWSHOT_SPLIT)
        else:
            folder = source_dir(data)
            try:
                rows = load_rows(folder, FEWSHOT_SPLIT)
            except DataError as exc:
                raise DataError(
                    f"tiger-5shot needs the validation split next to the test data: {exc}"
                ) from exc
        cleaned = [_clean_row(row) for row in rows]
        self.fewshot_fingerprint = rows_fingerprint(cleaned, (*FINGERPRINT_FIELDS, "cot_content"))
        self._fewshot = {}
        for row in cleaned:
            self._fewshot.setdefault(row["category"], []).append((_sample(row), row["cot_content"]))
        if data != "builtin":
            _check_fewshot_pool(self._fewshot, {s.category or "" for s in samples})

    # --- prompts --------------------------------------------------------------------------------

    def card_prompt(self, sample: Sample) -> str:
        """The 0-shot user message."""
        return CARD_PROMPT.format(
            category=sample.category,
            question=sample.inputs["question"],
            options=_options_block(sample),
        )

    def tiger_prompt(self, sample: Sample) -> str:
        """The official 5-shot completion prompt for `sample` (needs `load()` first)."""
        if not self._fewshot:
            raise RuntimeError("tiger-5shot prompts need the validation examples: call load() first")
        pool = self._fewshot.get(sample.category or "", [])
        examples = [(ex, cot) for ex, cot in pool if ex.id != sample.id][:FEWSHOT_K]
        parts = [TIGER_INITIAL_PROMPT.format(category=sample.category)]
        parts += [f"{_tiger_question(ex)}{_tiger_cot(ex, cot)}\n\n" for ex, cot in examples]
        parts.append(_tiger_question(sample) + TIGER_ANSWER_CUE)
        return "".join(parts)

    def requests(self, sample: Sample, sampling: Sampling, repeats: int) -> list[Request]:
        prefix = f"mmlu_pro/{self.variant}"
        if self.variant == "card":
            message = Message.user(self.card_prompt(sample))
            return repeat_requests(prefix, sample.id, sampling, repeats, messages=[message])
        return repeat_requests(prefix, sample.id, sampling, repeats, prompt=self.tiger_prompt(sample))

    # --- scoring --------------------------------------------------------------------------------

    def score(self, sample: Sample, completion: Completion, repeat: int) -> Score:
        failure = failure_outcome(completion)
        if failure is not None:
            return self._unanswered(sample, repeat, failure)
        letter = self.extractor.extract(completion.text, sample.inputs["letters"])
        if letter is None:
            return self._unanswered(sample, repeat, no_answer_outcome(completion))
        correct = letter == sample.target
        outcome = Outcome.CORRECT if correct else Outcome.WRONG
        return Score(sample.id, repeat, outcome, 1.0 if correct else 0.0, extracted=letter)

    def _unanswered(self, sample: Sample, repeat: int, outcome: Outcome) -> Score:
        return unanswered_score(
            sample, repeat, outcome, guess_seed=self.guess_seed if self.guess_unparsed else None
        )

    def describe(self) -> dict[str, Any]:
        data = data_description(self.source, {"dataset": HUB_DATASET, "revision": HUB_REVISION})
        return {
            "task": self.name,
            "version": self.version,
            "variant": self.variant,
            "extractor": {"name": self.extractor.name, "version": self.extractor.version},
            "data": data,
            "data_fingerprint": self.data_fingerprint,
            "n_shots": FEWSHOT_K if self.variant == "tiger-5shot" else 0,
            "fewshot_fingerprint": self.fewshot_fingerprint,
            "guess_unparsed": self.guess_unparsed,
            "guess_seed": self.guess_seed,
        }


# --- row handling -------------------------------------------------------------------------------


def _clean_row(row: dict[str, Any]) -> dict[str, Any]:
    """Plain, consistently typed copy of a dataset row (ids as strings, options as a list)."""
    try:
        options = _as_options(row["options"])
        return {
            "question_id": _as_id(row["question_id"]),
            "question": str(row["question"]),
            "options": options,
            "answer": _as_letter(row.get("answer"), row.get("answer_index")),
            "answer_index": _as_int(row.get("answer_index")),
            "cot_content": str(row.get("cot_content") or ""),
            "category": str(row.get("category") or ""),
            "src": str(row.get("src") or ""),
        }
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise DataError(f"bad MMLU-Pro row {row.get('question_id', '?')}: {exc}") from exc


def _sample(row: dict[str, Any]) -> Sample:
    """A Sample with "N/A" options dropped and the gold letter moved to its option's new place."""
    options = row["options"]
    gold = LETTERS.index(row["answer"])
    if gold >= len(options) or options[gold].strip() == NA_OPTION:
        raise DataError(f"MMLU-Pro row {row['question_id']}: answer {row['answer']} is not a real option")
    kept = [opt for opt in options if opt.strip() != NA_OPTION]
    new_gold = gold - sum(opt.strip() == NA_OPTION for opt in options[:gold])
    metadata = {}
    if row["answer_index"] is not None and row["answer_index"] != gold:
        metadata["answer_index_disagrees"] = row["answer_index"]
    return Sample(
        id=row["question_id"],
        inputs={
            "question": row["question"],
            "options": kept,
            "letters": LETTERS[: len(kept)],
            "src": row["src"],
        },
        target=LETTERS[new_gold],
        category=row["category"],
        metadata=metadata,
    )


def _as_id(value: Any) -> str:
    value = plain(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _as_int(value: Any) -> int | None:
    value = plain(value)
    if value is None or value == "":
        return None
    return int(value)


def _as_options(value: Any) -> list[str]:
    value = plain(value)
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list) or not value:
        raise ValueError(f"options must be a non-empty list, got {type(value).__name__}")
    return [str(opt) for opt in value]


def _as_letter(answer: Any, answer_index: Any) -> str:
    letter = str(plain(answer) or "").strip().strip("()").upper()
    if len(letter) == 1 and letter in LETTERS:
        return letter
    index = _as_int(answer_index)
    if index is None:
        raise ValueError(f"no usable answer ({answer!r}) or answer_index")
    return LETTERS[index]


def _options_block(sample: Sample) -> str:
    return "\n".join(
        f"{letter}. {opt}"
        for letter, opt in zip(sample.inputs["letters"], sample.inputs["options"], strict=True)
    )


def _tiger_question(sample: Sample) -> str:
    return TIGER_QUESTION.format(question=sample.inputs["question"], options=_options_block(sample)) + "\n"


def _tiger_cot(example: Sample, cot_content: str) -> str:
    """The example's chain of thought with the official "A:" -> "Answer:" rewrite.

    Rows without a chain of thought (only the builtin smoke data) get a bare answer line.
    """
    if not cot_content.strip():
        return f"{TIGER_ANSWER_CUE} The answer is ({example.target})."
    return cot_content.replace(TIGER_COT_PREFIX, TIGER_ANSWER_CUE)


def _check_full_test_set(samples: Sequence[Sample]) -> None:
    sizes = Counter(s.category for s in samples)
    if sizes != Counter(TEST_CATEGORY_SIZES):
        raise DataError(
            f"{HUB_DATASET}@{HUB_REVISION} test split has {len(samples)} rows with category sizes "
            f"{dict(sizes)}; expected 12032 rows as in TEST_CATEGORY_SIZES"
        )


def _check_fewshot_pool(pool: dict[str, list[tuple[Sample, str]]], categories: set[str]) -> None:
    short = {c: len(pool.get(c, [])) for c in sorted(categories) if len(pool.get(c, [])) < FEWSHOT_K}
    if short:
        raise DataError(f"validation split has fewer than {FEWSHOT_K} examples for categories {short}")
