"""LiveCodeBench's pickled private tests are decoded as plain data only (see SECURITY.md).

Beyond tests/test_livecodebench.py (a `__reduce__` calling os.system is refused): the extension
registry and persistent ids, the two other ways a pickle names an object, are refused too, and
arbitrary bytes, base64 or not, compressed or not, fail as one DataError of one line and nothing
else (that found a two-line message, fixed in tasks/livecodebench.py). About 3 s.
"""

from __future__ import annotations

import base64
import copyreg
import io
import os
import pickle
import zlib
from collections.abc import Iterator

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
