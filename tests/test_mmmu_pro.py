"""MMMU-Pro task: prompts and image order, the official parser, scoring, loading, and `evals score`
on the authors' published GPT-4o outputs (the shared real data, tests/realdata.py; skipped with
a reason where absent)."""

from __future__ import annotations

import ast
import hashlib
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from realdata import SHARED

import tasks.mmmu_pro as mmmu_pro
from evals.cli import main
from evals.records import RowResult, SampleRecord
from evals.run_dir import load_run_dir
from evals.schema import Completion, ImagePart, Outcome, Sample, Sampling, Task, TextPart
from tasks.data import DataError
from tasks.mmmu_pro import HUB_DATASET, HUB_REVISION, MissingImage, MMMUPro, parse_choice

REAL = SHARED / "realdata" / "mmmu_pro"
STANDARD_OUTPUTS = REAL / "gpt-4o_standard10opt_cot.jsonl"
VISION_OUTPUTS = REAL / "gpt-4o_vision_cot.jsonl"
needs_real = pytest.mark.realdata(STANDARD_OUTPUTS, VISION_OUTPUTS)

COT_STANDARD = (
    "Answer the preceding multiple choice question. The last line of your response should be of the "
    "following format: 'Answer: $LETTER' (without quotes) where LETTER is one of options. Think step by "
    "step before answering."
)
COT_VISION = (
    "Write out the multiple-choice question in the image and then solve it. The last line of your "
    "response should be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one "
    "of options. Think step by step before answering."
)
DIRECT_STANDARD = "Answer with the option letter from the given choices directly."
DIRECT_VISION = (
    "Answer with the option letter from the given choices directly. The last line of your response "
    "should be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of options."
)


