"""AIME: the 30 problems (AIME I + II) of one year, integer answers 0-999; accuracy averaged over
repeats (avg@k, aggregated by evals/stats.py).

Variants: the year. `2026` (default) is the model-card row; `2025` and `2024` are extra years with
published reference numbers.

Protocol (MathArena, docs/protocols/aime.md)
- One user message, no system prompt (a system prompt moves AIME scores: docs/protocols/aime.md
  § Pitfalls): the competition instruction, a blank line, the problem (`PROMPT`).
- The answer is read from the final answer only (`Completion.text`); boxed answers in the thought
  block are ignored. The last balanced `\\boxed{...}` / `\\fbox{...}` wins (inner boxes stripped,
  empty boxes skipped) and is normalised to an integer (plain digits, else math-verify's LaTeX
  parser); a non-integer or an integer outside 0-999 is wrong, with the answer kept in `extracted`.
- No box: the last integer (`\\b\\d+\\b`) of the final answer, as MathArena does with
  `strict_parsing: false` (the 2024-2026 configs), flagged `last_integer_fallback`. Not with
  `strict=True`, and not in a final answer cut off by the token budget (that is TRUNCATED).
- `last_chance=True`: a final answer without a box (of a completion that did not fail) gets one
  follow-up turn (`LAST_CHANCE_PROMPT`) whose answer is scored instead, flagged `last_chance`;
  the follow-up carries the first final answer, never the thoughts (MathArena `runner.py`).

Sources
- Data: HF `MathArena/aime_2026` and `MathArena/aime_2025` (split `train`, 30 rows `problem_idx`
  1-30, `problem`, `answer`); 2024 has no combined set: `MathArena/aime_2024_I` and
  `MathArena/aime_2024_II` (15 rows each, `problem_idx` 1-15, per their dataset cards) are loaded
  together, AIME II's problems numbered 16-30 as in the combined sets. No hub revision is pinned
  (no public commit could be confirmed): each loads the default branch, and `describe()` says
  "main (unpinned)"; the data fingerprint records what was read.
- Local copies (`--data`): a parquet/jsonl/json file or folder with `problem_idx`/`id`,
  `problem`/`prompt` and `answer` (QwQ's `{prompt, answer}` rows work; their trailing
  "Please reason step by step..." instruction is removed), or MathArena's folder layout
  (`aime_<year>_I/`, `aime_<year>_II/` with `answers.csv` and `problems/<n>.tex`, as in
  eth-sri/matharena `data/aime/` before it moved to the hub), either the folder holding both or one
  competition folder; for 2024 also the two hub datasets' folders side by side (`aime_2024_I/`,
  `aime_2024_II/`, as `evals prefetch` writes them), read and numbered as from the hub.
- Prompt, extraction and last-chance turn: eth-sri/matharena @ e927660 `configs/competitions/aime/
  aime_2026.yaml`, `src/matharena/parser.py`, `src/matharena/runner.py` (docs/protocols/aime.md
  § Prompt, § Answer extraction, § Scoring).
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
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
from tasks.readers import read_csv

VERSION = "1"  # bump whenever the prompt, the extraction or the scoring changes

# --- prompts ----------------------------------------------------------------------------------

# MathArena's AIME instruction (aime_2024/2025/2026.yaml) with "\n\n{problem}" appended by its runner.
PROMPT = (
    "Put your final answer within \\boxed{{}}.\n"
    "The answer is an integer between 0 and 999 inclusive.\n\n"
    "{problem}"
)

# Our wording of MathArena's last-chance turn (runner.py `_build_last_chance_prompt`).
LAST_CHANCE_PROMPT = (
    "Your last message does not give a final answer within \\boxed{} as the instructions ask.\n"
    "Based on the conversation so far, state your final answer again within \\boxed{}.\n"
    "If you did not find the answer, write \\boxed{None}.\n"
    "Do not solve the problem again; only report the final answer of your previous work.\n"
    "Boxed answers in your thinking or reasoning are ignored; only your final reply counts."
)

# QwQ's eval/data/aime24.jsonl and aime25.jsonl end every prompt with this instruction.
QWQ_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."

# --- data -------------------------------------------------------------------------------------

VARIANTS = ("2026", "2025", "2024")
VARIANT_MEANINGS = {
    "2026": "year: AIME 2026 I + II (30 problems), the model-card row",
    "2025": "year: AIME 2025 I + II (30 problems)",
    "2024": "year: AIME 2024 I + II (30 problems)",
}
# The hub datasets of each year, in order; a year split in two is numbered on (II's 1 becomes 16).
HUB_DATASETS = {
    "2026": ("MathArena/aime_2026",),
    "2025": ("MathArena/aime_2025",),
    "2024": ("MathArena/aime_2024_I", "MathArena/aime_2024_II"),
}
HUB_REVISIONS: dict[str, str | None] = {"2026": None, "2025": None, "2024": None}  # not pinned
UNPINNED = "main (unpinned)"
SPLIT = "train"
N_PROBLEMS = 30
PROBLEMS_PER_COMPETITION = 15
COMPETITIONS = ("I", "II")
ANSWER_RANGE = (0, 999)
FINGERPRINT_FIELDS = ("id", "problem", "answer")

DEFAULT_SAMPLING = Sampling(temperature=1.0, top_p=0.95, top_k=64, max_tokens=65536, thinking=True)

# --- extraction -------------------------------------------------------------------------------

_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_LAST_INTEGER = re.compile(r"\b\d+\b")
_INTEGER = re.compile(r"[+-]?\d+")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\s*\{")
_SPACING = re.compile(r"\\[,;:! ]|~|\$")
MAX_LATEX_ANSWER = 200  # longer boxed answers are not handed to the LaTeX parser
PARSE_TIMEOUT_S = 5


@dataclass(frozen=True)
class Answer:
    """An answer read from a final answer: its text, its integer value (None if not an integer)
    and where it came from ("boxed" or "last_integer")."""

    text: str
    value: int | None
    source: str

    @property
    def extracted(self) -> str:
        """The normalised form that majority voting compares: the integer, else the text."""
        return str(self.value) if self.value is not None else self.text


def brace_pairs(text: str) -> dict[int, int]:
    """Index of each `{` -> index of its matching `}`, in one pass; unmatched braces are left out
    and a backslash escapes the next character (`\\{`, `\\}` do not count)."""
    pairs: dict[int, int] = {}
    opened: list[int] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "{":
            opened.append(index)
        elif char == "}" and opened:
            pairs[opened.pop()] = index
        index += 1
    return pairs


def strip_boxes(text: str) -> str:
    """`text` with every balanced `\\boxed{x}` / `\\fbox{x}` replaced by `x`."""
    pairs = brace_pairs(text)
    dropped: set[int] = set()
    for match in _BOX_OPEN.finditer(text):
        close = pairs.get(match.end() - 1)
        if close is not None:
            dropped.update(range(match.start(), match.end()))
            dropped.add(close)
    return "".join(char for index, char in enumerate(text) if index not in dropped)


def last_boxed(text: str) -> str | None:
    """Content of the last balanced, non-empty `\\boxed{...}` or `\\fbox{...}`, inner boxes stripped.

    Boxes are taken left to right without overlap (a box inside a box is part of the outer one);
    an unbalanced box is skipped. Linear in the length of `text`.
    """
    pairs = brace_pairs(text)
    found = None
    position = 0
    for match in _BOX_OPEN.finditer(text):
        close = pairs.get(match.end() - 1)
        if match.start() < position or close is None:
            continue
        content = strip_boxes(text[match.end() : close]).strip()
        if content:
            found = content
        position = close + 1
    return found


def last_integer(text: str) -> str | None:
    """The last run of digits standing alone (`\\b\\d+\\b`), MathArena's fallback."""
    found = _LAST_INTEGER.findall(text)
    return found[-1] if found else None


