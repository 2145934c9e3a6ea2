"""Targeted plans (``plan --target T``, ``apply --target T``): a plan cut down to the
changes of some contacts, so one urgent contact can be fixed while a big change waits.

A target names contacts by phone, or by the files that declare them. A create or an update
is kept when its phone is a phone target or its source file is a targeted file; a delete
only when its phone is a phone target: a file, a directory or a glob never selects a delete
(an undeclared contact has no file, and a delete is permanent). Notices about one contact
follow the same rule; notices about the plan as a whole stay, except the prune-cap warning,
which is worked out again for the deletes that remain. Pure: reading targets from what a
person typed is ``reconciler.desired.targets``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.core.diff import DiffSettings
from reconciler.core.plan import (
    PRUNE_CAP_WARNING,
    Change,
    Create,
    Delete,
    Notice,
    Plan,
    Update,
    prune_cap_problem,
)


@dataclass(frozen=True, slots=True)
class Targets:
    """What a run is cut down to. ``shown`` is each target as plans show and save it (a
    canonical phone, or a path as written); ``phones`` the canonical phones named;
    ``files`` the contacts files selected, as declared contacts' sources name them."""

    shown: tuple[str, ...]
    phones: frozenset[str] = frozenset()
    files: frozenset[str] = frozenset()

    def selects(self, change: Change) -> bool:
        if change.phone in self.phones:
            return True
        # A delete is never selected by a file: only a phone named explicitly.
        return isinstance(change, Create | Update) and change.source.path in self.files

    def selects_notice(self, notice: Notice) -> bool:
        if notice.phone is None and notice.source is None:
            return not notice.message.startswith(PRUNE_CAP_WARNING)
        if notice.phone is not None and notice.phone in self.phones:
            return True
        return notice.source is not None and notice.source.path in self.files


def known_targets(targets: Targets, known_phones: frozenset[str] | set[str]) -> Targets:
    """``targets`` without the phones ``known_phones`` lacks (neither declared nor live in
    an account of several: those phones select nothing there)."""
    unknown = targets.phones - known_phones
    return Targets(
        tuple(label for label in targets.shown if label not in unknown),
        targets.phones - unknown,
        targets.files,
    )


def _needed_fields(titles: Iterable[str], changes: Iterable[Change]) -> tuple[str, ...]:
    used = {
        title
        for change in changes
        if isinstance(change, Create | Update)
        for title in change.custom
    }
    return tuple(title for title in titles if title in used)


def targeted_plan(
    plan: Plan, targets: Targets, settings: DiffSettings, *, prune_candidates: int = 0
) -> Plan:
    """``plan`` with only the changes and notices ``targets`` selects, its prune-cap
    warning worked out for the deletes that remain (the caps apply to a targeted plan as to
    any), and the targets recorded for the header, the JSON and the saved plan.
    ``prune_candidates``: the targeted deletes ``--prune`` would add to a plan without it."""
    changes = tuple(change for change in plan.changes if targets.selects(change))
    warnings = [notice for notice in plan.warnings if targets.selects_notice(notice)]
    deletes = sum(1 for change in changes if isinstance(change, Delete))
    if plan.prune:
        problem = prune_cap_problem(
            deletes,
            plan.owned_live_count,
            settings.max_deletes,
            settings.max_delete_percent,
            run_max_deletes=settings.run_max_deletes,
        )
        if problem is not None:
            warnings.append(Notice(f"{PRUNE_CAP_WARNING}{problem}"))
    return dataclasses.replace(
        plan,
        changes=changes,
        fields_to_create=_needed_fields(plan.fields_to_create, changes),
        warnings=tuple(warnings),
        errors=tuple(notice for notice in plan.errors if targets.selects_notice(notice)),
        prune_candidates=0 if plan.prune else prune_candidates,
        targets=targets.shown,
    )