def png(colour: str = "red", size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def standard_row(row_id: str = "test_Math_1", **changes) -> dict:
    row = {
        "id": row_id,
        "question": "What is in <image 1>?",
        "options": str(["a cat", "a dog", "a bird"]),
        "answer": "B",
        "subject": "Math",
        "image_1": {"bytes": png(), "path": None},
    }
    return {**row, **changes}


def write_jsonl(path: Path, rows: list[dict]) -> str:
    """Rows as JSON lines; encoded images become PNG files beside it, named by relative path."""
    lines = []
    for row in rows:
        row = dict(row)
        for key, value in row.items():
            if isinstance(value, dict) and isinstance(value.get("bytes"), bytes):
                name = f"{row['id'] or 'row'}_{key}.png"
                (path.parent / name).write_bytes(value["bytes"])
                row[key] = name
        lines.append(json.dumps(row) + "\n")
    path.write_text("".join(lines))
    return str(path)


def by_id(samples: list[Sample]) -> dict[str, Sample]:
    return {s.id: s for s in samples}


def done(text: str, **fields) -> Completion:
    return Completion(key="k", text=text, **fields)


# --- construction -------------------------------------------------------------------------------


def test_variants_prompts_and_default_sampling():
    task = MMMUPro()
    assert isinstance(task, Task)
    assert (task.name, task.variant, task.prompt, task.public_text) == ("mmmu_pro", "overall", "cot", True)
    assert list(task.variants) == ["standard-10", "vision", "overall"]
    assert all(meaning.startswith("setting: ") for meaning in task.variants.values())
    assert task.headline == "macro_by_category"  # the paper's mean of the two settings
    assert MMMUPro("vision").headline == MMMUPro("standard-10").headline == "mean"
    assert task.default_sampling == Sampling(
        temperature=1.0, top_p=0.95, top_k=64, max_tokens=32768, thinking=True
    )
    assert mmmu_pro.PROMPTS == {
        "cot": {"standard-10": COT_STANDARD, "vision": COT_VISION},
        "direct": {"standard-10": DIRECT_STANDARD, "vision": DIRECT_VISION},
    }
    with pytest.raises(ValueError, match="standard-10, vision, overall"):
        MMMUPro("standard-4")
    with pytest.raises(ValueError, match="cot, direct"):
        MMMUPro(prompt="fewshot")


def test_describe_records_the_configuration():
    task = MMMUPro("vision", prompt="direct", max_soft_tokens=1120, guess_unparsed=True, guess_seed=3)
    info = task.describe()
    assert info["data"] == {
        "dataset": HUB_DATASET,
        "configs": ["vision"],
        "split": "test",
        "revision": HUB_REVISION,
    }
    assert (info["variant"], info["prompt"]["name"], info["max_soft_tokens"]) == ("vision", "direct", 1120)
    assert (info["guess_unparsed"], info["guess_seed"]) == (True, 3)
    task.load("builtin")
    info = task.describe()
    assert info["data"] == {"source": "builtin"}
    assert len(info["data_fingerprint"]) == 64 and info["images_loaded"] is True


# --- builtin data, prompts and image order ------------------------------------------------------


def test_builtin_loads_every_variant():
    standard = MMMUPro("standard-10").load("builtin")
    vision = MMMUPro("vision").load("builtin")
    overall = MMMUPro().load("builtin")
    assert [s.id for s in standard] == ["test_Math_1", "test_Design_1", "test_Physics_1", "test_Geography_1"]
    assert [s.category for s in standard] == ["Math", "Design", "Physics", "Geography"]
    assert [s.id for s in vision] == ["test_Math_1", "test_Geography_1", "test_Physics_1"]
    # overall: prefixed ids, setting as category, the two settings alternate (a --limit stays balanced)
    assert [s.id for s in overall[:4]] == [
        "standard-10/test_Math_1",
        "vision/test_Math_1",
        "standard-10/test_Design_1",
        "vision/test_Geography_1",
    ]
    assert [s.category for s in overall] == ["standard-10", "vision"] * 3 + ["standard-10"]
    full_task, limited_task = MMMUPro(), MMMUPro()
    full_task.load("builtin")
    assert [s.id for s in limited_task.load("builtin", limit=4)] == [s.id for s in overall[:4]]
    assert None is not limited_task.data_fingerprint != full_task.data_fingerprint
    assert overall[0].metadata["subject"] == "Math" and overall[0].metadata["dataset_id"] == "test_Math_1"
    for sample in overall:
        for part in MMMUPro().prompt_images(sample):
            assert part.path and Path(part.path).is_file() and Path(part.path).stat().st_size < 5000


def test_standard_prompt_text_and_images_before_text():
    task = MMMUPro("standard-10")
    math = by_id(task.load("builtin"))["test_Math_1"]
    (request,) = task.requests(math, task.default_sampling, 1)
    assert request.key == "mmmu_pro/standard-10/cot/test_Math_1/0"
    (message,) = request.messages
    assert message.role == "user"
    assert [p.type for p in message.content] == ["image", "text"]
    assert message.content[1] == TextPart(
        "How many red circles are there in <image>?\nA. 2\nB. 3\nC. 4\nD. 5\n" + COT_STANDARD
    )
    direct = MMMUPro("standard-10", prompt="direct")
    assert direct.prompt_text(math).endswith("D. 5\n" + DIRECT_STANDARD)


def test_images_follow_markers_in_question_and_options_with_repeats():
    task = MMMUPro("standard-10")
    samples = by_id(task.load("builtin"))
    design = samples["test_Design_1"]  # options name <image 3>, <image 2>, <image 4> in that order
    assert design.inputs["image_order"] == [1, 3, 2, 4]
    names = [Path(p.path).name for p in task.prompt_images(design)]
    assert names == ["design_1_a.png", "design_1_c.png", "design_1_b.png", "design_1_d.png"]
    assert task.prompt_text(design).startswith(
        "Which option shows the same shape as <image>, only in another colour?\n"
        "A. <image>\nB. <image>\nC. <image>\nD. None of the shapes shown\n"
    )
    physics = samples["test_Physics_1"]  # <image 1>, <image 2>, <image 1>
    parts = task.requests(physics, task.default_sampling, 1)[0].messages[0].content
    assert [Path(p.path).name for p in parts[:-1]] == [
        "physics_1_a.png",
        "physics_1_b.png",
        "physics_1_a.png",
    ]
    assert isinstance(parts[-1], TextPart) and "<image 1>" not in parts[-1].text
    assert parts[-1].text.count("<image>") == 3


def test_markers_with_spaces_and_columns_without_markers(tmp_path: Path):
    rows = [
        standard_row("a", question="Compare <image  2> with <image 1>.", image_2={"bytes": png("blue")}),
        standard_row("b", question="Which animal is shown?", image_2={"bytes": png("blue")}),
    ]
    samples = by_id(MMMUPro("standard-10").load(write_jsonl(tmp_path / "standard.jsonl", rows)))
    assert samples["a"].inputs["image_order"] == [2, 1]
    assert samples["b"].inputs["image_order"] == [1, 2]  # no marker: every image, in column order


def test_vision_request_is_one_image_then_the_instruction():
    task = MMMUPro("vision")
    sample = by_id(task.load("builtin"))["test_Math_1"]
    content = task.requests(sample, task.default_sampling, 2)[1].messages[0].content
    assert [p.type for p in content] == ["image", "text"]
    assert Path(content[0].path).name == "vision_math_1.png"
    assert content[1].text == COT_VISION
    assert MMMUPro("vision", prompt="direct").prompt_text(sample) == DIRECT_VISION


def test_vision_rows_without_options_use_ten_letters():
    sample = by_id(MMMUPro("vision").load("builtin"))["test_Physics_1"]
    assert sample.inputs["options"] is None and sample.inputs["letters"] == "ABCDEFGHIJ"
    assert parse_choice("It is the first one.", sample.inputs["letters"], None) is None


# --- the official parser ------------------------------------------------------------------------

OPTIONS = ["Political instability", "The spread of pathogens", "New trade routes", "Climate change"]


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("Reasoning...\nAnswer: B", ("B", "answer")),
        ("Answer: A at first.\nOn reflection:\nAnswer: C", ("C", "answer")),  # the last "Answer:"
        ("Answer: Cannot tell", ("C", "answer")),  # any option letter in the rest counts
        ("**Answer:** D", ("D", "answer")),
        ("Answer: A or B? (B) is right", ("B", "bracket")),  # two letters: heuristics on the whole text
        ("answer: b", None),  # case-sensitive cue, lower-case letters never count
        ("(A) is wrong and (C) is right, not (A)", ("A", "bracket")),  # last occurrence wins
        ("I pick D because C does not fit", ("C", "letter_space")),  # " C " occurs after " D "
        ("A.:", ("A", "letter_dot")),  # ends stripped kind by kind: "." first, then ":"
        ("see A.C.x", ("A", "letter_dot")),  # no " X " occurrence: the earliest letter
        ("'B'", ("B", "letter_space")),
        ("I think the best fit is the spread of pathogens here", ("B", "content")),
        ("Both climate change and then political instability matter", ("A", "content")),
        ("the spread of pathogens", None),  # content only counts in responses of more than 5 words
        ("Answer: E", None),  # a letter that is not an option
        ("", None),
    ],
)
def test_parse_choice_official_semantics(response: str, expected: tuple[str, str] | None):
    assert parse_choice(response, "ABCD", OPTIONS) == expected