def to_integer(answer: str) -> int | None:
    """The integer that a boxed answer states, or None when it is not an integer.

    Plain forms ("073", "73.", "\\text{73}", "{73}", "1{,}000", "$73$") are read directly; anything
    else goes through math-verify's LaTeX parser ("\\frac{146}{2}", "73^\\circ", "n = 73").
    """
    plain_text = _plain_number(answer)
    if _INTEGER.fullmatch(plain_text):
        return int(plain_text)
    if _THOUSANDS.fullmatch(plain_text):
        return int(plain_text.replace(",", ""))
    return _latex_integer(answer)


def _plain_number(answer: str) -> str:
    text = _TEXT_WRAPPER.sub("{", answer)
    text = _SPACING.sub("", text).replace("{", "").replace("}", "").strip()
    return text.removesuffix(".").strip()


def _latex_integer(answer: str) -> int | None:
    """math-verify's reading of `answer`, if it is a number equal to an integer."""
    if len(answer) > MAX_LATEX_ANSWER:
        return None
    from math_verify import LatexExtractionConfig, parse

    # math-verify's timeout uses SIGALRM, which only the main thread may set.
    main_thread = threading.current_thread() is threading.main_thread()
    parsed = parse(
        f"\\boxed{{{answer}}}",
        extraction_config=[LatexExtractionConfig()],
        parsing_timeout=PARSE_TIMEOUT_S if main_thread else None,
    )
    return _sympy_integer(parsed[0]) if parsed else None


