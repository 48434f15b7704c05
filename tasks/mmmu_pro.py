"""MMMU-Pro: 1,730 multimodal multiple-choice questions (30 subjects, up to 10 options); accuracy.

Variants: the settings of the paper (arXiv 2409.02813), `VARIANT_MEANINGS`. With `overall`
(default, the paper's "MMMU-Pro": the mean of the two settings' accuracies,
docs/protocols/mmmu_pro.md § Scoring), sample ids are `standard-10/{id}` and `vision/{id}`, the
category is the setting, and the samples alternate between the settings (row by row), so a
`--limit` keeps them balanced. The orchestrator's pooled mean equals the paper's mean whenever
both settings have the same number of samples (the full benchmark, or an even --limit);
`setting_accuracies` computes the paper's mean in any case. With one setting, sample ids are the
dataset's `id` (e.g. `test_History_1`) and the category is the subject.

Prompts (`prompt`): `cot` (default) or `direct`, the official wording (docs/protocols/mmmu_pro.md § Prompt).
- Standard text: `"{question}\\n{A. opt\\nB. opt...}\\n{instruction}"` with every `<image N>`
  replaced by `<image>`. The images follow the order in which the markers appear in question and
  options, repeats included (`<image N>` is always column `image_N`; options may name images
  out of order: MMMU repo issue #70, `infer_transformers.py`). If no marker appears at all, every
  image column is sent in column order (the OpenAI script's rule). The OpenAI script sends the
  text first; here images come before the text (Gemma 4's rule).
- Vision: the one image, then the instruction.

Parsing (final answer only, never the thought block): the official `parse_multi_choice_response`
of `mmmu-pro/evaluate.py` (`parse_choice` documents each step), except its unseeded random
choice when nothing is found: that is UNPARSED (TRUNCATED when the token budget ran out). With
`guess_unparsed=True` a seeded guess is recorded in `Score.details` ("guess", "guess_correct");
the outcome stays unanswered and the orchestrator reports the guess-credited accuracy separately.
A letter found by a rule other than the final "Answer:" line is flagged `{rule}_fallback`.

Data
- HF `MMMU/MMMU_Pro`, split `test`, configs `standard (10 options)` and `vision` (1,730 rows
  each), at `HUB_REVISION`: a revision pinned in several public projects, not verified here
  (no hub access); `data_fingerprint` identifies the rows and images actually read.
  The vision config of older revisions has no `options`; without them the parser knows letters
  A-J only and cannot match option text.
- Local files (`data`): a file, directory or glob of parquet/jsonl/json. Files whose path says
  "vision" or "standard" (not "4 options") hold that setting (the hub layout
  `standard (10 options)/test-*.parquet`, `vision/test-*.parquet`); rows may instead carry a
  `setting` field; otherwise a file holds the one setting asked for. Images are parquet/`datasets`
  structs `{"bytes", "path"}`, encoded bytes, PIL images (re-encoded as PNG), or paths relative to
  the data file. Images are kept encoded (`ImagePart(data=...)` or `ImagePart(path=...)`).
- Rows without any image field (e.g. the authors' published outputs, which embed the dataset
  rows minus images) load for scoring only (`evals score`): their requests carry `MissingImage`
  parts (hashed by name), which no backend can read: a generation run fails each such request.
- Kept as the official scorer has it: options that are themselves lists are shown as their
  Python repr; a gold letter beyond the options (validation_Accounting_29, whose options are one
  nested list) can never be matched. `describe()["answers_not_options"]` lists such rows.
- "builtin": four standard and three vision items we drew ourselves (tasks/smoke_data).

`max_soft_tokens` (the image token budget) is recorded in `describe()`; backends apply it.

Sources: MMMU-Benchmark/MMMU @ bb0b95a (`mmmu-pro/prompts.yaml`, `mmmu-pro/evaluate.py`,
`mmmu-pro/infer/infer_gpt.py`, `mmmu-pro/infer/infer_transformers.py`); HF dataset card
`MMMU/MMMU_Pro`; docs/protocols/mmmu_pro.md (§ Pitfalls for the known traps).
"""

from __future__ import annotations

import ast
import glob
import hashlib
import io
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.schema import Completion, Headline, ImagePart, Message, Outcome, Request, Sample, Sampling, Score
from tasks.common import failure_outcome, no_answer_outcome, repeat_requests, unanswered_score
from tasks.data import (
    DATA_EXTENSIONS,
    DataError,
    builtin_path,
    check_unique_ids,
    data_description,
    hub_rows,
    plain,
    read_file,
)

