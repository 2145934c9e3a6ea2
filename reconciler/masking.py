"""Masking of personal data in plan output (``output.mask_pii`` / ``--mask-pii``).

Plans pasted into CI logs and pull requests should not leak who the contacts are, yet a
reviewer must still tell rows apart: phones keep their country/area prefix and last two
digits, emails their first letter and domain, names their initial. Custom-field values are
shown as they are (they are business data such as a tier, and the ownership marker)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from reconciler.plan import Change, Create, Delete, FieldChange, FieldValue, Notice, Plan, Update

NAME_FIELDS: frozenset[str] = frozenset({"first", "last", "display_name"})


def mask_phone(phone: str) -> str:
    """``15105551234`` -> ``1510*****34``; short numbers keep only their last two digits."""
    if len(phone) <= 6:
        return "*" * max(len(phone) - 2, 0) + phone[-2:]
    return phone[:4] + "*" * (len(phone) - 6) + phone[-2:]


def mask_email(email: str) -> str:
    """``alice@example.com`` -> ``a***@example.com``."""
    local, at, domain = email.partition("@")
    if not at:
        return mask_name(email)
    return f"{local[:1]}***@{domain}"


def mask_name(name: str) -> str:
    """``Alice`` -> ``A***``."""
    return f"{name[:1]}***" if name else name


def _mask_value(field_name: str, value: FieldValue) -> FieldValue:
    if not isinstance(value, str):
        return value
    if field_name == "email":
        return mask_email(value)
    if field_name in NAME_FIELDS:
        return mask_name(value)
    return value


def _mask_fields(fields: Mapping[str, FieldChange]) -> dict[str, FieldChange]:
    return {
        name: FieldChange(_mask_value(name, change.before), _mask_value(name, change.after))
        for name, change in fields.items()
    }


def _mask_change(change: Change) -> Change:
    masked_phone = mask_phone(change.phone)
    if isinstance(change, Create | Update | Delete):
        return dataclasses.replace(change, phone=masked_phone, fields=_mask_fields(change.fields))
    raise TypeError(f"not a change: {change!r}")


def _mask_notice(notice: Notice) -> Notice:
    if notice.phone is None:
        return notice
    return dataclasses.replace(notice, phone=mask_phone(notice.phone))


def mask_plan(plan: Plan) -> Plan:
    """The same plan with phones, emails and names masked, for display only (a masked plan
    cannot be applied). Changes keep the order of the unmasked plan."""
    return dataclasses.replace(
        plan,
        changes=tuple(_mask_change(change) for change in plan.changes),
        warnings=tuple(_mask_notice(notice) for notice in plan.warnings),
        errors=tuple(_mask_notice(notice) for notice in plan.errors),
    )
