"""GPQA Diamond: 198 graduate-level four-choice questions (physics, chemistry, biology); accuracy.

Variants
- `card` (default): the simple-evals 0-shot chain-of-thought prompt, thinking on, sampling
  1.0/0.95/64 (docs/protocols/gpqa_diamond.md § Prompt). Google did not publish its protocol
  (§ Google's settings there).

Choice order
- The data always stores the correct answer first, so the four choices are shuffled. The order
  for (sample, repeat) is one of the 24 permutations, picked by sha256 of
  `"{shuffle_seed}:{sample id}:{repeat}"`: independent of global RNG state, run order, task order
  and row order (the leakage bugs of docs/protocols/gpqa_diamond.md § Pitfalls). Each repeat has
  its own order, hence its own prompt and its own gold letter (`permutation()`, `Score.details`).
- Answers are compared by their original index, a string "0".."3" in `inputs["choices"]` order,
  where "0" is the correct answer: `Sample.target` is "0" and `Score.extracted` is the index of
  the chosen answer, so majority voting compares answers across repeats with different orders.
  The letter read from the completion is `Score.details["letter"]`.

Extraction (final answer only, never the thought block): the last answer statement by position,
among `Answer: X` (the simple-evals rule, but its last match instead of the first; markdown
emphasis, `$X$` and `(X)` allowed), `\\boxed{X}` and `answer is (X)`. A last statement naming a
letter other than A-D gives no answer rather than an earlier statement's letter.

Rows: question and answers are stripped of outer whitespace and otherwise kept as given (no
bracket-stripping regex: lm-eval PR #3735 corrupted answers that way).

Sources
- Data: HF `Idavidrein/gpqa` (gated), config `gpqa_diamond`, split `train` (198 rows), or the
  authors' password-protected `dataset.zip` (GitHub idavidrein/gpqa; member
  `dataset/gpqa_diamond.csv`; the password is published in the authors' README). A pin of that
  archive seen in public code (revision 56686c06f5e19865c153de0fdb11be3890014df7, sha256
  461ae7329f15a3e35f8184d2dac24b990f34fdf12f366ca4062d8e6638cd08dc) is unverified here;
  `describe()` records the sha256 of the archive actually read.
- Prompt and repeats: openai/simple-evals `gpqa_eval.py` (docs/protocols/gpqa_diamond.md § Prompt).

The authors ask that questions never appear in plain text online: `public_text = False` tells
reports not to show question or answer text by default.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from evals.schema import Completion, Message, Outcome, Request, Sample, Sampling, Score
from tasks.common import failure_outcome, no_answer_outcome, repeat_requests
from tasks.data import (
    DataError,
    builtin_path,
    check_unique_ids,
    data_description,
    hub_rows,
    load_rows,
    plain,
    rows_fingerprint,
)
from tasks.readers import csv_rows, file_sha256, read_csv

VERSION = "1"  # bump whenever the prompt, the shuffling, the extraction or the scoring changes

HUB_DATASET = "Idavidrein/gpqa"
HUB_CONFIG = "gpqa_diamond"
HUB_SPLIT = "train"
# Not pinned to a commit: no public commit of the dataset could be confirmed. `describe()` says
# "main (unpinned)"; `data_fingerprint` identifies the rows actually read.
HUB_REVISION = "main"
UNPINNED = "main (unpinned)"
HUB_ROWS = 198
ZIP_MEMBER = "dataset/gpqa_diamond.csv"
ZIP_PASSWORD = "deserted-untie-orchid"  # published in the authors' README (anti-crawl canary)
ZIP_PASSWORD_ENV = "GPQA_ZIP_PASSWORD"

QUESTION = "Question"
CORRECT = "Correct Answer"
INCORRECT = ("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
RECORD_ID = "Record ID"
DOMAIN = "High-level domain"
SUBDOMAIN = "Subdomain"
FINGERPRINT_FIELDS = ("id", "question", "choices", "domain")

LETTERS = "ABCD"
CORRECT_ANSWER = "0"  # answers are identified by their index in `inputs["choices"]`
PERMUTATIONS = tuple(itertools.permutations(range(len(LETTERS))))

# --- prompt -----------------------------------------------------------------------------------

# openai/simple-evals QUERY_TEMPLATE_MULTICHOICE, one user message.
PROMPT_NAME = "simple-evals-0shot-cot"
PROMPT = (
    "Answer the following multiple choice question. The last line of your response should be of the "
    "following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by "
    "step before answering.\n\n"
    "{question}\n\n"
    "A) {A}\n"
    "B) {B}\n"
    "C) {C}\n"
    "D) {D}"
)

VARIANTS = ("card",)
VARIANT_MEANINGS = {
    "card": "protocol: the model card's row: 198 Diamond questions, simple-evals 0-shot CoT prompt, "
    "choices shuffled per repeat, thinking on, 32K tokens",
}
DEFAULT_SAMPLING = {
    "card": Sampling(temperature=1.0, top_p=0.95, top_k=64, max_tokens=32768, thinking=True),
}

# --- extraction -------------------------------------------------------------------------------

# What may sit between an answer cue and its letter: markdown emphasis, `$`, a LaTeX text command,
# "option"/"choice". The letter is then "(x)" in either case, a capital standing alone, or a small
# letter ending its line ("answer: c"); a small letter followed by words is prose ("answer: a
# mixture ..."). "I" never counts: "Answer: I think it is C" is not an answer "I".
_LEAD = r"[ \t*_]*(?:\$[ \t]*)?(?:\\(?:text|textbf|mathrm|mathbf)\{[ \t]*)?(?:(?i:option|choice)[ \t]+)?"
_LETTER = r"(?:\(([A-HJ-Za-hj-z])\)|([A-HJ-Z])(?![\w'’])|([a-hj-z])(?=[)}$*_ \t.]*$))"
_PATTERNS = {
    "answer_colon": re.compile(r"(?i:answer)[ \t*_]*:" + _LEAD + _LETTER, re.MULTILINE),
    "boxed": re.compile(r"\\boxed\{" + _LEAD + _LETTER, re.MULTILINE),
    "answer_is": re.compile(r"(?i:answer[ \t]+is)(?:[ \t*_]*:)?" + _LEAD + _LETTER, re.MULTILINE),
}
PRIMARY_RULE = "answer_colon"


def extract_letter(text: str) -> tuple[str, str] | None:
    """(letter, rule) of the last answer statement in `text`, or None.

    None also when the last statement names a letter outside A-D.
    """
    hits = []
    for rule, pattern in _PATTERNS.items():
        for match in pattern.finditer(text):
            group = next(g for g in range(1, 4) if match.group(g))
            hits.append((match.start(group), match.group(group).upper(), rule))
    if not hits:
        return None
    _, letter, rule = max(hits)
    return (letter, rule) if letter in LETTERS else None


# --- task ---------------------------------------------------------------------------------------


class GPQADiamond:
    """GPQA Diamond with per-(sample, repeat) deterministic choice shuffling."""

    name = "gpqa_diamond"
    version = VERSION
    variants = VARIANT_MEANINGS
    public_text = False  # the authors ask that questions never appear in plain text online
    headline = "mean"

    def __init__(self, variant: str | None = None, *, shuffle_seed: int = 0) -> None:
        self.variant = variant or VARIANTS[0]
        if self.variant not in VARIANTS:
            raise ValueError(
                f"unknown gpqa_diamond variant '{variant}'; choose one of: {', '.join(VARIANTS)}"
            )
        self.default_sampling = DEFAULT_SAMPLING[self.variant]
        self.shuffle_seed = shuffle_seed
        self.source: str | None = None
        self.archive_sha256: str | None = None
        self.data_fingerprint: str | None = None

    # --- data -----------------------------------------------------------------------------------

    def load(self, data: str | None = None, *, limit: int | None = None) -> list[Sample]:
        """The 198 hub rows, a local copy (`data`: dataset.zip, CSV, parquet/jsonl/json) or "builtin";
        the first `limit` of them when given."""
        self.archive_sha256 = None
        rows = [_clean_row(row) for row in self._read(data)]
        if data is None and len(rows) != HUB_ROWS:
            raise DataError(f"{HUB_DATASET}/{HUB_CONFIG} has {len(rows)} rows; expected {HUB_ROWS}")
        check_unique_ids((r["id"] for r in rows), "GPQA rows")
        rows = rows if limit is None else rows[:limit]
        self.source = "hub" if data is None else data
        self.data_fingerprint = rows_fingerprint(rows, FINGERPRINT_FIELDS)
        return [_sample(row) for row in rows]

    def _read(self, data: str | None) -> list[dict[str, Any]]:
        if data is None:
            return _hub_rows()
        if data == "builtin":
            return load_rows(str(builtin_path(self.name)), HUB_SPLIT, main_split=HUB_SPLIT)
        path = Path(data)
        if path.suffix.lower() == ".zip":
            rows = read_zip(path)
            self.archive_sha256 = file_sha256(path)
            return rows
        if path.suffix.lower() == ".csv":
            return read_csv(path)
        if path.is_dir() and (csv_file := _csv_in_dir(path)) is not None:
            return read_csv(csv_file)
        return load_rows(data, HUB_SPLIT, main_split=HUB_SPLIT)

    # --- prompts --------------------------------------------------------------------------------

    def permutation(self, sample_id: str, repeat: int) -> tuple[int, ...]:
        """Original choice index shown at each letter position for (sample, repeat)."""
        key = f"{self.shuffle_seed}:{sample_id}:{repeat}".encode()
        digest = hashlib.sha256(key).digest()
        return PERMUTATIONS[int.from_bytes(digest[:8], "big") % len(PERMUTATIONS)]

    def gold_letter(self, sample_id: str, repeat: int) -> str:
        """The letter of the correct answer in repeat `repeat`."""
        return LETTERS[self.permutation(sample_id, repeat).index(int(CORRECT_ANSWER))]

    def prompt(self, sample: Sample, repeat: int) -> str:
        """The user message of one repeat, with that repeat's choice order."""
        choices = sample.inputs["choices"]
        shown = [choices[i] for i in self.permutation(sample.id, repeat)]
        return PROMPT.format(question=sample.inputs["question"], **dict(zip(LETTERS, shown, strict=True)))

    def requests(self, sample: Sample, sampling: Sampling, repeats: int) -> list[Request]:
        """One request per repeat (the usual keys and seeds), each with its own choice order."""
        placeholder = [Message.user("")]
        prefix = f"{self.name}/{self.variant}"
        return [
            replace(request, messages=(Message.user(self.prompt(sample, request.repeat)),))
            for request in repeat_requests(prefix, sample.id, sampling, repeats, messages=placeholder)
        ]

    # --- scoring --------------------------------------------------------------------------------

    def score(self, sample: Sample, completion: Completion, repeat: int) -> Score:
        permutation = self.permutation(sample.id, repeat)
        details: dict[str, Any] = {
            "permutation": list(permutation),
            "gold": self.gold_letter(sample.id, repeat),
        }
        failure = failure_outcome(completion)
        if failure is not None:
            return Score(sample.id, repeat, failure, 0.0, details=details)
        found = extract_letter(completion.text)
        if found is None:
            return Score(sample.id, repeat, no_answer_outcome(completion), 0.0, details=details)
        letter, rule = found
        answer = str(permutation[LETTERS.index(letter)])
        details["letter"] = letter
        correct = answer == sample.target
        return Score(
            sample.id,
            repeat,
            Outcome.CORRECT if correct else Outcome.WRONG,
            1.0 if correct else 0.0,
            extracted=answer,
            details=details,
            flags=() if rule == PRIMARY_RULE else (f"{rule}_fallback",),
        )

    def describe(self) -> dict[str, Any]:
        hub: dict[str, Any] = {
            "dataset": HUB_DATASET,
            "config": HUB_CONFIG,
            "split": HUB_SPLIT,
            "revision": UNPINNED,
        }
        data = data_description(self.source, hub)
        if "source" in data and self.archive_sha256:
            data["archive_sha256"] = self.archive_sha256
        return {
            "task": self.name,
            "version": self.version,
            "variant": self.variant,
            "prompt": {"name": PROMPT_NAME, "sha256": hashlib.sha256(PROMPT.encode()).hexdigest()},
            "data": data,
            "data_fingerprint": self.data_fingerprint,
            "shuffle_seed": self.shuffle_seed,
        }


