"""LiveCodeBench task: variants, prompt, extraction, data loading (private tests decoded without
trusting pickle), grading in the sandbox (one program per verdict, the official comparison rules,
results a program cannot forge), and the published leaderboard numbers rebuilt from a real
submission file through the task's date window and the harness's aggregation."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zlib
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hub_address import reachable_hub
from realdata import SHARED

import evals.stats
from evals.schema import BatchScoringTask, Completion, Outcome, Sampling, Score, Task
from tasks import livecodebench
from tasks.data import DataError
from tasks.lcb_driver import encode_result
from tasks.lcb_grading import (
    MEMORY_LIMIT,
    NOT_RUN,
    PASSED,
    RUNTIME_ERROR,
    SYNTAX_ERROR,
    TIME_LIMIT,
    WRONG_ANSWER,
    Case,
    Problem,
    decode_result,
    functional_output_matches,
    grade,
    judge,
    stdin_output_matches,
)
from tasks.livecodebench import (
    FORMAT_WITH_STARTER_CODE,
    FORMAT_WITHOUT_STARTER_CODE,
    SYSTEM_PROMPT,
    LiveCodeBench,
    decode_private_tests,
    extract_code,
    shards_for,
)
from tasks.sandbox import Execution

LCB = SHARED / "realdata" / "livecodebench"
O1_MINI = LCB / "lcb_submissions_O1-Mini-2024-09-12_codegeneration_1_0.2_eval_all.json"
QWQ_PROMPTS = LCB / "qwq_livecodebench_v5_2408-2502_prompts.jsonl"

needs_o1 = pytest.mark.realdata(O1_MINI)
needs_qwq = pytest.mark.realdata(QWQ_PROMPTS, O1_MINI)
sandboxed = pytest.mark.slow  # each graded program is a sandboxed subprocess


# --- rows in the hub's schema, written here -----------------------------------------------------


def compress(tests: list[dict[str, str]]) -> str:
    """The hub's encoding of private tests: base64(zlib(pickle(JSON string)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


