"""AIME task: extraction and scoring, MathArena/QwQ data loading, prompt, last-chance turn, and the
published MathArena per-problem table (for the repeat aggregation in evals/stats.py)."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from realdata import SHARED

import evals.stats
from evals.schema import Completion, FollowupTask, Outcome, Sample, Sampling, Score, Task
from tasks import aime as aime_module
from tasks.aime import AIME, LAST_CHANCE_PROMPT, QWQ_SUFFIX
from tasks.data import DataError

AIME_DATA = SHARED / "realdata" / "aime"
MATHARENA = AIME_DATA / "matharena"
QWQ = {"2024": AIME_DATA / "qwq_aime24.jsonl", "2025": AIME_DATA / "qwq_aime25.jsonl"}
MATHARENA_TABLE = AIME_DATA / "matharena_ai_aime2025I_per_problem_accuracy_table.json"

# MathArena's instruction (configs/competitions/aime/aime_2026.yaml) and its runner's "\n\n{problem}".
MATHARENA_INSTRUCTION = (
    "Put your final answer within \\boxed{}.\nThe answer is an integer between 0 and 999 inclusive."
)

needs_matharena = pytest.mark.realdata(MATHARENA)
needs_qwq = pytest.mark.realdata(*QWQ.values(), MATHARENA)
needs_table = pytest.mark.realdata(MATHARENA_TABLE)

SAMPLE = Sample(id="7", inputs={"problem": "Find $x$."}, target=73)


def done(text: str, **fields) -> Completion:
    return Completion(key="k", text=text, **fields)


def score(text: str, task: AIME | None = None, **fields) -> Score:
    return (task or AIME()).score(SAMPLE, done(text, **fields), 0)


# --- construction -----------------------------------------------------------------------------


def test_variants_defaults_and_protocols():
    task = AIME()
    assert isinstance(task, Task) and isinstance(task, FollowupTask)
    assert (task.name, task.variant, task.strict, task.last_chance) == ("aime", "2026", False, False)
    assert list(AIME.variants) == ["2026", "2025", "2024"]
    assert all(meaning.startswith("year: AIME ") for meaning in AIME.variants.values())
    assert (AIME.public_text, AIME.headline) == (True, "mean")
    assert task.default_sampling == Sampling(
        temperature=1.0, top_p=0.95, top_k=64, max_tokens=65536, thinking=True
    )
    assert AIME("2024").describe()["data"] == {
        "dataset": ["MathArena/aime_2024_I", "MathArena/aime_2024_II"],
        "revision": "main (unpinned)",
    }


def test_unknown_variant_lists_the_choices():
    with pytest.raises(ValueError, match="2026, 2025, 2024"):
        AIME("2023")


# --- extraction and scoring -------------------------------------------------------------------


def test_nested_braces_that_are_not_an_integer_are_wrong_and_kept():
    result = score(r"So $x = \boxed{\frac{1}{2}}$.")
    assert (result.outcome, result.value, result.extracted) == (Outcome.WRONG, 0.0, r"\frac{1}{2}")
    assert result.details == {"reason": "not an integer"}
    assert result.flags == ()


@pytest.mark.parametrize(
    "text",
    [
        r"\boxed{{73}}",
        r"\boxed{073}",
        r"\boxed{73.}",
        r"\boxed{\text{73}}",
        r"\boxed{\textbf{73}}",
        r"$\boxed{73}$",
        r"\boxed{ 73 }",
        r"\boxed{\boxed{73}}",
        r"\fbox{73}",
        r"\boxed{\frac{146}{2}}",
        r"\boxed{73^\circ}",
        r"\boxed{n = 73}",
        r"\boxed{73.0}",
        "\\boxed{\uff17\uff13}",  # full-width digits, NFKC-normalised
    ],
)
def test_boxed_integer_forms_are_read_as_the_integer(text):
    result = score(f"Therefore the answer is {text}")
    assert (result.outcome, result.extracted, result.flags) == (Outcome.CORRECT, "73", ())


def test_the_last_boxed_answer_wins():
    assert score(r"First \boxed{12}, then on reflection \boxed{73}.").extracted == "73"
    wrong = score(r"First \boxed{73}, then on reflection \fbox{12}.")
    assert (wrong.outcome, wrong.extracted) == (Outcome.WRONG, "12")
    assert wrong.details == {"reason": "different integer"}


def test_empty_and_unbalanced_boxes_are_skipped():
    assert score(r"The answer is \boxed{73}. (Format: \boxed{}.)").extracted == "73"
    assert score(r"The answer is \boxed{73}, or maybe \boxed{12").extracted == "73"
    assert score(r"\boxed{\{1, 73\}}").outcome is Outcome.WRONG  # escaped braces stay inside


def test_equal_integers_compare_equal_for_majority_voting():
    padded, plain = score(r"\boxed{073}"), score(r"\boxed{73}")
    assert padded.extracted == plain.extracted == "73"


@pytest.mark.parametrize(
    ("text", "extracted"), [(r"\boxed{1000}", "1000"), (r"\boxed{1{,}000}", "1000"), (r"\boxed{-5}", "-5")]
)
def test_integers_outside_0_to_999_are_wrong(text, extracted):
    result = AIME().score(Sample("1", {"problem": "p"}, 0), done(text), 0)
    assert (result.outcome, result.extracted) == (Outcome.WRONG, extracted)
    assert result.details == {"reason": "outside 0-999"}


def test_boxed_answers_in_the_thought_block_are_ignored():
    result = score("The answer is 73", reasoning=r"... so \boxed{12}")
    assert (result.outcome, result.extracted, result.flags) == (
        Outcome.CORRECT,
        "73",
        ("last_integer_fallback",),
    )
    thought_only = score("I am not sure.", reasoning=r"\boxed{73}")
    assert (thought_only.outcome, thought_only.extracted) == (Outcome.UNPARSED, None)


def test_without_a_box_the_last_integer_is_used_and_flagged():
    result = score("We try 12 and then 73.")
    assert (result.outcome, result.value, result.extracted) == (Outcome.CORRECT, 1.0, "73")
    assert result.flags == ("last_integer_fallback",)
    wrong = score("Answer: 2026")
    assert (wrong.outcome, wrong.extracted, wrong.flags) == (
        Outcome.WRONG,
        "2026",
        ("last_integer_fallback",),
    )


def test_strict_parsing_has_no_fallback():
    strict = AIME(strict=True)
    assert score("The answer is 73.", strict).outcome is Outcome.UNPARSED
    assert score(r"The answer is \boxed{73}.", strict).outcome is Outcome.CORRECT


def test_no_digits_is_unparsed():
    result = score("I cannot solve this problem.")
    assert (result.outcome, result.value, result.extracted, result.flags) == (Outcome.UNPARSED, 0.0, None, ())


def test_truncation_and_failures():
    assert score("Let me think about", finish_reason="length").outcome is Outcome.TRUNCATED
    # A final answer cut off by the budget gets no last-integer fallback.
    assert score("We have 12 cases and", finish_reason="length").outcome is Outcome.TRUNCATED
    assert score(r"So \boxed{73} and now", finish_reason="length").outcome is Outcome.CORRECT
    # An open thought block is truncated even when text happens to hold a box.
    assert score(r"\boxed{73}", thought_open=True, finish_reason="length").outcome is Outcome.TRUNCATED
    assert score("", error="backend died", finish_reason="error").outcome is Outcome.ERROR
    assert score("", finish_reason="timeout", error="slow").outcome is Outcome.TIMEOUT


# --- prompt and requests ----------------------------------------------------------------------


def test_prompt_is_matharenas_single_user_message():
    task = AIME()
    sample = Sample("3", {"problem": "What is $\\{1,2\\}$? Use {braces}."}, 5)
    requests = task.requests(sample, task.default_sampling, 2)
    assert [r.key for r in requests] == ["aime/2026/3/0", "aime/2026/3/1"]
    assert [r.sampling.seed for r in requests] == [0, 1]
    (message,) = requests[0].messages
    assert message.role == "user"
    assert message.text == MATHARENA_INSTRUCTION + "\n\n" + sample.inputs["problem"]


@needs_matharena
def test_prompt_for_a_real_problem_is_exactly_matharenas():
    sample = AIME("2025").load(str(MATHARENA))[0]
    problem = (MATHARENA / "aime_2025_I" / "problems" / "1.tex").read_text(encoding="utf-8")
    (message,) = AIME("2025").requests(sample, Sampling(), 1)[0].messages
    assert message.text == f"{MATHARENA_INSTRUCTION}\n\n{problem}"
    assert message.text.startswith("Put your final answer within \\boxed{}.\nThe answer is an integer")


# --- last chance ------------------------------------------------------------------------------


def test_last_chance_request_carries_the_final_answer_only():
    task = AIME(last_chance=True)
    request = task.requests(SAMPLE, task.default_sampling, 2)[1]
    first = done("I could not settle on 12 or 73.", reasoning=r"secret \boxed{73} thoughts")
    turn = task.followup(SAMPLE, request, first)
    assert turn is not None
    assert (turn.key, turn.sample_id, turn.repeat, turn.sampling) == (
        "aime/2026/7/1/last-chance",
        "7",
        1,
        request.sampling,
    )
    assert [m.role for m in turn.messages] == ["user", "assistant", "user"]
    assert turn.messages[0] == request.messages[0]
    assert turn.messages[1].text == "I could not settle on 12 or 73."
    assert "secret" not in turn.messages[1].text
    assert turn.messages[2].text == LAST_CHANCE_PROMPT
    assert "\\boxed{}" in LAST_CHANCE_PROMPT and "ignored" in LAST_CHANCE_PROMPT


def test_no_last_chance_when_off_boxed_or_failed():
    on, off = AIME(last_chance=True), AIME()
    request = on.requests(SAMPLE, Sampling(), 1)[0]
    assert off.followup(SAMPLE, request, done("no answer")) is None
    assert on.followup(SAMPLE, request, done(r"\boxed{12}")) is None
    assert on.followup(SAMPLE, request, done("", thought_open=True, finish_reason="length")) is None
    assert on.followup(SAMPLE, request, done("", error="boom", finish_reason="error")) is None
    # A final answer cut off after the thoughts closed still gets its last chance.
    assert on.followup(SAMPLE, request, done("Counting gives", finish_reason="length")) is not None


def test_scoring_with_a_follow_up_flags_last_chance():
    task = AIME(last_chance=True)
    first = done("I think it is 12.", reasoning=r"\boxed{73}")
    result = task.score_with_followup(SAMPLE, first, 0, done(r"\boxed{73}"))
    assert (result.outcome, result.extracted, result.flags) == (Outcome.CORRECT, "73", ("last_chance",))
    unboxed = task.score_with_followup(SAMPLE, first, 0, done("It is 73."))
    assert unboxed.flags == ("last_chance", "last_integer_fallback")
    failed = task.score_with_followup(SAMPLE, first, 0, done("", error="boom", finish_reason="error"))
    assert (failed.outcome, failed.flags) == (Outcome.ERROR, ("last_chance",))
    # A first turn with a box is scored as it is; without a follow-up turn, as `score` does.
    boxed = task.score_with_followup(SAMPLE, done(r"\boxed{12}"), 0, done(r"\boxed{73}"))
    assert (boxed.outcome, boxed.flags) == (Outcome.WRONG, ())
    alone = task.score_with_followup(SAMPLE, first, 0, None)
    assert alone == task.score(SAMPLE, first, 0) and alone.flags == ("last_integer_fallback",)


def test_follow_up_flags_reach_the_summary():
    from evals.scoring import score_all

    task = AIME(last_chance=True)
    requests = task.requests(SAMPLE, Sampling(), 2)
    completions = {requests[0].key: done("no idea"), requests[1].key: done(r"\boxed{73}")}
    turn = task.followup(SAMPLE, requests[0], completions[requests[0].key])
    assert turn is not None and task.followup(SAMPLE, requests[1], completions[requests[1].key]) is None
    result = score_all(
        task, [SAMPLE], requests, completions, followups={requests[0].key: done(r"\boxed{73}")}
    )
    assert [s.flags for s in result.scores] == [("last_chance",), ()]
    assert result.summary.value == 1.0 and result.summary.flags == {"last_chance": 1}


# --- loading ----------------------------------------------------------------------------------


def test_builtin_smoke_problems():
    task = AIME()
    samples = task.load("builtin")
    assert [s.id for s in samples] == ["1", "2", "3", "4", "5"]
    assert [s.target for s in samples] == [42, 144, 2, 9, 999]
    assert all(isinstance(s.target, int) and s.category is None for s in samples)
    assert task.describe()["data"] == {"source": "builtin"}
    assert len(task.describe()["data_fingerprint"]) == 64


def matharena_answers(year: str) -> dict[str, int]:
    """`{year}_{I|II}_{n}` -> int(answer) read straight from the MathArena answers.csv files."""
    answers = {}
    for competition in ("I", "II"):
        with open(MATHARENA / f"aime_{year}_{competition}" / "answers.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                answers[f"{year}_{competition}_{row['id']}"] = int(row["answer"])
    return answers


@needs_matharena
@pytest.mark.parametrize("year", ["2024", "2025"])
def test_real_matharena_folders_load_as_they_are(year):
    task = AIME(year)
    samples = task.load(str(MATHARENA))
    assert len(samples) == 30
    assert [s.id for s in samples[:2]] == [f"{year}_I_1", f"{year}_I_2"]
    assert Counter(s.category for s in samples) == {"I": 15, "II": 15}
    assert {s.id: s.target for s in samples} == matharena_answers(year)
    assert all(type(s.target) is int and 0 <= s.target <= 999 for s in samples)
    last = (MATHARENA / f"aime_{year}_II" / "problems" / "15.tex").read_text(encoding="utf-8")
    assert samples[-1].id == f"{year}_II_15" and samples[-1].inputs["problem"] == last
    assert task.describe()["data"] == {"source": str(MATHARENA)}


@needs_matharena
def test_zero_padded_2024_answers_become_ints():
    raw = (MATHARENA / "aime_2024_I" / "answers.csv").read_text()
    assert "\n2,025\n" in raw
    samples = {s.id: s for s in AIME("2024").load(str(MATHARENA))}
    assert samples["2024_I_2"].target == 25
    assert AIME().score(samples["2024_I_2"], done(r"\boxed{025}"), 0).outcome is Outcome.CORRECT
    assert AIME().score(samples["2024_I_2"], done(r"\boxed{25}"), 0).outcome is Outcome.CORRECT


@needs_matharena
def test_one_competition_folder_and_year_checks():
    samples = AIME("2025").load(str(MATHARENA / "aime_2025_II"))
    assert len(samples) == 15 and samples[0].id == "2025_II_1"
    with pytest.raises(DataError, match="pass variant '2025'"):
        AIME("2026").load(str(MATHARENA / "aime_2025_II"))
    with pytest.raises(DataError, match="lacks aime_2026_I, aime_2026_II"):
        AIME().load(str(MATHARENA))


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z]+|\d+", text))


def _similarity(a: str, b: str) -> float:
    return len(_words(a) & _words(b)) / len(_words(a) | _words(b))


@needs_qwq
@pytest.mark.parametrize("year", ["2024", "2025"])
def test_matharena_answers_match_qwqs_files(year):
    """QwQ's transcriptions differ in wording (and 2024 is ordered by string id), so each MathArena
    problem is paired with its most similar QwQ problem; the pairing is one-to-one and the
    answers agree."""
    qwq = AIME(year).load(str(QWQ[year]))
    matharena = AIME(year).load(str(MATHARENA))
    assert len(qwq) == 30 and [s.id for s in qwq[:3]] == ["1", "2", "3"]
    assert not any(s.inputs["problem"].endswith(QWQ_SUFFIX) for s in qwq)
    assert Counter(s.target for s in qwq) == Counter(s.target for s in matharena)
    pairs = {
        m.id: max(qwq, key=lambda q, m=m: _similarity(m.inputs["problem"], q.inputs["problem"]))
        for m in matharena
    }
    assert len({q.id for q in pairs.values()}) == 30
    assert {mid: q.target for mid, q in pairs.items()} == {m.id: m.target for m in matharena}


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_local_rows_in_hub_and_prompt_style(tmp_path: Path):
    hub_style = write_jsonl(
        tmp_path / "aime.jsonl",
        [
            {"problem_idx": 1, "problem": "p1", "answer": 5},
            {"problem_idx": 2.0, "problem": "p2", "answer": "007"},
        ],
    )
    samples = AIME().load(hub_style)
    assert [(s.id, s.inputs["problem"], s.target) for s in samples] == [("1", "p1", 5), ("2", "p2", 7)]
    prompt_style = write_jsonl(
        tmp_path / "qwq.jsonl",
        [{"prompt": "p1" + QWQ_SUFFIX, "answer": 5}, {"id": "b", "prompt": "p2", "answer": 6}],
    )
    assert [(s.id, s.inputs["problem"]) for s in AIME().load(prompt_style)] == [("1", "p1"), ("b", "p2")]


def test_data_fingerprint_follows_the_content(tmp_path: Path):
    def fingerprint(answer: int) -> str:
        task = AIME()
        task.load(
            write_jsonl(tmp_path / "train.jsonl", [{"problem_idx": 1, "problem": "p", "answer": answer}])
        )
        return task.describe()["data_fingerprint"]

    assert fingerprint(5) == fingerprint(5) != fingerprint(6)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"problem_idx": 1, "problem": "p"}], "no 'answer' field"),
        ([{"problem_idx": 1, "answer": 3}], "no problem text"),
        ([{"problem_idx": 1, "problem": "p", "answer": 1000}], "outside the AIME range"),
        ([{"problem_idx": 1, "problem": "p", "answer": "1/2"}], "not an integer"),
        (
            [
                {"problem_idx": 1, "problem": "p", "answer": 3},
                {"problem_idx": 1, "problem": "q", "answer": 4},
            ],
            r"AIME problems share ids \['1'\]",
        ),
    ],
)
def test_bad_rows_raise_data_errors(tmp_path: Path, rows, message):
    with pytest.raises(DataError, match=message):
        AIME().load(write_jsonl(tmp_path / "aime.jsonl", rows))


def test_bad_paths_raise_data_errors(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        AIME().load(str(tmp_path / "missing.jsonl"))
    with pytest.raises(DataError, match="no data files"):
        AIME().load(str(tmp_path))
    competition = tmp_path / "aime_2026_I"
    (competition / "problems").mkdir(parents=True)
    (competition / "answers.csv").write_text("id,answer\n1,5\n")
    with pytest.raises(DataError, match="no problem text"):
        AIME().load(str(competition))
    (competition / "problems" / "1.tex").write_text("p")
    with pytest.raises(DataError, match="has 1 AIME problems; expected 15"):
        AIME().load(str(competition))
    (competition / "answers.csv").write_text("number,solution\n1,5\n")
    with pytest.raises(DataError, match="columns id,answer"):
        AIME().load(str(competition))


def test_hub_rows_are_read_and_counted(monkeypatch):
    calls = []

    def fake_hub_rows(dataset, split, revision, config=None):
        calls.append((dataset, split, revision))
        return [{"problem_idx": i, "problem": f"p{i}", "answer": i} for i in range(1, 31)]

    monkeypatch.setattr(aime_module, "hub_rows", fake_hub_rows)
    task = AIME()
    samples = task.load()
    assert calls == [("MathArena/aime_2026", "train", "main")]
    assert [s.id for s in samples[:2]] == ["1", "2"] and samples[-1].target == 30
    assert task.describe()["data"] == {"dataset": "MathArena/aime_2026", "revision": "main (unpinned)"}
    assert [s.id for s in AIME().load(limit=3)] == ["1", "2", "3"]
    monkeypatch.setattr(aime_module, "hub_rows", lambda *args, **kwargs: fake_hub_rows(*args)[:29])
    with pytest.raises(DataError, match="has 29 AIME problems; expected 30"):
        AIME().load()


@needs_matharena
def test_2024_loads_both_competitions_from_the_hub_with_distinct_ids(monkeypatch):
    """2024 is published as MathArena/aime_2024_I and _II (15 rows each, problem_idx 1-15): both
    are read and AIME II is numbered 16-30, as in the combined 2025/2026 sets. The hub rows are
    made from MathArena's own 2024 folders (same problems), in a shuffled order."""
    folders = {
        f"MathArena/aime_2024_{c}": aime_module.read_matharena_folder(MATHARENA / f"aime_2024_{c}")
        for c in ("I", "II")
    }
    calls = []

    def fake_hub_rows(dataset, split, revision, config=None):
        calls.append((dataset, split, revision))
        rows = [
            {"problem_idx": int(r["id"].rsplit("_", 1)[1]), "problem": r["problem"], "answer": r["answer"]}
            for r in folders[dataset]
        ]
        return rows[::-1]

    monkeypatch.setattr(aime_module, "hub_rows", fake_hub_rows)
    samples = AIME("2024").load()
    assert calls == [("MathArena/aime_2024_I", "train", "main"), ("MathArena/aime_2024_II", "train", "main")]
    assert [s.id for s in samples] == [str(n) for n in range(1, 31)]
    by_folder = {s.id: s for s in AIME("2024").load(str(MATHARENA))}
    for number in range(1, 31):
        competition, index = ("I", number) if number <= 15 else ("II", number - 15)
        expected = by_folder[f"2024_{competition}_{index}"]
        assert (samples[number - 1].inputs, samples[number - 1].target) == (expected.inputs, expected.target)
    assert [s.id for s in AIME("2024").load(limit=2)] == ["1", "2"]

    monkeypatch.setattr(
        aime_module, "hub_rows", lambda *a, **k: [{**r, "problem_idx": 1} for r in fake_hub_rows(*a)]
    )
    with pytest.raises(DataError, match=r"aime_2024_I has problem_idx \[1, 1, .*expected 1-15"):
        AIME("2024").load()


