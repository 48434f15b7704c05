"""CoVoST 2 speech translation: audio in one language, a translation in another; corpus BLEU per
language pair, macro-averaged over pairs (the card's "CoVoST" row, PROTOCOLS.md §6).

Variants (language pairs are the hub configs `{source}_{target}`)
- `x-en-no-zh` (default): X→English for the 20 source languages other than zh-CN. Our reading of
  the card's "excluding Chinese" (PROTOCOLS.md §6.4-6.5, inferred, not confirmed).
- `x-en`: X→English, all 21 source languages (the Gemini "CoVoST 2 (21 languages)" set).
- `en-x-no-zh` / `en-x`: English→X, 14 targets without zh-CN / all 15.
Options: `languages="fr,de"` restricts a variant to some of its languages (codes or pair names);
`per_language=N` keeps the first N test utterances of each pair (for cost).

Protocol
- One user message: the model card's speech-translation prompt (`AST_PROMPT`, PROTOCOLS.md §6.2,
  with English language names) and then the audio part (12B card: audio after the text). Greedy,
  512 new tokens, thinking off (Google's settings are not published).
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
- Corpus metrics (`corpus_metrics`): per pair, sacrebleu corpus BLEU over every scored utterance
  (failed ones contribute an empty hypothesis; with repeats, all repeats are pooled), tokenizer
  `13a`, `zh` for zh-CN targets, `ja-mecab` for Japanese targets when `mecab-python3` + `ipadic` are
  installed else `char` (recorded); the macro average over pairs is the card number. A percentile
  bootstrap (utterances resampled within each pair, 200 resamples, seeded) gives its 95% CI.
  ASR quality of the transcription: WER against the source sentence after NFKC, lower-casing,
  replacing Unicode punctuation (categories P*) by spaces and collapsing whitespace; for zh-CN and
  ja sources (no word spaces) CER on the same text with whitespace removed (jiwer).
- Rows with an empty reference are kept (a third-party en→zh-CN run dropped the one in the first
  1,000 rows) and counted as `n_empty_reference`.

Sources
- Data: HF `fixie-ai/covost2` (parquet with embedded 16 kHz audio; configs as folders
  `{pair}/test-*.parquet`; fields `client_id, file, audio, sentence, translation, id`). Only the test
  files of each selected pair are loaded. `HUB_REVISION` was seen in a third-party download script
  and is NOT verified against the hub. Audio is kept encoded (`AudioPart(data=...)`); decoded
  arrays are re-encoded once as 32-bit float WAV.
- Local copies (`--data`): a directory with one entry per pair whose name contains the pair
  (`fr_en/test-00000-of-00002.parquet`, `fr_en.jsonl`, `en_zh-CN_test.parquet`...), or one
  .jsonl/.parquet/.json file with a `pair` column (the builtin smoke data). In .jsonl/.json rows,
  `audio` is a path relative to the folder of the pair's entry (its folder, or the file's folder),
  or an object with `bytes`, `path` or `array` + `sampling_rate`.
- Prompt: Gemma model card, "Audio" best practices (PROTOCOLS.md §6.2). Metrics: sacrebleu, jiwer;
  conventions in PROTOCOLS.md §6.3. CoVoST 2: arXiv 2007.10310.
"""

from __future__ import annotations

import functools
import io
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF

from evals.schema import AudioPart, Completion, Message, Outcome, Request, Sample, Sampling, Score
from tasks.common import failure_outcome, no_answer_outcome, repeat_requests
from tasks.data import (
    DATA_EXTENSIONS,
    DataError,
    builtin_path,
    check_unique_ids,
    data_description,
    load_rows,
    read_file,
    rows_fingerprint,
)

VERSION = "1"  # bump whenever the prompt, the extraction or the scoring changes

# --- prompt -----------------------------------------------------------------------------------

# The model card's speech-translation prompt (PROTOCOLS.md §6.2); the audio part follows it.
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
DEFAULT_SAMPLING = Sampling(temperature=0.0, max_tokens=512, thinking=False)

# --- data ---------------------------------------------------------------------------------------

