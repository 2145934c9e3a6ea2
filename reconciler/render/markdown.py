"""The pull-request rendering: a summary table, then one collapsible section per action.

GitHub refuses comments of 65,536 characters or more, so the document is built against a
budget: rows are added until it is spent, then the rest is summarised as counts per action
and per field, and the document says how many rows it left out."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence

from reconciler.core.plan import Change, Notice, Plan
from reconciler.render import (
    REWRITTEN_NOTE,
    action_label,
    change_location,
    no_changes_detail,
    rewritten_labels,
    shown_changes,
    targets_line,
)

GITHUB_COMMENT_LIMIT = 65_536
# Room kept below the limit for the sections whose size is only known at the end.
BUDGET = 60_000
NOTICES_BUDGET = 8_000
FIELDS_TO_CREATE_BUDGET = 2_000
MAX_VALUE_CHARS = 120
MAX_FIELD_SUMMARY_ROWS = 40
_SECTION_TITLES = {"create": "Create", "update": "Update", "delete": "Delete"}
_MARKDOWN_SPECIALS = str.maketrans({c: f"\\{c}" for c in "\\`*_[]|~#"})


def _md(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """Untrusted text made inert inside a table cell: no HTML, no markup, no pipes, short."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=False).translate(_MARKDOWN_SPECIALS)


def _row(change: Change) -> str:
    details = []
    rewritten = rewritten_labels(change)
    for label, before, after in shown_changes(change):
        if before is None:
            shown = f"+ {_md(after or 'null')}"
        elif after is None:
            shown = f"- {_md(before)}"
        else:
            shown = f"{_md(before)} → {_md(after)}"
        note = f" ⚠ {_md(REWRITTEN_NOTE)}" if label in rewritten else ""
        details.append(f"{_md(label)}: {shown}{note}")
    action = action_label(change)
    kind = f" ({action})" if action != change.action else ""
    return (
        f"| {_md(change.phone)}{kind} | {_md(change_location(change))} | {'<br>'.join(details)} |\n"
    )


def _notice_list(title: str, notices: Sequence[Notice]) -> str:
    if not notices:
        return ""
    lines = [f"#### {title} ({len(notices)})\n\n"]
    used = len(lines[0])
    for shown, notice in enumerate(notices):
        line = f"- {_md(str(notice), limit=600)}\n"
        if used + len(line) > NOTICES_BUDGET:
            lines.append(f"- … and {len(notices) - shown} more\n")
            break
        lines.append(line)
        used += len(line)
    return "".join(lines) + "\n"


def _fields_to_create(titles: Sequence[str]) -> str:
    if not titles:
        return ""
    shown: list[str] = []
    used = 0
    for index, title in enumerate(titles):
        item = f"`{_md(title, limit=80)}`"
        if used + len(item) > FIELDS_TO_CREATE_BUDGET:
            shown.append(f"and {len(titles) - index} more")
            break
        shown.append(item)
        used += len(item) + 2
    return f"Custom fields to create first: {', '.join(shown)}.\n\n"


def _summary_table(plan: Plan) -> str:
    summary = plan.summary
    adopted = sum(1 for change in plan.changes if action_label(change) == "adopt")
    update = f"{summary.update} ({adopted} adopted)" if adopted else str(summary.update)
    return (
        "| create | update | delete | unchanged |\n"
        "|---:|---:|---:|---:|\n"
        f"| {summary.create} | {update} | {summary.delete} | {summary.unchanged} |\n\n"
    )


def _field_summary(changes: Sequence[Change]) -> str:
    counts: Counter[tuple[str, str]] = Counter()
    for change in changes:
        for label, _, _ in shown_changes(change):
            counts[(change.action, label)] += 1
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    lines = [
        "#### Changed fields, all changes\n\n",
        "| action | field | contacts |\n|---|---|---:|\n",
    ]
    for (action, label), count in rows[:MAX_FIELD_SUMMARY_ROWS]:
        lines.append(f"| {action} | {_md(label, limit=80)} | {count} |\n")
    if len(rows) > MAX_FIELD_SUMMARY_ROWS:
        lines.append(f"\n… and {len(rows) - MAX_FIELD_SUMMARY_ROWS} more fields.\n")
    return "".join(lines) + "\n"


def render_markdown(plan: Plan) -> str:
    summary = plan.summary
    head = "### reconciler plan\n\n"
    header = targets_line(plan)
    if header is not None:
        head += f"**{_md(header, limit=NOTICES_BUDGET)}**\n\n"
    if not plan.has_changes:
        head += f"**No changes.** {no_changes_detail(plan)}\n\n"
    else:
        head += f"**{summary}**\n\n" + _summary_table(plan)
    if plan.live_read is not None:
        head += f"{plan.live_read}\n\n"
    head += _fields_to_create(plan.fields_to_create)
    head += _notice_list("Errors", plan.errors)
    head += _notice_list("Warnings", plan.warnings)
    if plan.prune_candidates:
        head += (
            f"{plan.prune_candidates} owned contacts are no longer declared; "
            "`reconciler plan --prune` shows them as deletes.\n\n"
        )

    # The tail is only needed when rows are left out; reserve its worst-case size up front.
    tail_reserve = len(_field_summary(plan.changes)) + 400
    room = BUDGET - len(head) - tail_reserve
    groups = [
        (title, [change for change in plan.changes if change.action == action])
        for action, title in _SECTION_TITLES.items()
    ]
    groups = [(title, group) for title, group in groups if group]
    sections: list[str] = []
    left_out = 0
    for position, (title, group) in enumerate(groups):
        # Each action gets a fair share of what is left, so a flood of creates cannot hide
        # every delete; a share one section does not use passes on to the next.
        share = room // (len(groups) - position) - 200
        rows: list[str] = []
        used = 0
        for change in group:
            row = _row(change)
            if used + len(row) > share:
                break
            rows.append(row)
            used += len(row)
        left_out += len(group) - len(rows)
        if not rows:
            section = f"**{title}**: {len(group)} contacts, none listed.\n\n"
        else:
            listed = str(len(group)) if len(rows) == len(group) else f"{len(rows)} of {len(group)}"
            section = (
                f"<details><summary>{title} ({listed})</summary>\n\n"
                "| phone | source | changes |\n|---|---|---|\n" + "".join(rows) + "\n</details>\n\n"
            )
        room -= len(section)
        sections.append(section)

    document = head + "".join(sections)
    if left_out:
        document += _field_summary(plan.changes)
        document += (
            f"_{left_out} of {len(plan.changes)} changes are not listed, to keep this comment "
            f"under GitHub's {GITHUB_COMMENT_LIMIT:,}-character limit. Run `reconciler plan` "
            "or `reconciler plan --format json` for every change._\n"
        )
    return document
