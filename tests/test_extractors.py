"""Adversarial answer texts for the MMLU-Pro extractors and the outcome rules around them."""

from __future__ import annotations

import pytest

from evals.schema import Completion, Outcome, Sample
from tasks.mmlu_pro import EXTRACTORS, MMLUPro, extract_card, extract_tiger, extract_tiger_2024_05

TEN = "ABCDEFGHIJ"
FOUR = "ABCD"


def sample(target: str = "B", letters: str = FOUR) -> Sample:
    options = [f"option {c}" for c in letters]
    return Sample(
        id="q1",
        inputs={"question": "?", "options": options, "letters": letters, "src": "t"},
        target=target,
        category="math",
    )


def score(text: str, extractor: str = "card", **completion: object):
    task = MMLUPro(extractor=extractor)
    return task.score(sample(), Completion(key="k", text=text, **completion), 0)


# --- several answer statements: first vs last ------------------------------------------------

MANY = "First guess: the answer is (A).\nOn reflection the answer is (C).\nAnswer: D"


def test_tiger_2024_05_takes_the_first_answer_is():
    assert extract_tiger_2024_05(MANY, TEN) == "A"


def test_tiger_takes_the_first_answer_is_before_other_stages():
    assert extract_tiger(MANY, TEN) == "A"


def test_card_takes_the_last_statement():
    assert extract_card(MANY, TEN) == "D"
    assert extract_card("The answer is (B). Wait, no: the answer is (C).", TEN) == "C"


# --- tiger stages -------------------------------------------------------------------------------


def test_tiger_2024_05_has_no_fallback_stages():
    assert extract_tiger_2024_05("Answer: C", TEN) is None
    assert extract_tiger_2024_05("so I pick C", TEN) is None


def test_tiger_stage_two_reads_answer_colon_on_its_first_line():
    # no DOTALL: the first line holding "Answer: X"; the greedy .* picks the last one on that line
    assert extract_tiger("reasoning\nAnswer: B or Answer: C\nAnswer: D", TEN) == "C"


def test_tiger_stage_three_reads_the_last_lone_capital():
    assert extract_tiger("Between B and G, I pick G, final.", TEN) == "G"
    # the pronoun "I" is a lone capital in A-J: the official fallback reads it as option I
    assert extract_tiger("I am not sure.", TEN) == "I"


def test_tiger_is_raw_text_based():
    # bold markers are not stripped by the official local extractor
    assert extract_tiger_2024_05("The answer is **(D)**", TEN) is None
    assert extract_tiger("The answer is **(D)**", TEN) == "D"  # stage 3, last lone capital


def test_tiger_letters_inside_words_do_not_match_the_fallback():
    assert extract_tiger("BAD Apple", TEN) is None


# --- card extractor -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is (B)", "B"),
        ("Therefore, the answer is **B**.", "B"),
        ("The answer is **(D)**", "D"),
        ("Answer: B", "B"),
        ("**Final Answer:** (C)", "C"),
        ("So $\\boxed{B}$", "B"),
        ("\\boxed{\\text{C}}", "C"),
        ("Hence the correct answer is B because the others fail.", "B"),
        ("The answer is option D.", "D"),
        ("B", "B"),
        ("(B)", "B"),
        ("**B.**", "B"),
        ("  C  \n", "C"),
        ("I think the answer is (C)", "C"),
        ("Answer: I think it is (A), so the answer is A", "A"),
    ],
)
def test_card_reads_answer_statements(text: str, expected: str):
    assert extract_card(text, FOUR) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I am not sure.",
        "I",  # a valid letter-only reply, but I is not an option of a 4-option row
        "BAD Apple",
        "The answer is Because of physics",
        "The answer is BAD",
        "Answer: I am not sure.",
        "It could be B or C.",  # no free-standing-letter fallback
        "",
    ],
)
def test_card_leaves_non_answers_unparsed(text: str):
    assert extract_card(text, FOUR) is None


@pytest.mark.parametrize(
    "text", ["I am not sure.", "Answer: I am not sure.", "Answer: I think so.", "I'm torn between options."]
)
def test_card_never_reads_the_pronoun_i_as_option_i(text: str):
    assert extract_card(text, TEN) is None


