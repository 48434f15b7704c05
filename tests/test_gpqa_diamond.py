"""GPQA Diamond task: shuffling, prompts, extraction, scoring and loading.

Only made-up questions are used here: the GPQA authors ask that real questions never appear in
plain text online, so no real row is written, read or printed by these tests.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from hub_address import reachable_hub

from evals.schema import Completion, Outcome, Sample, Sampling, Task
from tasks import gpqa_diamond
from tasks.data import DataError
from tasks.gpqa_diamond import HUB_CONFIG, HUB_DATASET, LETTERS, ZIP_PASSWORD, GPQADiamond, extract_letter

COLUMNS = (
    "Record ID",
    "Question",
    "Correct Answer",
    "Incorrect Answer 1",
    "Incorrect Answer 2",
    "Incorrect Answer 3",
    "Subdomain",
    "High-level domain",
)


def fake_row(n: int, **overrides: str) -> dict[str, str]:
    row = {
        "Record ID": f"rec{n:04d}",
        "Question": f"Fake question {n}: which colour is the sky on a clear day?",
        "Correct Answer": f"Blue {n}",
        "Incorrect Answer 1": f"Green {n}",
        "Incorrect Answer 2": f"Red {n}",
        "Incorrect Answer 3": f"Yellow {n}",
        "Subdomain": "Optics",
        "High-level domain": ("Physics", "Chemistry", "Biology")[n % 3],
    }
    row.update(overrides)
    return row


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, "Explanation"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**r, "Explanation": "Made up."} for r in rows)
    return path


def encrypted_zip(tmp_path: Path, rows: list[dict[str, str]], password: str, member: str) -> str:
    """A ZipCrypto archive like the authors' dataset.zip, built with Info-ZIP `zip -P`."""
    if shutil.which("zip") is None:
        pytest.skip("the `zip` command-line tool is needed to build an encrypted test archive")
    root = tmp_path / "archive"
    csv_path = root / member
    csv_path.parent.mkdir(parents=True)
    write_csv(csv_path, rows)
    archive = tmp_path / "dataset.zip"
    subprocess.run(["zip", "-q", "-P", password, str(archive), member], cwd=root, check=True)
    return str(archive)


def completion(text: str, **kwargs) -> Completion:
    return Completion(key="k", text=text, **kwargs)


@pytest.fixture()
def builtin() -> tuple[GPQADiamond, list[Sample]]:
    task = GPQADiamond()
    return task, task.load("builtin")


# --- construction -------------------------------------------------------------------------------


def test_construction_and_default_sampling():
    task = GPQADiamond()
    assert isinstance(task, Task)
    assert (task.name, task.variant, task.shuffle_seed) == ("gpqa_diamond", "card", 0)
    assert task.default_sampling == Sampling(
        temperature=1.0, top_p=0.95, top_k=64, max_tokens=32768, thinking=True
    )
    assert (GPQADiamond.public_text, GPQADiamond.headline) == (False, "mean")
    assert list(GPQADiamond.variants) == ["card"] and GPQADiamond.variants["card"].startswith("protocol: ")
    assert GPQADiamond(shuffle_seed=3).shuffle_seed == 3


def test_limit_keeps_the_first_rows_and_fingerprints_them():
    everything, first_two = GPQADiamond(), GPQADiamond()
    samples = everything.load("builtin")
    assert [s.id for s in first_two.load("builtin", limit=2)] == [s.id for s in samples[:2]]
    assert first_two.data_fingerprint != everything.data_fingerprint


def test_unknown_variant_lists_the_choices():
    with pytest.raises(ValueError, match="choose one of: card"):
        GPQADiamond("five-shot")


# --- shuffling ----------------------------------------------------------------------------------


