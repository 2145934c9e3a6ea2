"""Phone numbers as the identity of a contact: E.164 digits without the leading ``+``.

Every phone the tool compares, stores or sends passes through this module: declared phones
(``declared_phone``), phones the server answers with (``answered_phone``), protect patterns
(``is_protected``). A phone is canonical only when the *whole* text is 7 to 15 ASCII
digits: always ``fullmatch``, never a search anchored with ``$`` (which also matches before a
final newline, so ``"14155550101\\n"`` would pass for a phone and be a second identity of
one number)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import NamedTuple

# [0-9], never \d: \d also matches other scripts' digits ("١٤١٥..."), which no API accepts.
_CANONICAL = re.compile(r"[0-9]{7,15}")
# How people write a phone around its digits: one leading "+", then digits with single
# spaces, dashes, dots or brackets between them. Anything else (a newline, a tab, a letter,
# two separators in a row) is not a spelling of a phone, and gets no suggestion.
_WRITTEN = re.compile(r"\+?\(?[0-9]+(?:(?:[ .-]|\) ?|[ .-]?\()[0-9]+)*")
_SEPARATORS = str.maketrans("", "", "+ .-()")
# A YAML number with a fraction or an exponent: its digits are not the phone that was meant.
_DECIMAL = re.compile(r"[0-9]+\.[0-9]*|[0-9.]+[eE][-+]?[0-9]+")


def is_canonical_phone(text: str) -> bool:
    return _CANONICAL.fullmatch(text) is not None


def canonical_phone(text: str) -> str | None:
    """``text`` when it is a canonical phone (the whole of it), else ``None``."""
    return text if _CANONICAL.fullmatch(text) is not None else None


class PhoneProblem(NamedTuple):
    """Why a declared phone is not usable, and the canonical form to write when one exists."""

    message: str
    suggestion: str | None


def declared_phone(raw: str) -> str | PhoneProblem:
    """A phone as written in a contacts file: the canonical phone, or the problem with it.

    Only the canonical form is an identity. A spelling people write (``"+1 510-555-1234"``)
    is refused with the canonical form to write instead; anything else (control characters,
    letters, a decimal number) is refused without a guess."""
    if is_canonical_phone(raw):
        return raw
    shown = ascii(raw)[1:-1] if not raw.isprintable() else raw
    if _DECIMAL.fullmatch(raw):
        return PhoneProblem(
            f"phone {shown} is a decimal number, not a phone; write the digits in quotes, "
            'e.g. "15105551234"',
            None,
        )
    # Spaces, tabs and line breaks around a spelling are a slip of the editor, not part of it.
    written = raw.strip(" \t\r\n")
    if _WRITTEN.fullmatch(written):
        digits = written.translate(_SEPARATORS)
        if is_canonical_phone(digits):
            return PhoneProblem(
                f'phone "{shown}" is not in canonical form; write "{digits}"', digits
            )
    return PhoneProblem(
        f'phone "{shown}" is not a phone number; write 7 to 15 digits with the country code '
        'and no "+", e.g. "15105551234"',
        None,
    )


def answered_phone(value: object) -> str | None:
    """The canonical phone in a server's answer, tolerating what the API documentation
    leaves open (a number instead of a string, a leading ``+``, surrounding spaces); ``None``
    when the answer holds no phone that can be one."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip(" ")
    if text.startswith("+"):
        text = text[1:]
    return canonical_phone(text)


def is_protected(phone: str, patterns: Sequence[str]) -> bool:
    """Whether ``prune.protect`` keeps this phone from ever being deleted. A phone that is
    not canonical is protected: no pattern can be trusted to have meant it or not."""
    if not is_canonical_phone(phone):
        return True
    return any(fnmatch.fnmatchcase(phone, pattern) for pattern in patterns)
