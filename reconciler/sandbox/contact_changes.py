"""What a write makes of a contact, before any of it touches the database: a create fills
the defaults, an update changes only what it carries (heymarket-api.md, "Partial update").

Values arrive here already stored by the account's rules (``wire.parse_write``); a ``None``
in a write means "clear it"."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace

from reconciler.sandbox.stored_values import TextRewrite, default_display_name
from reconciler.sandbox.wire import ContactRecord, ContactWrite


def new_contact(
    write: ContactWrite,
    *,
    phone: str,
    custom: Mapping[str, str],
    contact_id: int,
    created: int,
    updated: int,
    rev: int,
) -> ContactRecord:
    """A contact as ``write`` creates it, with a fresh UUID; ``custom`` is keyed by field id."""
    first, last = _text(write.fields.get("first")), _text(write.fields.get("last"))
    return ContactRecord(
        id=contact_id,
        uuid=str(uuid.uuid4()),
        phone=phone,
        first=first,
        last=last,
        display_name=_text(write.fields.get("display_name")) or default_display_name(first, last),
        email=_text(write.fields.get("email")),
        is_opted_out=write.fields.get("is_opted_out") is True,
        custom=custom,
        tags=write.tags or (),
        created=created,
        updated=updated,
        rev=rev,
    )


def custom_values_set(write: ContactWrite) -> dict[str, str]:
    """The custom values a create stores: a cleared one is simply not there."""
    return {key: value for key, value in write.custom.items() if value is not None}


def changed_contact(
    existing: ContactRecord, write: ContactWrite, *, phone: str, now: int
) -> ContactRecord:
    """``existing`` with the fields ``write`` carries; custom values merge key by key, and
    every update stamps ``now`` and counts one more revision."""
    custom = dict(existing.custom)
    for key, value in write.custom.items():
        if value is None:
            custom.pop(key, None)
        else:
            custom[key] = value

    def carried(name: str, current: str | None) -> str | None:
        return _text(write.fields[name]) if name in write.fields else current

    return ContactRecord(
        id=existing.id,
        uuid=existing.uuid,
        phone=phone,
        first=carried("first", existing.first),
        last=carried("last", existing.last),
        display_name=carried("display_name", existing.display_name),
        email=carried("email", existing.email),
        is_opted_out=write.fields.get("is_opted_out", existing.is_opted_out) is True,
        custom=custom,
        tags=existing.tags if write.tags is None else write.tags,
        created=existing.created,
        updated=now,
        rev=existing.rev + 1,
    )


def rewritten_write(write: ContactWrite, rewrite: TextRewrite) -> ContactWrite:
    """``write`` as an account that rewrites text would store it: every text field and
    custom value passed through ``rewrite`` (opt-out and tags are left as sent)."""
    if not rewrite.active:
        return write
    fields = {
        name: rewrite(value) if isinstance(value, str) else value
        for name, value in write.fields.items()
    }
    custom = {key: rewrite(value) for key, value in write.custom.items()}
    return replace(write, fields=fields, custom=custom)


def _text(value: object) -> str | None:
    # `fields` also holds is_opted_out, so a text field is read back checked
    return value if isinstance(value, str) else None