def test_gold_letters_are_spread_evenly(tmp_path: Path):
    task = GPQADiamond()
    samples = task.load(write_jsonl(tmp_path / "rows.jsonl", [fake_row(n) for n in range(200)]))
    golds = Counter(task.gold_letter(s.id, r) for s in samples for r in range(4))
    assert set(golds) == set(LETTERS)
    for letter in LETTERS:
        assert 0.20 <= golds[letter] / 800 <= 0.30, golds


def test_permutations_do_not_depend_on_instance_row_order_or_global_rng(tmp_path: Path):
    rows = [fake_row(n) for n in range(50)]
    first, second = GPQADiamond(), GPQADiamond()
    forward = first.load(write_jsonl(tmp_path / "forward.jsonl", rows))
    backward = second.load(write_jsonl(tmp_path / "backward.jsonl", rows[::-1]))
    assert first.data_fingerprint == second.data_fingerprint
    keys = [(s.id, r) for s in forward for r in range(4)]
    expected = {key: first.permutation(*key) for key in keys}
    random.seed(12345)
    state = random.getstate()
    assert {key: second.permutation(*key) for key in reversed(keys)} == expected
    assert random.getstate() == state  # the global RNG is neither used nor advanced
    by_id = {s.id: s for s in backward}
    for s in forward:
        assert [r.messages for r in first.requests(s, Sampling(), 4)] == [
            r.messages for r in second.requests(by_id[s.id], Sampling(), 4)
        ]
    assert all(sorted(p) == [0, 1, 2, 3] for p in expected.values())


def test_another_shuffle_seed_changes_the_permutations():
    base, other = GPQADiamond(), GPQADiamond(shuffle_seed=1)
    keys = [(f"rec{n:04d}", r) for n in range(50) for r in range(4)]
    changed = sum(base.permutation(*key) != other.permutation(*key) for key in keys)
    assert changed > len(keys) * 0.8  # 23 of 24 orders differ by chance


# --- prompts and requests -----------------------------------------------------------------------


def test_prompt_renders_the_permuted_choices_and_gold_points_at_the_correct_answer(builtin):
    task, samples = builtin
    for sample in samples:
        for repeat in range(4):
            prompt = task.prompt(sample, repeat)
            permutation = task.permutation(sample.id, repeat)
            lines = prompt.split("\n")
            choices = sample.inputs["choices"]
            assert lines[-4:] == [f"{L}) {choices[i]}" for L, i in zip(LETTERS, permutation, strict=True)]
            gold = task.gold_letter(sample.id, repeat)
            assert f"\n{gold}) {choices[0]}" in prompt
            assert lines[-6] == sample.inputs["question"]


def test_prompt_is_the_simple_evals_template(builtin):
    task, samples = builtin
    sample = samples[0]
    choices = sample.inputs["choices"]
    shown = [choices[i] for i in task.permutation(sample.id, 0)]
    assert task.prompt(sample, 0) == (
        "Answer the following multiple choice question. The last line of your response should be of "
        "the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. "
        "Think step by step before answering.\n\n"
        f"{sample.inputs['question']}\n\nA) {shown[0]}\nB) {shown[1]}\nC) {shown[2]}\nD) {shown[3]}"
    )


def test_requests_have_one_key_seed_and_choice_order_per_repeat(builtin):
    task, samples = builtin
    sample = samples[0]
    requests = task.requests(sample, Sampling(seed=7, temperature=1.0), 4)
    assert [r.key for r in requests] == [f"gpqa_diamond/card/{sample.id}/{r}" for r in range(4)]
    assert [r.sampling.seed for r in requests] == [7, 8, 9, 10]
    assert [r.repeat for r in requests] == [0, 1, 2, 3]
    for r in requests:
        (message,) = r.messages
        assert (message.role, r.prompt, r.sample_id) == ("user", None, sample.id)
        assert message.text == task.prompt(sample, r.repeat)
    assert len({r.messages for r in requests}) > 1  # this sample's orders differ between repeats
    with pytest.raises(ValueError, match="repeats"):
        task.requests(sample, Sampling(), 0)


