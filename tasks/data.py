"""Loading benchmark rows from local files or the Hugging Face hub, shared by all tasks.

A local `source` is one of:
- a file: `.parquet`, `.jsonl` (one JSON object per line) or `.json` (a JSON list of objects)
  (each format's reader is in tasks/readers.py);
- a directory: its own data files, or, if it has none, those in its subfolders (the hub layout
  `data/test-00000-of-00001.parquet`);
- a glob pattern, e.g. `results/*_result.json`.

Which files hold which split is read from the file names: a name mentions a split when the split
name appears in it as a separate token (`mmlu_pro_validation-00000.parquet` mentions `validation`,
`latest.json` does not mention `test`). If any candidate file mentions a split, only the files that
mention the requested split are used. If none does, all candidate files form the task's main split
(`main_split`, "test" by default) and no other split can be loaded from them.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
import re
import socket
import threading
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tasks.readers import DATA_EXTENSIONS as DATA_EXTENSIONS
from tasks.readers import DataError as DataError
from tasks.readers import read_file as read_file

KNOWN_SPLITS = ("train", "validation", "dev", "test")
SMOKE_DIR = Path(__file__).resolve().parent / "smoke_data"


# --- local files ----------------------------------------------------------------------------


def load_rows(source: str, split: str, *, main_split: str = "test") -> list[dict[str, Any]]:
    """All rows of `split` from a local file, directory or glob pattern (see the module docstring)."""
    files = _candidate_files(source)
    chosen = _files_for_split(files, split, main_split)
    if not chosen:
        names = ", ".join(f.name for f in files)
        raise DataError(
            f"no file for split '{split}' in {source} (found: {names}); name the file after the split "
            f"(e.g. {split}-00000-of-00001.parquet) or pass the file itself"
        )
    rows: list[dict[str, Any]] = []
    for path in chosen:
        rows.extend(read_file(path))
    return rows


def source_dir(source: str) -> str:
    """The directory a source lives in: itself, a file's folder, or a glob pattern's folder."""
    path = Path(source)
    if path.is_dir():
        return str(path)
    return str(path.parent)


def builtin_path(task_name: str) -> Path:
    """The small smoke-test file shipped with the package: `tasks/smoke_data/<task>.jsonl`."""
    path = SMOKE_DIR / f"{task_name}.jsonl"
    if not path.is_file():
        raise DataError(
            f"no builtin smoke data for task '{task_name}' at {path}; pass local files with --data"
        )
    return path


def _candidate_files(source: str) -> list[Path]:
    path = Path(source)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = _data_files(path.iterdir()) or _data_files(path.rglob("*"))
        if not files:
            raise DataError(f"no data files ({', '.join(DATA_EXTENSIONS)}) in directory {source}")
        return files
    if _is_glob(source):
        files = sorted(Path(p) for p in glob.glob(source) if Path(p).is_file())
        if not files:
            raise DataError(f"no file matches the pattern {source}; check the path")
        return files
    raise DataError(f"data path {source} does not exist; pass an existing file, directory or glob pattern")


def _data_files(paths: Iterable[Path]) -> list[Path]:
    return sorted(p for p in paths if p.is_file() and p.suffix.lower() in DATA_EXTENSIONS)


def _is_glob(source: str) -> bool:
    return any(char in source for char in "*?[")


def _mentions(name: str, split: str) -> bool:
    return re.search(rf"(?<![a-z0-9]){re.escape(split.lower())}(?![a-z0-9])", name.lower()) is not None


def _files_for_split(files: Sequence[Path], split: str, main_split: str) -> list[Path]:
    splits = {*KNOWN_SPLITS, split, main_split}
    if any(_mentions(f.name, s) for f in files for s in splits):
        return [f for f in files if _mentions(f.name, split)]
    return list(files) if split == main_split else []


# --- hub ------------------------------------------------------------------------------------


def hub_rows(dataset: str, split: str, revision: str, config: str | None = None) -> list[dict[str, Any]]:
    """Rows of a hub dataset split at a pinned revision (needs network or a warm HF cache)."""
    try:
        require_hub()
        import datasets

        loaded = datasets.load_dataset(dataset, config, split=split, revision=revision)
    except Exception as exc:  # offline, gated, missing revision...: one actionable message
        where = f"{dataset}" + (f"/{config}" if config else "") + f"@{revision} split '{split}'"
        reason = " ".join(str(exc).split())[:300]
        raise DataError(
            f"cannot load {where} from the Hugging Face hub ({type(exc).__name__}: {reason}); "
            "without hub access pass local files with --data PATH"
        ) from exc
    rows: list[dict[str, Any]] = loaded.to_list()
    return rows


HUB_PROBE_TIMEOUT_S = 3.0


class HubUnreachable(ConnectionError):
    """The hub's address did not answer; raised before any download is tried."""


