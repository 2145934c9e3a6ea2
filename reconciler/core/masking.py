"""Masking of personal data in output (``output.mask_pii`` / ``--mask-pii``).

Plans pasted into CI logs and pull requests should not leak who the contacts are, yet a
reviewer must still tell rows apart: phones keep their country/area prefix and last two
digits, emails their first letter and domain, names their initial. Custom-field values and
tags are shown as they are in a plan (they are business data such as a tier, a ``VIP`` label,
and the ownership marker), except for any phone, email or name of the plan written in a tag,
which is masked as in free text.

``mask_plan`` masks a plan field by field; ``mask_text`` masks free text (a server's refusal,
a note, an error message) by finding phones and emails in it, and the names it is told
about, so that with masking on no output stream shows them in full whoever wrote the text."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from reconciler.core.model import DesiredContact, LiveContact
from reconciler.core.plan import (
    Change,
    Create,
    Delete,
    FieldChange,
    FieldValue,
    Notice,
    Plan,
    TagsChange,
    Update,
)

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


# A phone in free text: E.164 digits, perhaps written with "+", spaces, dashes or brackets
# ("+1 (510) 555-1234"), so at least 7 digits. ``_masked_run`` decides whether it is one.
_PHONE_RUN = re.compile(r"\+?\(?\d(?:[ \-()]{0,2}\d){6,}")
_EMAIL = re.compile(r"(?<![\w.+'-])[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
# Followed by one of these and then a letter or digit, a digit run is part of a name, a
# date or a path (`prune-20261129T233000Z.jsonl`, `2026-11-29T10:00`, `v1.2345678`).
_JOINERS = frozenset(".:-/_")
# What our own messages put before a server's request id, which is not a phone whatever its
# digits; and a JSON member's number value, which a phone never is (phones are strings).
_NOT_A_PHONE_BEFORE = re.compile(r'(?:request id |"\s*:\s*)$')
_WORD = re.compile(r"\w+")
# Names shorter than this are not looked for in free text: they match ordinary words.
MIN_NAME_LENGTH = 2
# The most words of a name looked for in free text ("Mary Ann de la Cruz").
MAX_NAME_WORDS = 6


def _joined(text: str, index: int, step: int) -> bool:
    """Whether the character at ``index`` binds the digit run to a word: a letter or digit,
    or a joiner followed (in direction ``step``) by one."""
    if not 0 <= index < len(text):
        return False
    if text[index].isalnum() or text[index] == "_":
        return True
    beyond = index + step
    return text[index] in _JOINERS and 0 <= beyond < len(text) and text[beyond].isalnum()


def _masked_run(match: re.Match[str]) -> str:
    run = match.group()
    text, start, end = match.string, match.start(), match.end()
    digits = "".join(character for character in run if character.isdigit())
    if not 7 <= len(digits) <= 15:
        return run
    if _joined(text, start - 1, -1) or _joined(text, end, 1):
        return run
    if _NOT_A_PHONE_BEFORE.search(text, max(0, start - 16), start):
        return run
    # A bracket the run opened or closed but did not pair stays as it was written.
    kept_before = "(" if run.startswith(("(", "+(")) and ")" not in run else ""
    kept_after = ")" if run.endswith(")") and "(" not in run else ""
    return f"{kept_before}{mask_phone(digits)}{kept_after}"


@dataclass(frozen=True, slots=True)
class KnownNames:
    """The names a run knows (declared and live): free text cannot be searched for names by
    pattern, only for these. Indexed by first word, so the cost of masking follows the
    text, not the number of names."""

    names: frozenset[str] = frozenset()
    first_words: frozenset[str] = frozenset()

    def adding(self, values: Iterable[object]) -> KnownNames:
        """These names and those of ``values`` that are text of a usable length."""
        added: set[str] = set()
        for value in values:
            if isinstance(value, str):
                # Trimmed of what a whole-word match can neither start nor end with.
                name = value.strip().strip(".,;:!?'\"()[]{}<>-")
                if len(name) >= MIN_NAME_LENGTH and _WORD.match(name):
                    added.add(name)
        if added <= self.names:
            return self
        first_words = {match.group() for name in added if (match := _WORD.match(name))}
        return KnownNames(self.names | added, self.first_words | first_words)


def _masked_names(text: str, known: KnownNames) -> str:
    """``text`` with each whole-word occurrence of a known name masked."""
    if not known.names or known.first_words.isdisjoint(_WORD.findall(text)):
        return text
    words = list(_WORD.finditer(text))
    pieces: list[str] = []
    position = 0
    index = 0
    while index < len(words):
        found = 0
        if words[index].group() in known.first_words:
            start = words[index].start()
            last = min(len(words), index + MAX_NAME_WORDS)
            # The longest name wins: "Mary Ann" before "Mary".
            for end_index in range(last - 1, index - 1, -1):
                if text[start : words[end_index].end()] in known.names:
                    found = end_index + 1
                    break
        if found:
            end = words[found - 1].end()
            pieces += [text[position:start], mask_name(text[start:end])]
            position = end
            index = found
        else:
            index += 1
    pieces.append(text[position:])
    return "".join(pieces)


def mask_text(text: str, names: KnownNames | None = None) -> str:
    """Free text with the phones and emails in it masked (``1510*****34``,
    ``a***@example.com``), and every whole-word occurrence of a known name. What is not
    personal data stays as written: file names with dates, UUIDs, counts, request ids."""
    text = _EMAIL.sub(lambda match: mask_email(match.group()), text)
    text = _PHONE_RUN.sub(_masked_run, text)
    return text if names is None else _masked_names(text, names)


def contact_names(contacts: Iterable[DesiredContact | LiveContact]) -> Iterator[object]:
    """The name fields of declared or live contacts, for ``KnownNames``."""
    for contact in contacts:
        if isinstance(contact, LiveContact):
            yield from (contact.first, contact.last, contact.display_name)
        else:
            yield from (contact.fields.get(name) for name in NAME_FIELDS)


def plan_names(plan: Plan) -> Iterator[object]:
    """The names a plan shows, before and after, for ``KnownNames``."""
    for change in plan.changes:
        for name in NAME_FIELDS:
            field_change = change.fields.get(name)
            if field_change is not None:
                yield from (field_change.before, field_change.after)


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


def _mask_tags(tags: tuple[str, ...], names: KnownNames) -> tuple[str, ...]:
    return tuple(mask_text(tag, names) for tag in tags)


def _mask_change(change: Change, names: KnownNames) -> Change:
    masked_phone = mask_phone(change.phone)
    if isinstance(change, Create | Update) and change.tags is not None:
        # Tags are labels (VIP, a region), shown like other business values; a phone, an
        # email or a name written into one is masked as in any other text.
        tags = TagsChange(
            _mask_tags(change.tags.before, names), _mask_tags(change.tags.after, names)
        )
        return dataclasses.replace(
            change, phone=masked_phone, fields=_mask_fields(change.fields), tags=tags
        )
    if isinstance(change, Delete) and change.live.tags:
        live = dataclasses.replace(change.live, tags=_mask_tags(change.live.tags, names))
        return dataclasses.replace(
            change, phone=masked_phone, fields=_mask_fields(change.fields), live=live
        )
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
    with_tags = any(
        (isinstance(c, Create | Update) and c.tags) or (isinstance(c, Delete) and c.live.tags)
        for c in plan.changes
    )
    names = KnownNames().adding(plan_names(plan)) if with_tags else KnownNames()
    return dataclasses.replace(
        plan,
        changes=tuple(_mask_change(change, names) for change in plan.changes),
        warnings=tuple(_mask_notice(notice) for notice in plan.warnings),
        errors=tuple(_mask_notice(notice) for notice in plan.errors),
        targets=tuple(mask_text(target) for target in plan.targets),
    )
