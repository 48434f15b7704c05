"""LiveCodeBench's pickled private tests are decoded as plain data only (see SECURITY.md).

Beyond tests/test_livecodebench.py (a `__reduce__` calling os.system is refused): the extension
registry and persistent ids, the two other ways a pickle names an object, are refused too, and
arbitrary bytes and damaged real pickles fail as one DataError of one line and nothing else, in
bounded memory. The suite found three bugs here, fixed in tasks/livecodebench.py: a two-line
message; damaged pickles escaping as AttributeError/OverflowError/MemoryError; and a pickle of a
few bytes (`LONG_BINPUT 2**32-16`) that made CPython's C unpickler allocate a memo of tens of GiB
(the machine's OOM killer ended the fuzzing process at 22 GB). About 5 s.
"""

from __future__ import annotations

import base64
import copyreg
import io
import os
import pickle
import resource
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tally import Tally

from tasks.data import DataError
from tasks.livecodebench import decode_private_tests

EXTENSION_CODE = 0xBEEF


def wrapped(payload: bytes) -> str:
    return base64.b64encode(zlib.compress(payload)).decode()


@pytest.fixture
def registered() -> Iterator[None]:
    copyreg.add_extension(os.system.__module__, "system", EXTENSION_CODE)
    try:
        yield
    finally:
        copyreg.remove_extension(os.system.__module__, "system", EXTENSION_CODE)


def test_the_extension_registry_cannot_name_a_callable(registered: None, tally: Tally) -> None:
    payload = pickle.dumps(os.system, protocol=2)
    assert b"\x83" in payload or b"\x82" in payload  # EXT2/EXT1: os.system by registry code, no name
    with pytest.raises(DataError, match=rf"refused global {os.system.__module__}\.system"):
        decode_private_tests(wrapped(payload), "problem ext")
    tally.fault("hostile pickle")


def test_persistent_ids_are_refused(tally: Tally) -> None:
    class WithPersistentId(pickle.Pickler):
        def persistent_id(self, obj: object) -> str | None:
            return "anything" if isinstance(obj, str) else None

    buffer = io.BytesIO()
    WithPersistentId(buffer, protocol=2).dump(["x"])
    with pytest.raises(DataError, match="cannot decode"):
        decode_private_tests(wrapped(buffer.getvalue()), "problem pid")
    tally.add("fuzzed inputs")


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(blob=st.binary(max_size=200), how=st.sampled_from(["raw", "base64", "zlib"]))
def test_arbitrary_bytes_fail_as_one_data_error(blob: bytes, how: str, tally: Tally) -> None:
    text = {
        "raw": blob.decode("latin-1"),
        "base64": base64.b64encode(blob).decode(),
        "zlib": wrapped(blob),
    }[how]
    try:
        decoded = decode_private_tests(text, "problem fuzz")
    except DataError as exc:
        assert "\n" not in str(exc).strip()
    else:
        assert isinstance(decoded, list) and all(isinstance(t, dict) for t in decoded)
    tally.add("fuzzed inputs")


def mutated(seed: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """`seed` with bytes overwritten (kind 0), inserted (1) or deleted (2) at the given positions."""
    data = bytearray(seed)
    for kind, position, value in edits:
        where = position % (len(data) + 1)
        if kind == 0 and data:
            data[where % len(data)] = value
        elif kind == 1:
            data.insert(where, value)
        elif data:
            del data[where % len(data)]
    return bytes(data)


SEEDS = [
    pickle.dumps(value, protocol=protocol)
    for value in (
        '[{"input": "1", "output": "2", "testtype": "stdin"}]',
        [{"input": "1"}],
        [1, 2.5, None, b"x"],
    )
    for protocol in range(6)
]


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=6
    ),
)
def test_damaged_pickles_fail_as_one_data_error(
    seed: bytes, edits: list[tuple[int, int, int]], tally: Tally
) -> None:
    try:
        decoded = decode_private_tests(wrapped(mutated(seed, edits)), "problem damaged")
    except DataError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(decoded, list)
    tally.add("fuzzed inputs")


LIMIT_BYTES = 1024**3  # the child's address space: a regression fails with MemoryError, not the OOM killer


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


@pytest.mark.subprocess
def test_a_huge_memo_index_is_refused_before_anything_is_allocated(tally: Tally) -> None:
    hostile = b"\x80\x04\x8c\x01a" + b"r" + (2**32 - 16).to_bytes(4, "little") + b"."  # 'a', LONG_BINPUT
    program = (
        "import sys; from tasks.livecodebench import decode_private_tests; from tasks.data import DataError\n"
        "try:\n    decode_private_tests(sys.argv[1], 'problem memo')\n"
        "except DataError as exc:\n    print(exc)\n"
    )
    child = subprocess.run([sys.executable, "-c", program, wrapped(hostile)], capture_output=True, text=True,
                           timeout=60, preexec_fn=_limit_memory, cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert child.returncode == 0, child.stderr[-600:]
    assert "LONG_BINPUT 4294967280 out of range" in child.stdout
    tally.fault("hostile pickle")
