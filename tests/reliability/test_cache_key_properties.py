"""Property tests of the cache key (evals.cache.cache_key over schema.Request.cache_identity and
evals.generation.model_hash): it changes with everything that changes an output and with nothing
else.

Changes it: the model fingerprint (any entry but "location"), the rendered prompt (each message's
text and role, a raw prompt instead of messages), media bytes (and image versus audio), every
sampling field, the repeat and the seed. Leaves it alone: the request's key and sample id (which
name the task, variant and run), where the media file lives (same bytes under another path, or
inline bytes), the model's location, the cache file, the working directory and environment
variables. Equal settings written differently (a card's integer `temperature = 1` and the CLI's
`1.0`) give one key: that case found a bug, fixed in evals.cache. Deterministic; about 5 s.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tally import Tally

from evals.cache import CompletionCache, cache_key
from evals.generation import model_hash
from evals.schema import AudioPart, Completion, ImagePart, Message, Request, Sampling, stable_hash

pytestmark = pytest.mark.slow  # about 6 s

PROPS = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
FIELDS = [f.name for f in dataclasses.fields(Sampling)]
number = st.one_of(st.integers(0, 3), st.floats(0, 3, allow_nan=False, width=32))
samplings = st.builds(
    Sampling,
    temperature=number,
    top_p=number,
    top_k=st.integers(0, 3),
    max_tokens=st.integers(1, 4),
    seed=st.integers(0, 3),
    thinking=st.booleans(),
    stop=st.lists(st.sampled_from(["\n", "###", "</s>"]), max_size=2).map(tuple),
)
texts = st.text(max_size=12)
messages = st.lists(
    st.tuples(st.sampled_from(["system", "user", "assistant"]), texts), min_size=1, max_size=3
).map(lambda pairs: tuple(Message(role, (Message.user(text).content[0],)) for role, text in pairs))


class Backend:
    def __init__(self, fingerprint: dict[str, Any]) -> None:
        self._fingerprint = fingerprint

    def fingerprint(self) -> dict[str, Any]:
        return self._fingerprint


def request(msgs: tuple[Message, ...], sampling: Sampling, repeat: int = 0, key: str = "t/v/1/0") -> Request:
    return Request(key=key, sample_id=key.split("/")[2], repeat=repeat, sampling=sampling, messages=msgs)


@PROPS
@given(msgs=messages, a=samplings, b=samplings, repeat=st.integers(0, 3), other=st.integers(0, 3))
def test_sampling_and_repeat_change_the_key_exactly_when_they_differ(
    msgs: tuple[Message, ...], a: Sampling, b: Sampling, repeat: int, other: int, tally: Tally
) -> None:
    same = a == b and repeat == other  # dataclass equality: 1 == 1.0, -0.0 == 0.0
    assert (cache_key("m", request(msgs, a, repeat)) == cache_key("m", request(msgs, b, other))) == same
    for name in FIELDS:  # each field on its own
        changed = dataclasses.replace(a, **{name: _another(getattr(a, name))})
        assert cache_key("m", request(msgs, changed)) != cache_key("m", request(msgs, a)), name
    tally.add("property examples")


def _another(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, tuple):
        return (*value, "STOP")
    return value + 1


@PROPS
@given(a=messages, b=messages, sampling=samplings, raw=texts)
def test_the_prompt_changes_the_key_and_the_request_name_does_not(
    a: tuple[Message, ...], b: tuple[Message, ...], sampling: Sampling, raw: str, tally: Tally
) -> None:
    assert (cache_key("m", request(a, sampling)) == cache_key("m", request(b, sampling))) == (a == b)
    renamed = request(a, sampling, key="other_task/other_variant/99/0")
    assert cache_key("m", renamed) == cache_key("m", request(a, sampling))
    as_prompt = Request(key="k", sample_id="1", repeat=0, sampling=sampling, prompt=raw)
    assert cache_key("m", as_prompt) != cache_key("m", request(a, sampling))
    tally.add("property examples")


@PROPS
@given(fingerprint=st.dictionaries(st.sampled_from(["model", "sha256", "dtype", "template"]), texts, min_size=1),
       where=st.tuples(texts, texts), change=st.sampled_from(["model", "sha256", "dtype", "template"]))  # fmt: skip
def test_the_model_fingerprint_changes_the_key_and_its_location_does_not(
    fingerprint: dict[str, str], where: tuple[str, str], change: str, tally: Tally
) -> None:
    here = model_hash(Backend({**fingerprint, "location": {"path": where[0]}}))  # type: ignore[arg-type]
    there = model_hash(Backend({**fingerprint, "location": {"path": where[1]}}))  # type: ignore[arg-type]
    assert here == there
    other = model_hash(Backend({**fingerprint, change: fingerprint.get(change, "") + "x"}))  # type: ignore[arg-type]
    one = request((Message.user("q"),), Sampling())
    assert cache_key(here, one) != cache_key(other, one)
    tally.add("property examples")


@PROPS
@given(first=st.binary(max_size=64), second=st.binary(max_size=64), text=texts)
def test_media_enter_by_their_bytes_not_their_path(
    first: bytes, second: bytes, text: str, tally: Tally
) -> None:
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        paths = [Path(one) / "a.png", Path(two) / "nested" / "b.png", Path(two) / "c.png"]
        paths[1].parent.mkdir()
        for path, blob in zip(paths, (first, first, second), strict=True):
            path.write_bytes(blob)

        def key(part: ImagePart | AudioPart) -> str:
            return cache_key("m", request((Message.user(part, text),), Sampling()))

        assert (
            key(ImagePart(path=str(paths[0])))
            == key(ImagePart(path=str(paths[1])))
            == key(ImagePart(data=first))
        )
        assert (key(ImagePart(path=str(paths[0]))) == key(ImagePart(path=str(paths[2])))) == (first == second)
        assert key(ImagePart(data=first)) != key(AudioPart(data=first))
    tally.add("property examples")


def test_environment_working_directory_and_cache_file_do_not_enter_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tally: Tally
) -> None:
    one = request((Message.user("q"),), Sampling(temperature=0.7, seed=3))
    before = cache_key("m", one)
    for name in (
        "HOME",
        "EVALS_CACHE",
        "XDG_CACHE_HOME",
        "HF_HOME",
        "HF_TOKEN",
        "TMPDIR",
        "LANG",
        "PYTHONHASHSEED",
    ):
        monkeypatch.setenv(name, str(tmp_path / name))
    monkeypatch.chdir(tmp_path)
    assert cache_key("m", one) == before
    for where in ("a/c.sqlite", "b/other.sqlite"):  # the same key finds the completion in any cache file
        cache = CompletionCache(tmp_path / where)
        cache.put(before, "m", Completion(key=one.key, text="x"))
        assert cache.get_many([before])[before].text == "x"
        cache.close()
    assert os.environ["EVALS_CACHE"] == str(tmp_path / "EVALS_CACHE")
    tally.add("property examples")


@PROPS
@given(before=texts, after=texts, sampling=samplings)
def test_text_with_lone_surrogates_has_a_key_and_plain_text_keys_are_unchanged(
    before: str, after: str, sampling: Sampling, tally: Tally
) -> None:
    """Text decoded with errors="surrogateescape" (lone surrogates) still gets a key, different from
    the same text without them; plain text hashes exactly as its UTF-8 JSON always did."""
    broken = request((Message.user(f"{before}\udcff{after}"),), sampling)
    clean = request((Message.user(before + after),), sampling)
    assert cache_key("m", broken) != cache_key("m", clean)
    identity = {"model": "m", "request": clean.cache_identity()}
    blob = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    assert stable_hash(identity) == hashlib.sha256(blob.encode("utf-8")).hexdigest()
    tally.add("property examples")
