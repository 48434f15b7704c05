"""SQLite store of completions, keyed by everything that changes the output.

Each completion is committed the moment it arrives (WAL journal), so a crash or SIGKILL loses at
most the request in flight; an OS crash or power loss may also roll back the completions committed
since the last checkpoint (see `CompletionCache.__init__`), never leave the file inconsistent.
Failed completions (backend errors) are not stored: a re-run retries them. Several processes may
share one cache file: the first completion stored under a key is kept and `put` hands it back, so
every run agrees with the cache. A full disk or an unreadable file is one OSError naming the cache
(what was committed before stays readable). This module does not decide what to generate; the
runner asks it what is already done.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from evals.faults import fault_point
from evals.schema import Completion, Request, stable_hash

SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    cache_key   TEXT PRIMARY KEY,
    request_key TEXT NOT NULL,
    model_hash  TEXT NOT NULL,
    completion  TEXT NOT NULL,
    created     REAL NOT NULL
);
"""

# Checkpoint (copy the WAL into the database file, with its fsyncs) once the WAL holds this many
# pages (~40 MB at SQLite's 4 KiB pages) rather than SQLite's default 1,000: with one commit per
# completion of a few KiB, the default checkpoints every ~200 completions, and the fsyncs and the
# rewrites of freshly synced WAL pages then cost about a third of each put (measured on 12,032
# MMLU-Pro answers). The price: a bigger WAL file while the cache is open, and more completions
# that an OS crash or power loss (not a killed process) may roll back.
CHECKPOINT_PAGES = 10_000


def default_cache_path() -> Path:
    env = os.environ.get("EVALS_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "evals" / "completions.sqlite"


def cache_key(model_hash: str, request: Request) -> str:
    """Hash of the model fingerprint hash and the request's full identity (media by hash)."""
    identity = request.cache_identity()
    identity["sampling"] = _canonical_sampling(identity["sampling"])
    return stable_hash({"model": model_hash, "request": identity})


def _canonical_sampling(sampling: dict[str, Any]) -> dict[str, Any]:
    """Sampling numbers as one type each, so that equal settings give one key: a card's
    `temperature = 1` (a TOML integer) and `--temperature 1` (a float) are the same setting, and
    -0.0 is 0.0. Values already of their type are unchanged (existing keys stay valid)."""
    out = dict(sampling)
    for name in ("temperature", "top_p"):
        value = out.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value) + 0.0
    for name in ("top_k", "max_tokens", "seed"):
        value = out.get(name)
        if isinstance(value, float) and value.is_integer():
            out[name] = int(value)
    return out


class CompletionCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout=30000")
            # Durability of each `put` (one committed transaction): with WAL and synchronous=NORMAL a
            # commit has reached the WAL file (the OS's page cache) when `put` returns, so a killed or
            # crashed process loses nothing committed. The WAL is fsynced only at a checkpoint: an OS
            # crash or power loss may roll back the commits since the last one, never corrupt the file.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise self._failure(exc, "open") from exc

    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        keys = list(keys)
        found: dict[str, Completion] = {}
        try:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT cache_key, completion FROM completions WHERE cache_key IN ({marks})", chunk
                )
                for key, blob in rows:
                    found[key] = Completion.from_json(json.loads(blob))
        except sqlite3.Error as exc:
            raise self._failure(exc, "read") from exc
        return found

    def put(
        self, key: str, model_hash: str, completion: Completion, *, replace_existing: bool = False
    ) -> Completion:
        """Store one completion and commit at once; return the completion the cache now holds.

        An existing entry is kept unless `replace_existing` (a fresh run's new completion replaces
        the old one): when another process stored this key first, its completion (under this
        completion's request key) is returned, so that this run reports what the cache holds."""
        verb = "INSERT OR REPLACE" if replace_existing else "INSERT OR IGNORE"
        try:
            cursor = self._db.execute(
                f"{verb} INTO completions VALUES (?, ?, ?, ?, ?)",
                (key, completion.key, model_hash, json.dumps(completion.to_json()), time.time()),
            )
            stored = None if cursor.rowcount else self.get_many([key]).get(key)
        except sqlite3.Error as exc:
            raise self._failure(exc, "write to") from exc
        fault_point("commit", key)
        return completion if stored is None else replace(stored, key=completion.key)

    def _failure(self, exc: sqlite3.Error, doing: str) -> OSError:
        """One line naming the cache file, what went wrong and what to do."""
        reason = " ".join(str(exc).split()) or type(exc).__name__
        hint = (
            "free disk space or pass --cache FILE on another disk, then run the same command again "
            "(completions committed so far are kept)"
            if "full" in reason
            else "check the file, or pass --cache FILE to use another cache"
        )
        failure = OSError(f"cannot {doing} the completion cache {self.path}: {reason}; {hint}")
        failure.errno = errno.ENOSPC if "full" in reason else errno.EIO
        return failure

    def rows(self) -> list[dict[str, Any]]:
        """Every stored row (for inspection and tests)."""
        cursor = self._db.execute(
            "SELECT cache_key, request_key, model_hash, completion, created FROM completions"
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def close(self) -> None:
        self._db.close()
