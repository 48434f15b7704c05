"""Fuzz every answer extractor and the thought/answer split with adversarial model output.

Model output is hostile text. For strings built from the pieces extractors look for (answer
cues, letters, boxes, braces, backslashes, code fences, channel and think tags, end markers,
translation labels, odd Unicode), hypothesis checks:
- nothing raises: `runners.outputs.split_output`, each extractor, and each task's `score` on a
  Completion built from the split (LiveCodeBench's code extraction; its grading runs programs
  and is tested in tests/test_livecodebench.py);
- the thought channel is never read as the answer: a thought block (Gemma 4 channel or
  `<think>`) in front of a final answer changes no extraction, and an unclosed one yields no
  answer at all (never a correct or wrong verdict);
- last-match semantics: of two answer statements the last one wins, whatever precedes them
  (MMLU-Pro's card extractor, GPQA, AIME's boxes, LiveCodeBench's last fenced block, MMMU-Pro's
  last "Answer:", CoVoST's last translation label). The official TIGER extractors take the first
  match by design and are fuzzed for the first two properties only.
Deterministic (`derandomize=True`) and bounded; about 20 s.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tally import Tally

from evals.schema import Completion, Outcome, Sample
from runners.outputs import split_output
from tasks.aime import AIME, read_answer
from tasks.covost2 import CoVoST2, parse_answer
from tasks.gpqa_diamond import GPQADiamond, extract_letter
from tasks.livecodebench import extract_code
from tasks.mmlu_pro import MMLUPro, extract_card, extract_tiger, extract_tiger_2024_05
from tasks.mmmu_pro import MMMUPro, parse_choice

pytestmark = pytest.mark.slow  # about 15 s

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
TAGS = ("<|channel>", "<channel|>", "<think>", "</think>", "<turn|>", "<eos>", "<pad>", "<|im_end|>", "</s>")
PIECES = (
    "The answer is (", "answer is ", "Answer: ", "ANSWER:", "**Answer:**", "Answer: Option ", "\\boxed{",
    "\\fbox{", "\\text{", "\\frac{1}{2}", "}", "{", "\\", "$", "```", "```python\n", "\n", " ", "(", ")",
    "[", "A", "B", "C", "D", "J", "I", "a", "c", "x", "0", "073", "12", "-5", "1{,}000", "thought\n",
    "English:", "French:", "Translation:", "*", "’", "\u2028", "\x85", "\x00", "٣", "Ａ", "ﬁ", "\ud7ff",
)  # fmt: skip
LETTERS = "ABCDEFGHIJ"
hostile = st.lists(st.one_of(st.sampled_from(PIECES + TAGS), st.text(max_size=4)), max_size=40).map("".join)
no_tags = hostile.filter(lambda s: not any(t in s for t in TAGS))
# text in which no extractor finds anything: lower-case consonants, spaces and punctuation
filler = st.text(alphabet="qwrtypsdfghklzxvnm .,;\n", max_size=30)


def extractors() -> dict[str, Callable[[str], Any]]:
    options = [f"option {c}" for c in "abcdefghij"]
    return {
        "mmlu_pro card": lambda a: extract_card(a, LETTERS),
        "mmlu_pro tiger": lambda a: extract_tiger(a, LETTERS),
        "mmlu_pro tiger-2024-05": lambda a: extract_tiger_2024_05(a, LETTERS),
        "gpqa_diamond": extract_letter,
        "aime": read_answer,
        "livecodebench": extract_code,
        "mmmu_pro": lambda a: parse_choice(a, LETTERS, options),
        "covost2": lambda a: parse_answer(a, "en", "fr"),
    }


EXTRACTORS = extractors()


@cache
def tasks() -> list[tuple[Any, Sample]]:
    built = [MMLUPro("card"), GPQADiamond(), AIME(), MMMUPro(), CoVoST2()]
    return [(task, task.load("builtin", limit=1)[0]) for task in built]


def completion(raw: str, finish: str = "stop") -> Completion:
    split = split_output(raw)
    return Completion(key="k", text=split.answer, raw=raw, reasoning=split.reasoning,
                      thought_open=split.thought_open, finish_reason=finish)  # type: ignore[arg-type]  # fmt: skip


def wrap(style: str, thought: str, answer: str) -> str:
    if style == "gemma":
        return f"<|channel>thought\n{thought}<channel|>{answer}"
    return f"<think>{thought}</think>{answer}"


@FUZZ
@given(raw=hostile, finish=st.sampled_from(["stop", "length"]))
def test_nothing_raises(raw: str, finish: str, tally: Tally) -> None:
    split = split_output(raw)
    assert isinstance(split.answer, str)
    for extract in EXTRACTORS.values():
        extract(split.answer)
        extract(raw)
    for task, sample in tasks():
        score = task.score(sample, completion(raw, finish), 0)
        assert score.outcome in set(Outcome)
    tally.add("fuzzed inputs")


@FUZZ
@given(thought=no_tags, answer=no_tags, style=st.sampled_from(["gemma", "think"]))
def test_the_thought_channel_is_never_the_answer(thought: str, answer: str, style: str, tally: Tally) -> None:
    with_thought = split_output(wrap(style, thought, answer))
    assert with_thought.answer == split_output(answer).answer
    for name, extract in EXTRACTORS.items():
        assert extract(with_thought.answer) == extract(split_output(answer).answer), name
    unclosed = split_output(wrap(style, thought + answer, "").rsplit("<", 1)[0])  # the block never closes
    assert unclosed.answer == "" and unclosed.thought_open
    for task, sample in tasks():
        outcome = task.score(
            sample, completion(wrap(style, thought + answer, "").rsplit("<", 1)[0]), 0
        ).outcome
        assert outcome not in (Outcome.CORRECT, Outcome.WRONG), (task.name, outcome)
    tally.add("fuzzed inputs")


def statements() -> dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], str], Callable[[str], Any]]]:
    """Per extractor: the values a statement carries, how it is written, and what the extractor
    returns for it, to compare with the value."""
    letter = st.sampled_from(LETTERS)
    code = st.text(alphabet="qwrtypsdfghklzxvnm =+()1\n", min_size=1, max_size=20).map(str.strip).filter(bool)
    sentence = st.text(alphabet="qwrtypsdfghklzxvnm ", min_size=1, max_size=20).map(str.strip).filter(bool)
    return {
        "mmlu_pro card": (letter, "The answer is ({})".format, EXTRACTORS["mmlu_pro card"]),
        "gpqa_diamond": (st.sampled_from("ABCD"), "Answer: {}".format,
                         lambda a: (extract_letter(a) or ("",))[0]),
        "aime": (st.integers(0, 999), "\\boxed{{{}}}".format, lambda a: (read_answer(a) or _none).value),
        "livecodebench": (code, "```python\n{}\n```".format, extract_code),
        "mmmu_pro": (letter, "Answer: {}".format, lambda a: (EXTRACTORS["mmmu_pro"](a) or ("",))[0]),
        "covost2": (sentence, "English: {}\n".format, lambda a: parse_answer(a, "en", "fr").hypothesis),
    }  # fmt: skip


class _None:
    value = None


_none = _None()
STATEMENTS = statements()


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_the_last_answer_statement_wins(name: str, tally: Tally) -> None:
    values, write, read = STATEMENTS[name]

    @FUZZ
    @given(prefix=hostile, first=values, last=values, between=filler, after=filler)
    def check(prefix: str, first: Any, last: Any, between: str, after: str) -> None:
        text = f"{prefix}\n{write(first)}\n{between}\n{write(last)}\n{after}"
        assert read(text) == last, text
        tally.add("fuzzed inputs")

    check()


answer_cue = st.tuples(
    st.sampled_from(["answer", "ANSWER", "Answer", "aNsWeR", "Anſwer", "answe"]),  # ſ folds to s
    st.sampled_from([" is", " is:", ":", " :", "  is ", "", " was"]),
    st.sampled_from([" ", "", "\n", " option ", " Choice "]),
    st.sampled_from(["A", "(B)", "[C]", "$D", "J", "x", "K"]),
    st.sampled_from(["", ".", " ", "s", "'", " is"]),
).map("".join)


@FUZZ
@given(
    raw=st.one_of(hostile, st.lists(st.one_of(answer_cue, st.sampled_from(PIECES)), max_size=12).map("".join))
)
def test_mmlu_pro_answer_scan_equals_each_patterns_finditer(raw: str, tally: Tally) -> None:
    """The card extractor finds the word "answer" once and tries its two patterns only there (a
    speed-up); that must give exactly the matches each pattern's own `finditer` gives."""
    from tasks.mmlu_pro import _ANSWER_PATTERNS, _answer_hits

    expected = [(m.start(1), m.group(1)) for pattern in _ANSWER_PATTERNS for m in pattern.finditer(raw)]
    assert sorted(_answer_hits(raw)) == sorted(expected)
    tally.add("fuzzed inputs")