VERSION = "1"  # bump whenever a prompt, the image order, the parser or the scoring changes

HUB_DATASET = "MMMU/MMMU_Pro"
HUB_SPLIT = "test"
# Pinned by several public projects; not verified here (no hub access).
HUB_REVISION = "563f3e84bb3b90893083a1f039cfa13077f2302b"
HUB_ROWS = 1730  # per setting (the official evaluate.py enforces NUM = 1730)

STANDARD = "standard-10"
VISION = "vision"
SETTINGS = (STANDARD, VISION)
OVERALL = "overall"
VARIANTS = (STANDARD, VISION, OVERALL)
VARIANT_MEANINGS = {
    STANDARD: "setting: question text, up to 10 lettered options and the question's images "
    "(config 'standard (10 options)')",
    VISION: "setting: one screenshot or photo showing question and options; the text is only the "
    "instruction (config 'vision')",
    OVERALL: "setting: both settings; the headline is the mean of their two accuracies (the paper's MMMU-Pro)",
}
DEFAULT_VARIANT = OVERALL
HUB_CONFIGS = {STANDARD: "standard (10 options)", VISION: "vision"}
SETTING_NAMES = {STANDARD: STANDARD, "standard (10 options)": STANDARD, VISION: VISION}

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
VISION_LETTERS_WITHOUT_OPTIONS = LETTERS[:10]  # vision rows of older revisions list no options
MAX_IMAGES = 7  # columns image_1 .. image_7
DEFAULT_SAMPLING = Sampling(temperature=1.0, top_p=0.95, top_k=64, max_tokens=32768, thinking=True)

# --- prompts ----------------------------------------------------------------------------------

# MMMU-Benchmark/MMMU mmmu-pro/prompts.yaml, verbatim.
COT_STANDARD = (
    "Answer the preceding multiple choice question. The last line of your response should be of the "
    "following format: 'Answer: $LETTER' (without quotes) where LETTER is one of options. Think step by "
    "step before answering."
)
COT_VISION = (
    "Write out the multiple-choice question in the image and then solve it. The last line of your "
    "response should be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one "
    "of options. Think step by step before answering."
)
DIRECT_STANDARD = "Answer with the option letter from the given choices directly."
DIRECT_VISION = (
    "Answer with the option letter from the given choices directly. The last line of your response "
    "should be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of options."
)
PROMPTS = {
    "cot": {STANDARD: COT_STANDARD, VISION: COT_VISION},
    "direct": {STANDARD: DIRECT_STANDARD, VISION: DIRECT_VISION},
}
STANDARD_TEMPLATE = "{question}\n{options}\n{instruction}"
IMAGE_PLACEHOLDER = "<image>"
IMAGE_MARKER = re.compile(r"<image\s+(\d+)>")  # as infer_transformers.py reads the markers

# --- parsing ----------------------------------------------------------------------------------

ANSWER_CUE = "Answer:"
STRIPPED_ENDS = (",", ".", "!", "?", ";", ":", "'")  # stripped one after another, in this order
MIN_WORDS_FOR_CONTENT = 5  # option text is matched only in responses of more than 5 words
PRIMARY_RULE = "answer"


def parse_choice(response: str, letters: str, options: Sequence[str] | None) -> tuple[str, str] | None:
    """(letter, rule) as the official `parse_multi_choice_response` reads it, or None where the
    official code falls back to `random.choice`.

    1. `answer`: after the last "Answer:" (case-sensitive), the one letter of `letters` occurring
       in the rest of the text (plain substring test); two or more letters, or none: go on.
    2. The whole response, with `, . ! ? ; : '` stripped from both ends (one character kind after
       another) and padded with a space on each side, gives candidates: `bracket` "(X)"; else
       `letter_space` "X "; else `letter_dot` "X."; else, if it has more than 5 words,
       `content`: options whose text occurs in it (case-insensitive).
    3. Several candidates: the one whose last occurrence starts last ("(X)" for brackets, " X "
       for both letter rules, the option text for content); ties (e.g. no " X " at all) go to
       the earliest letter.
    """
    cue = response.rfind(ANSWER_CUE)
    if cue != -1:
        tail = response[cue + len(ANSWER_CUE) :].strip()
        found = [letter for letter in letters if letter in tail]
        if len(found) == 1:
            return found[0], PRIMARY_RULE
    text = response
    for char in STRIPPED_ENDS:
        text = text.strip(char)
    text = f" {text} "
    for rule, shape in (("bracket", "({})"), ("letter_space", "{} "), ("letter_dot", "{}.")):
        found = [letter for letter in letters if shape.format(letter) in text]
        if found:
            probe = "({})" if rule == "bracket" else " {} "
            return _last_occurring(found, [text.rfind(probe.format(letter)) for letter in found]), rule
    if options and len(text.split()) > MIN_WORDS_FOR_CONTENT:
        lowered = text.lower()
        pairs = [(letter, str(option).lower()) for letter, option in zip(letters, options, strict=False)]
        found = [letter for letter, option in pairs if option in lowered]
        if found:
            starts = [lowered.rfind(option) for letter, option in pairs if letter in found]
            return _last_occurring(found, starts), "content"
    return None


