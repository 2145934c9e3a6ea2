"""The diff: declared contacts + live contacts + custom-field definitions -> a ``Plan``.

Pure and linear: contacts are matched through dicts keyed by phone (the identity), then
values are compared field by field after the normalisation the server applies, so a plan
made right after an apply is empty.

Rules (ARCHITECTURE.md, "The external contract"):
- a field absent from the declaration is not managed; present with ``None`` means clear it;
- custom fields are declared by title and resolved to ids here; a title the account lacks
  goes into ``fields_to_create``;
- every create and update writes the ownership marker; a declared live contact without a
  marker is adopted; one marked by another owner is a conflict (an error, no change);
- opt-out is one way: a declared ``false`` never re-subscribes a live opted-out contact;
- a phone that is live twice is left untouched;
- with ``prune``, owned live contacts that are not declared and not protected are deleted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.core.model import (
    STANDARD_FIELDS,
    CustomField,
    DesiredContact,
    LiveContact,
    StandardValue,
)
from reconciler.core.normalize import (
    CustomValue,
    custom_value_text,
    normalize_text,
    predicted_stored,
)
from reconciler.core.ownership import FieldIndex, Marker, Ownership
from reconciler.core.phones import is_canonical_phone, is_protected
from reconciler.core.plan import (
    PRUNE_CAP_WARNING,
    Change,
    Create,
    Delete,
    FieldChange,
    Notice,
    Plan,
    TagsChange,
    Update,
    prune_cap_problem,
    sorted_changes,
)


@dataclass(frozen=True, slots=True)
class DiffSettings:
    """What the diff needs from the configuration."""

    marker_field: str
    owner: str
    protect: tuple[str, ...] = ()
    max_deletes: int = 25
    max_delete_percent: float = 5.0
    # apply --max-deletes N: the cap for this run (see plan.prune_cap_problem).
    run_max_deletes: int | None = None

    @property
    def marker(self) -> Marker:
        return Marker(self.marker_field, self.owner)


def _declared(name: str, value: StandardValue) -> StandardValue:
    """The value a declaration asks for, as the plan shows and apply sends it."""
    if name == "is_opted_out":
        return bool(value)
    return normalize_text(value) if isinstance(value, str) else value


class _Differ:
    """One diff run. Holds the lookups so each contact is handled in constant time."""

    def __init__(self, fields: Sequence[CustomField], settings: DiffSettings) -> None:
        self.settings = settings
        index = FieldIndex.of(fields)
        self.field_ids = index.ids
        self.field_titles = index.titles
        self.ownership = Ownership.of(index, settings.marker)
        self.changes: list[Change] = []
        self.warnings: list[Notice] = []
        self.errors: list[Notice] = []
        self.unchanged = 0

    def declared_custom(
        self, desired: DesiredContact, custom: Mapping[str, CustomValue] | None = None
    ) -> dict[str, str | None]:
        """Declared custom values (``custom``, by default all of ``desired``'s) as text, minus
        the marker (apply always writes that)."""
        values: dict[str, str | None] = {}
        for title, value in (desired.custom if custom is None else custom).items():
            if title == self.settings.marker_field:
                self.warnings.append(
                    Notice(
                        f"declares the ownership marker field {title!r}; it is ignored, "
                        f"apply always writes {self.settings.owner!r}. Remove it from the file.",
                        desired.phone,
                        desired.source,
                    )
                )
                continue
            values[title] = custom_value_text(value)
        return values

    def create(self, desired: DesiredContact) -> None:
        fields: dict[str, FieldChange] = {}
        for name in STANDARD_FIELDS:
            if name not in desired.fields:
                continue
            after = _declared(name, desired.fields[name])
            if after is not None:
                fields[name] = FieldChange(None, after)
        custom = {
            title: FieldChange(None, text)
            for title, text in sorted(self.declared_custom(desired).items())
            if text is not None
        }
        custom[self.settings.marker_field] = FieldChange(None, self.settings.owner)
        tags = TagsChange((), desired.tags) if desired.tags else None
        self.changes.append(Create(desired.phone, desired.source, fields, custom, tags))

    def update(self, desired: DesiredContact, live: LiveContact) -> None:
        marker = self.ownership.marker_of(live)
        if marker is not None and marker != self.ownership.owner_text:
            self.errors.append(
                Notice(
                    f"is owned by {marker!r} (custom field {self.settings.marker_field!r}), "
                    f"not by {self.settings.owner!r}: left untouched. Remove it from this "
                    "repository, or change its marker in Heymarket to hand it over.",
                    desired.phone,
                    desired.source,
                )
            )
            return
        fields: dict[str, FieldChange] = {}
        declared_fields = desired.fields
        for name in STANDARD_FIELDS:
            if name not in declared_fields:
                continue
            wanted = declared_fields[name]
            current = getattr(live, name)
            # Equal raw values are equal once normalised: skips the work for most contacts.
            if wanted == current or predicted_stored(name, wanted) == predicted_stored(
                name, current
            ):
                continue
            if name == "is_opted_out" and current and not wanted:
                self.warnings.append(
                    Notice(
                        "declares is_opted_out: false, but the contact has opted out; only "
                        "the contact can opt back in (by texting START). Left opted out.",
                        desired.phone,
                        desired.source,
                    )
                )
                continue
            fields[name] = FieldChange(current, _declared(name, wanted))
        # A declared value equal to the live one, of the same type, is the same text: only
        # the others (and the marker, to warn about it) need the work below.
        marker_field, field_ids, live_custom = (
            self.settings.marker_field,
            self.field_ids,
            live.custom,
        )
        differing = {
            title: value
            for title, value in desired.custom.items()
            if title == marker_field
            or (field_id := field_ids.get(title)) is None
            or (live_value := live_custom.get(field_id)) != value
            or type(live_value) is not type(value)
        }
        custom: dict[str, FieldChange] = {}
        declared = self.declared_custom(desired, differing) if differing else {}
        for title, wanted_text in sorted(declared.items()):
            field_id = self.field_ids.get(title)
            live_value = live.custom.get(field_id) if field_id is not None else None
            # Declared text is already normalised, so a live value equal to it is too.
            current_text = (
                wanted_text if live_value == wanted_text else custom_value_text(live_value)
            )
            if wanted_text != current_text:
                custom[title] = FieldChange(current_text, wanted_text)
        adopt = marker is None
        if adopt:
            custom[self.settings.marker_field] = FieldChange(None, self.settings.owner)
        tags: TagsChange | None = None
        if desired.tags is not None and set(desired.tags) != set(live.tags):
            tags = TagsChange(live.tags, desired.tags)
        if not fields and not custom and tags is None:
            self.unchanged += 1
            return
        self.changes.append(
            Update(
                phone=desired.phone,
                contact_id=live.uuid,
                rev=live.rev,
                updated=live.updated,
                source=desired.source,
                fields=fields,
                custom=custom,
                adopt=adopt,
                tags=tags,
            )
        )

    def delete(self, live: LiveContact) -> Delete:
        fields: dict[str, FieldChange] = {}
        for name in STANDARD_FIELDS:
            current = live.standard_value(name)
            if current is not None and current is not False:
                fields[name] = FieldChange(current, None)
        custom: dict[str, FieldChange] = {}
        for field_id, value in live.custom.items():
            text = custom_value_text(value)
            if text is not None:
                custom[self.field_titles.get(field_id, f"#{field_id}")] = FieldChange(text, None)
        return Delete(
            phone=live.phone,
            contact_id=live.uuid,
            rev=live.rev,
            updated=live.updated,
            fields=fields,
            custom=dict(sorted(custom.items())),
            live=live,
        )

    def fields_to_create(self) -> tuple[str, ...]:
        missing: set[str] = set()
        for change in self.changes:
            if isinstance(change, Create | Update):
                missing.update(title for title in change.custom if title not in self.field_ids)
        return tuple(sorted(missing))


def diff(
    desired: Sequence[DesiredContact],
    live: Sequence[LiveContact],
    fields: Sequence[CustomField],
    settings: DiffSettings,
    *,
    prune: bool,
) -> Plan:
    """The plan that makes the live account match the declared contacts."""
    differ = _Differ(fields, settings)

    live_by_phone: dict[str, LiveContact] = {}
    live_twice: dict[str, list[LiveContact]] = {}
    for live_contact in live:
        first = live_by_phone.setdefault(live_contact.phone, live_contact)
        if first is not live_contact:
            live_twice.setdefault(live_contact.phone, [first]).append(live_contact)

    desired_by_phone: dict[str, DesiredContact] = {}
    for contact in desired:
        earlier = desired_by_phone.setdefault(contact.phone, contact)
        if earlier is not contact:
            differ.errors.append(
                Notice(
                    f"is declared twice (also at {earlier.source}): left untouched. "
                    "Keep one of them.",
                    contact.phone,
                    contact.source,
                )
            )

    declared_twice = {notice.phone for notice in differ.errors}
    for phone, contact in desired_by_phone.items():
        if phone in declared_twice:
            continue
        if phone in live_twice:
            ids = ", ".join(str(copy.id) for copy in live_twice[phone])
            differ.errors.append(
                Notice(
                    f"exists {len(live_twice[phone])} times in the account (contact ids "
                    f"{ids}): left untouched. Merge or delete the duplicates in Heymarket.",
                    phone,
                    contact.source,
                )
            )
            continue
        existing = live_by_phone.get(phone)
        if existing is None:
            differ.create(contact)
        else:
            differ.update(contact, existing)

    owned_live_count = 0
    candidates: list[Delete] = []
    duplicated_owned: list[str] = []
    opted_out_owned: list[str] = []
    unreadable_owned: list[str] = []
    for phone, live_contact in live_by_phone.items():
        copies = live_twice.get(phone, [live_contact])
        owned = [copy for copy in copies if differ.ownership.owns(copy)]
        owned_live_count += len(owned)
        if not owned or phone in desired_by_phone:
            continue
        if not is_canonical_phone(phone):
            # No declared phone can ever equal it, so "not declared" proves nothing.
            unreadable_owned.append(phone)
            continue
        if is_protected(phone, settings.protect):
            continue
        if len(copies) > 1:
            duplicated_owned.append(phone)
            continue
        if live_contact.is_opted_out:
            # The contact is the account's record of a STOP: deleted, and declared again
            # later, it would come back opted in.
            opted_out_owned.append(phone)
            continue
        candidates.append(differ.delete(live_contact))

    if prune:
        differ.changes.extend(candidates)
        for phone in sorted(duplicated_owned):
            differ.warnings.append(
                Notice(
                    "is not declared but exists more than once in the account: not pruned. "
                    "Merge or delete the duplicates in Heymarket.",
                    phone,
                )
            )
        for phone in sorted(opted_out_owned):
            differ.warnings.append(
                Notice(
                    "is not declared but has opted out: not pruned, so the account keeps the "
                    "record of its opt-out (declared again later, it would come back opted "
                    "in). Delete it in Heymarket if you must.",
                    phone,
                )
            )
        for phone in sorted(unreadable_owned):
            differ.warnings.append(
                Notice(
                    "is not a phone number the tool can read: not pruned, since no declared "
                    "phone can match it. Fix or delete the contact in Heymarket.",
                    ascii(phone)[1:-1],
                )
            )
        problem = prune_cap_problem(
            len(candidates),
            owned_live_count,
            settings.max_deletes,
            settings.max_delete_percent,
            run_max_deletes=settings.run_max_deletes,
        )
        if problem is not None:
            differ.warnings.append(Notice(f"{PRUNE_CAP_WARNING}{problem}"))

    return Plan(
        changes=sorted_changes(differ.changes),
        unchanged=differ.unchanged,
        marker=settings.marker,
        fields_to_create=differ.fields_to_create(),
        warnings=tuple(differ.warnings),
        errors=tuple(sorted(differ.errors, key=lambda notice: notice.phone or "")),
        prune=prune,
        owned_live_count=owned_live_count,
        prune_candidates=0 if prune else len(candidates),
    )
