"""Model cards as data: one TOML file per card under evals/cards/.

A card names a model, its published benchmark table, and for each row the task, variant and every
generation setting with its evidence (confirmed or inferred). This module reads and validates
cards; it does not run anything.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evals.schema import Sampling

CARDS_DIR = Path(__file__).parent / "cards"
SAMPLING_FIELDS = {"thinking", "temperature", "top_p", "top_k", "max_tokens", "seed"}
OTHER_SETTINGS = {"repeats", "image_tokens"}
EVIDENCE = {"confirmed", "inferred"}


class CardError(ValueError):
    pass


@dataclass(frozen=True)
class Setting:
    value: Any
    evidence: str
    note: str = ""


@dataclass(frozen=True)
class Row:
    label: str
    task: str
    variant: str | None
    published: float | None
    metric: str
    settings: dict[str, Setting]
    options: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    notes: str = ""
    model: str | None = None  # this row's own model (e.g. a multimodal one), else the card's
    backend: str | None = None

    def sampling(self, base: Sampling) -> Sampling:
        """`base` (the task's defaults) with this row's sampling settings applied."""
        changes = {k: s.value for k, s in self.settings.items() if k in SAMPLING_FIELDS}
        return replace(base, **changes)

    @property
    def repeats(self) -> int:
        setting = self.settings.get("repeats")
        return int(setting.value) if setting else 1


@dataclass(frozen=True)
class Card:
    name: str
    title: str
    model: str
    backend: str
    rows: tuple[Row, ...]
    source: str = ""
    notes: str = ""
    path: str = ""
    sha256: str = ""


def card_names() -> list[str]:
    return sorted(p.stem for p in CARDS_DIR.glob("*.toml"))


def load_card(name_or_path: str) -> Card:
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = CARDS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise CardError(
            f"card '{name_or_path}' not found; use one of: {', '.join(card_names())} or a path to a .toml file"
        )
    blob = path.read_bytes()
    try:
        data = tomllib.loads(blob.decode())
    except tomllib.TOMLDecodeError as exc:
        raise CardError(f"card {path}: invalid TOML ({exc})") from exc
    return _parse(data, str(path), hashlib.sha256(blob).hexdigest())


def _parse(data: dict[str, Any], path: str, digest: str) -> Card:
    head = data.get("card")
    if not isinstance(head, dict) or "name" not in head or "model" not in head:
        raise CardError(f"card {path}: needs a [card] table with name and model")
    defaults = _settings(data.get("defaults", {}), path, "defaults")
    rows = []
    for index, raw in enumerate(data.get("rows", [])):
        where = f"rows[{index}]"
        if "task" not in raw:
            raise CardError(f"card {path}: {where} has no task")
        settings = {**defaults, **_settings(raw.get("settings", {}), path, where)}
        rows.append(
            Row(
                label=raw.get("label", raw["task"]),
                task=raw["task"],
                variant=raw.get("variant"),
                published=raw.get("published"),
                metric=raw.get("metric", "accuracy"),
                settings=settings,
                options=dict(raw.get("options", {})),
                data=raw.get("data", head.get("data")),
                notes=raw.get("notes", ""),
                model=raw.get("model"),
                backend=raw.get("backend"),
            )
        )
    if not rows:
        raise CardError(f"card {path}: has no [[rows]]")
    return Card(
        name=head["name"],
        title=str(head.get("title", head["name"])),
        model=head["model"],
        backend=head.get("backend", "hf"),
        rows=tuple(rows),
        source=head.get("source", ""),
        notes=head.get("notes", ""),
        path=path,
        sha256=digest,
    )


def _settings(table: dict[str, Any], path: str, where: str) -> dict[str, Setting]:
    settings = {}
    for key, raw in table.items():
        if key not in SAMPLING_FIELDS | OTHER_SETTINGS:
            raise CardError(f"card {path}: {where} has unknown setting '{key}'")
        if not isinstance(raw, dict) or "value" not in raw:
            raise CardError(f"card {path}: {where}.{key} must be a table with value and evidence")
        evidence = raw.get("evidence")
        if evidence not in EVIDENCE:
            raise CardError(f"card {path}: {where}.{key} evidence must be 'confirmed' or 'inferred'")
        settings[key] = Setting(raw["value"], evidence, raw.get("note", ""))
    return settings
