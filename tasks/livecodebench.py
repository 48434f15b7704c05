"""LiveCodeBench code generation: competitive-programming problems (AtCoder, LeetCode, Codeforces)
solved by a Python program that must pass every hidden test. pass@1 = the mean over problems of
passed/samples (the orchestrator's avg@k); unbiased pass@k from the same scores (evals/stats.py).

Variants: version tags of HF `livecodebench/code_generation_lite`
(docs/protocols/livecodebench.md § Data), every form listed with its meaning in `VARIANT_MEANINGS`
- `v6` (default): the 175 problems added in release v6 (`test6.jsonl`, contest dates 2025-01 to
  2025-04), the model-card row: all of the card's LCB numbers are multiples of 1/175
  (docs/protocols/README.md § Sample-count arithmetic).
- `release_v6`: all 1055 problems of release v6.
- Any other tag of the hub's loader: `vN` (the shard added in release N), `vA_vB` (shards A to B),
  `release_vN` (shards 1 to N), `release_latest` (= `release_v6`); N from 1 to 6.
- `start_date` / `end_date` (YYYY-MM-DD, inclusive, on `contest_date`, as LCB's `--start_date` /
  `--end_date`) narrow any variant to a contest window, e.g. the Feb-Apr 2025 window of
  Qwen-style "v6" reports: `release_v6` with 2025-02-01 .. 2025-05-01 (131 problems).

Protocol (docs/protocols/livecodebench.md § Prompt, § Answer extraction, § Scoring)
- Prompt: the official chat prompt for chat models (`LMStyle.OpenAIChat`): `SYSTEM_PROMPT` as the
  system turn, `USER_PROMPT` with the "### Format:" line for starter code (LeetCode) or for stdin
  programs. Thinking on, sampling 1.0/0.95/64 (the model card's), 32K tokens.
- Extraction (`extract_code`): on the final answer only (`Completion.text`; code blocks in the
  thought block are ignored): the lines between the last two lines containing ``` ; fewer than two
  such lines is UNPARSED (TRUNCATED when the token budget ran out).
- Grading (tasks/lcb_grading.py): public then private tests in one sandboxed process per program,
  6 s per test, stop at the first failure; CORRECT iff every test passes. `Score.details` holds the
  per-test verdicts and the first failure; the first failure's verdict is also a flag (so reports
  count time limits, runtime errors, ...). `Score.extracted` is the sha256 of the program.
- `score_many` grades many programs in parallel (tasks/sandbox.py `SandboxPool`); `score` grades one.

Sources
- Data: HF `livecodebench/code_generation_lite` (split `test`), JSONL files per shard read with
  `huggingface_hub` because `datasets>=4` refuses the repo's loading script
  (docs/protocols/livecodebench.md § Data, § Pitfalls). The revision pinned in `HUB_REVISION` is
  the one pinned by several third-party harnesses (e.g. with the files' sha256 recorded); we could
  not check it against the hub. The per-shard row counts (400/111/101/101/167/175, from the LCB
  README's release sizes) are checked on hub loads.
- Local copies (`--data`): a folder with the hub's `test*.jsonl` files (the variant's are read;
  an HF cache snapshot folder works), a single .jsonl/.json/.parquet file, or "builtin".
- Private tests: JSON, or base64 + zlib + pickle as on the hub; the pickle is read by an unpickler
  that refuses every global (the payload is a plain string), never by `pickle.loads`.
- Prompt, extraction, grading: LiveCodeBench/LiveCodeBench @ 28fef95 `lcb_runner/prompts/
  code_generation.py`, `lcb_runner/utils/extraction_utils.py`, `lcb_runner/evaluation/`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import pickle
import pickletools
import re
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from evals.schema import Completion, Message, Outcome, Request, Sample, Sampling, Score
from tasks.common import failure_outcome, no_answer_outcome, repeat_requests
from tasks.data import (
    DataError,
    builtin_path,
    check_unique_ids,
    data_description,
    load_rows,
    plain,
    read_file,
    require_hub,
    rows_fingerprint,
)
from tasks.lcb_grading import DEFAULT_TIMEOUT, MEMORY_BYTES, Case, Grade, Problem, failed_grade, grade

VERSION = "1"  # bump whenever the prompt, the extraction or the grading changes

# --- prompts ----------------------------------------------------------------------------------

# lcb_runner/prompts/code_generation.py: PromptConstants.SYSTEM_MESSAGE_GENERIC, the two
# FORMATTING_* constants and get_generic_question_template_answer (blank lines and the trailing
# "\n\n" included).
SYSTEM_PROMPT = (
    "You are an expert Python programmer. You will be given a question (problem specification) "
    "and will generate a correct Python program that matches the specification and passes all tests."
)
FORMAT_WITH_STARTER_CODE = (
    "You will use the following starter code to write the solution to the problem and enclose your "
    "code within delimiters."
)
FORMAT_WITHOUT_STARTER_CODE = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly "
    "test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when "
    "the python program runs, it reads the inputs, runs the algorithm and writes output to STDOUT."
)
STDIN_PLACEHOLDER = "# YOUR CODE HERE"
USER_PROMPT = (
    "### Question:\n{question}\n\n"
    "### Format: {format}\n"
    "```python\n{code}\n```\n\n"
    "### Answer: (use the provided format with backticks)\n\n"
)
PROMPT_NAME = "lcb-generic-chat"

# --- data -------------------------------------------------------------------------------------

HUB_DATASET = "livecodebench/code_generation_lite"
HUB_REVISION = "0fe84c3912ea0c4d4a78037083943e8f0c4dd505"  # third-party pins; see the docstring
SPLIT = "test"
LATEST_RELEASE = 6
SHARD_FILES = {n: "test.jsonl" if n == 1 else f"test{n}.jsonl" for n in range(1, LATEST_RELEASE + 1)}
SHARD_ROWS = {1: 400, 2: 111, 3: 101, 4: 101, 5: 167, 6: 175}
DEFAULT_VARIANT = "v6"
TAG_FORMS = "vN, vA_vB (A < B), release_vN, release_latest, with N, A, B from 1 to 6"
# Every form `shards_for` accepts (N, A, B: release numbers 1 to LATEST_RELEASE).
VARIANT_MEANINGS = {
    "v6": "dataset version: the 175 problems added in release v6 (contests 2025-01 to 2025-04), "
    "the model-card row",
    "release_v6": "dataset version: all 1,055 problems of release v6 (the problems of releases 1-6)",
    "release_latest": "dataset version: the same as release_v6",
    "vN": "dataset version: the problems added in release N (N = 1-6)",
    "vA_vB": "dataset version: the problems added in releases A to B (1 <= A < B <= 6)",
    "release_vN": "dataset version: all problems of release N (those added in releases 1 to N)",
}
DATE_FORMAT = "%Y-%m-%d"
MAX_PRIVATE_BYTES = 2 * 1024**3  # decompressed private tests of one problem

FINGERPRINT_FIELDS = (
    "question_id", "question_content", "starter_code", "platform", "contest_date", "difficulty",
    "func_name", "public_test_cases", "private_sha256",
)  # fmt: skip

DEFAULT_SAMPLING = Sampling(temperature=1.0, top_p=0.95, top_k=64, max_tokens=32768, thinking=True)

_SHARD_FILE = re.compile(r"test\d*\.jsonl")


def shards_for(tag: str) -> tuple[int, ...]:
    """The shard numbers of a version tag (the hub loader's ALLOWED_FILES); ValueError if unknown."""
    found = None
    if tag == "release_latest":
        found = (1, LATEST_RELEASE)
    elif match := re.fullmatch(r"release_v(\d+)", tag):
        found = (1, int(match.group(1)))
    elif match := re.fullmatch(r"v(\d+)", tag):
        found = (int(match.group(1)), int(match.group(1)))
    elif (match := re.fullmatch(r"v(\d+)_v(\d+)", tag)) and int(match.group(1)) < int(match.group(2)):
        found = (int(match.group(1)), int(match.group(2)))
    if found is None or not 1 <= found[0] <= found[1] <= LATEST_RELEASE:
        raise ValueError(f"unknown livecodebench variant '{tag}'; use one of the forms {TAG_FORMS}")
    return tuple(range(found[0], found[1] + 1))


# --- extraction ---------------------------------------------------------------------------------


def extract_code(text: str) -> str | None:
    """The lines between the last two lines containing ``` (LCB's extract_code for chat models);
    None when there are fewer than two such lines."""
    lines = text.split("\n")
    fences = [index for index, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return None
    return "\n".join(lines[fences[-2] + 1 : fences[-1]])


# --- private tests --------------------------------------------------------------------------------


class _PlainDataUnpickler(pickle.Unpickler):
    """Reads pickles of plain data only: every global (class, function) is refused, and without
    one no pickle can call anything."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused global {module}.{name}: private tests are plain data")


def decode_private_tests(value: Any, where: str = "row") -> list[dict[str, Any]]:
    """Private test cases from JSON, or from base64(zlib(pickle(JSON string))) as on the hub."""
    if isinstance(value, list):
        return _test_list(value, where)
    if not isinstance(value, str):
        raise DataError(f"{where}: private_test_cases is a {type(value).__name__}, not a string")
    try:
        return _test_list(json.loads(value), where)
    except DataError:
        raise
    except ValueError:
        pass  # not JSON: the compressed form
    try:
        inflater = zlib.decompressobj()
        blob = inflater.decompress(base64.b64decode(value.encode("ascii"), validate=True), MAX_PRIVATE_BYTES)
        if inflater.unconsumed_tail:
            raise DataError(f"{where}: private tests exceed {MAX_PRIVATE_BYTES} bytes decompressed")
        _check_opcodes(blob)
        payload = _PlainDataUnpickler(io.BytesIO(blob)).load()
        return _test_list(json.loads(payload) if isinstance(payload, str | bytes) else payload, where)
    except DataError:
        raise
    except (binascii.Error, zlib.error, pickle.UnpicklingError, EOFError, ValueError, TypeError,
            AttributeError, LookupError, OverflowError, MemoryError, RecursionError) as exc:  # fmt: skip
        # a damaged pickle fails in many ways (APPEND onto a dict, a frame or length too large, ...)
        reason = " ".join(str(exc).split()) or "damaged data"  # one line (some errors span two)
        raise DataError(
            f"{where}: cannot decode private_test_cases ({type(exc).__name__}: {reason})"
        ) from exc


_MEMO_OPS = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


def _check_opcodes(blob: bytes) -> None:
    """Read the opcodes without running them, and refuse what would make the C unpickler allocate far
    beyond the pickle's size: a memo index larger than the opcodes so far (`LONG_BINPUT 2**32-1`
    asks for a memo of 32 GiB, a few bytes of data), a frame longer than the data, or an argument
    cut short (declared lengths are then checked against the bytes present)."""
    for count, (opcode, arg, _) in enumerate(pickletools.genops(blob), start=1):
        too_far = opcode.name in _MEMO_OPS and isinstance(arg, int) and arg > count
        if too_far or (opcode.name == "FRAME" and isinstance(arg, int) and arg > len(blob)):
            raise pickle.UnpicklingError(f"{opcode.name} {arg} out of range for {len(blob)} bytes of pickle")


def _test_list(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise DataError(f"{where}: test cases are not a list of {{input, output, testtype}} objects")
    return value


def _case(test: dict[str, Any], where: str) -> Case:
    if not isinstance(test.get("input"), str) or not isinstance(test.get("output"), str):
        raise DataError(f"{where}: a test case lacks a string 'input' or 'output'")
    return Case(test["input"], test["output"])


# --- task ---------------------------------------------------------------------------------------


class LiveCodeBench:
    """LiveCodeBench code generation with the official chat prompt, extraction and test semantics."""

    name = "livecodebench"
    version = VERSION
    variants = VARIANT_MEANINGS
    public_text = True  # problems are public contest statements; tests are public on the hub
    headline = "mean"  # pass@1: the mean over problems of passed / samples
    default_sampling = DEFAULT_SAMPLING

    def __init__(
        self,
        variant: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        start_date: str | None = None,
        end_date: str | None = None,
        workers: int | None = None,
    ) -> None:
        self.variant = variant or DEFAULT_VARIANT
        self.shards = shards_for(self.variant)
        if not timeout > 0:
            raise ValueError(f"livecodebench timeout must be positive seconds, got {timeout}")
        self.timeout = float(timeout)
        self.start_date, self.end_date = start_date, end_date
        self.start, self.end = _parse_date(start_date, "start_date"), _parse_date(end_date, "end_date")
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"livecodebench start_date {start_date} is after end_date {end_date}")
        self.workers = workers
        self.memory_bytes = MEMORY_BYTES
        self.source: str | None = None
        self.files: dict[str, int] = {}  # name of each file read -> its rows
        self.data_fingerprint: str | None = None

    # --- data -----------------------------------------------------------------------------------

    def load(self, data: str | None = None, *, limit: int | None = None) -> list[Sample]:
        """The variant's problems (hub, local files or "builtin") within the date window; the
        first `limit` of them when given."""
        self.files = {}
        rows = [_clean_row(row) for row in self._read(data)]
        check_unique_ids((r["question_id"] for r in rows), "livecodebench rows")
        rows = self.select(rows)[:limit]
        self.source = "hub" if data is None else data
        self.data_fingerprint = rows_fingerprint(rows, FINGERPRINT_FIELDS)
        return [_sample(row) for row in rows]

    def select(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows whose `contest_date` lies in [start_date, end_date] (LCB's compute_scores rule)."""
        return [row for row in rows if self.in_window(row["contest_date"])]

    def in_window(self, contest_date: str) -> bool:
        moment = _contest_datetime(contest_date)
        return (self.start is None or self.start <= moment) and (self.end is None or moment <= self.end)

    def _read(self, data: str | None) -> list[dict[str, Any]]:
        if data is None:
            return self._hub_rows()
        if data == "builtin":
            return self._file_rows(builtin_path(self.name))
        path = Path(data)
        if path.is_dir() and any(_SHARD_FILE.fullmatch(p.name) for p in path.iterdir()):
            return self._shard_folder_rows(path)
        rows = load_rows(data, SPLIT, main_split=SPLIT)
        self.files = {path.name: len(rows)}
        return rows

    def _file_rows(self, path: Path) -> list[dict[str, Any]]:
        rows = read_file(path)
        self.files[path.name] = len(rows)
        return rows

    def _shard_folder_rows(self, folder: Path) -> list[dict[str, Any]]:
        wanted = [SHARD_FILES[shard] for shard in self.shards]
        missing = [name for name in wanted if not (folder / name).is_file()]
        if missing:
            found = ", ".join(sorted(p.name for p in folder.iterdir() if _SHARD_FILE.fullmatch(p.name)))
            raise DataError(
                f"{folder} lacks {', '.join(missing)} for livecodebench variant '{self.variant}' "
                f"(found: {found}); pass the folder holding the hub's test*.jsonl files"
            )
        return [row for name in wanted for row in self._file_rows(folder / name)]

    def _hub_rows(self) -> list[dict[str, Any]]:
        rows = []
        for shard in self.shards:
            shard_rows = self._file_rows(_download(SHARD_FILES[shard]))
            if len(shard_rows) != SHARD_ROWS[shard]:
                raise DataError(
                    f"{HUB_DATASET}/{SHARD_FILES[shard]}@{HUB_REVISION[:12]} has {len(shard_rows)} rows, "
                    f"expected {SHARD_ROWS[shard]}; clear the cached file or pass local files with --data"
                )
            rows.extend(shard_rows)
        return rows

    # --- prompts --------------------------------------------------------------------------------

    def prompt(self, sample: Sample) -> str:
        """The user turn (the system turn is `SYSTEM_PROMPT`)."""
        starter = sample.inputs["starter_code"]
        return USER_PROMPT.format(
            question=sample.inputs["question_content"],
            format=FORMAT_WITH_STARTER_CODE if starter else FORMAT_WITHOUT_STARTER_CODE,
            code=starter or STDIN_PLACEHOLDER,
        )

    def requests(self, sample: Sample, sampling: Sampling, repeats: int) -> list[Request]:
        messages = [Message.system(SYSTEM_PROMPT), Message.user(self.prompt(sample))]
        prefix = f"{self.name}/{self.variant}"
        return repeat_requests(prefix, sample.id, sampling, repeats, messages=messages)

    # --- scoring --------------------------------------------------------------------------------

    def problem(self, sample: Sample) -> Problem:
        """The tests of a sample (public, then private decoded now) and its method name."""
        private = decode_private_tests(sample.inputs["private_tests"], f"problem {sample.id}")
        tests = [*sample.inputs["public_tests"], *private]
        cases = tuple(_case(test, f"problem {sample.id}") for test in tests)
        return Problem(cases, sample.inputs["func_name"])

    def score(self, sample: Sample, completion: Completion, repeat: int) -> Score:
        return self.score_many([(sample, completion, repeat)])[0]

    def score_many(self, items: Sequence[tuple[Sample, Completion, int]]) -> list[Score]:
        """Scores in the order of `items`; the programs are graded in parallel in the sandbox."""
        scores: list[Score | None] = [None] * len(items)
        jobs: list[tuple[int, Sample, str]] = []
        for index, (sample, completion, repeat) in enumerate(items):
            early, code = _without_grading(sample, completion, repeat)
            if early is not None:
                scores[index] = early
            else:
                jobs.append((index, sample, code))
        jobs.sort(key=lambda job: job[1].id)  # a problem's programs together: its tests decode once
        grades = self._grade_all([(sample, code) for _, sample, code in jobs])
        for (index, sample, code), result in zip(jobs, grades, strict=True):
            scores[index] = _score(sample, items[index][2], code, result)
        return [score for score in scores if score is not None]

    def _grade_all(self, jobs: Sequence[tuple[Sample, str]]) -> list[Grade]:
        if not jobs:
            return []
        from tasks.sandbox import SandboxPool

        problems = _Problems(self.problem, Counter(sample.id for sample, _ in jobs))

        def run(job: tuple[Sample, str]) -> Grade:
            sample, code = job
            try:
                problem = problems.acquire(sample)
            except DataError as exc:
                return failed_grade(Problem(()), str(exc))
            try:
                return grade(problem, code, timeout=self.timeout, memory_bytes=self.memory_bytes)
            finally:
                problems.release(sample)

        with SandboxPool(self.workers) as pool:
            return list(pool.map(run, jobs))

    def describe(self) -> dict[str, Any]:
        data = data_description(
            self.source, {"dataset": HUB_DATASET, "split": SPLIT, "revision": HUB_REVISION}
        )
        data["files"] = self.files
        prompt = SYSTEM_PROMPT + USER_PROMPT + FORMAT_WITH_STARTER_CODE + FORMAT_WITHOUT_STARTER_CODE
        return {
            "task": self.name,
            "version": self.version,
            "variant": self.variant,
            "shards": list(self.shards),
            "prompt": {"name": PROMPT_NAME, "sha256": hashlib.sha256(prompt.encode()).hexdigest()},
            "data": data,
            "date_window": {"start": self.start_date, "end": self.end_date},
            "timeout_per_test_s": self.timeout,
            "memory_bytes": self.memory_bytes,
            "data_fingerprint": self.data_fingerprint,
        }


# --- scoring helpers ----------------------------------------------------------------------------


def _without_grading(sample: Sample, completion: Completion, repeat: int) -> tuple[Score | None, str]:
    """A Score when the completion cannot be graded (failed generation, no code), else its code."""
    failure = failure_outcome(completion)
    if failure is not None:
        return Score(sample.id, repeat, failure, 0.0), ""
    code = extract_code(completion.text)
    if code is None:
        return Score(sample.id, repeat, no_answer_outcome(completion), 0.0), ""
    return None, code


def _score(sample: Sample, repeat: int, code: str, result: Grade) -> Score:
    digest = hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()
    if result.error is not None:
        details: dict[str, Any] = {"error": result.error}
        return Score(sample.id, repeat, Outcome.ERROR, 0.0, digest, details, ("grading_error",))
    details = {
        "verdicts": list(result.verdicts),
        "first_failure": result.first_failure,
        "tests": len(result.verdicts),
        "seconds": round(result.seconds, 3),
    }
    if result.passed:
        return Score(sample.id, repeat, Outcome.CORRECT, 1.0, digest, details)
    # Why it failed (details["first_failure"]["verdict"]) is part of the wrong outcome, not a flag.
    return Score(sample.id, repeat, Outcome.WRONG, 0.0, digest, details)


class _Problems:
    """Decoded tests shared by the programs of one problem while they are graded: each problem is
    decoded once and dropped when its last program is done, so few are in memory at a time."""

    def __init__(self, build: Callable[[Sample], Problem], jobs_per_problem: Counter[str]) -> None:
        self._build = build
        self._left = jobs_per_problem
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def acquire(self, sample: Sample) -> Problem:
        with self._lock:
            entry = self._entries.setdefault(sample.id, _Entry())
        return entry.get(lambda: self._build(sample))

    def release(self, sample: Sample) -> None:
        with self._lock:
            self._left[sample.id] -= 1
            if self._left[sample.id] <= 0:
                self._entries.pop(sample.id, None)


class _Entry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.problem: Problem | None = None
        self.error: DataError | None = None

    def get(self, build: Callable[[], Problem]) -> Problem:
        with self.lock:
            if self.problem is None and self.error is None:
                try:
                    self.problem = build()
                except DataError as exc:
                    self.error = exc
            if self.error is not None:
                raise self.error
            assert self.problem is not None
            return self.problem


# --- rows -----------------------------------------------------------------------------------------

_REQUIRED = ("question_id", "question_content", "contest_date", "public_test_cases", "private_test_cases")


def _download(filename: str) -> Path:
    try:
        require_hub()
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(HUB_DATASET, filename, repo_type="dataset", revision=HUB_REVISION))
    except Exception as exc:  # offline, missing revision, no huggingface_hub...: one actionable line
        reason = " ".join(str(exc).split())[:200]
        raise DataError(
            f"cannot download {HUB_DATASET}/{filename}@{HUB_REVISION[:12]} from the Hugging Face hub "
            f"({type(exc).__name__}: {reason}); without hub access pass a folder with the hub's "
            "test*.jsonl files (or one file) with --data PATH"
        ) from exc