def _sympy_integer(expr: Any) -> int | None:
    if getattr(expr, "is_Equality", False) and getattr(expr.lhs, "is_Symbol", False):
        expr = expr.rhs  # "n = 73"
    if not getattr(expr, "is_number", False):
        return None
    try:
        value = float(expr)
    except (TypeError, ValueError, OverflowError):  # complex, undefined
        return None
    if not math.isfinite(value):
        return None
    nearest = round(value)
    return nearest if abs(value - nearest) < 1e-9 else None


def read_answer(text: str, *, fallback: bool = True) -> Answer | None:
    """The answer of a final answer: the last boxed answer, else (with `fallback`) the last integer."""
    text = unicodedata.normalize("NFKC", text)
    boxed = last_boxed(text)
    if boxed is not None:
        return Answer(boxed, to_integer(boxed), "boxed")
    digits = last_integer(text) if fallback else None
    if digits is None:
        return None
    return Answer(digits, int(digits), "last_integer")


# --- task ---------------------------------------------------------------------------------------


class AIME:
    """AIME of one year with MathArena's prompt and extraction, optionally its last-chance turn."""

    name = "aime"
    version = VERSION
    variants = VARIANT_MEANINGS
    public_text = True  # problems and answers are public competition text
    headline = "mean"
    default_sampling = DEFAULT_SAMPLING

    def __init__(
        self, variant: str | None = None, *, strict: bool = False, last_chance: bool = False
    ) -> None:
        self.variant = variant or VARIANTS[0]
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown aime variant '{variant}'; choose one of: {', '.join(VARIANTS)}")
        self.year = self.variant
        self.strict = strict
        self.last_chance = last_chance
        self.source: str | None = None
        self.data_fingerprint: str | None = None

    # --- data -----------------------------------------------------------------------------------

    def load(self, data: str | None = None, *, limit: int | None = None) -> list[Sample]:
        """The year's problems (the first `limit` of them) from the hub, local files or MathArena
        folders (`data`), or "builtin"."""
        rows = self._read(data)
        check_unique_ids((row["id"] for row in rows), "AIME problems")
        rows = rows if limit is None else rows[:limit]
        self.source = "hub" if data is None else data
        self.data_fingerprint = rows_fingerprint(rows, FINGERPRINT_FIELDS)
        return [_sample(row) for row in rows]

    def _read(self, data: str | None) -> list[dict[str, Any]]:
        if data is None:
            return _hub_year(self.year)
        if data == "builtin":
            return _clean_rows(load_rows(str(builtin_path(self.name)), SPLIT, main_split=SPLIT))
        folders = matharena_folders(Path(data), self.year)
        if folders:
            return [row for folder in folders for row in read_matharena_folder(folder)]
        copies = hub_copies(Path(data), self.year)
        if copies:  # e.g. 2024's two hub datasets side by side, as `evals prefetch` lays them out
            return _hub_year(
                self.year, lambda dataset: load_rows(str(copies[dataset]), SPLIT, main_split=SPLIT)
            )
        return _clean_rows(load_rows(data, SPLIT, main_split=SPLIT))

    # --- prompts --------------------------------------------------------------------------------

    def prompt(self, sample: Sample) -> str:
        """The single user message."""
        return PROMPT.format(problem=sample.inputs["problem"])

    def requests(self, sample: Sample, sampling: Sampling, repeats: int) -> list[Request]:
        message = Message.user(self.prompt(sample))
        return repeat_requests(f"aime/{self.variant}", sample.id, sampling, repeats, messages=[message])

    def followup(self, sample: Sample, request: Request, completion: Completion) -> Request | None:
        """The last-chance turn for a final answer without a box (only with `last_chance`)."""
        if not self.last_chance or not request.messages or not needs_last_chance(completion):
            return None
        messages = (
            *request.messages,
            Message.assistant(completion.text),
            Message.user(LAST_CHANCE_PROMPT),
        )
        return Request(
            key=f"{request.key}/last-chance",
            sample_id=request.sample_id,
            repeat=request.repeat,
            sampling=request.sampling,
            messages=messages,
        )

    # --- scoring --------------------------------------------------------------------------------

    def score(self, sample: Sample, completion: Completion, repeat: int) -> Score:
        """Score the final answer."""
        return self._judge(sample, completion, repeat, ())

    def score_with_followup(
        self, sample: Sample, completion: Completion, repeat: int, followup: Completion | None
    ) -> Score:
        """Score the final answer; a follow-up turn's answer replaces one that had no box."""
        if followup is not None and needs_last_chance(completion):
            return self._judge(sample, followup, repeat, ("last_chance",))
        return self._judge(sample, completion, repeat, ())

    def _judge(self, sample: Sample, completion: Completion, repeat: int, flags: tuple[str, ...]) -> Score:
        failure = failure_outcome(completion)
        if failure is not None:
            return Score(sample.id, repeat, failure, 0.0, flags=flags)
        fallback = not self.strict and completion.finish_reason != "length"
        answer = read_answer(completion.text, fallback=fallback)
        if answer is None:
            return Score(sample.id, repeat, no_answer_outcome(completion), 0.0, flags=flags)
        if answer.source == "last_integer":
            flags = (*flags, "last_integer_fallback")
        correct = answer.value == sample.target
        details = {} if correct else {"reason": _why_wrong(answer)}
        outcome = Outcome.CORRECT if correct else Outcome.WRONG
        return Score(
            sample.id,
            repeat,
            outcome,
            float(correct),
            extracted=answer.extracted,
            details=details,
            flags=flags,
        )

    def describe(self) -> dict[str, Any]:
        datasets = HUB_DATASETS[self.year]
        hub = {
            "dataset": datasets[0] if len(datasets) == 1 else list(datasets),
            "revision": HUB_REVISIONS[self.year] or UNPINNED,
        }
        data = data_description(self.source, hub)
        return {
            "task": self.name,
            "version": self.version,
            "variant": self.variant,
            "year": self.year,
            "prompt": "matharena",
            "strict": self.strict,
            "last_chance": self.last_chance,
            "data": data,
            "data_fingerprint": self.data_fingerprint,
        }