# --- MathArena's published per-problem table ----------------------------------------------------

RUNS_PER_PROBLEM = 4  # MathArena's default n (docs/protocols/aime.md § Scoring)


def matharena_rows() -> dict[str, tuple[list[float], float | None]]:
    """Per model: the 15 per-problem accuracies (%, over 4 runs) on AIME 2025 I and the published
    average (the table's "Avg" row; None if absent). The "Cost" row is left out."""
    table = json.loads(MATHARENA_TABLE.read_text())
    problems = sorted((r for r in table if isinstance(r["question"], int)), key=lambda r: r["question"])
    average = next((r for r in table if r["question"] == "Avg"), None)
    models = [name for name in problems[0] if name != "question"]
    return {
        model: ([float(r[model]) for r in problems], None if average is None else float(average[model]))
        for model in models
    }


@needs_table
def test_matharena_table_contents():
    rows = matharena_rows()
    assert len(rows) == 16
    assert all(len(accuracies) == 15 for accuracies, _ in rows.values())
    # 4 runs per problem: every accuracy is a multiple of 25%.
    assert all(a % 25 == 0 for accuracies, _ in rows.values() for a in accuracies)
    for accuracies, average in rows.values():
        assert average == pytest.approx(sum(accuracies) / 15)
    assert rows["o3-mini (high)"][1] == pytest.approx(80.0)
    assert rows["DeepSeek-R1"][1] == pytest.approx(65.0)
    assert rows["QwQ-32B-Preview"][1] == pytest.approx(36.666666666666664)
    assert rows["gpt-4o"][1] == pytest.approx(13.333333333333334)


def _runs_as_scores(accuracies: list[float]) -> list[Score]:
    """4 scored runs per problem with round(accuracy * 4 / 100) of them correct."""
    scores = []
    for number, accuracy in enumerate(accuracies, 1):
        correct = round(accuracy * RUNS_PER_PROBLEM / 100)
        for repeat in range(RUNS_PER_PROBLEM):
            right = repeat < correct
            outcome = Outcome.CORRECT if right else Outcome.WRONG
            scores.append(Score(f"2025_I_{number}", repeat, outcome, float(right), "73" if right else "1"))
    return scores


@needs_table
def test_avg_at_4_reproduces_matharenas_published_averages():
    for model, (accuracies, average) in matharena_rows().items():
        scores = _runs_as_scores(accuracies)
        assert 100 * evals.stats.summarize(scores).value == pytest.approx(average), model
        extra = evals.stats.repeat_metrics(scores)
        solved = sum(a > 0 for a in accuracies) / 15
        assert extra["pass@4"].value == pytest.approx(solved), model
        majority = sum(a > 50 for a in accuracies) / 15  # ties (50%) go to the first run's answer: right
        ties = sum(a == 50 for a in accuracies) / 15
        assert extra["maj@4"].value == pytest.approx(majority + ties), model
