"""The plans of several accounts in one repository, as one value: each account's plan by
its name, their totals, and the JSON plan of them all (the plan's own fields, with the
totals in ``summary`` and ``"account"`` on every change, warning and error)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.core.plan import FORMAT_VERSION, Plan, Summary

# One account's plan, by the account's name (several accounts in one repository).
AccountPlan = tuple[str, Plan]


def total_summary(plans: Sequence[AccountPlan]) -> Summary:
    summaries = [plan.summary for _, plan in plans]
    return Summary(
        create=sum(summary.create for summary in summaries),
        update=sum(summary.update for summary in summaries),
        delete=sum(summary.delete for summary in summaries),
        unchanged=sum(summary.unchanged for summary in summaries),
    )


def _with_account(name: str, document: dict[str, Any]) -> dict[str, Any]:
    return {"account": name, **document}


def accounts_json_dict(plans: Sequence[AccountPlan]) -> dict[str, Any]:
    """The JSON plan of several accounts: the plan's fields, with the totals in ``summary``
    and ``"account"`` on every change, warning and error; ``accounts`` lists each one's."""
    fields_to_create: dict[str, None] = {}
    targets: dict[str, None] = {}
    for _, plan in plans:
        fields_to_create.update(dict.fromkeys(plan.fields_to_create))
        targets.update(dict.fromkeys(plan.targets))
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "summary": total_summary(plans).to_json_dict(),
        "changes": [
            _with_account(name, change.to_json_dict())
            for name, plan in plans
            for change in plan.changes
        ],
        "warnings": [
            _with_account(name, notice.to_json_dict())
            for name, plan in plans
            for notice in plan.warnings
        ],
        "errors": [
            _with_account(name, notice.to_json_dict())
            for name, plan in plans
            for notice in plan.errors
        ],
        "fields_to_create": list(fields_to_create),
        "accounts": [
            {
                "name": name,
                "summary": plan.summary.to_json_dict(),
                "fields_to_create": list(plan.fields_to_create),
            }
            for name, plan in plans
        ],
    }
    if targets:
        # As in one account's plan: only when targeted.
        document["targets"] = list(targets)
    return document