# --- extraction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Reasoning...\nAnswer: B", ("B", "answer_colon")),
        ("Answer: A\nOn reflection that is wrong.\nAnswer: C", ("C", "answer_colon")),
        ("**Answer: C**", ("C", "answer_colon")),
        ("Answer: **D**", ("D", "answer_colon")),
        ("**Answer:** B", ("B", "answer_colon")),
        ("**Answer**: A", ("A", "answer_colon")),
        ("answer: c", ("C", "answer_colon")),
        ("Final answer: (b).", ("B", "answer_colon")),
        ("Answer: $D$", ("D", "answer_colon")),
        ("Answer : (A)", ("A", "answer_colon")),
        ("So the result is \\boxed{C}.", ("C", "boxed")),
        ("Answer: B at first, but \\boxed{\\text{D}}", ("D", "boxed")),
        ("Therefore the answer is (A).", ("A", "answer_is")),
        ("The answer is: **B**", ("B", "answer_is")),
        ("Answer: D\n\nThe answer is (B)", ("B", "answer_is")),
        ("Answer: I think it is C", None),
        ("The answer: a mixture of both", None),
        ("Answer: Definitely", None),
        ("Answer: E", None),
        ("Answer: B\nAnswer: E", None),  # the last statement is out of range: no earlier fallback
        ("I cannot decide between A and B.", None),
        ("", None),
    ],
)
def test_extract_letter(text: str, expected: tuple[str, str] | None):
    assert extract_letter(text) == expected


def test_extraction_stays_linear_on_long_runs():
    for filler in (" " * 50_000, "*" * 50_000, "$ " * 25_000):
        for cue in ("Answer:", "the answer is", "\\boxed{"):
            assert extract_letter(cue + filler + "no letter here") is None


# --- scoring ------------------------------------------------------------------------------------


def letter_for(task: GPQADiamond, sample: Sample, repeat: int, original: int) -> str:
    return LETTERS[task.permutation(sample.id, repeat).index(original)]


def test_correct_and_wrong_answers_carry_the_original_choice_index(builtin):
    task, samples = builtin
    sample = samples[0]
    for repeat in range(4):
        gold = task.gold_letter(sample.id, repeat)
        right = task.score(sample, completion(f"Answer: {gold}"), repeat)
        assert (right.outcome, right.value, right.extracted) == (Outcome.CORRECT, 1.0, "0")
        assert right.details == {
            "permutation": list(task.permutation(sample.id, repeat)),
            "gold": gold,
            "letter": gold,
        }
        assert right.flags == ()
        wrong_letter = letter_for(task, sample, repeat, 2)
        wrong = task.score(sample, completion(f"Answer: {wrong_letter}"), repeat)
        assert (wrong.outcome, wrong.value, wrong.extracted) == (Outcome.WRONG, 0.0, "2")
        assert wrong.details["letter"] == wrong_letter
    assert sample.target == "0"


def test_extracted_answer_is_comparable_across_repeats(builtin):
    """The same chosen answer text gives the same `extracted` under different orders."""
    task, samples = builtin
    sample = next(s for s in samples if task.permutation(s.id, 0) != task.permutation(s.id, 1))
    scores = [task.score(sample, completion(f"Answer: {letter_for(task, sample, r, 3)}"), r) for r in (0, 1)]
    assert scores[0].details["letter"] != scores[1].details["letter"]
    assert scores[0].extracted == scores[1].extracted == "3"


def test_answer_in_the_thought_block_is_ignored(builtin):
    task, samples = builtin
    sample = samples[0]
    gold = task.gold_letter(sample.id, 0)
    score = task.score(sample, completion("I am done.", reasoning=f"Answer: {gold}"), 0)
    assert (score.outcome, score.value, score.extracted) == (Outcome.UNPARSED, 0.0, None)
    assert score.details["gold"] == gold