def test_parse_choice_letters_beyond_j():
    letters = "ABCDEFGHIJKL"
    assert parse_choice("Answer: L", letters, [str(i) for i in range(12)]) == ("L", "answer")


# --- scoring ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def math_sample() -> Sample:
    return by_id(MMMUPro("standard-10").load("builtin"))["test_Math_1"]  # answer B of A-D


def test_score_outcomes_and_flags(math_sample: Sample):
    task = MMMUPro("standard-10")
    right = task.score(math_sample, done("3 circles.\nAnswer: B"), 0)
    assert (right.outcome, right.value, right.extracted, right.flags) == (Outcome.CORRECT, 1.0, "B", ())
    wrong = task.score(math_sample, done("It is (C)"), 0)
    assert (wrong.outcome, wrong.extracted, wrong.flags) == (Outcome.WRONG, "C", ("bracket_fallback",))
    assert task.score(math_sample, done("no idea"), 0).outcome == Outcome.UNPARSED
    assert task.score(math_sample, done("no idea", finish_reason="length"), 0).outcome == Outcome.TRUNCATED
    open_thought = done("", thought_open=True, reasoning="Answer: B")
    assert task.score(math_sample, open_thought, 0).outcome == Outcome.TRUNCATED
    failed = task.score(math_sample, done("Answer: B", error="boom", finish_reason="error"), 0)
    assert (failed.outcome, failed.value) == (Outcome.ERROR, 0.0)