def require_hub() -> None:
    """Raise HubUnreachable at once when the hub (or the HTTPS proxy in front of it) does not accept
    a connection within `HUB_PROBE_TIMEOUT_S`, instead of letting the hub client retry for half a
    minute. Nothing is probed in offline mode (HF_HUB_OFFLINE=1): the client then reads its cache
    or fails at once by itself. One probe per address per process."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        return
    host, port = _hub_address(constants.ENDPOINT)
    reason = _unreachable(host, port)
    if reason is not None:
        raise HubUnreachable(
            f"{host}:{port} cannot be reached ({reason}); with a copy in the HF cache set HF_HUB_OFFLINE=1"
        )


def _hub_address(endpoint: str) -> tuple[str, int]:
    """Host and port a connection to `endpoint` goes to first: the endpoint, or its proxy."""
    url = urllib.parse.urlsplit(endpoint)
    host = url.hostname or ""
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        url = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host = url.hostname or ""
    default = 443 if url.scheme == "https" else 80
    return host, url.port or default


@functools.cache
def _unreachable(host: str, port: int) -> str | None:
    """Why (host, port) takes no connection within the probe timeout, or None when it does. The
    connection (name lookup included) runs in a thread, as a lookup cannot be given a timeout."""
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(" ".join(str(exc).split()) or type(exc).__name__)

    probe = threading.Thread(target=connect, name="hub-probe", daemon=True)
    probe.start()
    probe.join(HUB_PROBE_TIMEOUT_S + 0.5)
    return outcome[0] if outcome else f"no answer within {HUB_PROBE_TIMEOUT_S:g} s"


# --- fingerprints ---------------------------------------------------------------------------


def rows_fingerprint(
    rows: Iterable[dict[str, Any]], fields: Sequence[str], id_field: str | None = None
) -> str:
    """sha256 over the canonical JSON of `fields` of every row, independent of row order.

    Rows are sorted on `id_field` (default: the first field), then on their canonical JSON.
    """
    key_field = id_field or fields[0]
    records = [{f: plain(row.get(f)) for f in fields} for row in rows]
    keyed = sorted((str(r.get(key_field)), _canonical_json(r)) for r in records)
    return hashlib.sha256("\n".join(blob for _, blob in keyed).encode()).hexdigest()


def _canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def plain(value: Any) -> Any:
    """`value` with numpy arrays/scalars and tuples turned into plain Python lists and numbers."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy array or scalar
        return plain(value.tolist())
    return value


def check_unique_ids(ids: Iterable[str], what: str) -> None:
    """Raise DataError naming the repeated ids (at most five) when an id occurs twice."""
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    if repeated:
        raise DataError(f"{what} share ids {repeated[:5]}; every id must be unique")


def data_description(source: str | None, hub: dict[str, Any]) -> dict[str, Any]:
    """What `describe()` records about the data: the hub dataset and revision, or the local source."""
    return dict(hub) if source in (None, "hub") else {"source": source}
