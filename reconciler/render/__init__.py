"""Renderers of a plan: ``text`` for terminals, ``markdown`` for pull-request comments,
``json`` for scripts. Each is a pure function from a ``Plan`` to text."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

# Not ``import json``: importing the ``render.json`` submodule rebinds that package name.
from json import dumps
from typing import NamedTuple

from reconciler.core.masking import mask_plan
from reconciler.core.plan import Change, Create, Delete, FieldChange, FieldValue, Plan, Update

FORMATS: tuple[str, ...] = ("text", "markdown", "json")


@dataclass(frozen=True, slots=True)
class RenderOptions:
    mask_pii: bool = False
    # Colour applies to the text format only, and only when the CLI decided the output is a
    # terminal without NO_COLOR / --no-color.
    color: bool = False


@dataclass(frozen=True, slots=True)
class Rendered:
    """What goes to stdout and what goes to stderr. The text format sends warnings and
    errors to stderr; markdown and json carry them inside the document."""

    stdout: str
    stderr: str = ""


def render_plan(plan: Plan, output_format: str, options: RenderOptions) -> Rendered:
    # Imported here: the format modules import the helpers below from this package.
    from reconciler.render.json import render_json
    from reconciler.render.markdown import render_markdown
    from reconciler.render.text import render_text, render_text_notices

    shown = mask_plan(plan) if options.mask_pii else plan
    if output_format == "text":
        return Rendered(
            render_text(shown, color=options.color),
            render_text_notices(shown, color=options.color),
        )
    if output_format == "markdown":
        return Rendered(render_markdown(shown))
    if output_format == "json":
        return Rendered(render_json(shown))
    raise ValueError(f"unknown plan format {output_format!r}; expected one of {FORMATS}")


def format_value(value: FieldValue) -> str:
    """A value as JSON: strings quoted, control characters escaped (live data is untrusted
    and must not smuggle terminal escapes into the output)."""
    return dumps(value, ensure_ascii=False)


def no_changes_detail(plan: Plan) -> str:
    """What follows "No changes." — it must not claim the account matches when errors left
    contacts untouched, nor when only some contacts were looked at."""
    if plan.errors:
        return f"{len(plan.errors)} declared contacts were left untouched: see the errors."
    if plan.targets:
        return "The targeted contacts match the desired state."
    return "The live account matches the desired state."


def targets_line(plan: Plan) -> str | None:
    """The header of a targeted plan, or ``None`` for a plan of everything."""
    if not plan.targets:
        return None
    shown = ", ".join(format_value(target) for target in plan.targets)
    return (
        f"Targeted plan: only the changes for {shown}; other changes wait for a plan "
        "without --target."
    )


def action_label(change: Change) -> str:
    if isinstance(change, Update) and change.adopt:
        return "adopt"
    return change.action


def field_changes(change: Change) -> Iterator[tuple[str, FieldChange]]:
    """Standard fields, then custom fields labelled ``custom["Title"]``."""
    yield from change.fields.items()
    yield from custom_labels(change.custom)


class ShownChange(NamedTuple):
    """One line of a change as the renderers show it: values written as JSON, ``None`` where
    there is none (nothing before, cleared after)."""

    label: str
    before: str | None
    after: str | None


def _shown(value: FieldValue) -> str | None:
    return None if value is None else format_value(value)


def _shown_tags(tags: tuple[str, ...]) -> str | None:
    return dumps(list(tags), ensure_ascii=False) if tags else None


def shown_changes(change: Change) -> Iterator[ShownChange]:
    """``field_changes`` as text, then the tags when the change sets them or deletes them
    with the contact."""
    for label, field_change in field_changes(change):
        yield ShownChange(label, _shown(field_change.before), _shown(field_change.after))
    if isinstance(change, Create | Update) and change.tags is not None:
        yield ShownChange("tags", _shown_tags(change.tags.before), _shown_tags(change.tags.after))
    elif isinstance(change, Delete) and change.live.tags:
        # What goes away with the contact (the backup keeps them for restore).
        yield ShownChange("tags", _shown_tags(change.live.tags), None)


def custom_labels(custom: Mapping[str, FieldChange]) -> Iterator[tuple[str, FieldChange]]:
    for title, field_change in custom.items():
        yield f"custom[{format_value(title)}]", field_change


# Beside a value the account stored otherwise the last time it was sent (core.rewrites).
REWRITTEN_NOTE = "the account rewrote this value last time: declare what it stored"


def rewritten_labels(change: Change) -> frozenset[str]:
    """The labels of the fields ``change`` sends as the account rewrote them before."""
    return frozenset(change.rewritten) if isinstance(change, Create | Update) else frozenset()


def change_location(change: Change) -> str:
    """Where a reviewer finds the change: the file and line, or the live contact id."""
    if isinstance(change, Delete):
        return f"contact {change.contact_id}"
    return str(change.source)
