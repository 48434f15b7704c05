"""MMLU-Pro task: data normalisation, prompts, requests, guess credit, and the GPT-4o reproduction."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from realdata import GPT4O_GLOB, MMLU, TEST_PARQUET, VALIDATION_PARQUET, needs_real

from evals.schema import Completion, Outcome, Sample, Sampling, Task
from tasks.data import DataError, load_rows
from tasks.mmlu_pro import HUB_DATASET, HUB_REVISION, TEST_CATEGORY_SIZES, TIGER_ANSWER_CUE, MMLUPro


def row(qid, options, answer, answer_index, category="math", cot=""):
    return {
        "question_id": qid,
        "question": f"question {qid}?",
        "options": options,
        "answer": answer,
        "answer_index": answer_index,
        "cot_content": cot,
        "category": category,
        "src": "test",
    }


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


# --- construction -------------------------------------------------------------------------------


def test_variants_extractors_and_default_sampling():
    card = MMLUPro()
    assert isinstance(card, Task)
    assert list(MMLUPro.variants) == ["card", "tiger-5shot"]
    assert all(meaning.startswith("protocol: ") for meaning in MMLUPro.variants.values())
    assert (MMLUPro.public_text, MMLUPro.headline) == (True, "mean")
    assert (card.name, card.variant, card.extractor.name) == ("mmlu_pro", "card", "card")
    assert card.default_sampling == Sampling(
        temperature=1.0, top_p=0.95, top_k=64, max_tokens=32768, thinking=True
    )
    tiger = MMLUPro("tiger-5shot")
    assert tiger.extractor.name == "tiger"
    assert tiger.default_sampling.temperature == 0.0
    assert tiger.default_sampling.max_tokens == 2048
    assert tiger.default_sampling.stop == ("Question:",)
    assert tiger.default_sampling.thinking is False
    assert MMLUPro("tiger-5shot", extractor="tiger-2024-05").extractor.name == "tiger-2024-05"


def test_unknown_variant_or_extractor_lists_the_choices():
    with pytest.raises(ValueError, match="card, tiger-5shot"):
        MMLUPro("zero-shot")
    with pytest.raises(ValueError, match="tiger-2024-05, tiger, card"):
        MMLUPro(extractor="regex")


# --- data normalisation -------------------------------------------------------------------------


def test_na_options_are_dropped_and_the_gold_letter_follows_its_option(tmp_path: Path):
    path = write_jsonl(
        tmp_path / "test.jsonl",
        [
            row(1, ["x", "N/A", "y", "N/A", "gold", "N/A"], "E", 4),
            row("2", ["gold", "b", "c", "N/A"], "A", "0"),  # string id and index, as in some files
            row(3.0, ["a", "b", "c", "gold"], "D", 3),
        ],
    )
    samples = MMLUPro().load(path)
    first, second, third = samples
    assert first.inputs["options"] == ["x", "y", "gold"]
    assert (first.inputs["letters"], first.target) == ("ABC", "C")
    assert (second.id, second.inputs["letters"], second.target) == ("2", "ABC", "A")
    assert (third.id, third.target, third.inputs["letters"]) == ("3", "D", "ABCD")
    assert all(s.category == "math" and s.inputs["src"] == "test" for s in samples)


def test_answer_pointing_at_an_na_option_is_a_data_error(tmp_path: Path):
    path = write_jsonl(tmp_path / "test.jsonl", [row(1, ["a", "N/A"], "B", 1)])
    with pytest.raises(DataError, match="row 1: answer B is not a real option"):
        MMLUPro().load(path)


def test_builtin_smoke_data():
    task = MMLUPro()
    samples = task.load("builtin")
    assert 8 <= len(samples) <= 10
    assert len({s.id for s in samples}) == len(samples)
    assert len({s.category for s in samples}) >= 5
    assert {s.category for s in samples} <= set(TEST_CATEGORY_SIZES)
    assert all(4 <= len(s.inputs["options"]) <= 10 for s in samples)
    assert all(s.target in s.inputs["letters"] for s in samples)
    assert all("N/A" not in s.inputs["options"] for s in samples)
    raw = load_rows(str(Path(__file__).resolve().parents[1] / "tasks/smoke_data/mmlu_pro.jsonl"), "test")
    assert any("N/A" in r["options"] for r in raw)
    assert all(r["src"] == "smoke" and r["cot_content"] == "" for r in raw)
    assert task.describe()["data"] == {"source": "builtin"}


# --- prompts and requests -----------------------------------------------------------------------


def test_card_prompt_and_request():
    task = MMLUPro()
    sample = task.load("builtin")[0]
    requests = task.requests(sample, task.default_sampling, 1)
    assert len(requests) == 1
    (message,) = requests[0].messages
    assert message.role == "user"
    assert requests[0].prompt is None
    text = message.text
    assert text == task.card_prompt(sample)
    assert sample.inputs["question"] in text
    for letter, option in zip(sample.inputs["letters"], sample.inputs["options"], strict=True):
        assert f"\n{letter}. {option}\n" in text + "\n"
    assert (
        'Think step by step and then output the answer in the format of "The answer is (X)" at the end'
        in text
    )
    assert text.index(sample.inputs["question"]) < text.index("A. ") < text.index("Think step by step")


def test_requests_have_one_key_and_seed_per_repeat():
    task = MMLUPro()
    sample = task.load("builtin")[0]
    requests = task.requests(sample, Sampling(seed=7, temperature=1.0), 3)
    assert [r.key for r in requests] == [f"mmlu_pro/card/{sample.id}/{r}" for r in range(3)]
    assert [r.sampling.seed for r in requests] == [7, 8, 9]
    assert [r.repeat for r in requests] == [0, 1, 2]
    assert {r.sample_id for r in requests} == {sample.id}
    assert len({r.messages for r in requests}) == 1
    assert all(r.sampling.temperature == 1.0 for r in requests)
    with pytest.raises(ValueError, match="repeats"):
        task.requests(sample, Sampling(), 0)


@pytest.fixture(scope="module")
def validation_rows() -> list[dict]:
    return load_rows(str(VALIDATION_PARQUET), "validation")  # tests using it carry @needs_real


@needs_real
@pytest.mark.parametrize("source", [str(TEST_PARQUET), str(MMLU)])
def test_tiger_prompt_has_five_same_category_examples(source: str, validation_rows: list[dict]):
    task = MMLUPro("tiger-5shot")
    samples = task.load(source)
    by_category = {}
    for sample in samples:
        by_category.setdefault(sample.category, sample)
    assert set(by_category) == set(TEST_CATEGORY_SIZES)
    for category, sample in by_category.items():
        (request,) = task.requests(sample, task.default_sampling, 1)
        prompt = request.prompt
        assert request.messages == ()
        assert prompt.startswith(
            f"The following are multiple choice questions (with answers) about {category}. Think step by step"
            ' and then finish your answer with "the answer is (X)" where X is the correct letter choice.'
            "\n\n\n\nQuestion:\n"
        )
        assert prompt.endswith(f"Options:\n{_options(sample)}\nAnswer: Let's think step by step.")
        assert prompt.count("Question:\n") == 6
        assert prompt.count(TIGER_ANSWER_CUE) == 6
        assert "A: Let's think step by step." not in prompt
        assert ". N/A\n" not in prompt
        expected = [r for r in validation_rows if r["category"] == category][:5]
        positions = [prompt.index(f"Question:\n{r['question']}\nOptions:\n") for r in expected]
        assert positions == sorted(positions)
        others = [r for r in validation_rows if r["category"] != category]
        assert not any(f"Question:\n{r['question']}\n" in prompt for r in others)
        for example in expected:
            kept = [o for o in example["options"] if o != "N/A"]  # 21 validation rows are padded
            options = "".join(f"{c}. {o}\n" for c, o in zip("ABCDEFGHIJ", kept, strict=False))
            cot = example["cot_content"].replace("A: Let's think step by step.", TIGER_ANSWER_CUE)
            block = f"Question:\n{example['question']}\nOptions:\n{options}{cot}\n\n"
            assert block in prompt


def _options(sample: Sample) -> str:
    return "\n".join(
        f"{c}. {o}" for c, o in zip(sample.inputs["letters"], sample.inputs["options"], strict=True)
    )


@needs_real
def test_tiger_needs_the_validation_split_next_to_the_data():
    with pytest.raises(DataError, match="tiger-5shot needs the validation split"):
        MMLUPro("tiger-5shot").load(GPT4O_GLOB)


def test_tiger_prompt_needs_load_first():
    sample = MMLUPro().load("builtin")[0]
    with pytest.raises(RuntimeError, match="load"):
        MMLUPro("tiger-5shot").requests(sample, Sampling(), 1)


def test_tiger_prompt_from_builtin_never_shows_the_item_itself():
    task = MMLUPro("tiger-5shot")
    samples = task.load("builtin")
    for sample in samples:
        prompt = task.tiger_prompt(sample)
        assert prompt.count(f"Question:\n{sample.inputs['question']}\n") == 1
        assert prompt.endswith(TIGER_ANSWER_CUE)


# --- guess credit -------------------------------------------------------------------------------


def test_guess_credit_is_off_by_default():
    task = MMLUPro()
    sample = task.load("builtin")[0]
    score = task.score(sample, Completion(key="k", text="no idea"), 0)
    assert (score.outcome, score.value, score.details) == (Outcome.UNPARSED, 0.0, {})


def test_guess_credit_is_deterministic_and_never_changes_the_outcome():
    samples = MMLUPro().load("builtin")
    first, second = MMLUPro(guess_unparsed=True), MMLUPro(guess_unparsed=True, guess_seed=12345)
    guesses = []
    for sample in samples:
        for repeat in range(4):
            a = first.score(sample, Completion(key="k", text="no idea"), repeat)
            b = second.score(sample, Completion(key="k", text="no idea"), repeat)
            assert a == b
            assert (a.outcome, a.value, a.extracted) == (Outcome.UNPARSED, 0.0, None)
            assert a.details["guess"] in sample.inputs["letters"]
            assert a.details["guess_correct"] == (a.details["guess"] == sample.target)
            guesses.append(a.details["guess"])
    assert len(set(guesses)) > 3  # not a constant
    other_seed = MMLUPro(guess_unparsed=True, guess_seed=1)

    def guesses_of(task: MMLUPro) -> list[str]:
        return [task.score(s, Completion(key="k", text="no idea"), 0).details["guess"] for s in samples]

    assert guesses_of(other_seed) != guesses_of(first)


def test_guess_credit_applies_to_truncations_but_not_errors():
    task = MMLUPro(guess_unparsed=True)
    sample = task.load("builtin")[0]
    truncated = task.score(sample, Completion(key="k", text="Let me", finish_reason="length"), 0)
    assert truncated.outcome is Outcome.TRUNCATED and "guess" in truncated.details
    error = task.score(sample, Completion(key="k", text="", error="boom", finish_reason="error"), 0)
    assert error.outcome is Outcome.ERROR and error.details == {}
    answered = task.score(sample, Completion(key="k", text="The answer is (A)"), 0)
    assert answered.details == {}


# --- describe -----------------------------------------------------------------------------------


def test_describe_records_the_configuration(tmp_path: Path):
    task = MMLUPro("tiger-5shot", extractor="tiger-2024-05", guess_unparsed=True)
    before = task.describe()
    assert before["data"] == {"dataset": HUB_DATASET, "revision": HUB_REVISION}
    assert before["extractor"] == {"name": "tiger-2024-05", "version": "ff991b5"}
    assert (before["variant"], before["n_shots"], before["guess_unparsed"], before["guess_seed"]) == (
        "tiger-5shot",
        5,
        True,
        12345,
    )
    card = MMLUPro()
    card.load("builtin")
    described = card.describe()
    assert described["version"] == card.version
    assert described["extractor"] == {"name": "card", "version": "1"}
    assert described["n_shots"] == 0
    assert len(described["data_fingerprint"]) == 64
    path = write_jsonl(tmp_path / "test.jsonl", [row(1, ["a", "b", "c", "d"], "A", 0)])
    card.load(path)
    assert card.describe()["data"] == {"source": path}
    assert card.describe()["data_fingerprint"] != described["data_fingerprint"]


def test_limit_keeps_the_first_samples_with_their_few_shot_examples():
    full_task, limited_task = MMLUPro("tiger-5shot"), MMLUPro("tiger-5shot")
    full = full_task.load("builtin")
    limited = limited_task.load("builtin", limit=3)
    assert [s.id for s in limited] == [s.id for s in full[:3]]
    assert [limited_task.tiger_prompt(s) for s in limited] == [full_task.tiger_prompt(s) for s in full[:3]]


# --- real data: the published GPT-4o outputs ----------------------------------------------------


@pytest.fixture(scope="module")
def gpt4o_rows() -> dict[str, dict]:
    return {str(r["question_id"]): r for r in load_rows(GPT4O_GLOB, "test")}  # under @needs_real


def score_gpt4o(extractor: str, data: str, rows: dict[str, dict]) -> tuple[Counter, list]:
    task = MMLUPro(extractor=extractor)
    samples = task.load(data)
    assert len(samples) == 12032
    scores = [task.score(s, Completion(key=f"gpt4o/{s.id}", text=rows[s.id]["response"]), 0) for s in samples]
    return Counter(score.outcome for score in scores), scores


@needs_real
def test_gpt4o_2024_05_with_its_own_rows(gpt4o_rows: dict[str, dict]):
    outcomes, scores = score_gpt4o("tiger-2024-05", GPT4O_GLOB, gpt4o_rows)
    assert outcomes[Outcome.CORRECT] == 8671
    assert outcomes[Outcome.UNPARSED] == 571
    assert outcomes[Outcome.WRONG] == 12032 - 8671 - 571
    mismatched = [s.sample_id for s in scores if s.extracted != gpt4o_rows[s.sample_id]["pred"]]
    assert mismatched == []


@needs_real
def test_gpt4o_three_stage_extractor_with_its_own_rows(gpt4o_rows: dict[str, dict]):
    outcomes, _ = score_gpt4o("tiger", GPT4O_GLOB, gpt4o_rows)
    assert outcomes[Outcome.CORRECT] == 8909


@needs_real
def test_gpt4o_against_the_newer_dataset_copy(gpt4o_rows: dict[str, dict]):
    outcomes, scores = score_gpt4o("tiger-2024-05", str(TEST_PARQUET), gpt4o_rows)
    assert outcomes[Outcome.CORRECT] == 8670
    assert outcomes[Outcome.UNPARSED] == 571
    by_id = {s.sample_id: s for s in scores}
    assert (by_id["3983"].extracted, by_id["3983"].outcome) == ("B", Outcome.WRONG)  # gold moved B -> C
    outcomes, _ = score_gpt4o("tiger", str(TEST_PARQUET), gpt4o_rows)
    assert outcomes[Outcome.CORRECT] == 8908


@needs_real
def test_newer_copy_answer_index_disagreement_is_noted():
    samples = {s.id: s for s in MMLUPro().load(str(TEST_PARQUET))}
    assert samples["3983"].target == "C"
    assert samples["3983"].metadata == {"answer_index_disagrees": 1}
    assert sum(bool(s.metadata) for s in samples.values()) == 1


@needs_real
def test_gpt4o_official_guess_credit_is_about_one_in_ten(gpt4o_rows: dict[str, dict]):
    task = MMLUPro(extractor="tiger-2024-05", guess_unparsed=True)
    samples = task.load(GPT4O_GLOB)
    scores = [task.score(s, Completion(key="k", text=gpt4o_rows[s.id]["response"]), 0) for s in samples]
    guessed = [s for s in scores if "guess" in s.details]
    assert len(guessed) == 571
    hits = sum(s.details["guess_correct"] for s in guessed)
    letters = {s.id: len(s.inputs["letters"]) for s in samples}
    expected = sum(1 / letters[s.sample_id] for s in guessed)  # ≈57; the official run realised 59
    assert abs(hits - expected) < 4 * expected**0.5
    assert sum(s.value for s in scores) == 8671  # the credit is reported separately, never in value