def _last_occurring(candidates: Sequence[str], starts: Sequence[int]) -> str:
    """The candidate with the largest start; the first one among equals (numpy argmax)."""
    best = max(range(len(candidates)), key=lambda i: (starts[i], -i))
    return candidates[best]


# --- images -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MissingImage(ImagePart):
    """An image the loaded data did not include (rows loaded for `evals score` only). `path`
    names it (no such file: a backend asked to generate fails that request, naming the image);
    its hash is the name's, so prompts that show it can still be identified and recorded."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"missing:{self.path}".encode()).hexdigest()


def image_part(value: Any, base_dir: Path, where: str) -> ImagePart:
    """An encoded image from a dataset cell: {"bytes", "path"} struct, bytes, PIL image or path."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return ImagePart(data=bytes(value["bytes"]))
        if value.get("path"):
            return image_part(str(value["path"]), base_dir, where)
        raise DataError(f"{where}: image has neither bytes nor path")
    if isinstance(value, bytes | bytearray):
        return ImagePart(data=bytes(value))
    if isinstance(value, str):
        path = Path(value) if Path(value).is_absolute() else base_dir / value
        if not path.is_file():
            raise DataError(
                f"{where}: image file {path} does not exist (paths are relative to the data file)"
            )
        return ImagePart(path=str(path))
    if hasattr(value, "save"):  # a decoded PIL image (e.g. from datasets' formatted rows)
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return ImagePart(data=buffer.getvalue())
    raise DataError(f"{where}: unsupported image value of type {type(value).__name__}")


# --- task ---------------------------------------------------------------------------------------