def test_card_reads_option_i_when_stated_as_the_answer():
    assert extract_card("I think the answer is (I).", TEN) == "I"
    assert extract_card("I think the answer is (C)", TEN) == "C"
    assert extract_card("Answer: I", TEN) == "I"


def test_card_letter_only_reply_counts_when_in_range():
    assert extract_card("I", TEN) == "I"


def test_card_out_of_range_last_answer_is_unparsed():
    assert extract_card("The answer is (E)", FOUR) is None
    # the last statement is out of range: not silently replaced by the earlier one
    assert extract_card("The answer is (B). No, the answer is (E).", FOUR) is None
    assert extract_card("The answer is (E)", "ABCDE") == "E"


def test_official_extractors_ignore_the_row_letters():
    # the official code reads any A-J; an out-of-range letter is then simply wrong
    assert extract_tiger_2024_05("The answer is (E)", FOUR) == "E"
    result = score("The answer is (E)", extractor="tiger-2024-05")
    assert (result.outcome, result.extracted) == (Outcome.WRONG, "E")
    assert score("The answer is (E)").outcome is Outcome.UNPARSED


def test_every_extractor_is_versioned():
    assert set(EXTRACTORS) == {"tiger-2024-05", "tiger", "card"}
    assert all(e.version for e in EXTRACTORS.values())


# --- outcomes around extraction -------------------------------------------------------------------


def test_answers_in_the_thought_block_are_ignored():
    result = score("The answer is (B)", reasoning="... The answer is (A)", raw="<think>A</think>B")
    assert (result.outcome, result.extracted, result.value) == (Outcome.CORRECT, "B", 1.0)
    wrong = score("The answer is (C)", reasoning="The answer is (B)")
    assert (wrong.outcome, wrong.extracted, wrong.value) == (Outcome.WRONG, "C", 0.0)


def test_answer_only_in_reasoning_is_not_read():
    result = score("", reasoning="The answer is (B)")
    assert result.outcome is Outcome.UNPARSED
    assert result.extracted is None


def test_open_thought_block_is_truncated_even_with_an_answer():
    result = score("The answer is (B)", thought_open=True, finish_reason="length")
    assert (result.outcome, result.value, result.extracted) == (Outcome.TRUNCATED, 0.0, None)


def test_length_without_answer_is_truncated_and_stop_is_unparsed():
    assert score("Let me think about", finish_reason="length").outcome is Outcome.TRUNCATED
    assert score("Let me think about it.", finish_reason="stop").outcome is Outcome.UNPARSED


def test_length_with_an_answer_is_still_scored():
    assert score("The answer is (B) and", finish_reason="length").outcome is Outcome.CORRECT


def test_errors_and_timeouts():
    assert score("The answer is (B)", error="boom", finish_reason="error").outcome is Outcome.ERROR
    assert score("", error="too slow", finish_reason="timeout").outcome is Outcome.TIMEOUT


def test_linear_time_tiger_stages_equal_the_official_regexes() -> None:
    """Stages 2 and 3 of `tiger` avoid the official patterns' quadratic backtracking; on random
    texts built from tricky pieces they must return exactly what the official regexes return."""
    import random
    import re

    from tasks.mmlu_pro import extract_tiger

    stage1 = re.compile(r"answer is \(?([A-J])\)?")
    stage2 = re.compile(r".*[aA]nswer:\s*([A-J])")
    stage3 = re.compile(r"\b[A-J]\b(?!.*\b[A-J]\b)", re.DOTALL)

    def official(text: str) -> str | None:
        for pattern in (stage1, stage2):
            match = pattern.search(text)
            if match:
                return match.group(1)
        match = stage3.search(text)
        return match.group(0) if match else None

    pieces = ["answer: B", "Answer:\nC", "Answer:A", "answer:", "nswer: E", "Answer: z", " I ", "BAD",
              "\n", " ", "x", "(D)", "J.", "answer is (F", "a"]  # fmt: skip
    rng = random.Random(0)
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 9)))
        assert extract_tiger(text, "ABCDEFGHIJ") == official(text), repr(text)
