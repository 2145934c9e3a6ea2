"""Values the account stored otherwise than they were sent, in a way ``normalize`` does not
predict: Terraform's "inconsistent result after apply".

Sent again, such a value would be rewritten again, and every plan would show the same
update forever. So apply reports it (with the value to declare instead) and does not resend
it, the journal keeps it, and the next plan marks a change that sends the same value again.

Values are compared by field label, as plans show them: ``first``, ``custom["Tier"]``,
``tags``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from reconciler.core.model import STANDARD_FIELDS
from reconciler.core.normalize import custom_value_text, predicted_stored
from reconciler.core.plan import Change, Create, Plan, Update

TAGS_LABEL = "tags"

# A value as sent or stored: a standard field's value, a custom field's text, or the tags.
SentValue = str | bool | None | tuple[str, ...]


def custom_label(title: str) -> str:
    """A custom field's label, as the renderers write it."""
    return f"custom[{json.dumps(title, ensure_ascii=False)}]"


def sent_values(change: Create | Update) -> Iterator[tuple[str, SentValue]]:
    """Every value a create or update sends, by label."""
    for name, field_change in change.fields.items():
        yield name, field_change.after
    for title, field_change in change.custom.items():
        yield custom_label(title), field_change.after
    if change.tags is not None:
        yield TAGS_LABEL, change.tags.after


def _comparable(label: str, value: SentValue) -> object:
    """The form the next diff compares ``value`` in."""
    if isinstance(value, tuple):
        return frozenset(value)
    if label in STANDARD_FIELDS:
        return predicted_stored(label, value)
    return custom_value_text(value)


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One value of one contact that the account stored otherwise than predicted."""

    phone: str
    label: str
    sent: SentValue
    stored: SentValue

    def message(self) -> str:
        return (
            f"inconsistent result after apply: {self.label} was sent as {_shown(self.sent)} "
            f"but the account stored {_shown(self.stored)}. Declare {_shown(self.stored)} "
            "instead, or the same update is planned again on every run"
        )


def _shown(value: SentValue) -> str:
    return json.dumps(journaled_value(value), ensure_ascii=False)


def unpredicted_rewrites(change: Create | Update, stored: Mapping[str, SentValue]) -> list[Rewrite]:
    """The values of ``change`` that ``stored`` (by label, only those the account answered
    with) holds in a form the next diff would still find different."""
    rewrites: list[Rewrite] = []
    for label, sent in sent_values(change):
        if label not in stored:
            continue
        kept = stored[label]
        if _comparable(label, sent) != _comparable(label, kept):
            rewrites.append(Rewrite(change.phone, label, sent, kept))
    return rewrites


# What the journal says the account rewrote: (phone, label) to the value sent that time.
SeenRewrites = Mapping[tuple[str, str], object]


def journaled_value(value: SentValue) -> object:
    """A sent or stored value as a journal line holds it (JSON: the tags as a list)."""
    return list(value) if isinstance(value, tuple) else value


def mark_seen_rewrites(plan: Plan, seen: SeenRewrites) -> Plan:
    """``plan`` with each create or update marked with the fields it sends exactly as a
    value the account rewrote before, so a reviewer sees the loop instead of a silent one."""
    if not seen:
        return plan

    def marked(change: Change) -> Change:
        if not isinstance(change, Create | Update):
            return change
        labels = tuple(
            label
            for label, value in sent_values(change)
            if (change.phone, label) in seen
            and seen[(change.phone, label)] == journaled_value(value)
        )
        return dataclasses.replace(change, rewritten=labels) if labels else change

    return dataclasses.replace(plan, changes=tuple(marked(change) for change in plan.changes))