class MMMUPro:
    """MMMU-Pro standard-10, vision, or both (`overall`), with the official prompts and parser."""

    name = "mmmu_pro"
    version = VERSION
    variants = VARIANT_MEANINGS
    public_text = True
    headline: Headline = "macro_by_category"  # the default variant's; each instance sets its own

    def __init__(
        self,
        variant: str | None = None,
        *,
        prompt: str = "cot",
        guess_unparsed: bool = False,
        guess_seed: int = 0,
        max_soft_tokens: int | None = None,
    ) -> None:
        self.variant = variant or DEFAULT_VARIANT
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown mmmu_pro variant '{variant}'; choose one of: {', '.join(VARIANTS)}")
        if prompt not in PROMPTS:
            raise ValueError(f"unknown mmmu_pro prompt '{prompt}'; choose one of: {', '.join(PROMPTS)}")
        self.prompt = prompt
        self.settings = SETTINGS if self.variant == OVERALL else (self.variant,)
        # overall = the paper's mean of the two settings' accuracies, whatever their sizes: the
        # orchestrator averages the categories (here: the settings) with equal weight.
        self.headline = "macro_by_category" if self.variant == OVERALL else "mean"
        self.default_sampling = DEFAULT_SAMPLING
        self.guess_unparsed = guess_unparsed
        self.guess_seed = guess_seed
        self.max_soft_tokens = max_soft_tokens
        self.source: str | None = None
        self.data_fingerprint: str | None = None
        self.images_loaded: bool | None = None
        self.answers_not_options: list[str] = []

    # --- data -----------------------------------------------------------------------------------

    def load(self, data: str | None = None, *, limit: int | None = None) -> list[Sample]:
        """Samples (the first `limit`) from the pinned hub revision, local files (`data`) or "builtin"."""
        per_setting: dict[str, list[dict[str, Any]]] = {}
        for setting in self.settings:
            raw, base_dir = self._read(data, setting)
            rows = [_clean_row(row, setting, base_dir) for row in raw]
            if not rows:
                raise DataError(f"no MMMU-Pro {setting} rows in {data or HUB_DATASET}")
            check_unique_ids((r["id"] for r in rows), f"MMMU-Pro {setting} rows")
            if data is None and len(rows) != HUB_ROWS:
                raise DataError(
                    f"{HUB_DATASET} ({HUB_CONFIGS[setting]})@{HUB_REVISION} has {len(rows)} rows; "
                    f"expected {HUB_ROWS}"
                )
            per_setting[setting] = rows
        all_rows = _alternate(list(per_setting.values()))[:limit]
        self.source = "hub" if data is None else data
        self.data_fingerprint = _fingerprint(all_rows)
        self.images_loaded = all(row["images"] is not None for row in all_rows)
        self.answers_not_options = sorted(
            f"{row['setting']}/{row['id']}" for row in all_rows if "answer_not_an_option" in row["extra"]
        )
        return [self._sample(row) for row in all_rows]

    def _read(self, data: str | None, setting: str) -> tuple[list[dict[str, Any]], Path]:
        if data is None:
            return hub_rows(HUB_DATASET, HUB_SPLIT, HUB_REVISION, HUB_CONFIGS[setting]), Path.cwd()
        source = str(builtin_path(self.name)) if data == "builtin" else data
        return _local_rows(source, setting, single=len(self.settings) == 1)

    def _sample(self, row: dict[str, Any]) -> Sample:
        setting = row["setting"]
        overall = self.variant == OVERALL
        return Sample(
            id=f"{setting}/{row['id']}" if overall else row["id"],
            inputs={
                "setting": setting,
                "question": row["question"],
                "options": row["options"],
                "letters": row["letters"],
                "images": row["images"],
                "image_order": row["image_order"],
            },
            target=row["answer"],
            category=setting if overall else row["subject"],
            metadata={"setting": setting, "dataset_id": row["id"], "subject": row["subject"], **row["extra"]},
        )

    # --- prompts --------------------------------------------------------------------------------

    def prompt_text(self, sample: Sample) -> str:
        """The text part of the user message."""
        instruction = PROMPTS[self.prompt][sample.inputs["setting"]]
        if sample.inputs["setting"] == VISION:
            return instruction
        options = "\n".join(
            f"{letter}. {option}"
            for letter, option in zip(sample.inputs["letters"], sample.inputs["options"], strict=True)
        )
        text = STANDARD_TEMPLATE.format(
            question=sample.inputs["question"], options=options, instruction=instruction
        )
        return IMAGE_MARKER.sub(IMAGE_PLACEHOLDER, text)

    def prompt_images(self, sample: Sample) -> list[ImagePart]:
        """The images in prompt order (stand-ins for rows loaded without images)."""
        images: dict[int, ImagePart] | None = sample.inputs["images"]
        order: list[int] = sample.inputs["image_order"]
        if images is None:
            label = sample.metadata["dataset_id"]
            return [
                MissingImage(
                    path=f"mmmu_pro {sample.inputs['setting']} {label} image" + (f"_{n}" if n else "")
                )
                for n in order
            ]
        return [images[n] for n in order]

    def requests(self, sample: Sample, sampling: Sampling, repeats: int) -> list[Request]:
        """One user message per repeat: the images, then the text."""
        message = Message.user(*self.prompt_images(sample), self.prompt_text(sample))
        prefix = f"{self.name}/{self.variant}/{self.prompt}"
        return repeat_requests(prefix, sample.id, sampling, repeats, messages=[message])

    # --- scoring --------------------------------------------------------------------------------

    def score(self, sample: Sample, completion: Completion, repeat: int) -> Score:
        failure = failure_outcome(completion)
        if failure is not None:
            return self._unanswered(sample, repeat, failure)
        found = parse_choice(completion.text, sample.inputs["letters"], sample.inputs["options"])
        if found is None:
            return self._unanswered(sample, repeat, no_answer_outcome(completion))
        letter, rule = found
        correct = letter == sample.target
        return Score(
            sample.id,
            repeat,
            Outcome.CORRECT if correct else Outcome.WRONG,
            1.0 if correct else 0.0,
            extracted=letter,
            details={"rule": rule},
            flags=() if rule == PRIMARY_RULE else (f"{rule}_fallback",),
        )

    def _unanswered(self, sample: Sample, repeat: int, outcome: Outcome) -> Score:
        return unanswered_score(
            sample, repeat, outcome, guess_seed=self.guess_seed if self.guess_unparsed else None
        )

    def describe(self) -> dict[str, Any]:
        hub: dict[str, Any] = {
            "dataset": HUB_DATASET,
            "configs": [HUB_CONFIGS[s] for s in self.settings],
            "split": HUB_SPLIT,
            "revision": HUB_REVISION,
        }
        data = data_description(self.source, hub)
        prompts = {s: PROMPTS[self.prompt][s] for s in self.settings}
        return {
            "task": self.name,
            "version": self.version,
            "variant": self.variant,
            "settings": list(self.settings),
            "prompt": {"name": self.prompt, "sha256": {s: _sha256(t) for s, t in prompts.items()}},
            "image_order": "order of appearance, images before text",
            "headline": "mean of the settings' accuracies" if self.variant == OVERALL else "accuracy",
            "data": data,
            "data_fingerprint": self.data_fingerprint,
            "images_loaded": self.images_loaded,
            "answers_not_options": self.answers_not_options,
            "max_soft_tokens": self.max_soft_tokens,
            "guess_unparsed": self.guess_unparsed,
            "guess_seed": self.guess_seed,
        }