def test_fallback_patterns_are_flagged(builtin):
    task, samples = builtin
    sample = samples[0]
    gold = task.gold_letter(sample.id, 0)
    boxed = task.score(sample, completion(f"\\boxed{{{gold}}}"), 0)
    assert (boxed.outcome, boxed.flags) == (Outcome.CORRECT, ("boxed_fallback",))
    said = task.score(sample, completion(f"the answer is ({gold})"), 0)
    assert (said.outcome, said.flags) == (Outcome.CORRECT, ("answer_is_fallback",))


@pytest.mark.parametrize(
    ("kwargs", "outcome"),
    [
        ({"text": "Let me think about"}, Outcome.UNPARSED),
        ({"text": "Answer: E"}, Outcome.UNPARSED),
        ({"text": "Let me think about", "finish_reason": "length"}, Outcome.TRUNCATED),
        ({"text": "Answer: A", "thought_open": True}, Outcome.TRUNCATED),
        ({"text": "", "finish_reason": "error", "error": "CUDA out of memory"}, Outcome.ERROR),
        ({"text": "", "finish_reason": "timeout"}, Outcome.TIMEOUT),
    ],
)
def test_unanswered_outcomes(builtin, kwargs: dict, outcome: Outcome):
    task, samples = builtin
    score = task.score(samples[0], Completion(key="k", **kwargs), 1)
    assert (score.outcome, score.value, score.extracted) == (outcome, 0.0, None)
    assert score.details["gold"] == task.gold_letter(samples[0].id, 1)


# --- loading ------------------------------------------------------------------------------------


def test_builtin_smoke_data(builtin):
    task, samples = builtin
    assert 6 <= len(samples) <= 8
    assert len({s.id for s in samples}) == len(samples)
    assert {s.category for s in samples} == {"Physics", "Chemistry", "Biology"}
    assert all(len(s.inputs["choices"]) == 4 and s.target == "0" for s in samples)
    assert all(c == c.strip() and c for s in samples for c in s.inputs["choices"])
    assert any("[" in c for s in samples for c in s.inputs["choices"])  # brackets are kept
    assert task.describe()["data"] == {"source": "builtin"}
    assert task.data_fingerprint


def test_encrypted_zip_with_the_authors_password(tmp_path: Path):
    rows = [fake_row(1), fake_row(2, **{"Correct Answer": "  [1, 2] (closed) \n"})]
    archive = encrypted_zip(tmp_path, rows, ZIP_PASSWORD, "dataset/gpqa_diamond.csv")
    task = GPQADiamond()
    samples = task.load(archive)
    assert [s.id for s in samples] == ["rec0001", "rec0002"]
    assert samples[1].inputs["choices"] == ["[1, 2] (closed)", "Green 2", "Red 2", "Yellow 2"]
    assert samples[0].inputs["question"] == rows[0]["Question"]
    assert (samples[0].category, samples[0].metadata) == ("Chemistry", {"subdomain": "Optics"})
    described = task.describe()
    assert described["data"]["source"] == archive
    assert len(described["data"]["archive_sha256"]) == 64
    same_rows = GPQADiamond()
    same_rows.load(write_jsonl(tmp_path / "rows.jsonl", rows))
    assert described["data_fingerprint"] == same_rows.data_fingerprint == task.data_fingerprint


def test_zip_password_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    archive = encrypted_zip(tmp_path, [fake_row(1)], "another-secret", "dataset/gpqa_diamond.csv")
    with pytest.raises(DataError, match=r"wrong password.*GPQA_ZIP_PASSWORD"):
        GPQADiamond().load(archive)
    monkeypatch.setenv("GPQA_ZIP_PASSWORD", "another-secret")
    assert [s.id for s in GPQADiamond().load(archive)] == ["rec0001"]