def test_guess_is_off_by_default_and_seeded_when_on(math_sample: Sample):
    plain_score = MMMUPro("standard-10").score(math_sample, done("no idea"), 0)
    assert plain_score.details == {} and plain_score.extracted is None
    task = MMMUPro("standard-10", guess_unparsed=True, guess_seed=7)
    first = task.score(math_sample, done("no idea"), 2)
    again = MMMUPro("standard-10", guess_unparsed=True, guess_seed=7).score(math_sample, done("???"), 2)
    assert first.outcome == Outcome.UNPARSED and first.value == 0.0
    assert first.details["guess"] in "ABCD" and first.details == again.details
    assert first.details["guess_correct"] == (first.details["guess"] == "B")
    errored = task.score(math_sample, done("", error="x", finish_reason="error"), 0)
    assert errored.details == {}  # failed generations are rerun, never guessed


def test_overall_is_the_mean_of_the_settings_whatever_their_sizes():
    from evals.scoring import score_all

    task = MMMUPro()
    samples = task.load("builtin")  # 4 standard, 3 vision
    requests = [r for s in samples for r in task.requests(s, task.default_sampling, 2)]
    standard_right = {r.key: Completion(key=r.key, text="Answer: A") for r in requests}
    result = score_all(task, samples, requests, standard_right)
    per_setting = {name: s.value for name, s in result.by_category.items()}
    assert set(per_setting) == {"standard-10", "vision"}
    assert result.summary.value == pytest.approx(sum(per_setting.values()) / 2)
    pooled = sum(s.value for s in result.scores) / len(result.scores)
    if per_setting["standard-10"] != per_setting["vision"]:
        assert result.summary.value != pytest.approx(pooled)


# --- local files and the hub --------------------------------------------------------------------


def image_struct() -> pa.DataType:
    return pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def write_hub_layout(root: Path) -> dict[str, bytes]:
    """Parquet files as the hub stores them, plus a 4-option config that must be ignored."""
    images = {"std": png("red"), "std2": png("green"), "vis": png("blue", (16, 16))}
    standard = pa.table(
        {
            "id": ["test_Art_1"],
            "question": ["Which is <image 2>?"],
            "options": [str(["<image 1>", "none"])],
            "answer": ["A"],
            "subject": ["Art"],
            "image_1": pa.array([{"bytes": images["std"], "path": "x.png"}], image_struct()),
            "image_2": pa.array([{"bytes": images["std2"], "path": "y.png"}], image_struct()),
            "image_3": pa.array([None], image_struct()),
        }
    )
    vision = pa.table(
        {
            "id": ["test_Art_1"],
            "image": pa.array([{"bytes": images["vis"], "path": None}], image_struct()),
            "answer": ["A"],
            "subject": ["Art"],
        }
    )
    for folder, table in (
        ("standard (10 options)", standard),
        ("vision", vision),
        ("standard (4 options)", vision),
    ):
        (root / folder).mkdir(parents=True)
        pq.write_table(table, root / folder / "test-00000-of-00001.parquet")
    return images


def test_hub_layout_directory_keeps_encoded_bytes(tmp_path: Path):
    images = write_hub_layout(tmp_path)
    task = MMMUPro()
    samples = by_id(task.load(str(tmp_path)))
    assert sorted(samples) == ["standard-10/test_Art_1", "vision/test_Art_1"]
    standard = samples["standard-10/test_Art_1"]
    parts = task.prompt_images(standard)
    assert [p.data for p in parts] == [images["std2"], images["std"]]  # <image 2> first, then <image 1>
    assert all(isinstance(p, ImagePart) and p.path is None for p in parts)
    (vision_part,) = task.prompt_images(samples["vision/test_Art_1"])
    assert vision_part.data == images["vis"]
    single = MMMUPro("vision").load(str(tmp_path))
    assert [s.id for s in single] == ["test_Art_1"]


