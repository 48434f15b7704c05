"""CoVoST 2 speech translation: audio in one language, a translation in another; corpus BLEU per
language pair, macro-averaged over pairs (the card's "CoVoST" row, docs/protocols/covost2.md).

Variants (language pairs are the hub configs `{source}_{target}`)
- `x-en-no-zh` (default): X→English for the 20 source languages other than zh-CN. Our reading of
  the card's "excluding Chinese" (inferred, not confirmed: docs/protocols/covost2.md § Google's
  settings).
- `x-en`: X→English, all 21 source languages (the Gemini "CoVoST 2 (21 languages)" set).
- `en-x-no-zh` / `en-x`: English→X, 14 targets without zh-CN / all 15.
Options: `languages="fr,de"` restricts a variant to some of its languages (codes or pair names);
`per_language=N` keeps the first N test utterances of each pair (for cost). `load(limit=N)` keeps
the first N samples in pair order and reads no more than that from the hub.

Protocol
- One user message: the model card's speech-translation prompt (`AST_PROMPT`,
  docs/protocols/covost2.md § Prompt, with English language names) and then the audio part
  (12B card: audio after the text). Greedy, 512 new tokens, thinking off (Google's settings are
  not published).
- Hypothesis: in the final answer (`Completion.text`), the first non-empty line after the last
  "{Target language}:" label (case-insensitive, markdown emphasis and a full-width colon allowed).
  Without a label: the last non-empty line, flagged `no_label_fallback`. The transcription is the
  first non-empty line before that label (a leading "{Source language}:" label removed), or, with
  the fallback, the first line when the answer has two or more lines.
- Per sample: outcome `correct` when a hypothesis was produced (BLEU is a corpus metric, so the
  per-sample outcome only says "translated"), `unparsed` when the answer is empty, `truncated` when
  the token budget ran out (the hypothesis, if any, is kept and counted), `error`/`timeout` when the
  backend failed (e.g. unreadable or over-long audio); `value` = sentence chrF (sacrebleu defaults:
  character 6-grams, beta 2) / 100, so the generic mean and CI are a meaningful secondary metric.
- Corpus metrics (`corpus_metrics`, computed in tasks/covost_metrics.py): per pair, sacrebleu
  corpus BLEU over every scored utterance (failed ones contribute an empty hypothesis; with
  repeats, all repeats are pooled), tokenizer
  `13a`, `zh` for zh-CN targets, `ja-mecab` for Japanese targets when `mecab-python3` + `ipadic` are
  installed else `char` (recorded); the macro average over pairs is the card number. A percentile
  bootstrap (utterances resampled within each pair, 200 resamples, seeded) gives its 95% CI.
  ASR quality of the transcription: WER against the source sentence after NFKC, lower-casing,
  replacing Unicode punctuation (categories P*) by spaces and collapsing whitespace; for zh-CN and
  ja sources (no word spaces) CER on the same text with whitespace removed (jiwer).
- Rows with an empty reference are kept (a third-party en→zh-CN run dropped the one in the first
  1,000 rows) and counted as `n_empty_reference`.

Sources
- Data: HF `fixie-ai/covost2` (parquet embedding Common Voice's original MP3 clips, `audio` =
  {bytes, path}; configs as folders `{pair}/test-*.parquet`; fields `client_id, file, audio,
  sentence, translation, id`). Only the test files of each selected pair are read; a capped read
  (`per_language`, or a `limit`) streams just the first rows of the pairs it needs. `HUB_REVISION`
  was seen in a third-party download script and is NOT verified against the hub. Audio is kept
  encoded as given (`AudioPart(data=...)`, MP3 from the hub; backends decode it, e.g. soundfile
  with libsndfile >= 1.1); decoded arrays are re-encoded once as 32-bit float WAV.
- Local copies (`--data`): a directory with one entry per pair whose name contains the pair
  (`fr_en/test-00000-of-00002.parquet`, `fr_en.jsonl`, `en_zh-CN_test.parquet`...), or one
  .jsonl/.parquet/.json file with a `pair` column (the builtin smoke data). In .jsonl/.json rows,
  `audio` is a path relative to the folder of the pair's entry (its folder, or the file's folder),
  or an object with `bytes`, `path` or `array` + `sampling_rate`.
- Prompt: Gemma model card, "Audio" best practices (docs/protocols/covost2.md § Prompt).
  Metrics: sacrebleu, jiwer; conventions in docs/protocols/covost2.md § Scoring. CoVoST 2: arXiv
  2007.10310.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sacrebleu

from evals.schema import AudioPart, Completion, Message, Outcome, Request, Sample, Sampling, Score
from tasks.common import failure_outcome, no_answer_outcome, repeat_requests
from tasks.covost_metrics import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    NO_LABEL_FALLBACK,
    bleu_tokenizer,
    corpus_metrics,
    sentence_chrf,
)
from tasks.data import (
    DATA_EXTENSIONS,
    DataError,
    builtin_path,
    check_unique_ids,
    data_description,
    load_rows,
    read_file,
    require_hub,
    rows_fingerprint,
)

VERSION = "1"  # bump whenever the prompt, the extraction or the scoring changes

# --- prompt -----------------------------------------------------------------------------------

# The model card's speech-translation prompt (docs/protocols/covost2.md § Prompt); the audio part follows it.
AST_PROMPT = (
    "Transcribe the following speech segment in {source_language}, then translate it into "
    "{target_language}.\n"
    "When formatting the answer, first output the transcription in {source_language}, then one "
    "newline, then output the string '{target_language}: ', then the translation in {target_language}."
)

# --- languages and variants ---------------------------------------------------------------------

ENGLISH = "en"
EXCLUDED_LANGUAGE = "zh-CN"  # "excluding Chinese" on the card
X_EN_SOURCES = (
    "ar", "ca", "cy", "de", "es", "et", "fa", "fr", "id", "it", "ja",
    "lv", "mn", "nl", "pt", "ru", "sl", "sv-SE", "ta", "tr", "zh-CN",
)  # fmt: skip
EN_X_TARGETS = (
    "ar", "ca", "cy", "de", "et", "fa", "id", "ja", "lv", "mn", "sl", "sv-SE", "ta", "tr", "zh-CN",
)  # fmt: skip
LANGUAGE_NAMES = {
    "ar": "Arabic",
    "ca": "Catalan",
    "cy": "Welsh",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "et": "Estonian",
    "fa": "Persian",
    "fr": "French",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "lv": "Latvian",
    "mn": "Mongolian",
    "nl": "Dutch",
    "pt": "Portuguese",
    "ru": "Russian",
    "sl": "Slovenian",
    "sv-SE": "Swedish",
    "ta": "Tamil",
    "tr": "Turkish",
    "zh-CN": "Chinese",
}


def pair_name(source: str, target: str) -> str:
    """The hub config of a language pair: `fr_en`, `en_zh-CN`."""
    return f"{source}_{target}"


def split_pair(pair: str) -> tuple[str, str]:
    """(source, target) of a pair name; ValueError for a pair CoVoST 2 does not have."""
    if pair not in ALL_PAIRS:
        raise ValueError(f"unknown CoVoST 2 pair '{pair}'; pairs look like fr_en or en_de")
    source, _, target = pair.partition("_")
    return source, target


def language_name(code: str) -> str:
    """The English name used in the prompt and the answer label (sv-SE → Swedish)."""
    try:
        return LANGUAGE_NAMES[code]
    except KeyError:
        raise ValueError(f"unknown CoVoST 2 language code '{code}'") from None


X_EN_PAIRS = tuple(pair_name(code, ENGLISH) for code in X_EN_SOURCES)
EN_X_PAIRS = tuple(pair_name(ENGLISH, code) for code in EN_X_TARGETS)
ALL_PAIRS = frozenset(X_EN_PAIRS + EN_X_PAIRS)
VARIANT_PAIRS = {
    "x-en-no-zh": tuple(p for p in X_EN_PAIRS if not p.startswith(EXCLUDED_LANGUAGE)),
    "x-en": X_EN_PAIRS,
    "en-x-no-zh": tuple(p for p in EN_X_PAIRS if not p.endswith(EXCLUDED_LANGUAGE)),
    "en-x": EN_X_PAIRS,
}
VARIANTS = tuple(VARIANT_PAIRS)
VARIANT_MEANINGS = {
    "x-en-no-zh": "direction: X→English, the 20 source languages other than Chinese (our reading of the "
    "card's 'excluding Chinese')",
    "x-en": "direction: X→English, all 21 source languages",
    "en-x-no-zh": "direction: English→X, the 14 target languages other than Chinese",
    "en-x": "direction: English→X, all 15 target languages",
}
DEFAULT_SAMPLING = Sampling(temperature=0.0, max_tokens=512, thinking=False)

# --- data ---------------------------------------------------------------------------------------

HUB_DATASET = "fixie-ai/covost2"
# Seen in a third-party download script of fixie-ai/covost2; not verified against the hub.
HUB_REVISION = "17c8c81e331e7a6929118121771a58c7ef7331d8"
HUB_REVISION_VERIFIED = False
HUB_TEST_FILES = "{pair}/test-*.parquet"
TEST_SPLIT = "test"
# Test sizes stated on the dataset card (docs/protocols/covost2.md § Data); other pairs are not checked.
KNOWN_TEST_SIZES = {**dict.fromkeys(EN_X_PAIRS, 15_531), "ar_en": 1_695, "ca_en": 12_730}
FINGERPRINT_FIELDS = ("id", "sentence", "translation", "audio")

# --- scoring ------------------------------------------------------------------------------------

_EMPHASIS = "[*_]*"
_COLON = "[:：]"


# --- answer parsing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedAnswer:
    hypothesis: str  # "" when nothing could be read
    transcription: str | None
    label_found: bool


def _label(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){_EMPHASIS}{re.escape(name)}{_EMPHASIS}\s*{_COLON}{_EMPHASIS}", re.IGNORECASE)


def _non_empty_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _strip_source_label(line: str, source_name: str) -> str:
    pattern = rf"^{_EMPHASIS}(?:{re.escape(source_name)}|transcription){_EMPHASIS}\s*{_COLON}{_EMPHASIS}\s*"
    return re.sub(pattern, "", line, flags=re.IGNORECASE).strip()


def parse_answer(text: str, target_language: str, source_language: str) -> ParsedAnswer:
    """Translation and transcription from a final answer (language codes, e.g. "fr", "en")."""
    labels = list(_label(language_name(target_language)).finditer(text))
    if labels:
        last = labels[-1]
        after = _non_empty_lines(text[last.end() :])
        before = _non_empty_lines(text[: last.start()])
        transcription = _strip_source_label(before[0], language_name(source_language)) if before else None
        return ParsedAnswer(after[0] if after else "", transcription, label_found=True)
    lines = _non_empty_lines(text)
    if not lines:
        return ParsedAnswer("", None, label_found=False)
    transcription = _strip_source_label(lines[0], language_name(source_language)) if len(lines) > 1 else None
    return ParsedAnswer(lines[-1], transcription, label_found=False)


# --- task ---------------------------------------------------------------------------------------


class CoVoST2:
    """CoVoST 2 speech translation with the model card's prompt; corpus BLEU via `corpus_metrics`."""

    name = "covost2"
    version = VERSION
    variants = VARIANT_MEANINGS
    public_text = True  # Common Voice sentences and CoVoST translations are public (CC0)
    headline = "corpus"  # the row's number is the macro corpus BLEU of `corpus_metrics`, not a mean

    def __init__(
        self,
        variant: str | None = None,
        *,
        languages: str | None = None,
        per_language: int | None = None,
    ) -> None:
        self.variant = variant or VARIANTS[0]
        if self.variant not in VARIANT_PAIRS:
            raise ValueError(f"unknown covost2 variant '{variant}'; choose one of: {', '.join(VARIANTS)}")
        self.languages = languages
        self.pairs = _select_pairs(self.variant, languages)
        self.per_language = _positive_or_none(per_language)
        self.default_sampling = DEFAULT_SAMPLING
        self.source: str | None = None
        self.data_fingerprint: str | None = None
        self.loaded_pairs: tuple[str, ...] = ()

    # --- data -----------------------------------------------------------------------------------

    def load(self, data: str | None = None, *, limit: int | None = None) -> list[Sample]:
        """Test samples of the selected pairs, in pair order (the first `limit` of them): pinned
        hub revision, local files (`data`) or "builtin"."""
        groups = self._hub_groups(limit) if data is None else self._read(data)
        samples: list[Sample] = []
        records: list[dict[str, Any]] = []
        for pair in self.pairs:
            if pair not in groups or (limit is not None and len(samples) >= limit):
                continue
            rows, base = groups[pair]
            rows = rows[: self.per_language] if self.per_language else rows
            if data is None and self.per_language is None and limit is None:
                _check_size(pair, len(rows))
            if limit is not None:
                rows = rows[: limit - len(samples)]
            for index, row in enumerate(rows):
                sample = _sample(pair, row, index, base)
                samples.append(sample)
                records.append(_fingerprint_record(sample))
        check_unique_ids((s.id for s in samples), "covost2 rows")
        self.source = "hub" if data is None else data
        self.loaded_pairs = tuple(dict.fromkeys(s.category for s in samples if s.category))
        self.data_fingerprint = rows_fingerprint(records, FINGERPRINT_FIELDS)
        return samples

    def _hub_groups(self, limit: int | None) -> dict[str, tuple[list[dict[str, Any]], Path | None]]:
        """Hub rows of each pair a run needs: with a `limit`, the pairs are read in order, each up
        to what is still missing, and the rest are not read at all."""
        groups: dict[str, tuple[list[dict[str, Any]], Path | None]] = {}
        left = limit
        for pair in self.pairs:
            if left is not None and left <= 0:
                break
            caps = [cap for cap in (self.per_language, left) if cap is not None]
            rows = _hub_pair_rows(pair, min(caps) if caps else None)
            groups[pair] = (rows, None)
            left = None if left is None else left - len(rows)
        return groups

    def _read(self, data: str) -> dict[str, tuple[list[dict[str, Any]], Path | None]]:
        if data == "builtin":
            groups = _rows_by_pair_column(builtin_path(self.name))
            groups = {pair: value for pair, value in groups.items() if pair in self.pairs}
            if not groups:
                raise DataError(
                    f"the builtin covost2 data has no pair of variant '{self.variant}' ({', '.join(self.pairs)})"
                )
            return groups
        path = Path(data)
        if path.is_file():
            groups = _rows_by_pair_column(path)
        elif path.is_dir():
            groups = _rows_by_pair_entry(path, self.pairs)
        else:
            raise DataError(
                f"data path {data} does not exist; pass a directory with one entry per language pair"
            )
        missing = [pair for pair in self.pairs if pair not in groups]
        if missing:
            raise DataError(
                f"{data} has no data for pairs {', '.join(missing)} (found: {', '.join(sorted(groups)) or 'none'}); "
                "add them, or restrict the run with --task-opt languages=..."
            )
        return groups

    # --- prompts --------------------------------------------------------------------------------

    def prompt(self, sample: Sample) -> str:
        """The text of the user message (the audio part follows it)."""
        return AST_PROMPT.format(
            source_language=language_name(sample.inputs["source_language"]),
            target_language=language_name(sample.inputs["target_language"]),
        )

    def requests(self, sample: Sample, sampling: Sampling, repeats: int) -> list[Request]:
        message = Message.user(self.prompt(sample), sample.inputs["audio"])
        return repeat_requests(f"covost2/{self.variant}", sample.id, sampling, repeats, messages=[message])

    # --- scoring --------------------------------------------------------------------------------

    def score(self, sample: Sample, completion: Completion, repeat: int) -> Score:
        details: dict[str, Any] = {"hypothesis": "", "reference": sample.target, "transcription": None}
        failure = failure_outcome(completion)
        if failure is not None:
            return Score(sample.id, repeat, failure, 0.0, details=details)
        parsed = parse_answer(
            completion.text, sample.inputs["target_language"], sample.inputs["source_language"]
        )
        details.update(hypothesis=parsed.hypothesis, transcription=parsed.transcription)
        flags = () if parsed.label_found or not parsed.hypothesis else (NO_LABEL_FALLBACK,)
        if not parsed.hypothesis:
            return Score(sample.id, repeat, no_answer_outcome(completion), 0.0, details=details)
        chrf = sentence_chrf(parsed.hypothesis, sample.target)
        details["chrf"] = chrf
        outcome = Outcome.TRUNCATED if completion.finish_reason == "length" else Outcome.CORRECT
        return Score(
            sample.id, repeat, outcome, chrf / 100, extracted=parsed.hypothesis, details=details, flags=flags
        )

    def corpus_metrics(
        self,
        samples: Sequence[Sample],
        scores: Sequence[Score],
        *,
        resamples: int = BOOTSTRAP_RESAMPLES,
        seed: int = BOOTSTRAP_SEED,
    ) -> dict[str, Any]:
        """Corpus BLEU and ASR error per pair, macro BLEU over pairs with a bootstrap CI."""
        return corpus_metrics(samples, scores, resamples=resamples, seed=seed)

    def describe(self) -> dict[str, Any]:
        hub: dict[str, Any] = {
            "dataset": HUB_DATASET,
            "revision": HUB_REVISION,
            "revision_verified": HUB_REVISION_VERIFIED,
            "files": HUB_TEST_FILES,
        }
        data = data_description(self.source, hub)
        return {
            "task": self.name,
            "version": self.version,
            "variant": self.variant,
            "pairs": list(self.pairs),
            "loaded_pairs": list(self.loaded_pairs),
            "languages": self.languages,
            "per_language": self.per_language,
            "prompt": "model card AST prompt (docs/protocols/covost2.md § Prompt), audio after the text",
            "hypothesis": "first line after the last '<Target>:' label; else the last line (flagged)",
            "bleu": {
                "tokenize": {pair: bleu_tokenizer(split_pair(pair)[1]) for pair in self.pairs},
                "aggregate": "macro mean of per-pair corpus BLEU",
                "sacrebleu": sacrebleu.__version__,
            },
            "sentence_metric": "chrF (sacrebleu defaults) / 100",
            "asr_normalisation": "NFKC, lower-case, punctuation to space; CER for zh-CN/ja sources",
            "data": data,
            "data_fingerprint": self.data_fingerprint,
        }