# --- reading local files ------------------------------------------------------------------------


def _local_rows(source: str, setting: str, *, single: bool) -> tuple[list[dict[str, Any]], Path]:
    """The rows of `setting` in a local file, directory or glob, and the folder image paths are
    relative to. `single`: the task runs one setting, so unlabelled files hold it."""
    files = _data_files(source)
    labelled = {path: _setting_of_path(path, source) for path in files}
    chosen = [p for p, s in labelled.items() if s == setting]
    unlabelled = [p for p, s in labelled.items() if s is None]
    rows: list[dict[str, Any]] = []
    folders = set()
    for path in chosen:
        rows.extend(_with_folder(read_file(path), path))
        folders.add(path.parent)
    for path in unlabelled:
        for row in _with_folder(read_file(path), path):
            row_setting = row.get("setting")
            if row_setting is None and not single:
                raise DataError(
                    f"{path} does not say which MMMU-Pro setting it holds: name it after the setting "
                    "(standard / vision), add a 'setting' field to its rows, or run one variant"
                )
            if row_setting is None or _setting_name(row_setting, path) == setting:
                rows.append(row)
    if not rows:
        names = ", ".join(p.name for p in files)
        raise DataError(
            f"no MMMU-Pro {setting} rows in {source} (files: {names}); put '{setting.split('-')[0]}' "
            "in the file or folder name, or a 'setting' field in the rows"
        )
    return rows, Path(source).parent if Path(source).is_file() else Path(source)


def _with_folder(rows: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """Rows tagged with the folder of their file (relative image paths are read from there)."""
    return [{**row, "_folder": str(path.parent)} for row in rows]


def _data_files(source: str) -> list[Path]:
    path = Path(source)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DATA_EXTENSIONS)
    elif any(char in source for char in "*?["):
        found = sorted(Path(p) for p in glob.glob(source) if Path(p).is_file())
    else:
        raise DataError(
            f"data path {source} does not exist; pass an existing file, directory or glob pattern"
        )
    if not found:
        raise DataError(f"no data files ({', '.join(DATA_EXTENSIONS)}) in {source}")
    return found


def _setting_of_path(path: Path, source: str) -> str | None:
    """The setting a file's path names below `source`: vision, standard (10 options), or None.
    Files of the 4-option standard config return "standard-4" and are never read."""
    root = _root(source) if not Path(source).is_file() else path.parent
    name = str(path.relative_to(root) if path.is_relative_to(root) else path.name).lower()
    if "vision" in name:
        return VISION
    if "standard" in name:
        return "standard-4" if re.search(r"4[ _-]?opt", name) else STANDARD
    return None


def _root(source: str) -> Path:
    """A directory itself, or the folder above the first glob component of a pattern."""
    parts = Path(source).parts
    plain_parts = list(itertools.takewhile(lambda part: not any(c in part for c in "*?["), parts))
    return Path(*plain_parts) if plain_parts else Path()


