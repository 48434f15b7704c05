"""Per-format readers of dataset files: the rows (dicts) of one parquet, JSON Lines, JSON or CSV file.

`read_file` picks the reader of a parquet, JSON Lines or JSON file by its extension; `read_csv` and
`csv_rows` read the CSV files some benchmarks are distributed as. Every reader raises `DataError` with one line
naming the file and the fix when a file is missing or malformed. Finding the files of a split,
the hub, and fingerprints are tasks/data.py's; what a row means is each task's.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# What `read_file` reads, and what a directory or glob source is searched for (tasks/data.py).
# CSV is read only where a task's distribution is CSV (`read_csv`), never picked up from a folder.
DATA_EXTENSIONS = (".parquet", ".jsonl", ".json")


class DataError(ValueError):
    """Data could not be found or read; the message names the path and the fix."""


def read_file(path: Path) -> list[dict[str, Any]]:
    """Rows of one .parquet, .jsonl or .json file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return read_parquet(path)
    if suffix == ".jsonl":
        return read_jsonl(path)
    if suffix == ".json":
        return read_json(path)
    raise DataError(
        f"unknown data file type '{path.suffix}' for {path}; use one of {', '.join(DATA_EXTENSIONS)}"
    )


def read_parquet(path: Path) -> list[dict[str, Any]]:
    """Rows of a parquet file (nested values as plain lists and dicts)."""
    import pyarrow.parquet as pq

    try:
        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"cannot read parquet file {path}: {exc}") from exc
    return rows


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON Lines file: one JSON object per line; blank lines are skipped."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON on line {number} of {path}: {exc.msg}") from exc
            if not isinstance(row, dict):
                raise DataError(
                    f"line {number} of {path} is not a JSON object; write one row object per line"
                )
            rows.append(row)
    return rows


def read_json(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON file holding a list of objects."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON in {path}: {exc.msg} (line {exc.lineno})") from exc
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise DataError(
            f"{path} is not a JSON list of row objects (got {type(data).__name__}); "
            "give a list of rows or a .jsonl file"
        )
    return data


def read_csv(path: Path, columns: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of a CSV file with a header line, every cell as text (see `csv_rows`)."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"data path {path} does not exist; pass an existing CSV file") from exc
    return csv_rows(blob, str(path), columns)


def csv_rows(blob: bytes, where: str, columns: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of CSV text (UTF-8, a byte-order mark allowed; quoted cells may span lines), every cell
    as a string ("" for an empty cell, never NaN). `columns` must all be in the header."""
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(blob), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors are ValueErrors
        raise DataError(f"cannot read CSV {where}: {exc}") from exc
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataError(
            f"{where} must have the columns {','.join(columns)} (found: {','.join(map(str, frame.columns))})"
        )
    rows: list[dict[str, Any]] = frame.to_dict("records")
    return rows


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
