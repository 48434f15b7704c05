"""CoVoST 2 task: prompt, variants, answer parsing, data loading (builtin, local, mocked hub),
corpus BLEU/WER on a hand-computed example, and corpus BLEU reproduced on a published en→zh-CN run.

The builtin audio clips (tasks/smoke_data/covost2_audio/*.wav) are tones written by `write_builtin_audio`;
run `python tests/test_covost2.py` to write them again.
"""

from __future__ import annotations

import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile
from hub_address import reachable_hub
from realdata import SHARED

from evals.schema import AudioPart, Completion, CorpusTask, FollowupTask, Outcome, Sample, Score, Task
from tasks import covost2, covost_metrics
from tasks.covost2 import AST_PROMPT, VARIANT_PAIRS, CoVoST2, language_name, parse_answer
from tasks.covost_metrics import (
    NO_LABEL_FALLBACK,
    asr_error,
    bleu_from_stats,
    bleu_tokenizer,
    corpus_bleu,
    corpus_metrics,
    normalize_for_asr,
)
from tasks.data import SMOKE_DIR, DataError

COVOST = SHARED / "realdata" / "covost2"
PREDICTIONS = COVOST / "en_zh-CN_test999_predictions_qwen2.5-omni+lora.json"
METRICS = COVOST / "en_zh-CN_test999_eval_metrics.json"
WHISPER_ROWS = sorted(COVOST.glob("en_zh-CN_test_rows_whisper_test_*.jsonl"))
needs_covost = pytest.mark.realdata(PREDICTIONS, METRICS)
needs_whisper_rows = pytest.mark.realdata(
    PREDICTIONS, *(COVOST / f"en_zh-CN_test_rows_whisper_test_{i}.jsonl" for i in range(1, 5))
)

# --- builtin audio --------------------------------------------------------------------------------

AUDIO_DIR = SMOKE_DIR / "covost2_audio"
SAMPLE_RATE = 16_000
# clip name -> (start Hz, end Hz, seconds): tones and chirps, one per builtin row
BUILTIN_CLIPS = {
    "builtin-fr-1": (220.0, 220.0, 0.5),
    "builtin-fr-2": (330.0, 660.0, 0.5),
    "builtin-de-1": (440.0, 440.0, 0.6),
    "builtin-de-2": (550.0, 275.0, 0.6),
    "builtin-en-de-1": (300.0, 900.0, 0.7),
    "builtin-en-zh-1": (500.0, 500.0, 0.5),
    "builtin-en-zh-2": (800.0, 400.0, 0.8),
}


def synth_clip(start_hz: float, end_hz: float, seconds: float) -> np.ndarray:
    """A linear chirp (a tone when start == end) at 0.3 amplitude with 20 ms fades, float32."""
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    phase = 2 * np.pi * (start_hz * t + (end_hz - start_hz) * t**2 / (2 * seconds))
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.02)
    return (0.3 * np.sin(phase) * fade).astype(np.float32)


