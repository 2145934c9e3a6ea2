"""API responses → model values. The parsing edge: no raw dict travels further than here.

Tolerant where the API documentation is silent or loose (missing optional fields, ``custom``
null, ids as numbers or strings, timestamps with ``Z`` or an offset); a shape that cannot be
read raises ``BadResponseError`` that says what was wrong, never a ``KeyError``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from reconciler.core.errors import BadResponseError
from reconciler.core.model import STANDARD_FIELDS, CustomField, LiveContact, StandardValue
from reconciler.core.normalize import CustomValue
from reconciler.core.phones import answered_phone
from reconciler.core.timestamps import utc_text
from reconciler.heymarket.decoding import server_words

_Part = TypeVar("_Part")


@dataclass(frozen=True, slots=True)
class FailedItem:
    """A contact the server refused in a bulk write, with its reason."""

    item: Mapping[str, Any]
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class StoredContact:
    """A contact a bulk write answer says it stored: the canonical phone and the uuid it
    names, each ``None`` when the answer gives none that can be read, and the values as the
    account stored them (heymarket-api.md, "Stored values in answers"), only those the answer
    carries in a readable form: ``fields`` by standard field name, ``custom`` by field id
    and ``tags`` (each ``None`` when the answer has none, or ``null``)."""

    phone: str | None
    uuid: str | None
    fields: Mapping[str, StandardValue] = field(default_factory=dict)
    custom: Mapping[str, CustomValue] | None = None
    tags: tuple[str, ...] | None = None

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> StoredContact:
        return cls(
            phone_of(record),
            item_uuid(record),
            _stored_fields(record),
            _stored_part(record, "custom", _custom),
            _stored_part(record, "tags", _tags),
        )


# A bulk write answer is read for its outcomes first: a stored value in a shape that cannot
# be read is left out (not compared), never a reason to fail the whole answer.


def _stored_fields(record: Mapping[str, Any]) -> dict[str, StandardValue]:
    fields: dict[str, StandardValue] = {}
    for name in STANDARD_FIELDS:
        if name in record:
            with contextlib.suppress(BadResponseError):
                value = record[name]
                fields[name] = _opted_out(value) if name == "is_opted_out" else _text(value)
    return fields


def _stored_part(
    record: Mapping[str, Any], key: str, read: Callable[[object], _Part]
) -> _Part | None:
    if record.get(key) is None:  # absent, or null: not a statement of stored values
        return None
    try:
        return read(record[key])
    except BadResponseError:
        return None


def _text(value: object) -> str | None:
    return _optional_text({"value": value}, "value")


@dataclass(frozen=True, slots=True)
class Refusal:
    """An item a bulk write refused: the phone and uuid the answer names (``None`` when it
    names none), with the server's code and message."""

    phone: str | None
    uuid: str | None
    code: str
    message: str

    @classmethod
    def of(cls, failed: FailedItem) -> Refusal:
        return cls(
            phone_of(failed.item),
            item_uuid(failed.item),
            server_words(failed.code),
            server_words(failed.message),
        )


@dataclass(frozen=True, slots=True)
class UnknownOutcome:
    """An item of a write whose outcome is unknown (it may or may not have been applied):
    the item as it was sent, and the phone and uuid it names."""

    item: Mapping[str, Any]
    phone: str | None
    uuid: str | None

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> UnknownOutcome:
        return cls(item, phone_of(item), item_uuid(item))


