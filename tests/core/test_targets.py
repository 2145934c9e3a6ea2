"""A targeted plan: a subset of the plan of everything, where only a phone named as a target
ever selects a delete, and the prune-cap warning is worked out for what remains."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.diff import diff
from reconciler.core.model import SourceLocation
from reconciler.core.plan import Delete
from reconciler.core.targets import Targets, targeted_plan
from tests.builders import FIELDS, SETTINGS
from tests.builders import declared as desired
from tests.builders import live as live_contact

PHONES = [f"1510555{number:04d}" for number in range(8)]
FILES = ["contacts/a.yaml", "contacts/b.yaml"]


@settings(max_examples=200, deadline=None, database=None)
@given(
    declared=st.dictionaries(st.sampled_from(PHONES), st.sampled_from(FILES), max_size=6),
    live=st.sets(st.sampled_from(PHONES), max_size=6),
    phones=st.sets(st.sampled_from(PHONES), max_size=3),
    files=st.sets(st.sampled_from(FILES), max_size=2),
    prune=st.booleans(),
)
def test_a_targeted_plan_is_the_selected_part_of_the_plan_of_everything(
    declared: dict[str, str],
    live: set[str],
    phones: set[str],
    files: set[str],
    prune: bool,
) -> None:
    contacts = [
        dataclasses.replace(desired(phone, first="New"), source=SourceLocation(path, index + 1))
        for index, (phone, path) in enumerate(sorted(declared.items()))
    ]
    existing = [live_contact(phone, number) for number, phone in enumerate(sorted(live), 1)]
    everything = diff(contacts, existing, FIELDS, SETTINGS, prune=prune)
    targets = Targets(("t",), frozenset(phones), frozenset(files))

    plan = targeted_plan(everything, targets, SETTINGS)

    assert all(change in everything.changes for change in plan.changes)
    assert plan.targets == ("t",)
    for change in everything.changes:
        if isinstance(change, Delete):
            assert change.phone not in declared
            assert (change in plan.changes) is (change.phone in phones)
        else:
            selected = change.phone in phones or declared[change.phone] in files
            assert (change in plan.changes) is selected
    cap_warned = any("will refuse" in notice.message for notice in plan.warnings)
    deletes = len(plan.deletes)
    assert cap_warned is (prune and deletes > 0 and 100 * deletes / everything.owned_live_count > 5)


def test_an_untargeted_plan_json_has_no_targets_key() -> None:
    plan = diff([desired(PHONES[0])], [], FIELDS, SETTINGS, prune=False)
    assert "targets" not in plan.to_json_dict()
    targeted = targeted_plan(plan, Targets((PHONES[0],), frozenset({PHONES[0]})), SETTINGS)
    assert targeted.to_json_dict()["targets"] == [PHONES[0]]
