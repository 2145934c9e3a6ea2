"""The plans of several accounts as one document: a section per account in text and
markdown (the markdown sized, as a whole, for one pull-request comment), and in JSON the
plan's own fields with the totals in ``summary`` and ``"account"`` on every change."""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.core.accounts import AccountPlan, accounts_json_dict, total_summary
from reconciler.core.masking import mask_plan
from reconciler.render import FORMATS, Rendered, RenderOptions
from reconciler.render.markdown import BUDGET, GITHUB_COMMENT_LIMIT, render_markdown
from reconciler.render.text import render_text, render_text_notices


def _accounts(plans: Sequence[AccountPlan]) -> str:
    return f"{len(plans)} account{'' if len(plans) == 1 else 's'}"


def account_heading(name: str) -> str:
    """The line that opens an account's section in terminal output."""
    return f'=== account "{name}" ==='


def render_account_plans(
    plans: Sequence[AccountPlan], output_format: str, options: RenderOptions
) -> Rendered:
    shown = [(name, mask_plan(plan) if options.mask_pii else plan) for name, plan in plans]
    if output_format == "text":
        return _text(shown, color=options.color)
    if output_format == "markdown":
        return Rendered(_markdown(shown))
    if output_format == "json":
        document = accounts_json_dict(shown)
        for entry, (_, plan) in zip(document["accounts"], shown, strict=True):
            if plan.live_read is not None:
                # As for one account: beside the plan, not in what a saved plan proves.
                entry["live"] = plan.live_read.to_json_dict()
        return Rendered(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    raise ValueError(f"unknown plan format {output_format!r}; expected one of {FORMATS}")


def _text(plans: Sequence[AccountPlan], *, color: bool) -> Rendered:
    stdout: list[str] = []
    stderr: list[str] = []
    for name, plan in plans:
        stdout.append(f"{account_heading(name)}\n{render_text(plan, color=color)}\n")
        notices = render_text_notices(plan, color=color)
        stderr += [f"[{name}] {line}\n" for line in notices.splitlines()]
    stdout.append(f"{_accounts(plans)}: {total_summary(plans)}\n")
    return Rendered("".join(stdout), "".join(stderr))


def _markdown(plans: Sequence[AccountPlan]) -> str:
    # Each account gets an equal share of the comment's budget, so one large account cannot
    # push the others out of the comment.
    share = (BUDGET - 400) // max(len(plans), 1)
    head = f"### reconciler plan\n\n**{_accounts(plans)}: {total_summary(plans)}**\n\n"
    sections = [
        render_markdown(plan, title=f"#### Account `{name}`", budget=share) for name, plan in plans
    ]
    document = head + "".join(sections)
    if len(document) < GITHUB_COMMENT_LIMIT:
        return document
    # So many accounts that even their shortened sections do not fit: one line each.
    lines = [f"- `{name}`: {plan.summary}\n" for name, plan in plans]
    return (
        head + "".join(lines) + "\n_Too many accounts to list their changes within GitHub's "
        f"{GITHUB_COMMENT_LIMIT:,}-character limit. Run `reconciler plan --account NAME` for "
        "each._\n"
    )