def parse_timestamp(value: object, what: str = "updated") -> datetime:
    """An ISO 8601 / RFC 3339 timestamp as an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        raise BadResponseError(f"expected an ISO 8601 timestamp in `{what}`, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadResponseError(
            f"expected an ISO 8601 timestamp in `{what}`, got {value!r}"
        ) from None
    if parsed.tzinfo is None:
        # A timestamp without an offset is read as UTC, as the API writes UTC.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def canonical_timestamp(value: object, what: str = "updated") -> str:
    return utc_text(parse_timestamp(value, what))


def _integer(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise BadResponseError(f"expected an integer in `{what}`, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise BadResponseError(f"expected an integer in `{what}`, got {value!r}")


def _identifier(value: object, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        raise BadResponseError(f"expected an id in `{what}`, got {value!r}")
    return str(value).strip()


def _optional_text(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise BadResponseError(f"expected text or null in `{key}`, got {value!r}")


def _opted_out(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadResponseError(f"expected a boolean in `is_opted_out`, got {value!r}")


def _custom(value: object) -> dict[str, CustomValue]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BadResponseError(
            f"expected an object or null in `custom`, got {type(value).__name__}"
        )
    custom: dict[str, CustomValue] = {}
    for key, field_value in value.items():
        if field_value is not None and not isinstance(field_value, str | int | float | bool):
            raise BadResponseError(
                f"expected a scalar value for custom field {key!s}, "
                f"got {type(field_value).__name__}"
            )
        custom[str(key)] = field_value
    return custom


def _tags(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise BadResponseError(f"expected a list of text or null in `tags`, got {value!r:.80}")
    return tuple(value)


def _raw_phone(record: Mapping[str, Any]) -> object:
    """The phone value of a record or a bulk-write item: ``phone``, else its phone channel."""
    phone = record.get("phone")
    if phone is not None and phone != "":
        return phone
    channels = record.get("contact_channels")
    if isinstance(channels, list):
        for channel in channels:
            if isinstance(channel, Mapping) and channel.get("channel_type") == "phone":
                return channel.get("channel_id")
    return None


def phone_of(record: Mapping[str, Any]) -> str | None:
    """The canonical phone of a contact record or a bulk-write item, or ``None`` when it has
    none that is a phone (see ``phones.answered_phone``)."""
    return answered_phone(_raw_phone(record))


def item_uuid(item: Mapping[str, Any]) -> str | None:
    """The uuid a contact record or a bulk-write item names (``uuid``, else ``contact_id``)."""
    value = item.get("uuid", item.get("contact_id"))
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _phone(record: Mapping[str, Any]) -> str:
    """A live contact's phone: canonical when it can be; otherwise the text as answered, which
    matches no declared phone and which prune never deletes (see ``diff``)."""
    raw = _raw_phone(record)
    phone = answered_phone(raw)
    if phone is not None:
        return phone
    if isinstance(raw, str | int) and not isinstance(raw, bool) and str(raw).strip():
        return str(raw)
    raise BadResponseError("contact without a phone number (neither `phone` nor a phone channel)")


def parse_live_contact(record: object, *, keep_raw: bool = True) -> LiveContact:
    """One contact of a v2 list or search answer. ``keep_raw`` keeps the answer's full record
    (prune backups need it); listings of a whole account leave it out to save memory."""
    if not isinstance(record, Mapping):
        raise BadResponseError(f"expected a contact object, got {type(record).__name__}")
    if "id" not in record:
        raise BadResponseError("contact without `id`")
    contact_id = _integer(record["id"], "id")
    uuid = record.get("uuid", record.get("contact_id"))
    if uuid is None:
        raise BadResponseError(f"contact {contact_id} without `uuid`")
    if "updated" not in record:
        raise BadResponseError(f"contact {contact_id} without `updated`")
    return LiveContact(
        id=contact_id,
        uuid=_identifier(uuid, "uuid"),
        phone=_phone(record),
        first=_optional_text(record, "first"),
        last=_optional_text(record, "last"),
        display_name=_optional_text(record, "display_name"),
        email=_optional_text(record, "email"),
        is_opted_out=_opted_out(record.get("is_opted_out")),
        custom=_custom(record.get("custom")),
        rev=_integer(record.get("rev", 0), "rev"),
        updated=canonical_timestamp(record["updated"]),
        raw=dict(record) if keep_raw else {},
        tags=_tags(record.get("tags")),
    )


def _items(body: object, what: str, *keys: str) -> Sequence[object]:
    """The array of an answer: a bare array, or the first of ``keys`` in an object."""
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        for key in keys:
            value = body.get(key)
            if isinstance(value, list):
                return value
    raise BadResponseError(f"expected an array of {what}, got {type(body).__name__}")


def parse_contact_list(body: object, *, keep_raw: bool = True) -> list[LiveContact]:
    """A page of ``POST /v2/contacts/list`` or an answer of ``POST /v2/contacts/search``."""
    return [
        parse_live_contact(record, keep_raw=keep_raw)
        for record in _items(body, "contacts", "contacts")
    ]


def parse_count(body: object) -> int:
    """``POST /v1/contacts/count``: a bare number or an object holding it."""
    value = body
    if isinstance(body, Mapping):
        for key in ("count", "total", "contacts"):
            if key in body:
                value = body[key]
                break
    try:
        count = _integer(value, "count")
    except BadResponseError:
        raise BadResponseError(f"expected a contact count, got {body!r:.80}") from None
    return count


def parse_custom_field(record: object) -> CustomField:
    if not isinstance(record, Mapping):
        raise BadResponseError(f"expected a custom field object, got {type(record).__name__}")
    if "id" not in record or "title" not in record:
        raise BadResponseError("custom field without `id` or `title`")
    title = record["title"]
    if not isinstance(title, str):
        raise BadResponseError(f"expected text in custom field `title`, got {title!r}")
    return CustomField(id=_identifier(record["id"], "id"), title=title)


def parse_custom_fields(body: object) -> list[CustomField]:
    return [
        parse_custom_field(record)
        for record in _items(body, "custom fields", "fields", "contact_fields")
    ]


def parse_bulk_write(body: object) -> tuple[list[Mapping[str, Any]], list[FailedItem]]:
    """``POST /v2/contacts``: the succeeded items and the refused ones with their reasons."""
    if not isinstance(body, Mapping):
        raise BadResponseError(
            f"expected an object with `contacts` and `failed_contacts`, got {type(body).__name__}"
        )
    succeeded_raw = body.get("contacts") or []
    failed_raw = body.get("failed_contacts") or []
    if not isinstance(succeeded_raw, list) or not isinstance(failed_raw, list):
        raise BadResponseError("expected arrays in `contacts` and `failed_contacts`")
    succeeded: list[Mapping[str, Any]] = []
    for item in succeeded_raw:
        if not isinstance(item, Mapping):
            raise BadResponseError(f"expected contact objects in `contacts`, got {item!r:.80}")
        succeeded.append(dict(item))
    failed: list[FailedItem] = []
    for entry in failed_raw:
        if not isinstance(entry, Mapping):
            raise BadResponseError(f"expected objects in `failed_contacts`, got {entry!r:.80}")
        contact = entry.get("contact")
        code = entry.get("error") or entry.get("code") or "unknown"
        message = entry.get("message") or entry.get("reason") or str(code)
        failed.append(
            FailedItem(
                item=dict(contact) if isinstance(contact, Mapping) else {},
                code=str(code),
                message=str(message),
            )
        )
    return succeeded, failed


def parse_upsert_answer(body: object) -> tuple[list[StoredContact], list[Refusal]]:
    """``POST /v2/contacts`` as typed entries: what was stored and what was refused."""
    succeeded, failed = parse_bulk_write(body)
    return [StoredContact.of(record) for record in succeeded], [Refusal.of(f) for f in failed]


def parse_delete_answer(body: object) -> None:
    """``DELETE /v2/contacts`` answers the string ``"ok"`` (or an object saying so)."""
    if isinstance(body, str) and body.strip().lower() == "ok":
        return
    if isinstance(body, Mapping) and str(body.get("status", body.get("result", ""))).lower() in (
        "ok",
        "success",
    ):
        return
    raise BadResponseError(f'expected "ok" from the delete, got {body!r:.80}')
