"""The plan: what ``apply`` would change, as plain values, and the guard that refuses a prune
over its caps.

A plan is pure data. ``diff`` builds it, the renderers show it, ``saved_plan`` stores it and
``apply`` executes it; nothing here does I/O.

Changes sort by (action, phone) with creates first, then updates, then deletes, so every
rendering and every saved file lists them in the same order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from reconciler.core.errors import PruneCapExceededError
from reconciler.core.model import LiveContact, SourceLocation
from reconciler.core.ownership import Marker

FORMAT_VERSION = 1

# A field value as plans show and store it: standard fields keep their type, custom-field
# values are text (the form the API stores them in).
FieldValue = str | bool | None

ACTION_ORDER: Mapping[str, int] = {"create": 0, "update": 1, "delete": 2}

# How a plan made with --prune warns that apply --prune will refuse it (over a cap).
PRUNE_CAP_WARNING = "apply --prune will refuse this plan. "


@dataclass(frozen=True, slots=True)
class FieldChange:
    before: FieldValue
    after: FieldValue

    def to_json_dict(self) -> dict[str, FieldValue]:
        return {"before": self.before, "after": self.after}


@dataclass(frozen=True, slots=True)
class Notice:
    """A warning or error in a plan, about one contact (``phone``) or the plan as a whole."""

    message: str
    phone: str | None = None
    source: SourceLocation | None = None

    def __str__(self) -> str:
        where = ""
        if self.phone is not None:
            where = self.phone
            if self.source is not None:
                where += f" ({self.source})"
            where += ": "
        return f"{where}{self.message}"

    def to_json_dict(self) -> dict[str, str | None]:
        return {
            "phone": self.phone,
            "source": str(self.source) if self.source is not None else None,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class TagsChange:
    """The whole set of tags before and after (the API replaces it as one value)."""

    before: tuple[str, ...]
    after: tuple[str, ...]

    def to_json_dict(self) -> dict[str, list[str]]:
        return {"before": list(self.before), "after": list(self.after)}


def _changes_json(changes: Mapping[str, FieldChange]) -> dict[str, dict[str, FieldValue]]:
    return {name: change.to_json_dict() for name, change in changes.items()}


def _with_tags(document: dict[str, Any], tags: TagsChange | None) -> dict[str, Any]:
    # Only when tags change: a plan without them stays byte for byte what it was.
    if tags is not None:
        document["tags"] = tags.to_json_dict()
    return document


def _with_rewrites(document: dict[str, Any], rewritten: tuple[str, ...]) -> dict[str, Any]:
    # Only when marked, for the same reason as the tags.
    if rewritten:
        document["rewritten_by_account"] = list(rewritten)
    return document


@dataclass(frozen=True, slots=True)
class Create:
    """A declared contact that does not exist live. ``custom`` is keyed by field title and
    always holds the ownership marker."""

    action: ClassVar[str] = "create"

    phone: str
    source: SourceLocation
    fields: Mapping[str, FieldChange]
    custom: Mapping[str, FieldChange]
    # None: the tags are not managed, or not changed.
    tags: TagsChange | None = None
    # The fields (labelled as plans show them) whose value, sent exactly so before, the
    # account stored otherwise: see ``core.rewrites``.
    rewritten: tuple[str, ...] = ()

    @property
    def sort_key(self) -> tuple[int, str]:
        return (ACTION_ORDER[self.action], self.phone)

    def to_json_dict(self) -> dict[str, Any]:
        document = _with_tags(
            {
                "action": self.action,
                "phone": self.phone,
                "source": str(self.source),
                "fields": _changes_json(self.fields),
                "custom": _changes_json(self.custom),
            },
            self.tags,
        )
        return _with_rewrites(document, self.rewritten)


@dataclass(frozen=True, slots=True)
class Update:
    """A declared live contact whose managed fields differ. ``adopt`` marks a contact that
    had no ownership marker: the update writes it, so this repo owns the contact from then
    on."""

    action: ClassVar[str] = "update"

    phone: str
    contact_id: str
    rev: int
    updated: str
    source: SourceLocation
    fields: Mapping[str, FieldChange]
    custom: Mapping[str, FieldChange]
    adopt: bool = False
    tags: TagsChange | None = None
    rewritten: tuple[str, ...] = ()

    @property
    def sort_key(self) -> tuple[int, str]:
        return (ACTION_ORDER[self.action], self.phone)

    def to_json_dict(self) -> dict[str, Any]:
        document = _with_tags(
            {
                "action": self.action,
                "phone": self.phone,
                "contact_id": self.contact_id,
                "rev": self.rev,
                "updated": self.updated,
                "source": str(self.source),
                "adopt": self.adopt,
                "fields": _changes_json(self.fields),
                "custom": _changes_json(self.custom),
            },
            self.tags,
        )
        return _with_rewrites(document, self.rewritten)


@dataclass(frozen=True, slots=True)
class Delete:
    """An owned live contact no longer declared. ``fields``/``custom`` show what goes away;
    ``live`` is the full record, written to the backup before the delete."""

    action: ClassVar[str] = "delete"

    phone: str
    contact_id: str
    rev: int
    updated: str
    fields: Mapping[str, FieldChange]
    custom: Mapping[str, FieldChange]
    live: LiveContact = field(compare=False, repr=False)

    @property
    def sort_key(self) -> tuple[int, str]:
        return (ACTION_ORDER[self.action], self.phone)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "phone": self.phone,
            "contact_id": self.contact_id,
            "rev": self.rev,
            "updated": self.updated,
            "fields": _changes_json(self.fields),
            "custom": _changes_json(self.custom),
        }


Change = Create | Update | Delete


@dataclass(frozen=True, slots=True)
class LiveRead:
    """How the live state a plan was made from was read: ``how`` is "full" (every page of
    the account) or "incremental" (what changed since the snapshot); ``requests`` counts the
    API requests it took. Shown beside the plan, never part of what a saved plan proves."""

    how: str
    requests: int

    def to_json_dict(self) -> dict[str, Any]:
        return {"read": self.how, "requests": self.requests}

    def __str__(self) -> str:
        how = "in full" if self.how == "full" else self.how + "ly"
        unit = "request" if self.requests == 1 else "requests"
        return f"Live state read {how}: {self.requests:,} API {unit}."


@dataclass(frozen=True, slots=True)
class Summary:
    create: int
    update: int
    delete: int
    unchanged: int

    def to_json_dict(self) -> dict[str, int]:
        return {
            "create": self.create,
            "update": self.update,
            "delete": self.delete,
            "unchanged": self.unchanged,
        }

    def __str__(self) -> str:
        return f"Plan: {self.create} to create, {self.update} to update, {self.delete} to delete."


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything ``apply`` would do, and why some things it will not do.

    ``changes`` is sorted by (action, phone). ``fields_to_create`` lists the custom-field
    titles apply must create before writing contacts (the ownership marker included when the
    account lacks it). ``errors`` are contacts left untouched that need a human (an ownership
    conflict, a phone live twice); ``warnings`` need attention but block nothing.
    ``owned_live_count`` feeds the percentage cap of the prune guard; ``prune_candidates``
    counts the deletes ``--prune`` would add when the plan was made without it."""

    changes: tuple[Change, ...]
    unchanged: int
    marker: Marker
    fields_to_create: tuple[str, ...] = ()
    warnings: tuple[Notice, ...] = ()
    errors: tuple[Notice, ...] = ()
    prune: bool = False
    owned_live_count: int = 0
    prune_candidates: int = 0
    # A targeted plan (``--target``): the targets as the plan shows and saves them, each a
    # canonical phone or a path as written; empty for a plan of everything.
    targets: tuple[str, ...] = ()
    live_read: LiveRead | None = None

    @property
    def creates(self) -> tuple[Create, ...]:
        return tuple(change for change in self.changes if isinstance(change, Create))

    @property
    def updates(self) -> tuple[Update, ...]:
        return tuple(change for change in self.changes if isinstance(change, Update))

    @property
    def deletes(self) -> tuple[Delete, ...]:
        return tuple(change for change in self.changes if isinstance(change, Delete))

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    @property
    def summary(self) -> Summary:
        counts = {"create": 0, "update": 0, "delete": 0}
        for change in self.changes:
            counts[change.action] += 1
        return Summary(
            create=counts["create"],
            update=counts["update"],
            delete=counts["delete"],
            unchanged=self.unchanged,
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The contract's JSON plan (ARCHITECTURE.md); key order and change order are stable."""
        document: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "summary": self.summary.to_json_dict(),
            "changes": [change.to_json_dict() for change in self.changes],
            "warnings": [notice.to_json_dict() for notice in self.warnings],
            "errors": [notice.to_json_dict() for notice in self.errors],
            "fields_to_create": list(self.fields_to_create),
        }
        # Only when targeted: a plan of everything stays byte for byte what it was.
        if self.targets:
            document["targets"] = list(self.targets)
        return document


