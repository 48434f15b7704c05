"""tasks.data: local files (real MMLU-Pro copies and small files written here) and error messages."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hub_address import reachable_hub
from realdata import GPT4O_GLOB, MMLU, TEST_PARQUET, VALIDATION_PARQUET, needs_real

from tasks import data as data_module
from tasks.data import DataError, builtin_path, hub_rows, load_rows, rows_fingerprint, source_dir
from tasks.mmlu_pro import TEST_CATEGORY_SIZES
from tasks.readers import file_sha256, read_csv

# --- real files ---------------------------------------------------------------------------------


@needs_real
def test_test_parquet_has_all_rows_and_category_sizes():
    start = time.perf_counter()
    rows = load_rows(str(TEST_PARQUET), "test")
    elapsed = time.perf_counter() - start
    assert len(rows) == 12032
    assert Counter(r["category"] for r in rows) == TEST_CATEGORY_SIZES
    assert isinstance(rows[0]["options"], list)
    assert elapsed < 1.0, f"loading 12k rows took {elapsed:.2f}s"


@needs_real
def test_validation_parquet_has_five_rows_per_category():
    rows = load_rows(str(VALIDATION_PARQUET), "validation")
    assert len(rows) == 70
    assert Counter(r["category"] for r in rows) == dict.fromkeys(TEST_CATEGORY_SIZES, 5)
    assert all(r["cot_content"].startswith("A: Let's think step by step.") for r in rows)


@needs_real
def test_directory_override_picks_the_file_of_each_split():
    assert len(load_rows(str(MMLU), "test")) == 12032
    assert len(load_rows(str(MMLU), "validation")) == 70
    with pytest.raises(DataError, match="no file for split 'train'"):
        load_rows(str(MMLU), "train")


@needs_real
def test_a_file_named_after_another_split_is_refused():
    with pytest.raises(DataError, match="no file for split 'validation'"):
        load_rows(str(TEST_PARQUET), "validation")


@needs_real
def test_glob_over_published_results_loads_every_row():
    rows = load_rows(GPT4O_GLOB, "test")
    assert len(rows) == 12032
    assert {"pred", "response", "question_id", "options"} <= set(rows[0])
    assert Counter(r["category"] for r in rows) == TEST_CATEGORY_SIZES
    with pytest.raises(DataError, match="no file for split 'validation'"):
        load_rows(GPT4O_GLOB, "validation")


@needs_real
def test_fingerprint_is_the_same_whichever_way_the_file_is_given():
    fields = ("question_id", "question", "options", "answer")
    by_file = rows_fingerprint(load_rows(str(TEST_PARQUET), "test"), fields)
    by_dir = rows_fingerprint(load_rows(str(MMLU), "test"), fields)
    gpt4o = rows_fingerprint(load_rows(GPT4O_GLOB, "test"), fields)
    assert by_file == by_dir
    assert gpt4o != by_file  # the 2024-05 rows differ from the newer copy (SOURCES.md)


# --- small files written here -------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_json_and_parquet_read_the_same_rows(tmp_path: Path):
    rows = [{"id": 1, "options": ["a", "b"]}, {"id": 2, "options": ["c"]}]
    write_jsonl(tmp_path / "a.jsonl", rows)
    (tmp_path / "b.json").write_text(json.dumps(rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "c.parquet")
    for name in ("a.jsonl", "b.json", "c.parquet"):
        assert load_rows(str(tmp_path / name), "test") == rows


def test_files_without_split_names_are_the_main_split_only(tmp_path: Path):
    write_jsonl(tmp_path / "part1.jsonl", [{"id": 1}])
    write_jsonl(tmp_path / "part2.jsonl", [{"id": 2}])
    assert [r["id"] for r in load_rows(str(tmp_path), "test")] == [1, 2]
    assert [r["id"] for r in load_rows(str(tmp_path), "train", main_split="train")] == [1, 2]
    with pytest.raises(DataError, match="no file for split 'validation'"):
        load_rows(str(tmp_path), "validation")


def test_split_names_must_be_whole_tokens(tmp_path: Path):
    write_jsonl(tmp_path / "latest.jsonl", [{"id": "latest"}])
    write_jsonl(tmp_path / "dev_set.jsonl", [{"id": "dev"}])
    write_jsonl(tmp_path / "x-test-00000.jsonl", [{"id": "test"}])
    assert [r["id"] for r in load_rows(str(tmp_path), "test")] == ["test"]
    assert [r["id"] for r in load_rows(str(tmp_path), "dev")] == ["dev"]


def test_hub_layout_with_a_data_subfolder(tmp_path: Path):
    (tmp_path / "data").mkdir()
    pq.write_table(pa.Table.from_pylist([{"id": 7}]), tmp_path / "data" / "test-00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist([{"id": 8}]), tmp_path / "data" / "validation-00000-of-00001.parquet")
    (tmp_path / "README.md").write_text("card")
    assert load_rows(str(tmp_path), "test") == [{"id": 7}]
    assert load_rows(str(tmp_path), "validation") == [{"id": 8}]


def test_source_dir(tmp_path: Path):
    file = write_jsonl(tmp_path / "test.jsonl", [{"id": 1}])
    assert source_dir(str(file)) == str(tmp_path)
    assert source_dir(str(tmp_path)) == str(tmp_path)
    assert source_dir(str(tmp_path / "*_result.json")) == str(tmp_path)


# --- errors: one line, with the path --------------------------------------------------------------


def test_missing_path(tmp_path: Path):
    missing = tmp_path / "nope.parquet"
    with pytest.raises(DataError, match="does not exist") as info:
        load_rows(str(missing), "test")
    assert str(missing) in str(info.value)


def test_unknown_extension(tmp_path: Path):
    path = tmp_path / "test.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"unknown data file type '\.csv'") as info:
        load_rows(str(path), "test")
    assert str(path) in str(info.value)


def test_csv_reader_keeps_text_and_checks_columns(tmp_path: Path):
    path = tmp_path / "answers.csv"
    # a byte-order mark, a quoted cell spanning lines, an empty cell and numbers that stay text
    path.write_bytes('\ufeffid,answer,note\n1,007,"two\nlines"\n2,,\n'.encode())
    rows = read_csv(path, columns=("id", "answer"))
    assert rows == [{"id": "1", "answer": "007", "note": "two\nlines"}, {"id": "2", "answer": "", "note": ""}]
    with pytest.raises(
        DataError, match=r"answers\.csv must have the columns id,problem \(found: id,answer,note\)"
    ):
        read_csv(path, columns=("id", "problem"))
    with pytest.raises(DataError, match="does not exist; pass an existing CSV file"):
        read_csv(tmp_path / "missing.csv")
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_json(tmp_path: Path):
    path = tmp_path / "test.json"
    path.write_text('[{"a": 1},')
    with pytest.raises(DataError, match="invalid JSON") as info:
        load_rows(str(path), "test")
    assert str(path) in str(info.value)


def test_json_that_is_not_a_list_of_objects(tmp_path: Path):
    path = tmp_path / "summary.json"
    path.write_text('{"acc": 0.7}')
    with pytest.raises(DataError, match="not a JSON list of row objects") as info:
        load_rows(str(path), "test")
    assert str(path) in str(info.value)
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match="not a JSON list of row objects"):
        load_rows(str(path), "test")


def test_bad_jsonl_line(tmp_path: Path):
    path = tmp_path / "test.jsonl"
    path.write_text('{"a": 1}\n[1]\n')
    with pytest.raises(DataError, match=r"line 2 of .*test\.jsonl is not a JSON object"):
        load_rows(str(path), "test")


def test_empty_directory_and_unmatched_glob(tmp_path: Path):
    with pytest.raises(DataError, match="no data files") as info:
        load_rows(str(tmp_path), "test")
    assert str(tmp_path) in str(info.value)
    with pytest.raises(DataError, match="no file matches the pattern"):
        load_rows(str(tmp_path / "*.json"), "test")


def test_errors_are_one_line(tmp_path: Path):
    path = tmp_path / "test.json"
    path.write_text("{\n\n")
    with pytest.raises(DataError) as info:
        load_rows(str(path), "test")
    assert "\n" not in str(info.value)


# --- hub, builtin, fingerprint --------------------------------------------------------------------


def test_hub_failure_tells_the_user_to_pass_local_files(monkeypatch: pytest.MonkeyPatch):
    import datasets

    calls = []

    def offline(*args, **kwargs):
        calls.append((args, kwargs))
        raise ConnectionError("Couldn't reach 'TIGER-Lab/MMLU-Pro' on the Hub (LocalEntryNotFoundError)\n")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with reachable_hub(monkeypatch), pytest.raises(DataError, match="--data") as info:
        hub_rows("TIGER-Lab/MMLU-Pro", "test", "3373e0b32277875b8db2aa555a333b78a08477ea")
    message = str(info.value)
    assert "TIGER-Lab/MMLU-Pro@3373e0b32277875b8db2aa555a333b78a08477ea" in message
    assert "\n" not in message
    assert calls == [
        (
            ("TIGER-Lab/MMLU-Pro", None),
            {"split": "test", "revision": "3373e0b32277875b8db2aa555a333b78a08477ea"},
        )
    ]


def test_builtin_path():
    assert builtin_path("mmlu_pro") == data_module.SMOKE_DIR / "mmlu_pro.jsonl"
    assert builtin_path("mmlu_pro").is_file()
    with pytest.raises(DataError, match="no builtin smoke data for task 'nope'"):
        builtin_path("nope")


def test_rows_fingerprint_ignores_order_and_container_types():
    rows = [{"id": 2, "options": ["x", "y"], "extra": 1}, {"id": 1, "options": ["z"]}]
    same = [{"id": 1, "options": np.array(["z"], dtype=object)}, {"id": 2, "options": ("x", "y")}]
    assert rows_fingerprint(rows, ("id", "options")) == rows_fingerprint(same, ("id", "options"))
    changed = [{"id": 1, "options": ["z"]}, {"id": 2, "options": ["x", "Y"]}]
    assert rows_fingerprint(rows, ("id", "options")) != rows_fingerprint(changed, ("id", "options"))
    assert rows_fingerprint(rows, ("id",)) != rows_fingerprint(rows, ("id", "options"))