# --- reading ------------------------------------------------------------------------------------


def _hub_rows() -> list[dict[str, Any]]:
    try:
        return hub_rows(HUB_DATASET, HUB_SPLIT, HUB_REVISION, HUB_CONFIG)
    except DataError as exc:
        cause = " ".join(str(exc.__cause__ or exc).split())[:200]
        raise DataError(
            f"cannot load {HUB_DATASET} (config {HUB_CONFIG}) from the Hugging Face hub ({cause}); "
            f"the dataset is gated: accept its terms at https://huggingface.co/datasets/{HUB_DATASET} "
            "and log in (`huggingface-cli login` or HF_TOKEN), or pass the authors' dataset.zip "
            "with --data PATH"
        ) from exc


def read_zip(path: Path, password: str | None = None) -> list[dict[str, Any]]:
    """Rows of `dataset/gpqa_diamond.csv` in the authors' encrypted archive (ZipCrypto).

    The password is `password`, else $GPQA_ZIP_PASSWORD, else the one in the authors' README.
    """
    secret = password or os.environ.get(ZIP_PASSWORD_ENV) or ZIP_PASSWORD
    try:
        with zipfile.ZipFile(path) as archive:
            member = _zip_member(path, archive.namelist())
            blob = archive.read(member, pwd=secret.encode())
    except FileNotFoundError as exc:
        raise DataError(f"data path {path} does not exist; pass the authors' dataset.zip") from exc
    except NotImplementedError as exc:  # AES or an unknown compression (a RuntimeError: first)
        raise DataError(
            f"cannot read {path} with Python's zipfile ({exc}); unzip it with another tool "
            "and pass the extracted gpqa_diamond.csv with --data"
        ) from exc
    except (RuntimeError, zlib.error, zipfile.BadZipFile) as exc:  # zipfile's bad-password errors
        raise DataError(
            f"cannot read {ZIP_MEMBER} from {path} ({exc}): wrong password or damaged archive; set "
            f"{ZIP_PASSWORD_ENV} to the password in the authors' README, or unzip it and pass the CSV"
        ) from exc
    return csv_rows(blob, f"{path}:{member}")


