"""Phone numbers as the identity of a contact: E.164 digits without the leading ``+``."""

from __future__ import annotations

import re

PHONE_PATTERN = re.compile(r"[0-9]{7,15}")

# What people type around the digits; anything else (letters, extensions) is not a phone.
_DECORATION = str.maketrans("", "", " -.()/\u00a0")


def is_canonical_phone(text: str) -> bool:
    return PHONE_PATTERN.fullmatch(text) is not None


def canonical_phone(raw: str) -> str | None:
    """The canonical form of a phone written with ``+``, spaces, dashes, dots or brackets
    (``"+1 510-555-1234"`` → ``"15105551234"``), or ``None`` when no such form exists."""
    text = raw.strip()
    if text.startswith("+"):
        text = text[1:]
    digits = text.translate(_DECORATION)
    return digits if is_canonical_phone(digits) else None
