"""The sandbox's parsing edge: JSON request bodies become typed writes, stored records become
JSON. Values are stored by the account's own rules (``stored_values``) as they are read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler.sandbox.stored_values import (
    stored_custom_value,
    stored_email,
    stored_tags,
    stored_text,
)

PHONE_PATTERN = re.compile(r"[0-9]{7,15}")
TEXT_FIELDS: tuple[str, ...] = ("first", "last", "display_name", "email")
MAX_TAGS = 5

# failed_contacts codes
INVALID_PHONE = "invalid_phone"
DUPLICATE_PHONE = "duplicate_phone"
NOT_FOUND = "not_found"
INVALID_FIELD = "invalid_field"


class ItemError(Exception):
    """One bulk item the server refuses; becomes a ``failed_contacts`` entry."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BadRequest(Exception):
    """The whole request is malformed: HTTP 400 ``bad_data``."""


@dataclass(frozen=True, slots=True)
class ContactWrite:
    """One create or update. Only the carried fields are present in ``fields``/``custom``;
    a ``None`` value there means "clear it"."""

    contact_id: str | None
    phone: str | None
    fields: Mapping[str, str | bool | None]
    custom: Mapping[str, str | None]
    tags: tuple[str, ...] | None
    sent: Any  # the item as the client sent it, echoed back in failed_contacts


@dataclass(frozen=True, slots=True)
class SeedContact:
    """A contact to preload: a create, plus the timestamps and revision it should carry."""

    write: ContactWrite
    updated: int | None
    created: int | None
    rev: int


@dataclass(frozen=True, slots=True)
class FailedItem:
    sent: Any
    code: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"contact": self.sent, "error": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """A stored contact."""

    id: int
    uuid: str
    phone: str
    first: str | None
    last: str | None
    display_name: str | None
    email: str | None
    is_opted_out: bool
    custom: Mapping[str, str]
    tags: tuple[str, ...]
    created: int
    updated: int
    rev: int

    def as_json(self) -> dict[str, Any]:
        """The v2 list/search shape: the v1 fields plus ``uuid`` and ``contact_channels``."""
        return {
            "id": self.id,
            "uuid": self.uuid,
            "phone": self.phone,
            "first": self.first,
            "last": self.last,
            "display_name": self.display_name,
            "email": self.email,
            "is_opted_out": self.is_opted_out,
            "custom": dict(self.custom),
            "tags": list(self.tags),
            "team_id": 1,
            "creator_id": 1,
            "shared": True,
            "assigned_user_id": None,
            "created": format_timestamp(self.created),
            "updated": format_timestamp(self.updated),
            "rev": self.rev,
            "contact_channels": [{"channel_type": "phone", "channel_id": self.phone}],
        }