def _zip_member(path: Path, names: Sequence[str]) -> str:
    """The exact authors' member, else a single `gpqa_diamond.csv` anywhere in the archive."""
    if ZIP_MEMBER in names:
        return ZIP_MEMBER
    found = [n for n in names if Path(n).name == Path(ZIP_MEMBER).name and "__MACOSX" not in n]
    if len(found) == 1:
        return found[0]
    raise DataError(
        f"{path} has no member {ZIP_MEMBER} (members: {', '.join(names[:10])}); "
        "pass the authors' dataset.zip from GitHub idavidrein/gpqa, or the CSV itself"
    )


def _csv_in_dir(path: Path) -> Path | None:
    found = sorted(path.rglob(Path(ZIP_MEMBER).name))
    return found[0] if found else None


# --- row handling -------------------------------------------------------------------------------


def _clean_row(row: dict[str, Any]) -> dict[str, Any]:
    """Plain copy of a row: id, question, the four answers (correct first, stripped), domains."""
    question = _text(row.get(QUESTION))
    row_id = _row_id(row, question)
    missing = [c for c in (QUESTION, CORRECT, *INCORRECT) if _text(row.get(c)) == ""]
    if missing:
        columns = ", ".join((QUESTION, CORRECT, *INCORRECT))
        raise DataError(
            f"bad GPQA row {row_id}: empty or missing {', '.join(missing)} (expected columns: {columns})"
        )
    return {
        "id": row_id,
        "question": question,
        "choices": [_text(row[c]) for c in (CORRECT, *INCORRECT)],
        "domain": _text(row.get(DOMAIN)),
        "subdomain": _text(row.get(SUBDOMAIN)),
    }


def _text(value: Any) -> str:
    value = plain(value)
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return ""
    return str(value).strip()


def _row_id(row: dict[str, Any], question: str) -> str:
    """`Record ID`, else a stable hash of the question."""
    record = _text(row.get(RECORD_ID))
    return record or "q" + hashlib.sha256(question.encode()).hexdigest()[:16]


def _sample(row: dict[str, Any]) -> Sample:
    return Sample(
        id=row["id"],
        inputs={"question": row["question"], "choices": row["choices"]},
        target=CORRECT_ANSWER,
        category=row["domain"] or None,
        metadata={"subdomain": row["subdomain"]} if row["subdomain"] else {},
    )