HUB_DATASET = "fixie-ai/covost2"
# Seen in a third-party download script of fixie-ai/covost2; not verified against the hub.
HUB_REVISION = "17c8c81e331e7a6929118121771a58c7ef7331d8"
HUB_REVISION_VERIFIED = False
HUB_TEST_FILES = "{pair}/test-*.parquet"
TEST_SPLIT = "test"
# Test sizes stated on the dataset card (PROTOCOLS.md §6.1); other pairs are not checked.
KNOWN_TEST_SIZES = {**dict.fromkeys(EN_X_PAIRS, 15_531), "ar_en": 1_695, "ca_en": 12_730}
FINGERPRINT_FIELDS = ("id", "sentence", "translation", "audio")

# --- scoring ------------------------------------------------------------------------------------

NO_LABEL_FALLBACK = "no_label_fallback"
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95
NO_SPACE_LANGUAGES = frozenset({"zh-CN", "ja"})  # ASR error as CER
_EMPHASIS = "[*_]*"
_COLON = "[:：]"
_CHRF = CHRF()


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


# --- metrics ------------------------------------------------------------------------------------


@functools.cache
def _mecab_available() -> bool:
    try:
        BLEU(tokenize="ja-mecab")
    except (ImportError, RuntimeError):  # sacrebleu raises RuntimeError without mecab-python3/ipadic
        return False
    return True


def bleu_tokenizer(target_language: str | None) -> str:
    """sacrebleu tokenizer for a target language: zh for zh-CN, ja-mecab (or char) for ja, else 13a."""
    if target_language == "zh-CN":
        return "zh"
    if target_language == "ja":
        return "ja-mecab" if _mecab_available() else "char"
    return "13a"


def corpus_bleu(
    hypotheses: Sequence[str],
    references: Sequence[str],
    target_lang: str | None = None,
    tokenize: str | None = None,
) -> dict[str, Any]:
    """sacrebleu corpus BLEU (one reference per segment) with the target language's tokenizer,
    unless `tokenize` names one. Precisions in percent, as sacrebleu prints them."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("corpus BLEU of an empty corpus")
    tokenize = tokenize or bleu_tokenizer(target_lang)
    metric = BLEU(tokenize=tokenize)
    result = metric.corpus_score(list(hypotheses), [list(references)])
    return _bleu_dict(result, len(hypotheses), tokenize, str(metric.get_signature()))


def _bleu_dict(result: Any, n: int, tokenize: str, signature: str) -> dict[str, Any]:
    return {
        "score": result.score,
        "precisions": list(result.precisions),
        "bp": result.bp,
        "ratio": result.ratio,
        "sys_len": result.sys_len,
        "ref_len": result.ref_len,
        "n": n,
        "tokenize": tokenize,
        "signature": signature,
        "text": str(result),
    }


def sentence_chrf(hypothesis: str, reference: str) -> float:
    """Sentence-level chrF (sacrebleu defaults) in points (0-100)."""
    return _CHRF.sentence_score(hypothesis, [reference]).score


@functools.cache
def _punctuation_to_space() -> dict[int, str]:
    """A str.translate table mapping every Unicode punctuation character (categories P*) to a space."""
    return {i: " " for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P")}


def normalize_for_asr(text: str) -> str:
    """NFKC, lower-case, Unicode punctuation → space, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_punctuation_to_space())
    return " ".join(text.split())


def asr_error(references: Sequence[str], hypotheses: Sequence[str], unit: str = "word") -> dict[str, Any]:
    """Corpus WER (`unit="word"`) or CER (`"char"`, whitespace removed) after `normalize_for_asr`.
    References that normalise to nothing are skipped (counted in `n_skipped`)."""
    pairs = [
        (normalize_for_asr(r), normalize_for_asr(h)) for r, h in zip(references, hypotheses, strict=True)
    ]
    if unit == "char":
        pairs = [(r.replace(" ", ""), h.replace(" ", "")) for r, h in pairs]
    kept = [(r, h) for r, h in pairs if r]
    result: dict[str, Any] = {
        "unit": unit,
        "error_rate": None,
        "n": len(kept),
        "n_skipped": len(pairs) - len(kept),
    }
    if not kept:
        return result
    refs, hyps = [r for r, _ in kept], [h for _, h in kept]
    out = jiwer.process_characters(refs, hyps) if unit == "char" else jiwer.process_words(refs, hyps)
    errors = out.substitutions + out.deletions + out.insertions
    result.update(
        error_rate=errors / (out.substitutions + out.deletions + out.hits),
        substitutions=out.substitutions,
        deletions=out.deletions,
        insertions=out.insertions,
        hits=out.hits,
    )
    return result


