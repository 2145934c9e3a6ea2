"""Declared text in one Unicode form: NFC, the composed one. ``Zoë`` typed with a
combining diaeresis and typed precomposed look the same and must be one value, or the account
holds one spelling and every plan proposes the other. Applied to every text value a
contacts file declares, as it is parsed (so the parse cache holds composed values and a warm
load does no Unicode work) (the phone is digits, and field titles are names
of the account's fields, so neither is touched)."""

from __future__ import annotations

import unicodedata
from typing import TypeVar

from reconciler.core.model import StandardValue
from reconciler.core.normalize import CustomValue

_Value = TypeVar("_Value", StandardValue, CustomValue)


def composed(value: _Value) -> _Value:
    """``value`` in NFC when it is text; other values as they are."""
    if isinstance(value, str) and not _is_composed(value):
        return unicodedata.normalize("NFC", value)
    return value


def _is_composed(text: str) -> bool:
    # ASCII is always NFC: the common case is decided without asking unicodedata.
    return text.isascii() or unicodedata.is_normalized("NFC", text)


def composed_fields(fields: dict[str, StandardValue]) -> dict[str, StandardValue]:
    """``fields`` itself when every text in it is composed already (nearly always: no copy
    of 100k contacts' fields), else a composed copy."""
    if all(not isinstance(value, str) or _is_composed(value) for value in fields.values()):
        return fields
    return {name: composed(value) for name, value in fields.items()}


def composed_custom(custom: dict[str, CustomValue]) -> dict[str, CustomValue]:
    if all(not isinstance(value, str) or _is_composed(value) for value in custom.values()):
        return custom
    return {title: composed(value) for title, value in custom.items()}
