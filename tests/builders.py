"""Contacts built in one line: declared (desired state), live (the model the API answers
become) and the raw record Heymarket answers with. The custom-field ids and the owner are the
ones the diff, plan and render tests share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core.diff import DiffSettings
from reconciler.core.model import CustomField, DesiredContact, LiveContact, SourceLocation
from reconciler.core.normalize import CustomValue

OWNER = "sales-team"
MARKER = "Managed by"
MARKER_ID = "900"
TIER_ID = "901"
FIELDS = (CustomField(MARKER_ID, MARKER), CustomField(TIER_ID, "Account tier"))
SETTINGS = DiffSettings(marker_field=MARKER, owner=OWNER)
OWNED = {MARKER_ID: OWNER}


def declared(
    phone: str,
    line: int = 1,
    custom: Mapping[str, CustomValue] | None = None,
    **fields: Any,
) -> DesiredContact:
    """A contact as contacts/team.yaml declares it at ``line``."""
    return DesiredContact(
        phone=phone,
        fields=fields,
        custom=dict(custom or {}),
        source=SourceLocation("contacts/team.yaml", line),
    )


def live(
    phone: str,
    number: int = 1,
    custom: Mapping[str, CustomValue] | None = None,
    **values: Any,
) -> LiveContact:
    """A contact in the account; it carries OWNER's marker unless ``custom`` says otherwise."""
    record: dict[str, Any] = {
        "first": None,
        "last": None,
        "display_name": None,
        "email": None,
        "is_opted_out": False,
    }
    record.update(values)
    return LiveContact(
        id=number,
        uuid=f"00000000-0000-4000-8000-{number:012d}",
        phone=phone,
        custom=dict(OWNED if custom is None else custom),
        rev=3,
        updated="2024-05-01T10:00:00Z",
        raw={"id": number, "phone": phone, **record},
        **record,
    )


def record(**changes: Any) -> dict[str, Any]:
    """One contact as the API answers it; a change to ``...`` leaves that key out."""
    base: dict[str, Any] = {
        "id": 42,
        "uuid": "5b1c-uuid",
        "phone": "15105551234",
        "first": "Alice",
        "last": "Smith",
        "display_name": "Alice Smith",
        "email": "alice@example.com",
        "is_opted_out": False,
        "custom": {"7": "gold"},
        "rev": 3,
        "updated": "2025-03-01T12:00:00Z",
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not ...}