def _setting_name(value: Any, path: Path) -> str:
    name = SETTING_NAMES.get(str(value).strip().lower())
    if name is None:
        raise DataError(f"{path}: unknown setting '{value}' (use one of: {', '.join(SETTINGS)})")
    return name


# --- row handling -------------------------------------------------------------------------------


def _clean_row(row: dict[str, Any], setting: str, base_dir: Path) -> dict[str, Any]:
    """A plain, checked copy of one dataset row of `setting`, with its images as ImageParts."""
    row_id = str(plain(row.get("id")) or "").strip()
    where = f"MMMU-Pro {setting} row {row_id or '?'}"
    if not row_id:
        raise DataError(f"{where}: no id")
    folder = Path(row.get("_folder", base_dir))
    options = _options(row.get("options"), where)
    if setting == STANDARD and options is None:
        raise DataError(f"{where}: no options")
    letters = LETTERS[: len(options)] if options is not None else VISION_LETTERS_WITHOUT_OPTIONS
    answer = str(plain(row.get("answer")) or "").strip()
    if len(answer) != 1 or answer not in LETTERS:
        raise DataError(f"{where}: answer '{answer}' is not a letter A-Z")
    question = str(plain(row.get("question")) or "")
    if setting == STANDARD:
        images, order = _standard_images(row, question, options or [], folder, where)
    else:
        images, order = _vision_image(row, folder, where)
    return {
        "setting": setting,
        "id": row_id,
        "question": question,
        "options": options,
        "letters": letters,
        "answer": answer,
        "subject": str(plain(row.get("subject")) or ""),
        "images": images,
        "image_order": order,
        "extra": {
            **{k: plain(row[k]) for k in ("img_type", "topic_difficulty") if row.get(k) is not None},
            **({} if answer in letters else {"answer_not_an_option": True}),
        },
    }


def _options(value: Any, where: str) -> list[str] | None:
    value = plain(value)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError) as exc:
            raise DataError(f"{where}: options are not a Python list literal ({exc})") from exc
    if not isinstance(value, list) or not 0 < len(value) <= len(LETTERS):
        raise DataError(f"{where}: options must be a list of 1 to {len(LETTERS)} items")
    return [str(option) for option in value]


def _standard_images(
    row: dict[str, Any], question: str, options: list[str], folder: Path, where: str
) -> tuple[dict[int, ImagePart] | None, list[int]]:
    """Images by column number, and the column numbers in prompt order (markers in order of
    appearance in question and options, repeats kept; all columns if there is no marker)."""
    columns = {n: row.get(f"image_{n}") for n in range(1, MAX_IMAGES + 1) if f"image_{n}" in row}
    present = sorted(n for n, value in columns.items() if value is not None)
    order = [int(n) for n in IMAGE_MARKER.findall("\n".join([question, *options]))] or present
    if not columns:  # a row without image fields: usable for scoring only
        return None, order
    missing = sorted({n for n in order if n not in present})
    if missing:
        raise DataError(f"{where}: the text names <image {missing[0]}> but the row has no image_{missing[0]}")
    if not order:
        raise DataError(f"{where}: the row has no image")
    return {n: image_part(columns[n], folder, f"{where} image_{n}") for n in sorted(set(order))}, order


def _vision_image(
    row: dict[str, Any], folder: Path, where: str
) -> tuple[dict[int, ImagePart] | None, list[int]]:
    if "image" not in row:  # a row without its image: usable for scoring only
        return None, [0]
    if row["image"] is None:
        raise DataError(f"{where}: the image is empty")
    return {0: image_part(row["image"], folder, f"{where} image")}, [0]


def _alternate(groups: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows taken one from each group in turn (standard, vision, standard, ...), then the rest."""
    result: list[dict[str, Any]] = []
    for index in range(max(len(g) for g in groups)):
        result.extend(group[index] for group in groups if index < len(group))
    return result


def _fingerprint(rows: Iterable[dict[str, Any]]) -> str:
    """sha256 over the rows' text fields and image hashes, independent of row order."""
    records = []
    for row in rows:
        images = row["images"]
        record = {
            "key": f"{row['setting']}/{row['id']}",
            **{k: row[k] for k in ("question", "options", "answer", "subject", "image_order")},
            "images": None if images is None else {str(n): part.sha256 for n, part in sorted(images.items())},
        }
        records.append(_canonical(record))
    return hashlib.sha256("\n".join(sorted(records)).encode()).hexdigest()


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
