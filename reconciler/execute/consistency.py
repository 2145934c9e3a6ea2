"""What the account says it stored, by field label, for ``core.rewrites`` to compare with
what was sent: from a bulk write answer, or from a re-read of the contact."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.core.model import STANDARD_FIELDS, LiveContact
from reconciler.core.normalize import CustomValue, custom_value_text
from reconciler.core.rewrites import TAGS_LABEL, SentValue, custom_label
from reconciler.heymarket import StoredContact


def _custom_by_label(
    custom: Mapping[str, CustomValue], field_titles: Mapping[str, str]
) -> dict[str, SentValue]:
    # Every known field: one the answer leaves out holds no value.
    labels: dict[str, SentValue] = {}
    for field_id, title in field_titles.items():
        value = custom.get(field_id)
        # Numbers and booleans are shown as the text the account keeps them as.
        text = value if value is None or isinstance(value, str) else custom_value_text(value)
        labels[custom_label(title)] = text
    return labels


def answered_values(stored: StoredContact, field_titles: Mapping[str, str]) -> dict[str, SentValue]:
    """The values a bulk write answer carries for one contact; ``field_titles`` maps the
    account's custom-field ids to their titles."""
    values: dict[str, SentValue] = dict(stored.fields)
    if stored.custom is not None:
        values.update(_custom_by_label(stored.custom, field_titles))
    if stored.tags is not None:
        values[TAGS_LABEL] = stored.tags
    return values


def read_back_values(live: LiveContact, field_titles: Mapping[str, str]) -> dict[str, SentValue]:
    """The values of a contact as a re-read found it."""
    values: dict[str, SentValue] = {name: live.standard_value(name) for name in STANDARD_FIELDS}
    values.update(_custom_by_label(live.custom, field_titles))
    values[TAGS_LABEL] = live.tags
    return values
