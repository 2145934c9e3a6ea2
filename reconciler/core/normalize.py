"""How values compare. The server may trim, re-case or stringify what it stores; comparing
after the same normalisation keeps a plan right after an apply empty (no permanent diff).

This is the one place that predicts what the account stores (heymarket-api.md, "Stored
values in answers"): text trimmed, emails lower-cased, custom values as text; and text
compares in Unicode NFC, so a composed and a decomposed spelling of one name are one value
(whichever of them the account holds). The diff
applies it to both sides, and apply compares what came back with it; a stored value it
does not predict is reported, never normalised away here."""

from __future__ import annotations

import json
import unicodedata

CustomValue = str | int | float | bool | None
# The value of a standard field (``model.StandardValue``; spelt here, as model imports this).
StandardFieldValue = str | bool | None


def _composed(text: str) -> str:
    # The check first: it is far cheaper than normalising, and nearly all text passes it.
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def normalize_text(value: str | None) -> str | None:
    """Trimmed text in NFC, with an empty string meaning "no value"."""
    if value is None:
        return None
    stripped = value.strip()
    return _composed(stripped) if stripped else None


def normalize_email(value: str | None) -> str | None:
    """Emails compare case-insensitively and trimmed."""
    text = normalize_text(value)
    return text.lower() if text is not None else None


def custom_value_text(value: CustomValue) -> str | None:
    """Custom-field values are stored as text: ``true``/``false`` for booleans, the shortest
    JSON form for numbers, trimmed strings (compared in NFC); ``None`` and ``""`` mean no
    value."""
    if value is None:
        return None
    if type(value) is str:  # the common case first: this runs for every field of 100k contacts
        stripped = value.strip()
        return _composed(stripped) if stripped else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return normalize_text(value)


def predicted_stored(name: str, value: StandardFieldValue) -> StandardFieldValue:
    """The value of standard field ``name`` as the account is expected to store it."""
    if name == "is_opted_out":
        return bool(value)
    if name == "email":
        return normalize_email(value) if isinstance(value, str) else value
    return normalize_text(value) if isinstance(value, str) else value
