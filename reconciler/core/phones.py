"""Phone numbers as the identity of a contact: E.164 digits without the leading ``+``.

Every phone the tool compares, stores or sends is canonical by this module's rule: declared
phones (``desired.phone_spellings`` reads how people write them, and ``DesiredContact``
refuses anything else), phones the server answers with (``answered_phone``), protect
patterns (``is_protected``). A phone is canonical only when the *whole* text is 7 to 15 ASCII
digits: always ``fullmatch``, never a search anchored with ``$`` (which also matches before a
final newline, so ``"14155550101\\n"`` would pass for a phone and be a second identity of
one number)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

# [0-9], never \d: \d also matches other scripts' digits ("١٤١٥..."), which no API accepts.
_CANONICAL = re.compile(r"[0-9]{7,15}")


def is_canonical_phone(text: str) -> bool:
    return _CANONICAL.fullmatch(text) is not None


def canonical_phone(text: str) -> str | None:
    """``text`` when it is a canonical phone (the whole of it), else ``None``."""
    return text if _CANONICAL.fullmatch(text) is not None else None


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
