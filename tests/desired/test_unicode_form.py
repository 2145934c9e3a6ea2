"""Every declared text value is loaded in NFC, so a name typed with combining characters
and the same name typed precomposed are one value: no update is planned between them."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from reconciler.core.diff import diff
from reconciler.desired.loader import load_desired_state
from tests.builders import FIELDS, OWNED, SETTINGS, TIER_ID, declared, live

COMPOSED = "Zoë Gündoğan-Ångström"
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)


def test_composed_and_decomposed_spellings_are_one_value(tmp_path: Path) -> None:
    assert DECOMPOSED != COMPOSED
    contacts = tmp_path / "contacts"
    contacts.mkdir()
    (contacts / "a.yaml").write_text(
        f'contacts:\n  - phone: "15105550001"\n    first: "{DECOMPOSED}"\n'
        f'    custom: {{"Account tier": "{DECOMPOSED}"}}\n',
        encoding="utf-8",
    )
    for cache in (None, tmp_path / "cache", tmp_path / "cache"):  # parsed, cached, from cache
        (contact,) = load_desired_state(contacts, tmp_path, cache_dir=cache).contacts
        assert contact.fields["first"] == COMPOSED
        assert contact.custom["Account tier"] == COMPOSED
        account = [live("15105550001", first=COMPOSED, custom={**OWNED, TIER_ID: COMPOSED})]
        plan = diff([contact], account, FIELDS, SETTINGS, prune=False)
        assert plan.changes == () and plan.unchanged == 1


def test_an_account_holding_the_decomposed_spelling_plans_no_update_either() -> None:
    wanted = declared("15105550001", first=COMPOSED, custom={"Account tier": COMPOSED})
    account = [live("15105550001", first=DECOMPOSED, custom={**OWNED, TIER_ID: DECOMPOSED})]
    plan = diff([wanted], account, FIELDS, SETTINGS, prune=False)
    assert plan.changes == () and plan.unchanged == 1