def needs_last_chance(completion: Completion) -> bool:
    """True when a completion that did not fail has no boxed answer in its final answer."""
    if failure_outcome(completion) is not None:
        return False
    return last_boxed(unicodedata.normalize("NFKC", completion.text)) is None


def _why_wrong(answer: Answer) -> str:
    if answer.value is None:
        return "not an integer"
    low, high = ANSWER_RANGE
    return f"outside {low}-{high}" if not low <= answer.value <= high else "different integer"


# --- MathArena folders ----------------------------------------------------------------------------

_COMPETITION_DIR = re.compile(r"aime_(\d{4})_(I|II)")


def matharena_folders(path: Path, year: str) -> list[Path]:
    """The MathArena competition folders to read for `year`: `path` itself if it is one, else its
    `aime_<year>_I` and `aime_<year>_II`; [] when `path` is not in MathArena's layout."""
    if not path.is_dir():
        return []
    if (path / "answers.csv").is_file():
        match = _COMPETITION_DIR.fullmatch(path.name)
        if match and match.group(1) != year:
            raise DataError(
                f"{path} holds AIME {match.group(1)}, not {year}; pass variant '{match.group(1)}'"
            )
        return [path]
    found = sorted(p.name for p in path.iterdir() if p.is_dir() and (p / "answers.csv").is_file())
    if not found:
        return []
    wanted = [path / f"aime_{year}_{c}" for c in COMPETITIONS]
    missing = [p.name for p in wanted if not (p / "answers.csv").is_file()]
    if missing:
        raise DataError(
            f"MathArena folder {path} lacks {', '.join(missing)} for AIME {year} (found: {', '.join(found)}); "
            "pass one competition folder itself to load only that one"
        )
    return wanted


def read_matharena_folder(folder: Path) -> list[dict[str, Any]]:
    """Rows of one competition folder: `answers.csv` (`id,answer`) and `problems/<id>.tex`."""
    match = _COMPETITION_DIR.fullmatch(folder.name)
    prefix = f"{match.group(1)}_{match.group(2)}" if match else folder.name
    competition = match.group(2) if match else None
    rows = []
    for entry in read_csv(folder / "answers.csv", columns=("id", "answer")):
        number = _as_integer(entry["id"], f"id in {folder / 'answers.csv'}")
        problem_file = folder / "problems" / f"{number}.tex"
        if not problem_file.is_file():
            raise DataError(
                f"no problem text {problem_file} for id {number} (image-only problems are not supported)"
            )
        problem = problem_file.read_text(encoding="utf-8")  # as MathArena reads it: not stripped
        answer = _as_answer(entry["answer"], f"answer of {prefix} problem {number}")
        rows.append(
            {"id": f"{prefix}_{number}", "problem": problem, "answer": answer, "category": competition}
        )
    _check_count(rows, PROBLEMS_PER_COMPETITION, folder)
    return sorted(rows, key=lambda row: int(row["id"].rsplit("_", 1)[1]))


