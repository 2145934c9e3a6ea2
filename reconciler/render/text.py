"""The terminal rendering, Terraform-like: ``+`` create, ``~`` update, ``-`` delete, one
line per field with ``before -> after``, and the one-line summary at the end."""

from __future__ import annotations

from reconciler.core.plan import Change, Plan
from reconciler.render import (
    REWRITTEN_NOTE,
    ShownChange,
    action_label,
    change_location,
    format_value,
    no_changes_detail,
    rewritten_labels,
    shown_changes,
    targets_line,
)

_RESET = "\033[0m"
_BOLD = "\033[1m"
_COLORS = {"+": "\033[32m", "~": "\033[33m", "-": "\033[31m"}
_SIGNS = {"create": "+", "update": "~", "delete": "-"}
_WARNING = "\033[33m"
_ERROR = "\033[31m"


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color else text


def _field_line(change: ShownChange, color: bool, *, rewritten: bool = False) -> str:
    if change.before is None:
        sign, shown = "+", f"{change.after or 'null'}"
    elif change.after is None:
        sign, shown = "-", f"{change.before} -> null"
    else:
        sign, shown = "~", f"{change.before} -> {change.after}"
    note = f"  {_paint('# ' + REWRITTEN_NOTE, _WARNING, color)}" if rewritten else ""
    return f"      {_paint(sign, _COLORS[sign], color)} {change.label}: {shown}{note}"


def _change_lines(change: Change, color: bool) -> list[str]:
    sign = _SIGNS[change.action]
    head = f"{action_label(change)} {change.phone}"
    lines = [
        f"  {_paint(sign, _COLORS[sign], color)} {_paint(head, _BOLD, color)}"
        f"  ({change_location(change)})"
    ]
    rewritten = rewritten_labels(change)
    lines.extend(
        _field_line(shown, color, rewritten=shown.label in rewritten)
        for shown in shown_changes(change)
    )
    return lines


def render_text(plan: Plan, *, color: bool = False) -> str:
    """The changes and the summary (for stdout); notices go through ``render_text_notices``."""
    summary = plan.summary
    lines: list[str] = [] if plan.live_read is None else [str(plan.live_read), ""]
    header = targets_line(plan)
    if header is not None:
        lines += [_paint(header, _BOLD, color), ""]
    if not plan.has_changes:
        lines.append(f"{_paint('No changes.', _BOLD, color)} {no_changes_detail(plan)}")
    else:
        lines.append("reconciler will perform these actions:")
        lines.append("")
        for change in plan.changes:
            lines.extend(_change_lines(change, color))
            lines.append("")
        if plan.fields_to_create:
            titles = ", ".join(format_value(title) for title in plan.fields_to_create)
            lines.append(f"Custom fields to create first: {titles}")
            lines.append("")
        lines.append(_paint(str(summary), _BOLD, color))
    if plan.prune_candidates:
        lines.append(
            f"{plan.prune_candidates} owned contacts are no longer declared; "
            "`plan --prune` shows them as deletes."
        )
    return "\n".join(lines) + "\n"


def render_text_notices(plan: Plan, *, color: bool = False) -> str:
    """Warnings and errors, one a line, for stderr (so stdout stays clean for piping)."""
    lines = [f"{_paint('Warning:', _WARNING, color)} {notice}" for notice in plan.warnings]
    lines += [f"{_paint('Error:', _ERROR, color)} {notice}" for notice in plan.errors]
    return "".join(f"{line}\n" for line in lines)
