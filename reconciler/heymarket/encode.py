"""Plan changes as the items of Heymarket's bulk v2 write (``POST /v2/contacts``); the
delete body, a list of uuids, is the client's.

Updates are partial: an item carries only the fields that change (``None`` clears one), and
the API merges ``custom`` key by key. Every item carries the ownership marker, so whatever
apply writes is owned by this repository afterwards."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core.ownership import Marker
from reconciler.core.plan import Create, Update


def _field_id(title: str, field_ids: Mapping[str, str]) -> str:
    try:
        return field_ids[title]
    except KeyError:
        raise ValueError(
            f"custom field {title!r} has no id; create the plan's fields_to_create first"
        ) from None


def to_upsert_item(
    change: Create | Update, field_ids: Mapping[str, str], marker: Marker
) -> dict[str, Any]:
    """One item of a ``POST /v2/contacts`` body: with ``contact_id`` for an update, without
    for a create. ``field_ids`` maps custom-field titles to ids, including the fields apply
    has just created."""
    item: dict[str, Any] = {}
    if isinstance(change, Update):
        item["contact_id"] = change.contact_id
    item["contact_channels"] = [{"channel_type": "phone", "channel_id": change.phone}]
    for name, field_change in change.fields.items():
        item[name] = field_change.after
    custom: dict[str, Any] = {
        _field_id(title, field_ids): field_change.after
        for title, field_change in change.custom.items()
    }
    custom[_field_id(marker.field_title, field_ids)] = marker.owner
    item["custom"] = custom
    if change.tags is not None:
        # The API replaces the whole set with what an item carries.
        item["tags"] = list(change.tags.after)
    return item
