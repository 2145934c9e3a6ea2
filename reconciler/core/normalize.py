"""How values compare. The server may trim, re-case or stringify what it stores; comparing
after the same normalisation keeps a plan right after an apply empty (no permanent diff)."""

from __future__ import annotations

import json

CustomValue = str | int | float | bool | None


def normalize_text(value: str | None) -> str | None:
    """Trimmed text, with an empty string meaning "no value"."""
    if value is None:
        return None
    stripped = value.strip()
    return stripped or None


def normalize_email(value: str | None) -> str | None:
    """Emails compare case-insensitively and trimmed."""
    text = normalize_text(value)
    return text.lower() if text is not None else None


def custom_value_text(value: CustomValue) -> str | None:
    """Custom-field values are stored as text: ``true``/``false`` for booleans, the shortest
    JSON form for numbers, trimmed strings; ``None`` and ``""`` mean no value."""
    if value is None:
        return None
    if type(value) is str:  # the common case first: this runs for every field of 100k contacts
        return value.strip() or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return normalize_text(value)