# --- rows -------------------------------------------------------------------------------------------


def _select_pairs(variant: str, languages: str | None) -> tuple[str, ...]:
    """The variant's pairs, restricted to `languages` (codes or pair names, comma-separated)."""
    pairs = VARIANT_PAIRS[variant]
    if languages is None:
        return pairs
    x_to_en = pairs[0].endswith(f"_{ENGLISH}")
    by_key = {p.lower(): p for p in pairs}
    by_key.update({(p.split("_")[0] if x_to_en else p.split("_")[1]).lower(): p for p in pairs})
    wanted = [item.strip() for item in str(languages).split(",") if item.strip()]
    if not wanted:
        raise ValueError("covost2 option languages is empty; give codes such as languages=fr,de")
    chosen = set()
    for item in wanted:
        if item.lower() not in by_key:
            hint = " (zh-CN needs variant x-en or en-x)" if EXCLUDED_LANGUAGE.lower() in item.lower() else ""
            codes = ", ".join(sorted(k for k in by_key if "_" not in k))
            raise ValueError(
                f"covost2 variant '{variant}' has no language '{item}'{hint}; choose from: {codes}"
            )
        chosen.add(by_key[item.lower()])
    return tuple(p for p in pairs if p in chosen)


def _positive_or_none(value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"covost2 option per_language must be a positive integer, got {value!r}") from None
    if number < 1 or str(number) != str(value).strip():
        raise ValueError(f"covost2 option per_language must be a positive integer, got {value!r}")
    return number