def _segment_stats(
    hypotheses: Sequence[str], references: Sequence[str], tokenize: str
) -> tuple[np.ndarray, str]:
    """Per-segment BLEU statistics, one row each: sys_len, ref_len, 4 n-gram matches, 4 totals
    (sacrebleu's own layout, from the method its paired bootstrap uses), and the signature."""
    metric = BLEU(tokenize=tokenize)
    stats = metric._extract_corpus_statistics(list(hypotheses), [list(references)])
    return np.asarray(stats, dtype=np.int64), str(metric.get_signature())


def _bleu_score(totals: np.ndarray) -> Any:
    values = [int(v) for v in totals]
    return BLEU.compute_bleu(values[2:6], values[6:10], values[0], values[1], smooth_method="exp")


def bleu_from_stats(totals: np.ndarray) -> float:
    """Corpus BLEU from summed segment statistics (same smoothing as `corpus_bleu`)."""
    return _bleu_score(totals).score


def _bootstrap(pair_stats: Sequence[np.ndarray], resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """BLEU of every pair (columns) for `resamples` resamples of its utterances (rows), and their
    macro average per resample."""
    rng = np.random.default_rng(seed)
    boot = np.empty((resamples, len(pair_stats)))
    for column, stats in enumerate(pair_stats):
        n = len(stats)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)
        sums = weights @ stats
        boot[:, column] = [bleu_from_stats(row) for row in sums]
    return boot, boot.mean(axis=1)


def _interval(values: np.ndarray) -> list[float]:
    alpha = (1 - CI_LEVEL) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return [float(low), float(high)]


# --- task ---------------------------------------------------------------------------------------


class CoVoST2:
    """CoVoST 2 speech translation with the model card's prompt; corpus BLEU via `corpus_metrics`."""

    name = "covost2"
    version = VERSION
    VARIANTS = VARIANTS
    PUBLIC_TEXT = True  # Common Voice sentences and CoVoST translations are public (CC0)
    HEADLINE = "corpus"  # the row's number is the macro corpus BLEU of `corpus_metrics`, not a mean

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

    def load(self, data: str | None = None) -> list[Sample]:
        """Test samples of the selected pairs: pinned hub revision, local files (`data`) or "builtin"."""
        groups = self._read(data)
        samples: list[Sample] = []
        records: list[dict[str, Any]] = []
        for pair in self.pairs:
            if pair not in groups:
                continue
            rows, base = groups[pair]
            rows = rows[: self.per_language] if self.per_language else rows
            if data is None and self.per_language is None:
                _check_size(pair, len(rows))
            for index, row in enumerate(rows):
                sample = _sample(pair, row, index, base)
                samples.append(sample)
                records.append(_fingerprint_record(sample))
        check_unique_ids((s.id for s in samples), "covost2 rows")
        self.source = "hub" if data is None else data
        self.loaded_pairs = tuple(p for p in self.pairs if p in groups)
        self.data_fingerprint = rows_fingerprint(records, FINGERPRINT_FIELDS)
        return samples

    def _read(self, data: str | None) -> dict[str, tuple[list[dict[str, Any]], Path | None]]:
        if data is None:
            return {pair: (_hub_pair_rows(pair, self.per_language), None) for pair in self.pairs}
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
            "prompt": "model card AST prompt (PROTOCOLS.md §6.2), audio after the text",
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


# --- corpus metrics -------------------------------------------------------------------------------