def test_hub_loader_is_called_per_config_at_the_pinned_revision(monkeypatch: pytest.MonkeyPatch):
    calls = []

    def fake_hub_rows(dataset, split, revision, config=None):
        calls.append((dataset, split, revision, config))
        if config == "vision":
            return [
                {"id": f"test_X_{i}", "image": Image.new("RGB", (4, 4)), "answer": "A"} for i in range(1730)
            ]
        return [standard_row(f"test_X_{i}") for i in range(1730)]

    monkeypatch.setattr(mmmu_pro, "hub_rows", fake_hub_rows)
    samples = MMMUPro().load()
    assert calls == [
        (HUB_DATASET, "test", HUB_REVISION, "standard (10 options)"),
        (HUB_DATASET, "test", HUB_REVISION, "vision"),
    ]
    assert len(samples) == 3460
    vision_image = MMMUPro().prompt_images(samples[1])[0]
    assert vision_image.data is not None and vision_image.data.startswith(b"\x89PNG")  # PIL re-encoded

    monkeypatch.setattr(mmmu_pro, "hub_rows", lambda *a, **k: [standard_row()])
    with pytest.raises(DataError, match="has 1 rows; expected 1730"):
        MMMUPro("standard-10").load()


def test_rows_without_images_load_for_scoring_only(tmp_path: Path):
    row = {k: v for k, v in standard_row().items() if k != "image_1"}
    task = MMMUPro("standard-10")
    (sample,) = task.load(write_jsonl(tmp_path / "outputs.jsonl", [row]))
    assert task.describe()["images_loaded"] is False
    (request,) = task.requests(sample, task.default_sampling, 1)
    image = request.messages[0].content[0]
    assert isinstance(image, MissingImage) and "test_Math_1 image_1" in image.path
    assert not Path(image.path).exists()  # a backend asked to generate fails the request, naming it
    identity = request.cache_identity()["messages"][0]["content"][0]  # prompts are still recorded
    assert identity == {
        "type": "image",
        "sha256": hashlib.sha256(f"missing:{image.path}".encode()).hexdigest(),
    }
    assert task.score(sample, done("Answer: B"), 0).outcome == Outcome.CORRECT


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"question": "See <image 2>."}, "names <image 2> but the row has no image_2"),
        ({"options": "['a', 'b'"}, "not a Python list literal"),
        ({"options": "[]"}, "list of 1 to 26 items"),
        ({"answer": "?"}, "is not a letter A-Z"),
        ({"id": ""}, "no id"),
        ({"image_1": "missing.png"}, "missing.png does not exist"),
        ({"image_1": 3}, "unsupported image value"),
    ],
)
def test_bad_rows_raise_data_errors(tmp_path: Path, change: dict, message: str):
    path = write_jsonl(tmp_path / "standard.jsonl", [standard_row(**change)])
    with pytest.raises(DataError, match=message):
        MMMUPro("standard-10").load(path)


