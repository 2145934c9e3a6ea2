"""Custom fields before contacts: every field a write names must exist in the account, so
its id can be sent (the ownership marker's included)."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.core.errors import AmbiguousWriteError
from reconciler.core.model import CustomField
from reconciler.core.ownership import FieldIndex, Marker
from reconciler.core.plan import Create, Update
from reconciler.heymarket import HeymarketClient
from reconciler.report.console import Console


def ensure_fields(
    client: HeymarketClient,
    console: Console,
    fields: Sequence[CustomField],
    changes: Sequence[Create | Update],
    marker: Marker,
) -> list[CustomField]:
    """The account's custom fields once every field the changes name exists: the missing
    ones are created. An unknown outcome is settled by listing the fields again."""
    known = list(fields)

    def lacking(titles: Sequence[str]) -> list[str]:
        ids = FieldIndex.of(known).ids
        return [title for title in titles if title not in ids]

    needed = {marker.field_title}
    for change in changes:
        needed.update(change.custom)
    missing = lacking(sorted(needed))
    if not missing:
        return known
    try:
        created = client.create_custom_fields(missing)
    except AmbiguousWriteError:
        known = client.list_custom_fields()
        still_missing = lacking(missing)
        created = client.create_custom_fields(still_missing) if still_missing else []
    known.extend(created)
    unresolved = lacking(missing)
    if unresolved:
        known = client.list_custom_fields()
        unresolved = lacking(missing)
    if unresolved:
        raise AmbiguousWriteError(
            f"the custom fields {', '.join(unresolved)} could not be created; nothing "
            "else was written. Run apply again."
        )
    shown = ", ".join(f'"{title}"' for title in missing)
    console.err(f"Created custom field{'s' if len(missing) > 1 else ''} {shown}.\n")
    return known