def write_builtin_audio(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, spec in BUILTIN_CLIPS.items():
        soundfile.write(folder / f"{name}.wav", synth_clip(*spec), SAMPLE_RATE, subtype="PCM_16")


def wav_bytes(seconds: float = 0.1) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, synth_clip(440, 440, seconds), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_builtin_audio_files_are_small_16khz_mono_and_match_the_generator(tmp_path):
    write_builtin_audio(tmp_path)
    for name, (_, _, seconds) in BUILTIN_CLIPS.items():
        path = AUDIO_DIR / f"{name}.wav"
        assert path.stat().st_size < 40_000
        committed, rate = soundfile.read(path, dtype="int16")
        regenerated, _ = soundfile.read(tmp_path / f"{name}.wav", dtype="int16")
        assert rate == SAMPLE_RATE and committed.ndim == 1 and len(committed) == int(SAMPLE_RATE * seconds)
        assert np.abs(committed.astype(int) - regenerated.astype(int)).max() <= 1


# --- prompt, languages, variants ------------------------------------------------------------------


def test_prompt_is_the_card_prompt_with_english_names_and_audio_follows_text():
    task = CoVoST2(languages="sv-SE")
    sample = _sample("sv-SE_en", "1", "Hej", "Hi")
    assert task.prompt(sample) == (
        "Transcribe the following speech segment in Swedish, then translate it into English.\n"
        "When formatting the answer, first output the transcription in Swedish, then one newline, "
        "then output the string 'English: ', then the translation in English."
    )
    [request] = task.requests(sample, task.default_sampling, 1)
    [message] = request.messages
    assert message.role == "user"
    assert [p.type for p in message.content] == ["text", "audio"]
    assert message.content[1] is sample.inputs["audio"]
    assert request.key == "covost2/x-en-no-zh/sv-SE_en/1/0"


def test_prompt_constant_for_an_en_x_pair():
    text = AST_PROMPT.format(source_language="English", target_language="Chinese")
    assert text.endswith("output the string 'Chinese: ', then the translation in Chinese.")


@pytest.mark.parametrize(
    ("code", "name"),
    [("fr", "French"), ("sv-SE", "Swedish"), ("zh-CN", "Chinese"), ("fa", "Persian"), ("cy", "Welsh"),
     ("sl", "Slovenian"), ("mn", "Mongolian"), ("en", "English"), ("ja", "Japanese"), ("id", "Indonesian")],
)  # fmt: skip
def test_language_names(code, name):
    assert language_name(code) == name


def test_every_pair_language_has_a_name_and_unknown_codes_fail():
    for pairs in VARIANT_PAIRS.values():
        for pair in pairs:
            for code in pair.split("_"):
                language_name(code)
    with pytest.raises(ValueError, match="unknown CoVoST 2 language code 'xx'"):
        language_name("xx")


def test_variants_select_the_right_pairs():
    assert CoVoST2().variant == "x-en-no-zh"
    default = CoVoST2().pairs
    assert len(default) == 20 and "zh-CN_en" not in default and all(p.endswith("_en") for p in default)
    assert len(CoVoST2("x-en").pairs) == 21 and "zh-CN_en" in CoVoST2("x-en").pairs
    en_x = CoVoST2("en-x-no-zh").pairs
    assert len(en_x) == 14 and "en_zh-CN" not in en_x and all(p.startswith("en_") for p in en_x)
    assert len(CoVoST2("en-x").pairs) == 15 and "en_zh-CN" in CoVoST2("en-x").pairs
    assert set(default) == {f"{c}_en" for c in covost2.X_EN_SOURCES if c != "zh-CN"}
    with pytest.raises(ValueError, match="unknown covost2 variant 'x-y'"):
        CoVoST2("x-y")


def test_languages_option_restricts_pairs():
    assert CoVoST2(languages="fr, de").pairs == ("de_en", "fr_en")
    assert CoVoST2(languages="sv-se,ja_en").pairs == ("ja_en", "sv-SE_en")
    assert CoVoST2("en-x", languages="zh-CN").pairs == ("en_zh-CN",)
    with pytest.raises(ValueError, match=r"no language 'zh-CN' \(zh-CN needs variant x-en or en-x\)"):
        CoVoST2(languages="zh-CN")
    with pytest.raises(ValueError, match="has no language 'fr'"):
        CoVoST2("en-x", languages="fr")
    with pytest.raises(ValueError, match="languages is empty"):
        CoVoST2(languages=" , ")


def test_per_language_must_be_a_positive_integer():
    assert CoVoST2(per_language=3).per_language == 3
    assert CoVoST2(per_language="3").per_language == 3
    for bad in (0, -1, "x", 1.5, True):
        with pytest.raises(ValueError, match="per_language must be a positive integer"):
            CoVoST2(per_language=bad)


def test_bleu_tokenizers_by_target():
    assert bleu_tokenizer("en") == "13a"
    assert bleu_tokenizer("de") == "13a"
    assert bleu_tokenizer("zh-CN") == "zh"
    assert bleu_tokenizer("ja") in ("ja-mecab", "char")
    assert bleu_tokenizer(None) == "13a"


def test_task_contract_fields():
    task = CoVoST2()
    assert isinstance(task, Task)
    assert isinstance(task, CorpusTask) and not isinstance(task, FollowupTask)
    assert task.name == "covost2" and (CoVoST2.public_text, CoVoST2.headline) == (True, "corpus")
    assert task.default_sampling.temperature == 0.0 and task.default_sampling.max_tokens == 512
    assert task.default_sampling.thinking is False
    assert list(CoVoST2.variants) == ["x-en-no-zh", "x-en", "en-x-no-zh", "en-x"]
    assert all(meaning.startswith("direction: ") for meaning in CoVoST2.variants.values())


# --- answer parsing and per-sample scores ---------------------------------------------------------


def test_label_present_gives_translation_and_transcription():
    parsed = parse_answer("Le chat dort.\nEnglish: The cat is sleeping.", "en", "fr")
    assert parsed.hypothesis == "The cat is sleeping." and parsed.transcription == "Le chat dort."
    assert parsed.label_found


def test_label_variants_markdown_case_and_next_line():
    assert parse_answer("**French:** Oui\n**English:** Yes", "en", "fr").hypothesis == "Yes"
    assert parse_answer("**French:** Oui\n**English:** Yes", "en", "fr").transcription == "Oui"
    assert parse_answer("Oui\nenglish:\n\nYes\n\nNote: short.", "en", "fr").hypothesis == "Yes"
    assert parse_answer("The tea is hot.\nChinese：茶很烫。", "zh-CN", "en").hypothesis == "茶很烫。"
    assert parse_answer("Oui. English: Yes.", "en", "fr").transcription == "Oui."


def test_several_labels_the_last_wins():
    text = "English: draft one\nLe chat.\nEnglish: The cat."
    parsed = parse_answer(text, "en", "fr")
    assert parsed.hypothesis == "The cat." and parsed.transcription == "English: draft one"


def test_label_absent_falls_back_to_the_last_line():
    parsed = parse_answer("Le chat dort.\nThe cat is sleeping.\n", "en", "fr")
    assert parsed.hypothesis == "The cat is sleeping." and parsed.transcription == "Le chat dort."
    assert not parsed.label_found
    single = parse_answer("The cat is sleeping.", "en", "fr")
    assert single.hypothesis == "The cat is sleeping." and single.transcription is None


def _sample(
    pair: str = "fr_en", sid: str = "1", source: str = "Le chat dort.", target: str = "The cat sleeps."
):
    src, tgt = pair.split("_", 1)
    inputs = {"audio": AudioPart(data=b"x"), "source_language": src, "target_language": tgt,
              "source_sentence": source}  # fmt: skip
    return Sample(f"{pair}/{sid}", inputs, target, pair)


def test_score_outcomes_flags_and_details():
    task = CoVoST2()
    sample = _sample()
    ok = task.score(sample, Completion("k", "Le chat dort.\nEnglish: The cat sleeps."), 0)
    assert ok.outcome is Outcome.CORRECT and ok.value == pytest.approx(1.0) and ok.flags == ()
    assert ok.details["hypothesis"] == "The cat sleeps." and ok.details["reference"] == "The cat sleeps."
    assert ok.details["transcription"] == "Le chat dort." and ok.extracted == "The cat sleeps."

    fallback = task.score(sample, Completion("k", "The cat sleeps."), 0)
    assert fallback.outcome is Outcome.CORRECT and fallback.flags == (NO_LABEL_FALLBACK,)

    empty = task.score(sample, Completion("k", "  \n "), 0)
    assert empty.outcome is Outcome.UNPARSED and empty.value == 0.0 and empty.details["hypothesis"] == ""
    assert empty.flags == ()

    cut = task.score(sample, Completion("k", "Le chat dort.\nEnglish: The cat", finish_reason="length"), 0)
    assert cut.outcome is Outcome.TRUNCATED and cut.details["hypothesis"] == "The cat" and cut.value > 0

    failed = task.score(sample, Completion("k", "", finish_reason="error", error="audio longer than 30 s"), 0)
    assert failed.outcome is Outcome.ERROR and failed.details["hypothesis"] == ""

    wrong = task.score(sample, Completion("k", "Le chat dort.\nEnglish: Dogs bark loudly."), 0)
    assert wrong.outcome is Outcome.CORRECT and wrong.value < 0.3


def test_asr_normalisation_and_error_rates():
    assert normalize_for_asr("  «Bonjour», le MONDE!  ") == "bonjour le monde"
    wer = asr_error(["Bonjour, le monde!", "merci beaucoup"], ["bonjour le monde", ""])
    assert wer["unit"] == "word" and wer["error_rate"] == pytest.approx(2 / 5)
    assert (wer["deletions"], wer["substitutions"], wer["insertions"]) == (2, 0, 0)
    cer = asr_error(["茶还很烫。"], ["茶很 烫"], "char")
    assert cer["error_rate"] == pytest.approx(1 / 4)
    assert asr_error(['""'], ["x"])["error_rate"] is None


# --- corpus metrics ---------------------------------------------------------------------------------


def _hand_example() -> tuple[list[Sample], list[Score]]:
    """fr_en: one translation with 4/5, 3/4, 2/3, 1/2 matches and one failure (empty hypothesis);
    de_en: one exact translation."""
    task = CoVoST2()
    samples = [
        _sample("fr_en", "a", "Bonjour, le monde!", "a b c d f"),
        _sample("fr_en", "b", "Merci beaucoup", "x y"),
        _sample("de_en", "c", "Das Fenster ist offen.", "the window is open"),
    ]
    completions = [
        Completion("a", "Bonjour le monde\nEnglish: a b c d e"),
        Completion("b", "", finish_reason="error", error="decode failed"),
        Completion("c", "Das Fenster ist offen\nEnglish: the window is open"),
    ]
    scores = [task.score(s, c, 0) for s, c in zip(samples, completions, strict=True)]
    return samples, scores


def test_corpus_metrics_on_a_hand_computed_example():
    samples, scores = _hand_example()
    result = CoVoST2().corpus_metrics(samples, scores)
    fr = result["per_pair"]["fr_en"]
    # precisions 4/5, 3/4, 2/3, 1/2 -> geometric mean 0.2 ** 0.25; BP = exp(1 - 7/5)
    expected_fr = 100 * 0.2**0.25 * math.exp(1 - 7 / 5)
    assert fr["bleu"] == pytest.approx(expected_fr, abs=1e-9)
    assert fr["precisions"] == pytest.approx([80.0, 75.0, 200 / 3, 50.0])
    assert (fr["sys_len"], fr["ref_len"], fr["tokenize"]) == (5, 7, "13a")
    assert (fr["n_samples"], fr["n_scores"], fr["n_hypotheses"], fr["n_empty_hypothesis"]) == (2, 2, 1, 1)
    assert fr["outcomes"] == {"correct": 1, "error": 1}
    assert fr["asr"]["error_rate"] == pytest.approx(2 / 5)  # the failed utterance: 2 deletions
    assert result["per_pair"]["de_en"]["bleu"] == pytest.approx(100.0)
    assert result["per_pair"]["de_en"]["asr"]["error_rate"] == 0.0
    assert result["macro_bleu"] == pytest.approx((expected_fr + 100) / 2)
    assert result["macro_wer"] == pytest.approx(0.2) and result["macro_cer"] is None
    assert result["pairs"] == ["de_en", "fr_en"] and result["n_pairs"] == 2 and result["missing_pairs"] == []
    assert result["signatures"] == [
        f"nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:{covost2.sacrebleu.__version__}"
    ]
    low, high = result["ci95"]
    # fr_en resamples are {a,a} 66.87, {a,b} 44.83 or {b,b} 0; de_en is always 100
    assert 50.0 <= low <= result["macro_bleu"] <= high <= 100 * (1 + 0.2**0.25) / 2 + 1e-9
    assert result["per_pair"]["de_en"]["ci95"] == pytest.approx([100.0, 100.0])
    assert CoVoST2().corpus_metrics(samples, scores) == result  # seeded
    json.dumps(result)  # JSON-able as is


def test_corpus_metrics_pools_repeats_and_reports_missing_pairs():
    samples, scores = _hand_example()
    extra = _sample("de_en", "d", "Ja", "yes")  # no score: missing completion
    repeat = CoVoST2().score(samples[2], Completion("c", "x\nEnglish: the window is open"), 1)
    result = corpus_metrics([*samples, extra, _sample("es_en", "e")], [*scores, repeat], resamples=50)
    de = result["per_pair"]["de_en"]
    assert (de["n_samples"], de["n_utterances"], de["n_scores"]) == (2, 1, 2)
    assert de["bleu"] == pytest.approx(100.0)
    assert result["missing_pairs"] == ["es_en"] and result["bootstrap"]["resamples"] == 50
    empty = corpus_metrics(samples, [])
    assert empty["macro_bleu"] is None and empty["n_pairs"] == 0
    failed = [CoVoST2().score(s, Completion(s.id, "", finish_reason="timeout"), 0) for s in samples]
    nothing = corpus_metrics(samples, failed)
    assert nothing["macro_bleu"] == 0.0 and nothing["per_pair"]["fr_en"]["outcomes"] == {"timeout": 2}


def test_bleu_from_summed_segment_stats_equals_corpus_bleu():
    hyps = ["the cat sat on a mat", "hello there", "", "a b c"]
    refs = ["the cat sat on the mat", "hello there friend", "x", "a b c d"]
    stats, signature = covost_metrics.segment_stats(hyps, refs, "13a")
    assert signature == corpus_bleu(hyps, refs, "en")["signature"]
    assert stats.shape == (4, 10)
    assert bleu_from_stats(stats.sum(axis=0)) == pytest.approx(corpus_bleu(hyps, refs, "en")["score"])


def test_corpus_bleu_checks_its_input():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_bleu(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty corpus"):
        corpus_bleu([], [])


# --- published en→zh-CN run -------------------------------------------------------------------------


def _scored_predictions() -> list[dict]:
    rows = json.loads(PREDICTIONS.read_text(encoding="utf-8"))
    assert len(rows) == 999
    # Every row is scored ("ok"); the 1,000th test item of the run (dataset row 458, empty
    # translation) is absent from the file, whose ids were renumbered: the audio name keeps the row.
    assert {r["status"] for r in rows} == {"ok"}
    return [r for r in rows if r["status"] == "ok"]


@needs_covost
def test_corpus_bleu_reproduces_the_published_char_bleu():
    rows = _scored_predictions()
    metrics = json.loads(METRICS.read_text(encoding="utf-8"))
    assert metrics["total"] == metrics["valid"] == len(rows) == 999
    result = corpus_bleu(
        [r["prediction"] for r in rows], [r["reference"] for r in rows], "zh-CN", tokenize="char"
    )
    assert result["text"] == metrics["BLEU"]
    assert round(result["score"], 2) == 39.95
    assert [round(p, 1) for p in result["precisions"]] == [65.0, 45.5, 34.3, 26.9]
    assert round(result["bp"], 3) == 0.983 and round(result["ratio"], 3) == 0.984
    assert (result["sys_len"], result["ref_len"], result["n"]) == (15459, 15718, 999)
    published = re.match(
        r"BLEU = ([\d.]+) ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) \(BP = ([\d.]+)", metrics["BLEU"]
    )
    assert published is not None and float(published.group(1)) == round(result["score"], 2)
    assert result["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:char|smooth:exp|")
    assert result["tokenize"] == "char"


@needs_whisper_rows
def test_task_pipeline_on_the_published_run(tmp_path):
    """The run's 1,000 test rows as a local en_zh-CN pair, its predictions as model answers: the
    task's extraction and corpus metrics give the same BLEU as sacrebleu on the raw predictions."""
    dataset_rows = {}
    for path in WHISPER_ROWS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                dataset_rows[row["idx"]] = row
    assert sorted(dataset_rows) == list(range(1000))
    (tmp_path / "clip.wav").write_bytes(wav_bytes())
    with open(tmp_path / "en_zh-CN.jsonl", "w", encoding="utf-8") as handle:
        for idx, row in sorted(dataset_rows.items()):
            record = {"id": idx, "audio": "clip.wav", "sentence": row["src_en"], "translation": row["ref_zh"]}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    task = CoVoST2("en-x", languages="zh-CN")
    samples = task.load(str(tmp_path))
    assert len(samples) == 1000 and task.loaded_pairs == ("en_zh-CN",)
    by_id = {s.id: s for s in samples}
    scores = []
    predictions = _scored_predictions()
    for row in predictions:
        sample = by_id[f"en_zh-CN/{Path(row['audio']).stem}"]  # the audio name is the dataset row
        assert sample.target == row["reference"]
        text = f"{sample.inputs['source_sentence']}\nChinese: {row['prediction']}"
        scores.append(task.score(sample, Completion(sample.id, text), 0))
    assert [s.details["hypothesis"] for s in scores] == [r["prediction"] for r in predictions]
    assert all(s.outcome is Outcome.CORRECT and not s.flags for s in scores)

    result = task.corpus_metrics(samples, scores)
    pair = result["per_pair"]["en_zh-CN"]
    direct = corpus_bleu(
        [r["prediction"] for r in predictions], [r["reference"] for r in predictions], "zh-CN"
    )
    assert pair["tokenize"] == "zh" and pair["bleu"] == pytest.approx(direct["score"])
    assert round(pair["bleu"], 2) == 39.40  # the zh tokenizer; the run's own number used char (39.95)
    assert (pair["n_samples"], pair["n_scores"], pair["n_empty_reference"]) == (1000, 999, 0)
    assert pair["asr"]["unit"] == "word" and pair["asr"]["error_rate"] == 0.0
    assert result["macro_bleu"] == pytest.approx(direct["score"])
    low, high = result["ci95"]
    assert low < result["macro_bleu"] < high and high - low < 10
    hyps = [s.details["hypothesis"] for s in scores]
    assert (
        corpus_bleu(hyps, [by_id[s.sample_id].target for s in scores], tokenize="char")["text"]
        == (json.loads(METRICS.read_text(encoding="utf-8"))["BLEU"])
    )


# --- data loading -----------------------------------------------------------------------------------


def test_builtin_loading():
    task = CoVoST2()
    samples = task.load("builtin")
    assert [s.id for s in samples] == [
        "de_en/builtin-de-1",
        "de_en/builtin-de-2",
        "fr_en/builtin-fr-1",
        "fr_en/builtin-fr-2",
    ]
    first = samples[0]
    assert first.category == "de_en" and first.target == "The window is open."
    assert first.inputs["source_language"] == "de" and first.inputs["target_language"] == "en"
    assert first.inputs["source_sentence"] == "Das Fenster ist offen."
    audio = first.inputs["audio"]
    assert isinstance(audio, AudioPart) and Path(audio.path) == AUDIO_DIR / "builtin-de-1.wav"
    assert task.loaded_pairs == ("de_en", "fr_en") and task.describe()["data"] == {"source": "builtin"}
    assert len(task.data_fingerprint or "") == 64
    en_x = CoVoST2("en-x").load("builtin")
    assert {s.category for s in en_x} == {"en_de", "en_zh-CN"}
    zh = [s for s in en_x if s.category == "en_zh-CN"]
    assert zh[0].target == "茶还很烫。" and CoVoST2("en-x").prompt(zh[0]).endswith("translation in Chinese.")
    assert len(CoVoST2(per_language=1).load("builtin")) == 2
    with pytest.raises(DataError, match="builtin covost2 data has no pair"):
        CoVoST2("x-en", languages="ja").load("builtin")


def test_builtin_round_trip_gives_full_bleu_for_reference_answers():
    task = CoVoST2("en-x")
    samples = task.load("builtin")
    scores = [
        task.score(
            s,
            Completion(
                s.id,
                f"{s.inputs['source_sentence']}\n{language_name(s.inputs['target_language'])}: {s.target}",
            ),
            0,
        )
        for s in samples
    ]
    result = task.corpus_metrics(samples, scores)
    assert result["per_pair"]["en_zh-CN"]["tokenize"] == "zh"
    assert result["macro_bleu"] == pytest.approx(100.0) and result["macro_wer"] == 0.0


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _rows(n: int, audio: str = "clip.wav") -> list[dict]:
    return [
        {"id": f"r{i}", "audio": audio, "sentence": f"phrase {i}", "translation": f"sentence {i}"}
        for i in range(n)
    ]


def test_local_directory_with_one_entry_per_pair_and_per_language_cap(tmp_path):
    (tmp_path / "clip.wav").write_bytes(wav_bytes())
    _write_jsonl(tmp_path / "fr_en.jsonl", _rows(5))
    folder = tmp_path / "de_en"
    _write_jsonl(folder / "test.jsonl", _rows(3, "audio/x.wav"))
    _write_jsonl(folder / "validation.jsonl", _rows(2, "audio/x.wav"))
    (folder / "audio").mkdir()
    (folder / "audio" / "x.wav").write_bytes(wav_bytes(0.2))
    (tmp_path / "fr_en_audio").mkdir()  # no data files: not an entry for fr_en
    (tmp_path / "fr_en_audio" / "y.wav").write_bytes(wav_bytes())

    task = CoVoST2(languages="fr,de", per_language=2)
    samples = task.load(str(tmp_path))
    assert [s.id for s in samples] == ["de_en/r0", "de_en/r1", "fr_en/r0", "fr_en/r1"]
    assert Path(samples[0].inputs["audio"].path) == folder / "audio" / "x.wav"
    assert Path(samples[2].inputs["audio"].path) == tmp_path / "clip.wav"
    assert len(CoVoST2(languages="fr,de").load(str(tmp_path))) == 8  # test split only for de_en


def test_parquet_rows_keep_encoded_bytes_and_arrays_are_encoded_once(tmp_path):
    encoded = wav_bytes()
    table = pa.table({"id": ["a"], "sentence": ["s"], "translation": ["t"],
                      "audio": [{"bytes": encoded, "path": "common_voice_fr_1.mp3"}]})  # fmt: skip
    (tmp_path / "fr_en").mkdir()
    pq.write_table(table, tmp_path / "fr_en" / "test-00000-of-00001.parquet")
    wave = synth_clip(300, 300, 0.1)
    _write_jsonl(tmp_path / "de_en.jsonl", [{"id": "b", "sentence": "s", "translation": "t",
                                              "audio": {"array": wave.tolist(), "sampling_rate": 16000}}])  # fmt: skip
    samples = CoVoST2(languages="fr,de").load(str(tmp_path))
    by_pair = {s.category: s for s in samples}
    assert by_pair["fr_en"].inputs["audio"].data == encoded and by_pair["fr_en"].inputs["audio"].path is None
    data = by_pair["de_en"].inputs["audio"].data
    decoded, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert rate == 16000 and np.array_equal(decoded, wave)


def test_data_errors(tmp_path):
    (tmp_path / "clip.wav").write_bytes(wav_bytes())
    with pytest.raises(DataError, match="does not exist"):
        CoVoST2().load(str(tmp_path / "nope"))

    _write_jsonl(tmp_path / "fr_en.jsonl", _rows(2))
    with pytest.raises(DataError, match=r"no data for pairs de_en \(found: fr_en\).*languages="):
        CoVoST2(languages="fr,de").load(str(tmp_path))

    single = tmp_path / "one" / "rows.jsonl"
    _write_jsonl(single, _rows(1))
    with pytest.raises(DataError, match="needs a `pair` column"):
        CoVoST2().load(str(single))

    missing_field = tmp_path / "a"
    _write_jsonl(missing_field / "fr_en.jsonl", [{"id": "x", "audio": "clip.wav", "sentence": "s"}])
    with pytest.raises(DataError, match="covost2 row fr_en/x has no translation"):
        CoVoST2(languages="fr").load(str(missing_field))

    no_audio = tmp_path / "b"  # a missing clip is that utterance's error at generation, not a load error
    _write_jsonl(no_audio / "fr_en.jsonl", _rows(1, "missing.wav"))
    (loaded,) = CoVoST2(languages="fr").load(str(no_audio))
    assert loaded.inputs["audio"].path == str(no_audio / "missing.wav")

    ambiguous = tmp_path / "c"
    _write_jsonl(ambiguous / "fr_en.jsonl", _rows(1))
    _write_jsonl(ambiguous / "fr_en" / "test.jsonl", _rows(1))
    with pytest.raises(DataError, match=r"several entries .* name pair fr_en"):
        CoVoST2(languages="fr").load(str(ambiguous))

    duplicate = tmp_path / "d"
    (duplicate / "clip.wav").parent.mkdir()
    (duplicate / "clip.wav").write_bytes(wav_bytes())
    _write_jsonl(duplicate / "fr_en.jsonl", _rows(1) + _rows(1))
    with pytest.raises(DataError, match=r"covost2 rows share ids \['fr_en/r0'\]"):
        CoVoST2(languages="fr").load(str(duplicate))

    no_rate = tmp_path / "e"
    _write_jsonl(
        no_rate / "fr_en.jsonl", [{"id": "x", "sentence": "s", "translation": "t", "audio": {"array": [0.0]}}]
    )
    with pytest.raises(DataError, match="audio array without sampling_rate"):
        CoVoST2(languages="fr").load(str(no_rate))


# --- hub (a local folder in the hub's layout: no network here) -------------------------------------


def mp3_bytes(seconds: float = 0.1, hz: float = 440.0) -> bytes:
    """An MP3 clip, as the hub copy embeds Common Voice's original clips (libsndfile >= 1.1 writes it)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, synth_clip(hz, hz, seconds), SAMPLE_RATE, format="MP3")
    return buffer.getvalue()


def _hub_parquet(path: Path, ids: list[str]) -> None:
    """One test file in the schema of fixie-ai/covost2: MP3 bytes in an `Audio` struct."""
    import datasets

    features = datasets.Features({
        "client_id": datasets.Value("string"), "file": datasets.Value("string"),
        "audio": datasets.Audio(sampling_rate=16000), "sentence": datasets.Value("string"),
        "translation": datasets.Value("string"), "id": datasets.Value("string"),
    })  # fmt: skip
    n = len(ids)
    audio = [{"bytes": mp3_bytes(0.05 + int(i.rsplit("_", 1)[1]) / 100), "path": f"{i}.mp3"} for i in ids]
    table = pa.table(
        {"client_id": ["c"] * n, "file": [f"{i}.mp3" for i in ids], "audio": audio,
         "sentence": [f"s {i}" for i in ids], "translation": [f"t {i}" for i in ids], "id": ids},
        schema=features.arrow_schema,
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def local_hub(root: Path, sizes: dict[str, int], shards: int = 2) -> Path:
    """`root/{pair}/test-0000k-of-0000{shards}.parquet` with `sizes[pair]` rows split over the shards."""
    for pair, n in sizes.items():
        ids = [f"common_voice_{i}" for i in range(n)]
        per_shard = -(-n // shards)
        for k in range(shards):
            _hub_parquet(
                root / pair / f"test-{k:05d}-of-{shards:05d}.parquet",
                ids[k * per_shard : (k + 1) * per_shard],
            )
    return root


def serve_from(monkeypatch: pytest.MonkeyPatch, root: Path) -> list[tuple[str, dict]]:
    """`datasets.load_dataset` reads `root` instead of the hub, with the task's own arguments; the
    calls are recorded."""
    import datasets

    real_load = datasets.load_dataset
    calls: list[tuple[str, dict]] = []

    def load(name, **kwargs):
        calls.append((name, kwargs))
        return real_load(str(root), **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", load)
    return calls


def hub_call(pair: str, **extra: object) -> tuple[str, dict]:
    files = {
        "data_files": {"test": f"{pair}/test-*.parquet"},
        "split": "test",
        "revision": covost2.HUB_REVISION,
    }
    return ("fixie-ai/covost2", {**files, **extra})


def test_hub_loading_reads_only_the_test_files_with_the_mp3_clips_undecoded(tmp_path, monkeypatch):
    calls = serve_from(monkeypatch, local_hub(tmp_path / "hub", {"fr_en": 4}))
    with reachable_hub(monkeypatch):
        task = CoVoST2(languages="fr", per_language=3)
        capped = task.load()
        everything = CoVoST2(languages="fr").load()
    # a capped read streams the first rows (across the pair's files); a full one downloads them all
    assert calls == [hub_call("fr_en", streaming=True), hub_call("fr_en")]
    assert [s.id for s in capped] == ["fr_en/common_voice_0", "fr_en/common_voice_1", "fr_en/common_voice_2"]
    assert [s.id for s in everything] == [*(s.id for s in capped), "fr_en/common_voice_3"]
    audio = capped[1].inputs["audio"]
    assert audio.data == mp3_bytes(0.06) == everything[1].inputs["audio"].data
    assert capped[1].metadata == {"file": "common_voice_1.mp3"}
    described = task.describe()
    assert (
        described["data"]["dataset"] == "fixie-ai/covost2" and described["data"]["revision_verified"] is False
    )


def test_the_hub_mp3_clips_decode_for_the_backends(tmp_path, monkeypatch):
    from runners.chat_wire import audio_format
    from runners.hf_media import AudioLimits, load_audio

    serve_from(monkeypatch, local_hub(tmp_path / "hub", {"fr_en": 2}))
    with reachable_hub(monkeypatch):
        (sample,) = CoVoST2(languages="fr").load(limit=1)
    audio = sample.inputs["audio"]
    assert audio_format(audio.data) == "mp3"
    wave = load_audio(audio, AudioLimits())
    assert wave.dtype == np.float32 and abs(len(wave) - 0.05 * SAMPLE_RATE) < 0.01 * SAMPLE_RATE
    assert np.abs(wave).max() > 0.1  # the tone survives the MP3 round trip


def test_a_limited_run_reads_only_the_rows_and_pairs_it_needs(tmp_path, monkeypatch):
    """The default variant has 20 pairs; the folder holds only the first two (ar_en, ca_en), so
    reading any other pair would fail."""
    calls = serve_from(monkeypatch, local_hub(tmp_path / "hub", {"ar_en": 2, "ca_en": 3}))
    with reachable_hub(monkeypatch):
        task = CoVoST2()
        samples = task.load(limit=4)
        assert [c[1]["data_files"]["test"] for c in calls] == ["ar_en/test-*.parquet", "ca_en/test-*.parquet"]
        assert all(c[1].get("streaming") for c in calls)
        assert [s.id for s in samples] == [
            "ar_en/common_voice_0", "ar_en/common_voice_1", "ca_en/common_voice_0", "ca_en/common_voice_1",
        ]  # fmt: skip
        assert task.loaded_pairs == ("ar_en", "ca_en")
        calls.clear()
        assert [s.id for s in CoVoST2(per_language=1).load(limit=2)] == [
            "ar_en/common_voice_0",
            "ca_en/common_voice_0",
        ]
        assert len(calls) == 2
        calls.clear()
        assert [s.id for s in CoVoST2().load(limit=1)] == ["ar_en/common_voice_0"] and len(calls) == 1
    # local copies give the same first samples
    local = CoVoST2(languages="ar,ca").load(str(tmp_path / "hub"), limit=4)
    assert [s.id for s in local] == [s.id for s in samples]
    assert [s.inputs["audio"].data for s in local] == [s.inputs["audio"].data for s in samples]


def test_the_task_never_imports_torch():
    code = (
        "import sys\n"
        "from evals.schema import Completion\n"
        "from tasks.covost2 import CoVoST2\n"
        "task = CoVoST2('en-x')\n"
        "samples = task.load('builtin')\n"
        "scores = [task.score(s, Completion(s.id, 'x'), 0) for s in samples]\n"
        "task.corpus_metrics(samples, scores)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=120)


def test_hub_failures_and_size_check_are_data_errors(tmp_path, monkeypatch):
    import datasets

    def offline(name, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with (
        reachable_hub(monkeypatch),
        pytest.raises(
            DataError, match=r"cannot load fixie-ai/covost2@.* files fr_en/test-\*\.parquet .*--data"
        ) as error,
    ):
        CoVoST2(languages="fr").load()
    assert "\n" not in str(error.value)

    monkeypatch.undo()
    serve_from(monkeypatch, local_hub(tmp_path / "hub", {"ar_en": 2}))
    with reachable_hub(monkeypatch):
        with pytest.raises(DataError, match="ar_en test has 2 rows; the dataset card says 1695"):
            CoVoST2(languages="ar").load()
        assert len(CoVoST2(languages="ar", per_language=2).load()) == 2  # capped runs are not size-checked
        assert len(CoVoST2(languages="ar").load(limit=2)) == 2


if __name__ == "__main__":
    write_builtin_audio(AUDIO_DIR)