def test_source_errors(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        MMMUPro().load(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no data files"):
        MMMUPro().load(str(tmp_path / "empty"))
    twice = write_jsonl(tmp_path / "standard.jsonl", [standard_row(), standard_row()])
    with pytest.raises(DataError, match=r"MMMU-Pro standard-10 rows share ids \['test_"):
        MMMUPro("standard-10").load(twice)
    unlabelled = write_jsonl(tmp_path / "rows.jsonl", [standard_row()])
    assert len(MMMUPro("standard-10").load(unlabelled)) == 1  # one setting asked: the file holds it
    with pytest.raises(DataError, match="does not say which MMMU-Pro setting"):
        MMMUPro().load(unlabelled)
    only_standard = tmp_path / "only"
    only_standard.mkdir()
    write_jsonl(only_standard / "standard.jsonl", [standard_row()])
    with pytest.raises(DataError, match="no MMMU-Pro vision rows"):
        MMMUPro().load(str(only_standard))
    bad_setting = write_jsonl(tmp_path / "mixed.jsonl", [{**standard_row(), "setting": "standard-4"}])
    with pytest.raises(DataError, match="unknown setting 'standard-4'"):
        MMMUPro().load(bad_setting)


def test_builtin_relative_image_paths_resolve_from_the_data_file(tmp_path: Path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(png())
    path = write_jsonl(tmp_path / "standard.jsonl", [standard_row(image_1="img/a.png")])
    (sample,) = MMMUPro("standard-10").load(path)
    assert MMMUPro("standard-10").prompt_images(sample)[0].path == str(tmp_path / "img" / "a.png")


# --- the published GPT-4o outputs, end to end ---------------------------------------------------


def published(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def score_cli(
    predictions: Path, variant: str, data: Path, out: Path, *extra: str
) -> tuple[RowResult, list[SampleRecord]]:
    argv = ["score", str(predictions), "--task", "mmmu_pro", "--variant", variant, "--data", str(data)]
    assert main([*argv, "--output", str(out), *extra]) == 0
    run = load_run_dir(out)
    return run.results.scored[0], run.samples


def official_random_rows(rows: list[dict]) -> set[str]:
    """Rows where the official parser fell back to random.choice (our parser finds nothing)."""
    return {r["id"] for r in rows if parse_published(r) is None}


def parse_published(row: dict) -> tuple[str, str] | None:
    options = [str(o) for o in ast.literal_eval(row["options"])]
    return parse_choice(row["response"], "ABCDEFGHIJKL"[: len(options)], options)


@needs_real
@pytest.mark.parametrize(
    ("variant", "path", "correct", "random_rows"),
    [("standard-10", STANDARD_OUTPUTS, 952, 0), ("vision", VISION_OUTPUTS, 866, 3)],
)
def test_published_gpt4o_outputs_rescore_exactly(
    variant: str, path: Path, correct: int, random_rows: int, tmp_path: Path, capsys: pytest.CaptureFixture
):
    rows = published(path)
    results, records = score_cli(path, variant, path, tmp_path)
    assert results.summary.n_samples == 1730
    assert results.summary.outcomes["correct"] == correct == sum(r["if_right"] for r in rows)
    assert results.summary.outcomes.get("unparsed", 0) == random_rows
    assert "gold answer differs" not in capsys.readouterr().out
    stored = {r["id"]: r["pred_indexs"] for r in rows}
    fallback = official_random_rows(rows)
    assert len(fallback) == random_rows
    ours = {r.id: r.extracted for r in records}
    assert {i: ours[i] for i in stored if i not in fallback} == {
        i: stored[i] for i in stored if i not in fallback
    }
    assert all(ours[i] is None for i in fallback)
    assert not any(r["if_right"] for r in rows if r["id"] in fallback)  # the random guesses all missed
    assert len(results.per_category) == 30
    assert load_run_dir(tmp_path).run.tasks[0].config["images_loaded"] is False


@needs_real
def test_published_outputs_overall_is_the_mean_of_both_settings(tmp_path: Path):
    predictions = tmp_path / "both.jsonl"
    lines = [
        {"id": f"{setting}/{r['id']}", "response": r["response"], "answer": r["answer"]}
        for setting, path in (("standard-10", STANDARD_OUTPUTS), ("vision", VISION_OUTPUTS))
        for r in published(path)
    ]
    write_jsonl(predictions, lines)
    results, _ = score_cli(predictions, "overall", REAL, tmp_path / "out")
    per_setting = results.per_category
    assert per_setting["standard-10"].n_samples == per_setting["vision"].n_samples == 1730
    assert round(per_setting["standard-10"].value * 1730) == 952
    assert round(per_setting["vision"].value * 1730) == 866
    assert results.summary.value == pytest.approx((952 / 1730 + 866 / 1730) / 2)  # equal sizes: pooled = mean


@needs_real
def test_published_outputs_guess_credit_is_separate(tmp_path: Path, capsys: pytest.CaptureFixture):
    results, records = score_cli(
        VISION_OUTPUTS, "vision", VISION_OUTPUTS, tmp_path, "--task-opt", "guess_unparsed=true"
    )
    assert results.summary.outcomes["correct"] == 866
    guesses = [r.details for r in records if r.outcome == "unparsed"]
    assert len(guesses) == 3 and all("guess" in d for d in guesses)
    credited = 866 + sum(d["guess_correct"] for d in guesses)
    assert results.accuracy_with_guess_credit == pytest.approx(credited / 1730)
