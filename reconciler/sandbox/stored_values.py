"""How the sandbox account stores what it is sent, as heymarket-api.md describes the
account ("Stored values in answers", "Partial update", "Tags"): text is trimmed, emails are
lower-cased, custom values are kept as text, and an empty value is no value at all.

These rules belong to the server. The client keeps its own idea of how values compare; the
two are written apart on purpose, so that an end-to-end test comparing them checks one
against the other instead of a shared function against itself."""

from __future__ import annotations

import json
from collections.abc import Iterable

# What a custom value may be sent as: any JSON scalar.
SentCustomValue = str | int | float | bool | None


def stored_text(sent: str | None) -> str | None:
    """Surrounding whitespace is dropped; what is left empty clears the field (None)."""
    if sent is None:
        return None
    trimmed = sent.strip()
    return trimmed if trimmed else None


def stored_email(sent: str | None) -> str | None:
    """An email is text stored in lower case, so ``Ana@X.com`` and ``ana@x.com`` are one."""
    trimmed = stored_text(sent)
    return None if trimmed is None else trimmed.lower()


def stored_custom_value(sent: SentCustomValue) -> str | None:
    """Every custom field holds text. A boolean is stored as ``true``/``false`` and a number
    as it is spelt in JSON (``7``, ``2.5``), so reading a value back always gives a string;
    text is trimmed, and an empty or null value clears the field."""
    if isinstance(sent, bool):  # before int: a bool is an int to Python, not to JSON
        return "true" if sent else "false"
    if isinstance(sent, int | float):
        return json.dumps(sent)
    return stored_text(sent)


def stored_tags(sent: Iterable[str]) -> tuple[str, ...]:
    """Tags are trimmed text too; a tag that trims to nothing is not kept."""
    return tuple(trimmed for trimmed in (tag.strip() for tag in sent) if trimmed)


def default_display_name(first: str | None, last: str | None) -> str | None:
    """A contact created without a display name shows its first and last name."""
    return " ".join(name for name in (first, last) if name) or None