def _hub_pair_rows(pair: str, limit: int | None) -> list[dict[str, Any]]:
    """Test rows of one pair from the pinned hub revision, only its test files, audio not decoded:
    all of them (downloaded and cached), or the first `limit` (streamed: only the file parts that
    hold them are fetched)."""
    files = {TEST_SPLIT: HUB_TEST_FILES.format(pair=pair)}
    try:
        require_hub()
        import datasets

        if limit is not None:
            stream = datasets.load_dataset(
                HUB_DATASET, data_files=files, split=TEST_SPLIT, revision=HUB_REVISION, streaming=True
            )
            return [dict(row) for row in stream.decode(False).take(limit)]
        loaded = datasets.load_dataset(HUB_DATASET, data_files=files, split=TEST_SPLIT, revision=HUB_REVISION)
        if "audio" in loaded.features:
            loaded = loaded.cast_column("audio", datasets.Audio(decode=False))
        rows: list[dict[str, Any]] = loaded.to_list()
        return rows
    except Exception as exc:  # offline, missing revision or files...: one actionable message
        reason = " ".join(str(exc).split())[:300]
        raise DataError(
            f"cannot load {HUB_DATASET}@{HUB_REVISION} files {files[TEST_SPLIT]} from the Hugging Face hub "
            f"({type(exc).__name__}: {reason}); without hub access pass local files with --data PATH"
        ) from exc