# --- row handling ---------------------------------------------------------------------------------


def _clean_row(row: dict[str, Any], number: int) -> dict[str, Any]:
    """A plain row from a hub or local row: `problem_idx`/`id` (else its position), `problem` (or a
    QwQ `prompt` without its instruction) and an integer `answer`."""
    raw_id = plain(row.get("problem_idx", row.get("id")))
    problem = row.get("problem")
    if problem is None and isinstance(row.get("prompt"), str):
        problem = row["prompt"].removesuffix(QWQ_SUFFIX)
    if not isinstance(problem, str) or not problem.strip():
        raise DataError(f"AIME row {raw_id or number}: no problem text (fields 'problem' or 'prompt')")
    if "answer" not in row:
        raise DataError(f"AIME row {raw_id or number}: no 'answer' field")
    row_id = str(number if raw_id is None or raw_id == "" else _as_id(raw_id))
    return {
        "id": row_id,
        "problem": problem,
        "answer": _as_answer(row["answer"], f"answer of AIME row {row_id}"),
        "category": None,
    }


def _sample(row: dict[str, Any]) -> Sample:
    return Sample(
        id=row["id"], inputs={"problem": row["problem"]}, target=row["answer"], category=row["category"]
    )


def _clean_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_clean_row(row, number) for number, row in enumerate(rows, 1)]


def hub_copies(path: Path, year: str) -> dict[str, Path]:
    """Local copies of a year published as several hub datasets: the folders in `path` named as the
    datasets (`aime_2024_I/`, `aime_2024_II/`), by dataset; {} when the year is one dataset or a
    copy is missing."""
    datasets = HUB_DATASETS[year]
    if len(datasets) < 2 or not path.is_dir():
        return {}
    copies = {dataset: path / dataset.split("/")[-1] for dataset in datasets}
    return copies if all(folder.is_dir() for folder in copies.values()) else {}


def _hub_year(year: str, read: Callable[[str], list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """The year's 30 problems from the hub (or `read(dataset)`, local copies of the hub datasets); a
    year published as two datasets (AIME I and II, 15 problems each, `problem_idx` 1-15) gets ids
    1-30 in competition order, as the combined sets."""
    datasets = HUB_DATASETS[year]
    revision = HUB_REVISIONS[year] or "main"
    fetch = read or (lambda dataset: hub_rows(dataset, SPLIT, revision))
    if len(datasets) == 1:
        rows = _clean_rows(fetch(datasets[0]))
        _check_count(rows, N_PROBLEMS, datasets[0])
        return rows
    combined = []
    for offset, dataset in enumerate(datasets):
        rows = _clean_rows(fetch(dataset))
        _check_count(rows, PROBLEMS_PER_COMPETITION, dataset)
        numbers = sorted(_as_integer(row["id"], f"problem_idx in {dataset}") for row in rows)
        if numbers != list(range(1, PROBLEMS_PER_COMPETITION + 1)):
            raise DataError(f"{dataset} has problem_idx {numbers}; expected 1-{PROBLEMS_PER_COMPETITION}")
        for row in sorted(rows, key=lambda r: int(r["id"])):
            number = int(row["id"]) + offset * PROBLEMS_PER_COMPETITION
            combined.append({**row, "id": str(number)})
    return combined


def _check_count(rows: list[dict[str, Any]], expected: int, where: str | Path) -> None:
    if len(rows) != expected:
        raise DataError(f"{where} has {len(rows)} AIME problems; expected {expected}")


def _as_id(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _as_integer(value: Any, what: str) -> int:
    value = plain(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise DataError(f"{what} is not an integer: {value!r}")
    return value


def _as_answer(value: Any, what: str) -> int:
    """An integer gold answer in 0-999 ("025" is 25)."""
    answer = _as_integer(value, what)
    low, high = ANSWER_RANGE
    if not low <= answer <= high:
        raise DataError(f"{what} is {answer}, outside the AIME range {low}-{high}")
    return answer