def format_timestamp(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: object) -> float:
    """RFC 3339 (``Z`` or an offset, optional fraction) to epoch seconds."""
    if not isinstance(text, str) or not text.strip():
        raise BadRequest(f"not an RFC 3339 timestamp: {text!r}")
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise BadRequest(f"not an RFC 3339 timestamp: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def checked_phone(value: object) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ItemError(INVALID_PHONE, "phone must be 7 to 15 digits without '+'")
    phone = str(value).strip()
    if not PHONE_PATTERN.fullmatch(phone):
        raise ItemError(INVALID_PHONE, f"phone {phone!r} must be 7 to 15 digits without '+'")
    return phone


def phone_of(item: Mapping[str, Any]) -> str | None:
    """The phone an item carries: ``contact_channels`` (v2) or ``phone`` (v1); None if absent."""
    channels = item.get("contact_channels")
    if channels is not None:
        if not isinstance(channels, list):
            raise ItemError(INVALID_PHONE, "contact_channels must be a list")
        for channel in channels:
            if isinstance(channel, Mapping) and channel.get("channel_type") == "phone":
                return checked_phone(channel.get("channel_id"))
    if "phone" in item:
        return checked_phone(item["phone"])
    return None


def parse_write(item: object) -> ContactWrite:
    """One bulk item to a ContactWrite; raises ItemError for a field the server refuses."""
    if not isinstance(item, Mapping):
        raise BadRequest("every contact must be a JSON object")
    contact_id = item.get("contact_id")
    if contact_id is not None and not isinstance(contact_id, str):
        raise ItemError(NOT_FOUND, "contact_id must be a contact UUID")
    phone = phone_of(item)
    values: dict[str, str | bool | None] = {}
    for name in TEXT_FIELDS:
        if name in item:
            raw = item[name]
            if raw is not None and not isinstance(raw, str):
                raise ItemError(INVALID_FIELD, f"{name} must be text or null")
            values[name] = stored_email(raw) if name == "email" else stored_text(raw)
    if "is_opted_out" in item:
        opted_out = item["is_opted_out"]
        if opted_out is not None and not isinstance(opted_out, bool):
            raise ItemError(INVALID_FIELD, "is_opted_out must be true or false")
        values["is_opted_out"] = bool(opted_out)
    return ContactWrite(
        contact_id=contact_id,
        phone=phone,
        fields=values,
        custom=_parse_custom(item.get("custom")),
        tags=_parse_tags(item["tags"]) if "tags" in item else None,
        sent=item,
    )


def _parse_custom(raw: object) -> dict[str, str | None]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ItemError(INVALID_FIELD, "custom must be an object keyed by custom-field id")
    custom: dict[str, str | None] = {}
    for key, value in raw.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ItemError(INVALID_FIELD, f"custom field {key} must hold a scalar value")
        custom[str(key)] = stored_custom_value(value)
    return custom


def _parse_tags(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(tag, str) for tag in raw):
        raise ItemError(INVALID_FIELD, "tags must be a list of text")
    if len(raw) > MAX_TAGS:
        raise ItemError(INVALID_FIELD, f"a contact has at most {MAX_TAGS} tags")
    return stored_tags(raw)


def channel_ids(body: object, channel_type: str) -> list[str] | None:
    """The ids of ``channel_type`` in ``{"contact_channels": [{"channel_type", "channel_ids"}]}``;
    None when that body carries no channel of that type."""
    if not isinstance(body, Mapping) or not isinstance(body.get("contact_channels"), list):
        raise BadRequest('body must be {"contact_channels": [{"channel_type", "channel_ids"}]}')
    found: list[str] | None = None
    for channel in body["contact_channels"]:
        if not isinstance(channel, Mapping):
            raise BadRequest("every contact channel must be an object")
        if channel.get("channel_type") != channel_type:
            continue
        ids = channel.get("channel_ids")
        if not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids):
            raise BadRequest("channel_ids must be a list of ids")
        found = (found or []) + [str(i).strip() for i in ids]
    return found


def parse_seed_contact(item: object) -> SeedContact:
    """A seed entry: the create fields plus optional ``updated``/``created`` (RFC 3339) and
    ``rev``. Refusals become BadRequest: a seed is all or nothing."""
    try:
        write = parse_write(item)
    except ItemError as refusal:
        raise BadRequest(refusal.message) from None
    assert isinstance(item, Mapping)
    rev = item.get("rev", 1)
    if isinstance(rev, bool) or not isinstance(rev, int) or rev < 1:
        raise BadRequest("rev must be a whole number >= 1")
    return SeedContact(
        write=write,
        updated=_optional_seconds(item.get("updated")),
        created=_optional_seconds(item.get("created")),
        rev=rev,
    )


def _optional_seconds(value: object) -> int | None:
    return None if value is None else int(parse_timestamp(value))


def json_object(payload: Any) -> Mapping[str, Any]:
    """A request body that must be a JSON object."""
    if not isinstance(payload, Mapping):
        raise BadRequest("body must be a JSON object")
    return payload


def whole_number(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BadRequest(f"{name} must be a whole number >= {minimum}")
    return value


def parse_writes(items: list[Any]) -> tuple[list[ContactWrite], list[FailedItem]]:
    """Each bulk item as a write, or as a refusal for ``failed_contacts``; an item that is
    not a JSON object makes the whole request a BadRequest."""
    writes: list[ContactWrite] = []
    refused: list[FailedItem] = []
    for item in items:
        try:
            writes.append(parse_write(item))
        except ItemError as refusal:
            refused.append(FailedItem(item, refusal.code, refusal.message))
    return writes, refused


def seed_contact_list(payload: Any) -> list[Any]:
    """The contacts of a seed: a list, or a mapping with a ``contacts`` list."""
    items = payload.get("contacts") if isinstance(payload, Mapping) else payload
    if not isinstance(items, list):
        raise BadRequest('a seed is a list of contacts (or {"contacts": [...]})')
    return items
