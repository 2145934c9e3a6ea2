"""How the sandbox account stores what it is sent, as heymarket-api.md describes the
account ("Stored values in answers", "Partial update", "Tags"): text is trimmed, emails are
lower-cased, custom values are kept as text, and an empty value is no value at all.

These rules belong to the server. The client keeps its own idea of how values compare; the
two are written apart on purpose, so that an end-to-end test comparing them checks one
against the other instead of a shared function against itself."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

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


# How a stricter account may rewrite text beyond trimming; the sandbox does it only when a
# test asks (the ``rewrite_*`` faults), so the client's "inconsistent result" check can be
# shown to catch what it cannot predict.
TEXT_CASES = ("", "lower", "upper", "title")


@dataclass(frozen=True, slots=True)
class TextRewrite:
    """Runs of spaces collapsed to one, text cut to ``truncate_to`` characters (0: never),
    then re-cased (``case`` one of ``TEXT_CASES``; "" keeps the case)."""

    collapse_spaces: bool = False
    truncate_to: int = 0
    case: str = ""

    @property
    def active(self) -> bool:
        return self.collapse_spaces or self.truncate_to > 0 or self.case != ""

    def __call__(self, stored: str | None) -> str | None:
        if stored is None:
            return None
        text = " ".join(stored.split()) if self.collapse_spaces else stored
        if self.truncate_to > 0:
            text = text[: self.truncate_to].rstrip()
        if self.case == "lower":
            text = text.lower()
        elif self.case == "upper":
            text = text.upper()
        elif self.case == "title":
            text = text.title()
        return text or None
