"""Saved plans as values, and the proof that one is the plan apply derives today.

A saved plan is a claim, never an instruction. ``apply FILE`` derives the plan again from
today's desired state and live account and applies it only when the saved changes are
exactly the derived ones (actions, phones, contact ids, ``rev``/``updated``, every field's
before and after, the deletes); the derived plan is what gets executed, so nothing in the
file (an added delete, a raised count, a live record) is ever trusted. Beside the plan the
file records its provenance (desired-state digest, git commit, API URL, owner, tool
version), so a refusal can say what changed since.

Pure: reading and writing the file is ``reconciler.files.saved_plans``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler import __version__
from reconciler.core.accounts import accounts_json_dict
from reconciler.core.errors import SavedPlanError
from reconciler.core.masking import mask_phone
from reconciler.core.model import DesiredContact
from reconciler.core.plan import ACTION_ORDER, FORMAT_VERSION, Plan

# 3: a targeted plan, with the targets it is derived again with. A plan of everything is
# still written as format 2, which every version since reads.
SAVED_PLAN_FORMAT = 3
UNTARGETED_FORMAT = 2
_KIND = "reconciler saved plan"
# Where a change was declared is shown to the reviewer but changes nothing in the account:
# reformatting the files (``fmt``) must not make a reviewed plan unusable.
_NOT_COMPARED = frozenset({"source", "rewritten_by_account"})


@dataclass(frozen=True, slots=True)
class Provenance:
    """What a plan was made from."""

    desired_digest: str
    git_commit: str | None
    api_url: str
    marker_field: str
    owner: str
    tool_version: str = __version__
    # With several accounts configured: the account the plan is for.
    account: str | None = None

    def to_json_dict(self) -> dict[str, str | None]:
        document = {
            "desired_digest": self.desired_digest,
            "git_commit": self.git_commit,
            "api_url": self.api_url,
            "marker_field": self.marker_field,
            "owner": self.owner,
            "tool_version": self.tool_version,
        }
        if self.account is not None:
            # Only then, so a single account's saved plan is what it always was.
            document["account"] = self.account
        return document

    @property
    def target(self) -> tuple[str | None, str, str, str]:
        """What a plan must be applied to: its account, API URL and owner."""
        return (self.account, self.api_url, self.marker_field, self.owner)


@dataclass(frozen=True, slots=True)
class SavedPlan:
    """A saved plan as read back: its changes as the file states them (JSON objects, kept
    only to be compared), whether it was made with ``--prune``, and its provenance."""

    changes: tuple[Mapping[str, Any], ...]
    prune: bool
    provenance: Provenance
    created_at: str
    # ``--target`` as the plan was made with (empty: everything); apply derives the plan
    # again with these same targets.
    targets: tuple[str, ...] = ()


def desired_state_digest(contacts: Sequence[DesiredContact]) -> str:
    """A digest of what is declared, independent of file layout, comments, order and line
    numbers: reformatting the files (``fmt``) does not change it, changing a value does."""
    canonical = sorted(
        [
            contact.phone,
            sorted(contact.fields.items()),
            sorted(contact.custom.items()),
            # Only when managed, so the digest of a state without tags is what it was.
            *([] if contact.tags is None else [sorted(set(contact.tags))]),
        ]
        for contact in contacts
    )
    encoded = json.dumps(canonical, ensure_ascii=False, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def saved_plan_document(plan: Plan, provenance: Provenance, *, created_at: str) -> dict[str, Any]:
    # The plan's own fields stay at the top level, so a saved plan file is also a JSON plan
    # (the same fields as `plan --format json`); its provenance is added beside them.
    return {
        **plan.to_json_dict(),
        "kind": _KIND,
        "saved_plan_format": SAVED_PLAN_FORMAT if plan.targets else UNTARGETED_FORMAT,
        "created_at": created_at,
        "prune": plan.prune,
        **provenance.to_json_dict(),
    }


def saved_plans_document(
    plans: Sequence[tuple[str, Plan, Provenance]], *, created_at: str
) -> dict[str, Any]:
    """One file for the plans of several accounts: the JSON plan of them all at the top level
    (what a reviewer reads), and each account's saved plan, with its own provenance, under
    ``account_plans`` (what apply proves, account by account)."""
    return {
        **accounts_json_dict([(name, plan) for name, plan, _ in plans]),
        "kind": _KIND,
        # Targeted when any account's plan is; each account's plan records its own targets.
        "saved_plan_format": (
            SAVED_PLAN_FORMAT if any(plan.targets for _, plan, _ in plans) else UNTARGETED_FORMAT
        ),
        "created_at": created_at,
        "prune": any(plan.prune for _, plan, _ in plans),
        "account_plans": {
            name: saved_plan_document(plan, provenance, created_at=created_at)
            for name, plan, provenance in plans
        },
    }


def parse_saved_plans(document: Any, *, origin: str) -> dict[str | None, SavedPlan]:
    """The saved plan of each account a file holds, by account (``None``: the one account
    of a repository without ``accounts:``)."""
    if not isinstance(document, dict) or "account_plans" not in document:
        single = parse_saved_plan(document, origin=origin)
        return {single.provenance.account: single}
    _check_envelope(document, origin=origin)
    plans = document["account_plans"]
    if not isinstance(plans, dict) or not plans:
        raise SavedPlanError(
            f"{origin} is damaged ('account_plans' is not a mapping of plans). "
            f"Run `reconciler plan --out {origin}` again."
        )
    saved: dict[str | None, SavedPlan] = {}
    for name, plan_document in plans.items():
        plan = parse_saved_plan(plan_document, origin=origin)
        if plan.provenance.account != name:
            raise SavedPlanError(
                f"{origin} is damaged (the plan under {name!r} names another account). "
                f"Run `reconciler plan --out {origin}` again."
            )
        saved[name] = plan
    return saved


def _comparable(change: Mapping[str, Any]) -> str:
    return json.dumps(
        {key: value for key, value in change.items() if key not in _NOT_COMPARED},
        sort_keys=True,
        ensure_ascii=True,
    )


def _key(change: Mapping[str, Any]) -> tuple[int, str, str]:
    action, phone = change.get("action"), change.get("phone")
    order = ACTION_ORDER.get(action, len(ACTION_ORDER)) if isinstance(action, str) else 9
    return order, str(action), ascii(phone)[1:-1] if isinstance(phone, str) else "?"


def plan_differences(saved: SavedPlan, derived: Plan, *, mask: bool = False) -> list[str]:
    """How the saved changes differ from the derived plan's, one line each (empty: equal);
    with ``mask``, phones are shown masked."""

    def _described(change: Mapping[str, Any]) -> str:
        _, action, phone = _key(change)
        return f"{action} {mask_phone(phone) if mask else phone}"

    derived_changes = [change.to_json_dict() for change in derived.changes]
    saved_by_key: dict[tuple[int, str, str], list[Mapping[str, Any]]] = {}
    for change in saved.changes:
        saved_by_key.setdefault(_key(change), []).append(change)
    derived_by_key: dict[tuple[int, str, str], list[Mapping[str, Any]]] = {}
    for change in derived_changes:
        derived_by_key.setdefault(_key(change), []).append(change)
    differences: list[str] = []
    for key in sorted(saved_by_key.keys() | derived_by_key.keys()):
        was, now = saved_by_key.get(key, []), derived_by_key.get(key, [])
        if len(was) == len(now) == 1:
            if _comparable(was[0]) != _comparable(now[0]):
                differing = sorted(
                    name
                    for name in (was[0].keys() | now[0].keys()) - _NOT_COMPARED
                    if _comparable({name: was[0].get(name)})
                    != _comparable({name: now[0].get(name)})
                )
                differences.append(f"{_described(now[0])}: {', '.join(differing)} differ")
        elif not now:
            differences.extend(f"{_described(c)}: in the saved plan only" for c in was)
        elif not was:
            differences.extend(f"{_described(c)}: in today's plan only" for c in now)
        else:
            differences.append(f"{_described(now[0])}: planned more than once")
    return differences


def provenance_differences(saved: Provenance, current: Provenance) -> list[str]:
    """What the plan was made from that is no longer so, in words."""
    names = {
        "desired_digest": "the desired state",
        "git_commit": "the git commit",
        "api_url": "the API URL",
        "marker_field": "ownership.marker_field",
        "owner": "ownership.owner",
        "tool_version": "the reconciler version",
        "account": "the account",
    }
    was, now = saved.to_json_dict(), current.to_json_dict()
    shown = {"git_commit", "tool_version", "marker_field", "owner", "account"}
    differences: list[str] = []
    for key, name in names.items():
        if was.get(key) == now.get(key):
            continue
        if key in shown:
            then, today = was.get(key) or "none", now.get(key) or "none"
            differences.append(f"{name} ({then} then, {today} now)")
        else:
            differences.append(name)
    return differences


class _Invalid(Exception):
    """A saved-plan document that does not have the expected shape (becomes SavedPlanError)."""


def _get(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    # bool is an int subclass; and a JSON null is never a value of these fields' types.
    if (
        value is None
        or isinstance(value, bool) is not (kind is bool)
        or not isinstance(value, kind)
    ):
        raise _Invalid(f"{key!r} is missing or has the wrong type")
    return value


def _targets(document: Mapping[str, Any], *, targeted: bool) -> tuple[str, ...]:
    """The targets of a targeted plan (a non-empty list of text); none in any other."""
    if not targeted:
        if "targets" in document:
            raise _Invalid("'targets' in a plan that is not targeted")
        return ()
    targets = _get(document, "targets", list)
    if not targets or not all(isinstance(target, str) and target for target in targets):
        raise _Invalid("'targets' is not a list of targets")
    return tuple(targets)


def _check_envelope(document: Any, *, origin: str) -> None:
    """Raise ``SavedPlanError`` unless ``document`` is a saved plan of a format this version
    reads (its kind, saved-plan format and plan format)."""
    again = f"Run `reconciler plan --out {origin}` again."
    if not isinstance(document, dict) or document.get("kind") != _KIND:
        printed = isinstance(document, dict) and "kind" not in document
        if printed and "format_version" in document and "changes" in document:
            # `plan --format json > FILE` looks like a saved plan but records nothing of what
            # it was made from.
            raise SavedPlanError(
                f"{origin} is the output of `reconciler plan --format json`, which cannot be "
                f"applied; save a plan with `reconciler plan --out {origin}` instead"
            )
        raise SavedPlanError(f"{origin} is not a reconciler saved plan. {again}")
    version = document.get("saved_plan_format")
    if isinstance(version, int) and not isinstance(version, bool) and version > SAVED_PLAN_FORMAT:
        raise SavedPlanError(
            f"{origin} was saved by a newer reconciler (saved-plan format {version}, this "
            f"version {__version__} reads format {SAVED_PLAN_FORMAT}). Upgrade reconciler, "
            "or make the plan again with this version."
        )
    if isinstance(version, int) and not isinstance(version, bool) and version < UNTARGETED_FORMAT:
        raise SavedPlanError(
            f"{origin} was saved by an older reconciler (saved-plan format {version}), which "
            f"this version cannot prove against the account. {again}"
        )
    problem = None
    if version not in (UNTARGETED_FORMAT, SAVED_PLAN_FORMAT):
        problem = f"unknown saved-plan format {version!r}"
    elif document.get("format_version") != FORMAT_VERSION:
        problem = f"unknown plan format {document.get('format_version')!r}"
    if problem is not None:
        raise SavedPlanError(f"{origin} is damaged ({problem}). {again}")


def parse_saved_plan(document: Any, *, origin: str) -> SavedPlan:
    """A saved plan from its decoded JSON; ``origin`` names the file in error messages."""
    again = f"Run `reconciler plan --out {origin}` again."
    _check_envelope(document, origin=origin)
    try:
        targeted = document.get("saved_plan_format") == SAVED_PLAN_FORMAT
        targets = _targets(document, targeted=targeted)
        changes = _get(document, "changes", list)
        if not all(isinstance(change, dict) for change in changes):
            raise _Invalid("'changes' holds something other than objects")
        git_commit = document.get("git_commit")
        if git_commit is not None and not isinstance(git_commit, str):
            raise _Invalid("'git_commit' has the wrong type")
        account = document.get("account")
        if account is not None and not isinstance(account, str):
            raise _Invalid("'account' has the wrong type")
        return SavedPlan(
            changes=tuple(changes),
            prune=_get(document, "prune", bool),
            provenance=Provenance(
                desired_digest=_get(document, "desired_digest", str),
                git_commit=git_commit,
                api_url=_get(document, "api_url", str),
                marker_field=_get(document, "marker_field", str),
                owner=_get(document, "owner", str),
                tool_version=_get(document, "tool_version", str),
                account=account,
            ),
            created_at=_get(document, "created_at", str),
            targets=targets,
        )
    except _Invalid as problem:
        raise SavedPlanError(f"{origin} is damaged ({problem}). {again}") from None