def corpus_metrics(
    samples: Sequence[Sample],
    scores: Sequence[Score],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """Per-pair corpus BLEU (every scored utterance; repeats pooled), the macro average over pairs
    with a percentile bootstrap CI (utterances resampled within each pair), and per-pair ASR error
    of the transcriptions. BLEU values are in sacrebleu points (0-100)."""
    by_id = {s.id: s for s in samples}
    grouped: dict[str, list[tuple[Sample, Score]]] = defaultdict(list)
    for score in scores:
        sample = by_id.get(score.sample_id)
        if sample is not None and sample.category is not None:
            grouped[sample.category].append((sample, score))
    sample_counts = Counter(s.category for s in samples)
    per_pair: dict[str, dict[str, Any]] = {}
    pair_stats: list[np.ndarray] = []
    for pair in sorted(grouped):
        summary, stats = _pair_metrics(pair, grouped[pair], sample_counts[pair])
        per_pair[pair] = summary
        pair_stats.append(stats)
    result: dict[str, Any] = {
        "metric": "bleu",
        "macro_bleu": None,
        "ci95": None,
        "bootstrap": {
            "resamples": resamples,
            "seed": seed,
            "unit": "utterance within pair",
            "level": CI_LEVEL,
        },
        "n_pairs": len(per_pair),
        "pairs": list(per_pair),
        "missing_pairs": sorted(p for p in sample_counts if p is not None and p not in per_pair),
        "macro_wer": _macro_asr(per_pair, "word"),
        "macro_cer": _macro_asr(per_pair, "char"),
        "signatures": sorted({p["signature"] for p in per_pair.values()}),
        "per_pair": per_pair,
    }
    if not per_pair:
        return result
    result["macro_bleu"] = float(np.mean([p["bleu"] for p in per_pair.values()]))
    if resamples > 0:
        boot, macro = _bootstrap(pair_stats, resamples, seed)
        result["ci95"] = _interval(macro)
        for column, summary in enumerate(per_pair.values()):
            summary["ci95"] = _interval(boot[:, column])
    return result


def _pair_metrics(
    pair: str, items: Sequence[tuple[Sample, Score]], n_samples: int
) -> tuple[dict[str, Any], np.ndarray]:
    """One pair's summary and its per-utterance BLEU statistics (repeats summed)."""
    source, target = split_pair(pair)
    tokenize = bleu_tokenizer(target)
    hypotheses = [str(score.details.get("hypothesis") or "") for _, score in items]
    references = [str(sample.target) for sample, _ in items]
    segment, signature = _segment_stats(hypotheses, references, tokenize)
    bleu = _bleu_dict(_bleu_score(segment.sum(axis=0)), len(items), tokenize, signature)
    utterances = {sid: i for i, sid in enumerate(dict.fromkeys(sample.id for sample, _ in items))}
    stats = np.zeros((len(utterances), segment.shape[1]), dtype=np.int64)
    np.add.at(stats, [utterances[sample.id] for sample, _ in items], segment)
    transcripts = [str(score.details.get("transcription") or "") for _, score in items]
    asr = asr_error(
        [str(sample.inputs.get("source_sentence", "")) for sample, _ in items],
        transcripts,
        "char" if source in NO_SPACE_LANGUAGES else "word",
    )
    summary = {
        "bleu": bleu["score"],
        "ci95": None,
        "precisions": bleu["precisions"],
        "bp": bleu["bp"],
        "ratio": bleu["ratio"],
        "sys_len": bleu["sys_len"],
        "ref_len": bleu["ref_len"],
        "tokenize": tokenize,
        "signature": bleu["signature"],
        "n_samples": n_samples,
        "n_utterances": len(utterances),
        "n_scores": len(items),
        "n_hypotheses": sum(1 for h in hypotheses if h),
        "n_empty_hypothesis": sum(1 for h in hypotheses if not h),
        "n_no_label": sum(1 for _, score in items if NO_LABEL_FALLBACK in score.flags),
        "n_empty_reference": sum(1 for r in references if not r.strip()),
        "outcomes": dict(sorted(Counter(score.outcome.value for _, score in items).items())),
        "mean_chrf": float(np.mean([score.value for _, score in items]) * 100),
        "asr": asr,
    }
    return summary, stats


def _macro_asr(per_pair: dict[str, dict[str, Any]], unit: str) -> float | None:
    rates = [p["asr"]["error_rate"] for p in per_pair.values() if p["asr"]["unit"] == unit]
    rates = [r for r in rates if r is not None]
    return float(np.mean(rates)) if rates else None


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
    """Test rows of one pair from the pinned hub revision, only its test files, audio not decoded."""
    try:
        import datasets

        files = {TEST_SPLIT: HUB_TEST_FILES.format(pair=pair)}
        loaded = datasets.load_dataset(HUB_DATASET, data_files=files, split=TEST_SPLIT, revision=HUB_REVISION)
        if limit is not None:
            loaded = loaded.select(range(min(limit, len(loaded))))
        if "audio" in loaded.features:
            loaded = loaded.cast_column("audio", datasets.Audio(decode=False))
        return loaded.to_list()
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