def lcb_row(
    qid: str,
    public: list[tuple[str, str]],
    private: list[tuple[str, str]],
    *,
    func_name: str | None = None,
    date: str = "2025-03-01T00:00:00",
    difficulty: str = "easy",
    starter: str = "",
) -> dict[str, Any]:
    kind = "functional" if func_name else "stdin"

    def tests(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
        return [{"input": i, "output": o, "testtype": kind} for i, o in pairs]

    return {
        "question_title": f"Problem {qid}",
        "question_content": f"Statement of {qid}.",
        "platform": "leetcode" if func_name else "atcoder",
        "question_id": qid,
        "contest_id": "test",
        "contest_date": date,
        "starter_code": starter,
        "difficulty": difficulty,
        "public_test_cases": json.dumps(tests(public)),
        "private_test_cases": compress(tests(private)),
        "metadata": json.dumps({"func_name": func_name} if func_name else {}),
    }


SUM = lcb_row("sum", [("3 5\n", "8\n")], [("10 20\n", "30\n"), ("-4 4\n", "0\n")])
HALF = lcb_row("half", [("1\n", "0.5\n")], [("3\n", "1.5\n")])
SORT = lcb_row(
    "sort",
    [("[3,1,2]", "[1,2,3]")],
    [("[5]", "[5]"), ("[2,2,1]", "[1,2,2]")],
    func_name="sortList",
    starter="class Solution:\n    def sortList(self, nums: List[int]) -> List[int]:\n        ",
)
PAIRS = lcb_row("pairs", [("[1,2,3,4]\n5", "2")], [("[1,1,1]\n2", "3")], func_name="countPairs")


def write_rows(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def answer(code: str, **fields: Any) -> Completion:
    return Completion(key="k", text=f"Here is my solution.\n```python\n{code}\n```\nDone.", **fields)


@pytest.fixture
def problems(tmp_path):
    task = LiveCodeBench(timeout=1.0)
    return task, {s.id: s for s in task.load(write_rows(tmp_path / "rows.jsonl", [SUM, HALF, SORT, PAIRS]))}


def run(task: LiveCodeBench, sample_programs: list[tuple[Any, str]]) -> list[Score]:
    return task.score_many([(sample, answer(code), 0) for sample, code in sample_programs])


# --- variants, construction -------------------------------------------------------------------------


def test_defaults_and_protocol():
    task = LiveCodeBench()
    assert isinstance(task, Task)
    assert (task.name, task.variant, task.shards, task.timeout) == ("livecodebench", "v6", (6,), 6.0)
    assert task.default_sampling == Sampling(
        temperature=1.0, top_p=0.95, top_k=64, max_tokens=32768, thinking=True
    )
    assert (LiveCodeBench.public_text, LiveCodeBench.headline) == (True, "mean")
    assert isinstance(task, BatchScoringTask)


def test_every_listed_variant_form_has_a_meaning_and_is_accepted():
    variants = LiveCodeBench.variants
    assert next(iter(variants)) == "v6" and all(m.startswith("dataset version: ") for m in variants.values())
    examples = {"vN": "v3", "vA_vB": "v2_v4", "release_vN": "release_v4"}
    for form in variants:
        assert LiveCodeBench(examples.get(form, form)).shards
    assert shards_for("release_latest") == shards_for("release_v6")


@pytest.mark.parametrize(
    ("tag", "files"),
    [
        ("v6", "test6"),
        ("v1", "test"),
        ("release_v6", "test test2 test3 test4 test5 test6"),
        ("release_v5", "test test2 test3 test4 test5"),
        ("release_latest", "test test2 test3 test4 test5 test6"),
        ("v5_v6", "test5 test6"),
        ("v1_v3", "test test2 test3"),
    ],
)
def test_version_tags_map_to_the_hub_files(tag, files):
    assert [livecodebench.SHARD_FILES[n] for n in shards_for(tag)] == [f"{f}.jsonl" for f in files.split()]


@pytest.mark.parametrize("tag", ["v7", "v0", "v6_v5", "v3_v3", "release_v7", "latest", "V6", "v6 "])
def test_unknown_tags_list_the_forms(tag):
    with pytest.raises(ValueError, match=r"vN, vA_vB \(A < B\), release_vN, release_latest"):
        LiveCodeBench(tag)


def test_bad_dates_and_timeouts_are_refused():
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        LiveCodeBench(start_date="2025/01/01")
    with pytest.raises(ValueError, match="after end_date"):
        LiveCodeBench(start_date="2025-03-01", end_date="2025-02-01")
    with pytest.raises(ValueError, match="positive"):
        LiveCodeBench(timeout=0)


# --- prompt ---------------------------------------------------------------------------------------


def test_prompts_are_the_official_chat_prompt(tmp_path):
    task = LiveCodeBench()
    by_id = {s.id: s for s in task.load(write_rows(tmp_path / "rows.jsonl", [SUM, SORT]))}
    stdin = task.requests(by_id["sum"], task.default_sampling, 1)[0]
    assert [m.role for m in stdin.messages] == ["system", "user"]
    assert stdin.messages[0].text == SYSTEM_PROMPT
    assert stdin.messages[1].text == (
        "### Question:\nStatement of sum.\n\n"
        "### Format: Read the inputs from stdin solve the problem and write the answer to stdout (do not "
        "directly test on the sample inputs). Enclose your code within delimiters as follows. Ensure that "
        "when the python program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.\n"
        "```python\n# YOUR CODE HERE\n```\n\n"
        "### Answer: (use the provided format with backticks)\n\n"
    )
    functional = task.prompt(by_id["sort"])
    assert functional == (
        "### Question:\nStatement of sort.\n\n"
        "### Format: You will use the following starter code to write the solution to the problem and "
        "enclose your code within delimiters.\n"
        "```python\nclass Solution:\n    def sortList(self, nums: List[int]) -> List[int]:\n        \n```\n\n"
        "### Answer: (use the provided format with backticks)\n\n"
    )
    assert SYSTEM_PROMPT.startswith("You are an expert Python programmer. You will be given a question")
    keys = [r.key for r in task.requests(by_id["sum"], task.default_sampling, 3)]
    assert keys == ["livecodebench/v6/sum/0", "livecodebench/v6/sum/1", "livecodebench/v6/sum/2"]


@needs_qwq
def test_the_format_sentences_match_qwens_published_lcb_prompts():
    """QwQ's 279 LCB prompts use LCB's DeepSeek-R1 layout, which shares the question text, both Format
    sentences and the fenced starter block with the chat prompt: rebuilding all of them from the
    O1-mini rows (same problems) with our constants checks those pieces character for character."""
    rows = {r["question_id"]: r for r in json.loads(O1_MINI.read_text())}
    intro = SYSTEM_PROMPT.removeprefix("You are an expert Python programmer. ")
    intro = intro[0].upper() + intro[1:]
    prompts = [json.loads(line) for line in QWQ_PROMPTS.read_text().splitlines()]
    with_starter = 0
    for entry in prompts:
        row = rows[entry["question_id"]]
        starter = row["starter_code"]
        with_starter += bool(starter)
        block = (
            f"{FORMAT_WITH_STARTER_CODE}\n```python\n{starter}\n```\n\n"
            if starter
            else f"{FORMAT_WITHOUT_STARTER_CODE}\n```python\n# YOUR CODE HERE\n```\n\n"
        )
        assert entry["prompt"] == f"{intro}\n\nQuestion: {row['question_content']}\n\n{block}"
    assert (len(prompts), with_starter) == (279, 104)


# --- extraction -------------------------------------------------------------------------------------


def test_extraction_takes_the_last_block():
    text = "First try:\n```python\nprint(1)\n```\nBetter:\n```python\nprint(2)\nprint(3)\n```\n"
    assert extract_code(text) == "print(2)\nprint(3)"
    assert extract_code("```\nx = 1\n```") == "x = 1"
    assert extract_code("inline ```print(1)``` only") is None  # one line holding both fences
    assert extract_code("no code at all") is None
    assert extract_code("```python\nprint(1)\n") is None  # unclosed


def test_code_in_the_thought_block_is_ignored():
    task = LiveCodeBench()
    completion = Completion(key="k", text="I think I have it.", reasoning="```python\nprint(8)\n```")
    sample = task.load("builtin")[0]
    result = task.score(sample, completion, 0)
    assert (result.outcome, result.extracted) == (Outcome.UNPARSED, None)
    cut = Completion(key="k", text="```python\nprint(", finish_reason="length")
    assert task.score(sample, cut, 0).outcome is Outcome.TRUNCATED
    assert task.score(sample, Completion(key="k", text="", thought_open=True), 0).outcome is Outcome.TRUNCATED
    assert task.score(sample, Completion(key="k", text="", error="boom"), 0).outcome is Outcome.ERROR


@needs_o1
def test_extraction_reproduces_the_published_code_of_880_submissions():
    rows = json.loads(O1_MINI.read_text())
    assert len(rows) == 880
    # LCB stores "" where it found no code; we return None (scored UNPARSED)
    extracted = [extract_code(r["output_list"][0]) for r in rows]
    assert [code or "" for code in extracted] == [r["code_list"][0] for r in rows]
    assert sum(code is None for code in extracted) == 1  # and 5 more with an empty block


# --- the leaderboard, from stored per-problem pass@1 ----------------------------------------------------


def leaderboard(rows: list[dict[str, Any]], task: LiveCodeBench) -> float:
    """LCB's leaderboard number: mean per-problem pass@1 (a fraction in the files) x 100."""
    scores = [
        Score(r["question_id"], 0, Outcome.CORRECT if r["pass@1"] == 1 else Outcome.WRONG, r["pass@1"])
        for r in task.select(rows)
    ]
    return round(100 * evals.stats.summarize(scores).value, 2)


@needs_o1
def test_leaderboard_numbers_are_reproduced_through_the_date_window():
    rows = json.loads(O1_MINI.read_text())
    assert {r["pass@1"] for r in rows} <= {0.0, 1.0}  # one sample per problem: a fraction, not percent
    assert leaderboard(rows, LiveCodeBench()) == 68.41
    window = LiveCodeBench(start_date="2024-08-01", end_date="2025-02-01")
    assert len(window.select(rows)) == 279
    assert leaderboard(rows, window) == 51.97
    assert leaderboard(rows, LiveCodeBench(start_date="2024-10-01")) == 49.40


def test_date_window_is_inclusive_like_lcbs_compute_scores():
    task = LiveCodeBench(start_date="2025-01-04", end_date="2025-02-01")
    assert task.in_window("2025-01-04T00:00:00") and task.in_window("2025-02-01T00:00:00")
    assert not task.in_window("2025-01-03T23:59:59") and not task.in_window("2025-02-01T00:00:01")


# --- private tests ------------------------------------------------------------------------------------


def test_private_tests_decode_from_json_and_from_the_compressed_form():
    tests = [{"input": "1\n", "output": "2\n", "testtype": "stdin"}]
    assert decode_private_tests(json.dumps(tests)) == tests
    assert decode_private_tests(compress(tests)) == tests
    assert decode_private_tests(tests) == tests


class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    blob = base64.b64encode(zlib.compress(pickle.dumps(Exploit(marker)))).decode()
    with pytest.raises(DataError, match="refused global"):
        decode_private_tests(blob, "problem evil")
    assert not marker.exists()
    # through the task: the problem is scored as a grading error, never executed
    row = {**SUM, "question_id": "evil", "private_test_cases": blob}
    task = LiveCodeBench()
    sample = task.load(write_rows(tmp_path / "rows.jsonl", [row]))[0]
    result = task.score(sample, answer("print(8)"), 0)
    assert result.outcome is Outcome.ERROR and "refused global" in result.details["error"]
    assert not marker.exists()


def test_undecodable_private_tests_are_data_errors():
    with pytest.raises(DataError, match="cannot decode"):
        decode_private_tests("not base64 at all !!!")
    with pytest.raises(DataError, match="not a list"):
        decode_private_tests(json.dumps({"input": "1"}))


# --- loading ----------------------------------------------------------------------------------------


def test_builtin_smoke_problems():
    task = LiveCodeBench()
    samples = task.load("builtin")
    assert len(samples) == 4
    kinds = sorted(bool(s.inputs["func_name"]) for s in samples)
    assert kinds == [False, False, True, True]
    for sample in samples:
        assert sample.target is None and sample.category == "easy"
        problem = task.problem(sample)
        assert len(problem.tests) == len(sample.inputs["public_tests"]) + 3
        assert problem.tests[0].input == sample.inputs["public_tests"][0]["input"]  # public first
        assert bool(sample.inputs["starter_code"]) == (problem.mode == "functional")
    assert task.describe()["data"]["source"] == "builtin"
    assert len(task.data_fingerprint or "") == 64


def test_a_folder_of_hub_files_reads_the_variants_files(tmp_path):
    write_rows(tmp_path / "test5.jsonl", [lcb_row("old", [("1\n", "1\n")], [], date="2024-12-01T00:00:00")])
    write_rows(tmp_path / "test6.jsonl", [SUM, HALF])
    assert [s.id for s in LiveCodeBench("v6").load(str(tmp_path))] == ["sum", "half"]
    task = LiveCodeBench("v5_v6")
    assert [s.id for s in task.load(str(tmp_path))] == ["old", "sum", "half"]
    assert list(task.describe()["data"]["files"].values()) == [1, 2]
    with pytest.raises(
        DataError, match=r"lacks test\.jsonl, test2\.jsonl.*found: test5\.jsonl, test6\.jsonl"
    ):
        LiveCodeBench("release_v6").load(str(tmp_path))


def test_a_parquet_copy_loads_like_the_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{**SUM, "contest_date": datetime(2025, 3, 1)}, {**SORT, "contest_date": datetime(2025, 3, 2)}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test-00000-of-00001.parquet")
    task = LiveCodeBench(end_date="2025-03-01")
    samples = task.load(str(tmp_path))
    assert [(s.id, s.inputs["contest_date"]) for s in samples] == [("sum", "2025-03-01T00:00:00")]
    assert task.problem(samples[0]).tests[1] == Case("10 20\n", "30\n")


def test_date_window_applies_on_load_and_changes_the_fingerprint(tmp_path):
    rows = [SUM, {**HALF, "contest_date": "2025-04-30T00:00:00"}]
    path = write_rows(tmp_path / "rows.jsonl", rows)
    everything = LiveCodeBench()
    assert len(everything.load(path)) == 2
    late = LiveCodeBench(start_date="2025-04-01")
    assert [s.id for s in late.load(path)] == ["half"]
    assert late.data_fingerprint != everything.data_fingerprint
    assert late.describe()["date_window"] == {"start": "2025-04-01", "end": None}
    # a limit applies after the window: the first problems of the window
    assert [s.id for s in LiveCodeBench(start_date="2025-04-01").load(path, limit=1)] == ["half"]
    first = LiveCodeBench()
    assert [s.id for s in first.load(path, limit=1)] == [SUM["question_id"]]


def test_bad_rows_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="livecodebench rows share ids"):
        LiveCodeBench().load(write_rows(tmp_path / "dup.jsonl", [SUM, SUM]))
    broken = {k: v for k, v in SUM.items() if k != "public_test_cases"}
    with pytest.raises(DataError, match="lacks public_test_cases"):
        LiveCodeBench().load(write_rows(tmp_path / "missing.jsonl", [broken]))
    with pytest.raises(DataError, match="not an ISO date"):
        LiveCodeBench().load(write_rows(tmp_path / "date.jsonl", [{**SUM, "contest_date": "March 1"}]))


def test_hub_failures_are_one_line_data_errors(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'\nto load this file")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with reachable_hub(monkeypatch), pytest.raises(DataError) as error:
        LiveCodeBench().load()
    message = str(error.value)
    assert "\n" not in message and "test6.jsonl" in message and "--data" in message


def test_hub_files_with_an_unexpected_row_count_are_refused(monkeypatch, tmp_path):
    import huggingface_hub

    path = write_rows(tmp_path / "test6.jsonl", [SUM])
    seen = {}

    def download(repo_id, filename, **kwargs):
        seen.update(kwargs, repo_id=repo_id, filename=filename)
        return path

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    with reachable_hub(monkeypatch), pytest.raises(DataError, match="has 1 rows, expected 175"):
        LiveCodeBench().load()
    assert seen == {
        "repo_id": "livecodebench/code_generation_lite",
        "filename": "test6.jsonl",
        "repo_type": "dataset",
        "revision": livecodebench.HUB_REVISION,
    }


# --- comparison rules (no sandbox) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected", "passes"),
    [
        ("0.50", "0.5", True),
        ("1e-1", "0.1", True),
        ("5E-1\n", "0.5", True),
        ("0.6", "0.5", False),
        ("  8  \n\n", "8\n", True),
        ("1 2 3\r\n4", "1 2 3\n4", True),
        ("1  2", "1 2", True),  # tokens as Decimals
        ("YES", "Yes", False),
        ("8\n9", "8", False),  # line count differs
        ("", "0", False),
        ("abc def", "abc  def", False),  # words are not numbers: exact line match only
        ("1e-1000", "0", False),
        ("NaN", "NaN", True),  # equal as text before any Decimal comparison
        ("sNaN 1", "sNaN 2", False),
    ],
)
def test_stdin_comparison_is_the_official_rule(output, expected, passes):
    assert stdin_output_matches(output, expected) is passes


def test_functional_results_keep_their_python_types():
    def same(value: Any, expected: str) -> bool:
        return functional_output_matches(json.dumps(encode_result(value)), expected)

    assert same((1, 2), "[1, 2]")  # a returned tuple counts as a list
    assert not same([(1, 2)], "[[1, 2]]")  # ... only at the top, as officially
    assert same(True, "true") and same(1, "true")  # Python's == (True == 1)
    assert same(2.0, "2") and not same(0.1 + 0.2, "0.3")
    assert not same({1: 2}, '{"1": 2}')  # int keys are not JSON's string keys
    assert not same({1, 2}, "[1, 2]") and not same(object(), "null") and not same(None, "0")
    assert same("abc", '"abc"') and same(None, "null")
    huge = "1" + "0" * 5000  # beyond int()'s default 4300 digits (the sandbox allows 50000, as LCB)
    assert functional_output_matches(huge, huge) and not functional_output_matches(huge, huge + "1")
    nested = {"a": [(1, frozenset({2})), {3}], 4: None}
    assert decode_result(json.loads(json.dumps(encode_result(nested)))) == nested


def execution(channel: list[dict[str, Any]], status: str = "ok", **fields: Any) -> Execution:
    blob = b"".join(json.dumps(m).encode() + b"\n" for m in channel)
    defaults = {"returncode": 0, "stdout": b"", "stderr": b"", "cpu_seconds": 0.1, "wall_seconds": 0.2}
    return Execution(status, channel=blob, **{**defaults, **fields})  # type: ignore[arg-type]


THREE = Problem((Case("1\n", "1\n"), Case("2\n", "2\n"), Case("3\n", "3\n")))


def test_judge_counts_the_first_report_and_stops_at_the_first_failure():
    forged = [
        {"test": 0, "output": "1"},
        {"test": 0, "output": "wrong"},  # a second report for the same test is ignored
        {"test": 1, "verdict": "passed"},  # not a report: no output
        {"test": 1, "output": "2"},
        {"test": 2, "output": "All tests passed"},
        {"event": "done"},
    ]
    result = judge(THREE, execution(forged))
    assert result.verdicts == (PASSED, PASSED, WRONG_ANSWER) and not result.passed
    assert result.first_failure == {
        "test": 2,
        "verdict": WRONG_ANSWER,
        "message": "line 1 differs: got 'All tests passed'",
    }


def test_judge_maps_a_kill_to_the_test_in_progress():
    started = [{"test": 0, "output": "1"}, {"test": 1, "event": "start"}]
    killed = judge(THREE, execution(started, "timeout", returncode=-9, detail="CPU limit 11 s"))
    assert killed.verdicts == (PASSED, TIME_LIMIT, NOT_RUN)
    assert judge(THREE, execution(started, "memory")).verdicts == (PASSED, MEMORY_LIMIT, NOT_RUN)
    assert judge(THREE, execution(started, "output_limit")).verdicts == (PASSED, RUNTIME_ERROR, NOT_RUN)
    silent = judge(THREE, execution(started, "ok"))  # e.g. os._exit(0) in the program
    assert silent.verdicts == (PASSED, RUNTIME_ERROR, NOT_RUN)
    broken = judge(
        THREE, execution([*started, {"event": "driver_error", "message": "OSError"}], "runtime_error")
    )
    assert broken.error is not None and "OSError" in broken.error and not broken.passed
    failed = judge(THREE, execution([], "sandbox_error", detail="no uid"))
    assert failed.error == "sandbox error: no uid" and failed.verdicts == (NOT_RUN,) * 3


def test_judge_skips_garbage_on_the_channel():
    blob = b'\xff\xfe not json\n{"test": 0, "output": "1"}\n[1, 2]\n{"test": 1, "error": "syntax"}\n{"tes'
    result = judge(THREE, Execution("ok", 0, b"", b"", blob, 0.0, 0.0))
    assert result.verdicts == (PASSED, SYNTAX_ERROR, NOT_RUN)


# --- grading in the sandbox ---------------------------------------------------------------------------


@sandboxed
def test_one_program_per_verdict(problems):
    task, samples = problems
    programs = {
        "passed": "a, b = map(int, input().split())\nprint(a + b)",
        "wrong": "a, b = map(int, input().split())\nprint(a - b)",
        "time": "while True:\n    pass",
        "sleeps": "import time\ntime.sleep(60)",  # caught by the per-test wall-clock backstop
        "runtime": "raise ValueError('bad input')",
        "syntax": "def solve(:\n    pass",
        "claims": "print('All tests passed')",
    }
    scores = dict(
        zip(programs, run(task, [(samples["sum"], code) for code in programs.values()]), strict=True)
    )
    assert scores["passed"].outcome is Outcome.CORRECT and scores["passed"].value == 1.0
    assert scores["passed"].details["verdicts"] == [PASSED, PASSED, PASSED]
    assert scores["passed"].details["first_failure"] is None and scores["passed"].flags == ()
    expected = {
        "wrong": WRONG_ANSWER,
        "time": TIME_LIMIT,
        "sleeps": TIME_LIMIT,
        "runtime": RUNTIME_ERROR,
        "syntax": SYNTAX_ERROR,
        "claims": WRONG_ANSWER,
    }
    for name, verdict in expected.items():
        score = scores[name]
        assert (score.outcome, score.value, score.flags) == (Outcome.WRONG, 0.0, ()), name
        assert score.details["first_failure"]["verdict"] == verdict, name
        assert score.details["verdicts"] == [verdict, NOT_RUN, NOT_RUN], name
        assert score.details["first_failure"]["test"] == 0
    assert "ValueError: bad input" in scores["runtime"].details["first_failure"]["message"]
    assert len(scores["passed"].extracted or "") == 64  # sha256 of the program


@sandboxed
def test_memory_limit(problems):
    task, samples = problems
    hog = "data = bytearray(600 * 2**20)\na, b = map(int, input().split())\nprint(a + b)"
    task.memory_bytes = 256 * 2**20
    assert run(task, [(samples["sum"], hog)])[0].details["verdicts"][0] == MEMORY_LIMIT
    task.memory_bytes = 2 * 2**30
    roomy = run(task, [(samples["sum"], hog)])[0]
    assert roomy.outcome is Outcome.CORRECT, roomy.details


@sandboxed
def test_grading_stops_at_the_first_failing_test(problems):
    task, samples = problems
    result = run(task, [(samples["sum"], "print(8)")])[0]  # right on the public test only
    assert result.details["verdicts"] == [PASSED, WRONG_ANSWER, NOT_RUN]
    assert result.details["first_failure"] == {
        "test": 1,
        "verdict": WRONG_ANSWER,
        "message": "line 1 differs: got '8'",
    }


@sandboxed
def test_decimal_tolerance_and_line_counts_in_the_sandbox(problems):
    task, samples = problems
    programs = [
        "n = int(input())\nprint(f'{n / 2:.2f}')",  # 0.50 for 0.5
        "n = int(input())\nprint(f'{n / 2:e}')",  # 5.000000e-01
        "n = int(input())\nprint(n / 2 + 0.1)",
        "n = int(input())\nprint(n / 2)\nprint(n)",
    ]
    outcomes = [s.outcome for s in run(task, [(samples["half"], code) for code in programs])]
    assert outcomes == [Outcome.CORRECT, Outcome.CORRECT, Outcome.WRONG, Outcome.WRONG]


@sandboxed
def test_functional_problems(problems):
    task, samples = problems
    programs = [
        "class Solution:\n    def sortList(self, nums: List[int]) -> List[int]:\n        return sorted(nums)",
        "class Solution:\n    def sortList(self, nums):\n        return tuple(sorted(nums))",  # tuple -> list
        "class Solution:\n    def sortList(self, nums):\n        print('All tests passed')",
        "class Solution:\n    def sortList(self, nums):\n        return [tuple(sorted(nums))]",
        "class Solution:\n    def sort_list(self, nums):\n        return sorted(nums)",  # wrong name
    ]
    scores = run(task, [(samples["sort"], code) for code in programs])
    assert [s.outcome for s in scores] == [Outcome.CORRECT, Outcome.CORRECT, *[Outcome.WRONG] * 3]
    assert [s.details["first_failure"]["verdict"] for s in scores[2:]] == [
        WRONG_ANSWER,
        WRONG_ANSWER,
        RUNTIME_ERROR,
    ]
    two_args = "class Solution:\n    def countPairs(self, nums, target):\n        return sum(a + b == target for i, a in enumerate(nums) for b in nums[i + 1:])"
    assert run(task, [(samples["pairs"], two_args)])[0].outcome is Outcome.CORRECT


@sandboxed
def test_programs_run_as_scripts(problems):
    """Forms the official function wrapper breaks (module globals, a guard that is not last,
    stdin through open(0) and sys.stdin.buffer, output from a thread) all pass."""
    task, samples = problems
    programs = [
        "total = 0\ndef add(x):\n    global total\n    total += x\nfor x in map(int, input().split()):\n    add(x)\nprint(total)",
        "import sys\ndef main():\n    print(sum(map(int, sys.stdin.buffer.read().split())))\nif __name__ == '__main__':\n    main()\nx = 1",
        "print(sum(map(int, open(0).read().split())))",
        "import sys, threading\nthreading.stack_size(2**26)\nsys.setrecursionlimit(10**6)\ndef main():\n    sys.stdout.write(str(sum(map(int, input().split()))) + '\\n')\nthreading.Thread(target=main).start()",
        "import sys\na, b = map(int, sys.stdin.readline().split())\nprint(a + b)\nexit(0)",
    ]
    assert [s.outcome for s in run(task, [(samples["sum"], code) for code in programs])] == [
        Outcome.CORRECT
    ] * 5


@sandboxed
def test_forged_channel_messages_cannot_pass(problems):
    task, samples = problems
    forger = (
        "import os, json\n"
        "for i in range(3):\n"
        "    os.write(3, (json.dumps({'test': i, 'output': 'All tests passed', 'verdict': 'passed'}) + '\\n').encode())\n"
        'os.write(3, b\'{"event": "done"}\\n\')\n'
        "os._exit(0)"
    )
    result = run(task, [(samples["sum"], forger)])[0]
    assert result.outcome is Outcome.WRONG and result.details["verdicts"][0] == WRONG_ANSWER


@sandboxed
def test_a_program_evading_the_per_test_timer_is_stopped_by_the_outer_limit():
    problem = Problem((Case("1\n", "1\n"),))
    evader = "import signal\nsignal.signal(signal.SIGPROF, signal.SIG_IGN)\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"
    result = grade(problem, evader, timeout=0.5)  # CPU limit (0.5 + 1) * 1 + 5 s
    assert result.verdicts == (TIME_LIMIT,)
    assert "killed: timeout" in result.first_failure["message"]


@sandboxed
def test_score_many_keeps_the_order_of_mixed_items(problems):
    task, samples = problems
    items = [
        (samples["sum"], answer("print(sum(map(int, input().split())))"), 0),
        (samples["sum"], Completion(key="k", text="no code"), 1),
        (samples["sort"], answer("class Solution:\n    def sortList(self, nums): return sorted(nums)"), 0),
        (samples["half"], Completion(key="k", text="", finish_reason="length"), 3),
        (samples["sum"], answer("print(0)"), 2),
    ]
    scores = task.score_many(items)
    assert [(s.sample_id, s.repeat, s.outcome) for s in scores] == [
        ("sum", 0, Outcome.CORRECT),
        ("sum", 1, Outcome.UNPARSED),
        ("sort", 0, Outcome.CORRECT),
        ("half", 3, Outcome.TRUNCATED),
        ("sum", 2, Outcome.WRONG),
    ]
    assert task.score(samples["sum"], answer("print(sum(map(int, input().split())))"), 5).repeat == 5


@sandboxed
def test_builtin_problems_with_reference_solutions():
    task = LiveCodeBench()
    solutions = {
        "smoke_sum": "a, b = map(int, input().split())\nprint(a + b)",
        "smoke_reverse": "s = input().strip()\nprint(s[::-1])\nprint(len(s))",
        "smoke_add_digits": "class Solution:\n    def addDigits(self, num: int) -> int:\n        return 0 if num == 0 else 1 + (num - 1) % 9",
        "smoke_count_pairs": "class Solution:\n    def countPairs(self, nums, target):\n        return sum(nums[i] + nums[j] == target for i in range(len(nums)) for j in range(i + 1, len(nums)))",
    }
    samples = task.load("builtin")
    scores = task.score_many([(s, answer(solutions[s.id]), 0) for s in samples])
    assert [s.outcome for s in scores] == [Outcome.CORRECT] * 4
    assert all(s.details["verdicts"] == [PASSED] * 4 for s in scores)


@sandboxed
def test_the_orchestrator_scores_through_score_many(problems):
    from evals.scoring import score_all

    task, samples = problems
    chosen = [samples["sum"], samples["sort"]]
    requests = [r for s in chosen for r in task.requests(s, task.default_sampling, 2)]
    codes = {
        "sum": "print(sum(map(int, input().split())))",
        "sort": "class Solution:\n    def sortList(self, nums):\n        return nums",
    }
    completions = {
        r.key: answer(codes[r.sample_id]) if r.repeat == 0 else Completion(key=r.key, text="no code")
        for r in requests
    }
    result = score_all(task, chosen, requests, completions)
    assert [(s.sample_id, s.repeat, s.outcome) for s in result.scores] == [
        ("sum", 0, Outcome.CORRECT),
        ("sum", 1, Outcome.UNPARSED),
        ("sort", 0, Outcome.WRONG),
        ("sort", 1, Outcome.UNPARSED),
    ]
    assert result.summary.value == 0.25  # pass@1: mean over problems of passed / samples


@sandboxed
def test_generations_are_rescored_through_evals_score(tmp_path):
    """A generations file keyed by question_id, two repeats each (right, then wrong), through the CLI."""
    from evals.cli import main
    from evals.run_dir import load_run_dir

    right = {
        "smoke_sum": "a, b = map(int, input().split())\nprint(a + b)",
        "smoke_reverse": "s = input().strip()\nprint(s[::-1])\nprint(len(s))",
        "smoke_add_digits": "class Solution:\n    def addDigits(self, num):\n        return 0 if num == 0 else 1 + (num - 1) % 9",
        "smoke_count_pairs": "class Solution:\n    def countPairs(self, nums, target):\n        return 0",
    }
    predictions = tmp_path / "lcb.jsonl"
    with predictions.open("w") as handle:
        for qid, code in right.items():
            for repeat, body in enumerate((code, "print('All tests passed')")):
                text = f"<|channel>thought\n```python\nprint(1)\n```<channel|>Here:\n```python\n{body}\n```"
                handle.write(json.dumps({"id": qid, "repeat": repeat, "response": text}) + "\n")
    out = tmp_path / "run"
    assert (
        main(
            ["score", str(predictions), "--task", "livecodebench", "--data", "builtin", "--output", str(out)]
        )
        == 0
    )
    row = load_run_dir(out).results.scored[0]
    assert row.summary.n_scores == 8 and row.summary.value == 3 / 8  # countPairs' "return 0" fails its tests
    assert row.extra_metrics["pass@2"].value == 3 / 4
    assert row.summary.flags == {}  # failing verdicts are the wrong outcome's details, not flags
    run = load_run_dir(out)
    verdicts = Counter(s.details["first_failure"]["verdict"] for s in run.samples if s.outcome == "wrong")
    assert verdicts == {"runtime_error": 2, "wrong_answer": 3}  # no class Solution: runtime error