def _rows_by_pair_column(path: Path) -> dict[str, tuple[list[dict[str, Any]], Path | None]]:
    """Rows of one file grouped by their `pair` column; audio paths relative to the file's folder."""
    groups: dict[str, tuple[list[dict[str, Any]], Path | None]] = {}
    for number, row in enumerate(read_file(path), 1):
        pair = row.get("pair")
        if pair not in ALL_PAIRS:
            raise DataError(
                f"row {number} of {path} has pair {pair!r}; a single data file needs a `pair` column "
                "naming a CoVoST 2 config (fr_en, en_de...), or pass a directory with one entry per pair"
            )
        groups.setdefault(pair, ([], path.parent))[0].append(row)
    return groups


def _names_pair(name: str, pair: str) -> bool:
    return re.search(rf"(?<![a-z0-9-]){re.escape(pair.lower())}(?![a-z0-9-])", name.lower()) is not None


def _has_data_files(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in DATA_EXTENSIONS
    return path.is_dir() and any(p.is_file() and p.suffix.lower() in DATA_EXTENSIONS for p in path.rglob("*"))


def _rows_by_pair_entry(
    root: Path, pairs: Sequence[str]
) -> dict[str, tuple[list[dict[str, Any]], Path | None]]:
    """For each pair, the test rows of the one file or folder under `root` whose name contains it."""
    entries = sorted(p for p in root.iterdir() if _has_data_files(p))
    groups: dict[str, tuple[list[dict[str, Any]], Path | None]] = {}
    for pair in pairs:
        matches = [p for p in entries if _names_pair(p.name, pair)]
        if len(matches) > 1:
            names = ", ".join(p.name for p in matches)
            raise DataError(f"several entries in {root} name pair {pair} ({names}); keep one per pair")
        if matches:
            entry = matches[0]
            groups[pair] = (load_rows(str(entry), TEST_SPLIT), entry if entry.is_dir() else entry.parent)
    return groups


def _sample(pair: str, row: dict[str, Any], index: int, base: Path | None) -> Sample:
    row_id = str(row["id"]).strip() if row.get("id") not in (None, "") else str(index)
    where = f"covost2 row {pair}/{row_id}"
    missing = [field for field in ("sentence", "translation") if row.get(field) is None]
    if missing:
        raise DataError(f"{where} has no {' or '.join(missing)} (fields: {', '.join(sorted(row))})")
    source, target = split_pair(pair)
    metadata = {"file": row["file"]} if row.get("file") else {}
    return Sample(
        id=f"{pair}/{row_id}",
        inputs={
            "audio": _audio_part(row.get("audio"), base, where),
            "source_language": source,
            "target_language": target,
            "source_sentence": str(row["sentence"]),
        },
        target=str(row["translation"]),
        category=pair,
        metadata=metadata,
    )


def _audio_part(value: Any, base: Path | None, where: str) -> AudioPart:
    """Encoded audio bytes or a file path; decoded arrays are encoded to WAV once."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return AudioPart(data=bytes(value["bytes"]))
        if value.get("array") is not None:
            return AudioPart(data=_wav_bytes(value["array"], value.get("sampling_rate"), where))
        value = value.get("path")
    if not isinstance(value, str) or not value:
        raise DataError(f"{where} has no audio (expected a path, or an object with bytes, path or array)")
    path = Path(value)
    if not path.is_absolute():
        if base is None:
            raise DataError(
                f"{where}: audio path {value} is relative but the row has no folder to resolve it"
            )
        path = base / path
    # A missing file is not a load error: that one utterance becomes an error completion (the
    # backend names the file) and the run goes on, counting it.
    return AudioPart(path=str(path))


def _wav_bytes(array: Any, sampling_rate: Any, where: str) -> bytes:
    import soundfile

    if not sampling_rate:
        raise DataError(f"{where}: audio array without sampling_rate")
    buffer = io.BytesIO()
    soundfile.write(
        buffer, np.asarray(array, dtype=np.float32), int(sampling_rate), format="WAV", subtype="FLOAT"
    )
    return buffer.getvalue()


def _fingerprint_record(sample: Sample) -> dict[str, Any]:
    return {
        "id": sample.id,
        "sentence": sample.inputs["source_sentence"],
        "translation": sample.target,
        "audio": sample.inputs["audio"].sha256,
    }


def _check_size(pair: str, n_rows: int) -> None:
    expected = KNOWN_TEST_SIZES.get(pair)
    if expected is not None and n_rows != expected:
        raise DataError(
            f"{HUB_DATASET}@{HUB_REVISION} {pair} test has {n_rows} rows; the dataset card says {expected}"
        )