def test_zip_without_the_diamond_member(tmp_path: Path):
    archive = encrypted_zip(tmp_path, [fake_row(1)], ZIP_PASSWORD, "dataset/gpqa_main.csv")
    with pytest.raises(DataError, match=r"no member dataset/gpqa_diamond\.csv.*dataset\.zip"):
        GPQADiamond().load(archive)


def test_zip_that_python_cannot_decrypt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    archive = encrypted_zip(tmp_path, [fake_row(1)], ZIP_PASSWORD, "dataset/gpqa_diamond.csv")

    def aes(*args, **kwargs):
        raise NotImplementedError("That compression method is not supported")

    monkeypatch.setattr(gpqa_diamond.zipfile.ZipFile, "read", aes)
    with pytest.raises(DataError, match="unzip it with another tool"):
        GPQADiamond().load(archive)


def test_csv_file_and_directory(tmp_path: Path):
    tricky = 'Which colour, in "daylight", is the sky?\nPick one.'
    rows = [fake_row(1, Question=tricky), fake_row(2)]
    path = write_csv(tmp_path / "gpqa_diamond.csv", rows)
    samples = GPQADiamond().load(str(path))
    assert samples[0].inputs["question"] == tricky
    assert [s.inputs["choices"][0] for s in samples] == ["Blue 1", "Blue 2"]
    assert [s.id for s in GPQADiamond().load(str(tmp_path))] == ["rec0001", "rec0002"]


def test_missing_record_id_falls_back_to_a_stable_question_hash(tmp_path: Path):
    rows = [fake_row(1, **{"Record ID": ""}), fake_row(2)]
    first = GPQADiamond().load(write_jsonl(tmp_path / "a.jsonl", rows))
    again = GPQADiamond().load(write_jsonl(tmp_path / "b.jsonl", rows[::-1]))
    assert first[0].id.startswith("q") and len(first[0].id) == 17
    assert first[0].id == again[1].id
    assert first[1].id == "rec0002"


def test_bad_rows_are_data_errors(tmp_path: Path):
    no_answer = fake_row(1)
    del no_answer["Incorrect Answer 3"]
    with pytest.raises(DataError, match="row rec0001: empty or missing Incorrect Answer 3"):
        GPQADiamond().load(write_jsonl(tmp_path / "a.jsonl", [no_answer]))
    with pytest.raises(DataError, match=r"GPQA rows share ids \['rec0001'\]"):
        GPQADiamond().load(write_jsonl(tmp_path / "b.jsonl", [fake_row(1), fake_row(1)]))


# --- hub ----------------------------------------------------------------------------------------


def assert_gated_message(error: DataError) -> None:
    message = str(error)
    assert "\n" not in message
    hints = ("gated", "huggingface-cli login", "HF_TOKEN", "dataset.zip", "--data")
    for part in (HUB_DATASET, HUB_CONFIG, *hints):
        assert part in message


def test_hub_offline_gives_the_gated_dataset_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(DataError) as info:
        GPQADiamond().load()
    assert_gated_message(info.value)


def test_hub_gated_error_gives_the_hint(monkeypatch: pytest.MonkeyPatch):
    import datasets

    calls = []

    def gated(*args, **kwargs):
        calls.append((args, kwargs))
        raise datasets.exceptions.DatasetNotFoundError(
            f"Dataset '{HUB_DATASET}' is a gated dataset on the Hub. You must be authenticated to access it."
        )

    monkeypatch.setattr(datasets, "load_dataset", gated)
    task = GPQADiamond()
    with reachable_hub(monkeypatch), pytest.raises(DataError, match="is a gated dataset") as info:
        task.load()
    assert_gated_message(info.value)
    assert calls == [((HUB_DATASET, HUB_CONFIG), {"split": "train", "revision": "main"})]
    assert task.describe()["data"] == {
        "dataset": HUB_DATASET,
        "config": HUB_CONFIG,
        "split": "train",
        "revision": "main (unpinned)",
    }