def sorted_changes(changes: list[Change]) -> tuple[Change, ...]:
    return tuple(sorted(changes, key=lambda change: change.sort_key))


# --- the prune guard ---------------------------------------------------------------------


def prune_cap_problem(
    delete_count: int,
    owned_live_count: int,
    max_deletes: int,
    max_delete_percent: float,
    *,
    run_max_deletes: int | None = None,
) -> str | None:
    """Why a prune of ``delete_count`` contacts is over its caps, or ``None`` when it is not.

    ``run_max_deletes`` is ``apply --max-deletes N``: an explicit count for this run that
    replaces both configured caps, because the person passing it has seen the number."""
    if delete_count == 0:
        return None
    noun = "contact" if delete_count == 1 else "contacts"
    refusing = f"Refusing to prune {delete_count} {noun}"
    if run_max_deletes is not None:
        if delete_count > run_max_deletes:
            return (
                f"{refusing}: over --max-deletes ({run_max_deletes}). "
                f"Pass --max-deletes {delete_count} to allow them for this run."
            )
        return None
    way_out = f"Raise it in reconciler.yaml or pass --max-deletes {delete_count} for this run."
    if delete_count > max_deletes:
        return f"{refusing}: over prune.max_deletes ({max_deletes}). {way_out}"
    percent = 100.0 * delete_count / owned_live_count if owned_live_count else 100.0
    if percent > max_delete_percent:
        return (
            f"{refusing}: {delete_count} is {percent:.1f}% of {owned_live_count} owned "
            f"contacts, over prune.max_delete_percent ({max_delete_percent:g}%). {way_out}"
        )
    return None


def check_prune_caps(
    plan: Plan,
    owned_live_count: int,
    max_deletes: int,
    max_delete_percent: float,
    *,
    run_max_deletes: int | None = None,
) -> None:
    """Raise ``PruneCapExceededError`` when the plan's deletes are over a cap; apply must then
    write nothing at all."""
    problem = prune_cap_problem(
        len(plan.deletes),
        owned_live_count,
        max_deletes,
        max_delete_percent,
        run_max_deletes=run_max_deletes,
    )
    if problem is not None:
        raise PruneCapExceededError(problem)