def _clean_row(row: dict[str, Any]) -> dict[str, Any]:
    """A plain row: the hub's fields, public tests and metadata parsed, private tests kept raw."""
    where = f"livecodebench row {row.get('question_id', '?')}"
    missing = [name for name in _REQUIRED if row.get(name) is None]
    if missing:
        raise DataError(f"{where} lacks {', '.join(missing)} (needed: {', '.join(_REQUIRED)})")
    metadata = _json_value(row.get("metadata") or "{}", "metadata", where)
    private = plain(row["private_test_cases"])
    private_blob = private if isinstance(private, str) else json.dumps(private, sort_keys=True)
    contest_date = row["contest_date"]
    contest_date = contest_date.isoformat() if hasattr(contest_date, "isoformat") else str(contest_date)
    _contest_datetime(contest_date, where)
    return {
        "question_id": str(row["question_id"]),
        "question_title": str(row.get("question_title") or ""),
        "question_content": str(row["question_content"]),
        "platform": str(row.get("platform") or ""),
        "contest_id": str(row.get("contest_id") or ""),
        "contest_date": contest_date,
        "starter_code": str(row.get("starter_code") or ""),
        "difficulty": str(row.get("difficulty") or ""),
        "func_name": metadata.get("func_name") if isinstance(metadata, dict) else None,
        "public_test_cases": _test_list(_json_value(row["public_test_cases"], "public tests", where), where),
        "private_test_cases": private,
        "private_sha256": hashlib.sha256(private_blob.encode("utf-8", "surrogatepass")).hexdigest(),
    }


def _json_value(value: Any, what: str, where: str) -> Any:
    value = plain(value)
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise DataError(f"{where}: {what} is not valid JSON ({exc})") from exc


def _sample(row: dict[str, Any]) -> Sample:
    return Sample(
        id=row["question_id"],
        inputs={
            "question_content": row["question_content"],
            "starter_code": row["starter_code"],
            "platform": row["platform"],
            "func_name": row["func_name"],
            "public_tests": row["public_test_cases"],
            "private_tests": row["private_test_cases"],  # decoded when graded (they can be large)
            "difficulty": row["difficulty"],
            "contest_date": row["contest_date"],
        },
        target=None,  # the tests are in `inputs`; run records stay small
        category=row["difficulty"] or None,
        metadata={"title": row["question_title"], "contest_id": row["contest_id"]},
    )


def _parse_date(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, DATE_FORMAT)
    except ValueError as exc:
        raise ValueError(f"livecodebench {name} must be YYYY-MM-DD, got '{value}'") from exc


def _contest_datetime(value: str, where: str = "row") -> datetime:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError as exc:
        raise DataError(f"{where}: contest_date '{value}' is not an ISO date") from exc
