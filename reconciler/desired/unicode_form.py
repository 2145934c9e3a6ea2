"""Declared text in one Unicode form: NFC, the composed one. ``Zoë`` typed with a
combining diaeresis and typed precomposed look the same and must be one value, or the account
holds one spelling and every plan proposes the other. Applied to every text value a
contacts file declares, as it is loaded (the phone is digits, and field titles are names
of the account's fields, so neither is touched)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import TypeVar

from reconciler.core.model import StandardValue
from reconciler.core.normalize import CustomValue

_Value = TypeVar("_Value", StandardValue, CustomValue)


def composed(value: _Value) -> _Value:
    """``value`` in NFC when it is text; other values as they are."""
    if isinstance(value, str) and not unicodedata.is_normalized("NFC", value):
        return unicodedata.normalize("NFC", value)
    return value


def composed_fields(fields: Mapping[str, StandardValue]) -> dict[str, StandardValue]:
    return {name: composed(value) for name, value in fields.items()}


def composed_custom(custom: Mapping[str, CustomValue]) -> dict[str, CustomValue]:
    return {title: composed(value) for title, value in custom.items()}
