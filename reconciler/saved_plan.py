"""Saved plans (``plan --out FILE``): the JSON plan plus what ``apply`` needs to prove it is
still the plan for today's account and today's desired state.

The file holds, beside the plan: for every contact the plan touches its id, ``rev`` and
``updated`` (a create records that the phone was absent), a digest of the desired state, the
full live record of each contact to delete (for the backup), the tool version, the creation
time and the git commit when made in a repository. Never a credential: nothing here reads
the environment.

File I/O and the one ``git`` call live in ``write_saved_plan``/``read_saved_plan``/
``current_git_commit``; everything else is pure.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.atomic_files import write_atomically
from reconciler.errors import SavedPlanError, StalePlanError
from reconciler.model import DesiredContact, LiveContact, SourceLocation
from reconciler.plan import (
    FORMAT_VERSION,
    Change,
    Create,
    Delete,
    FieldChange,
    FieldValue,
    Marker,
    Notice,
    Plan,
    TagsChange,
    Update,
)
from reconciler.untrusted_json import UnreadableJson, decode_json

SAVED_PLAN_FORMAT = 1
_KIND = "reconciler saved plan"


@dataclass(frozen=True, slots=True)
class Freshness:
    """What a touched contact looked like when the plan was made. ``contact_id`` is ``None``
    for a create: the phone did not exist live then, and must not exist when applying."""

    phone: str
    contact_id: str | None
    rev: int | None
    updated: str | None


@dataclass(frozen=True, slots=True)
class SavedPlan:
    plan: Plan
    freshness: tuple[Freshness, ...]
    desired_digest: str
    tool_version: str
    created_at: str
    git_commit: str | None


# --- pure parts --------------------------------------------------------------------------


def desired_state_digest(contacts: Sequence[DesiredContact]) -> str:
    """A digest of what is declared, independent of file layout, comments, order and line
    numbers: reformatting the files (``fmt``) does not make a saved plan stale, changing a
    value does."""
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


def freshness_of(plan: Plan) -> tuple[Freshness, ...]:
    return tuple(
        Freshness(change.phone, None, None, None)
        if isinstance(change, Create)
        else Freshness(change.phone, change.contact_id, change.rev, change.updated)
        for change in plan.changes
    )


def _live_to_json(live: LiveContact) -> dict[str, Any]:
    return {
        "id": live.id,
        "uuid": live.uuid,
        "phone": live.phone,
        "first": live.first,
        "last": live.last,
        "display_name": live.display_name,
        "email": live.email,
        "is_opted_out": live.is_opted_out,
        "custom": dict(live.custom),
        "rev": live.rev,
        "updated": live.updated,
        "raw": live.record(),
    }


def saved_plan_document(
    plan: Plan, *, desired_digest: str, created_at: str, git_commit: str | None
) -> dict[str, Any]:
    # The plan's own fields stay at the top level, so a saved plan file is also a JSON plan
    # (DESIGN.md: the same fields as `plan --format json`); what apply needs is added beside.
    return {
        **plan.to_json_dict(),
        "kind": _KIND,
        "saved_plan_format": SAVED_PLAN_FORMAT,
        "tool_version": __version__,
        "created_at": created_at,
        "git_commit": git_commit,
        "desired_digest": desired_digest,
        "context": {
            "marker_field": plan.marker.field_title,
            "owner": plan.marker.owner,
            "prune": plan.prune,
            "owned_live_count": plan.owned_live_count,
            "prune_candidates": plan.prune_candidates,
        },
        "freshness": [
            {
                "phone": entry.phone,
                "contact_id": entry.contact_id,
                "rev": entry.rev,
                "updated": entry.updated,
            }
            for entry in freshness_of(plan)
        ],
        "deleted_records": [_live_to_json(delete.live) for delete in plan.deletes],
    }


class _Invalid(Exception):
    """A saved-plan document that does not have the expected shape (becomes SavedPlanError)."""


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in data:
        raise _Invalid(f"missing {key!r}")
    value = data[key]
    # bool is an int subclass; a count or rev given as true/false is corrupt.
    if isinstance(value, bool) and kind is int:
        raise _Invalid(f"{key!r} has the wrong type")
    if not isinstance(value, kind):
        raise _Invalid(f"{key!r} has the wrong type")
    return value


def _optional(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if value is None:
        return None
    return _get(data, key, kind)


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value: Mapping[str, Any] = _get(data, key, dict)
    return value


def _objects(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = _get(data, key, list)
    if not all(isinstance(item, dict) for item in items):
        raise _Invalid(f"{key!r} holds something other than objects")
    return list(items)


def _source(text: str) -> SourceLocation:
    path, _, line = text.rpartition(":")
    if not path or not line.isdigit():
        raise _Invalid(f"source {text!r} is not FILE:LINE")
    return SourceLocation(path, int(line))


def _field_value(value: Any) -> FieldValue:
    if value is None or isinstance(value, str | bool):
        return value
    raise _Invalid("a field value is not text, boolean or null")


def _field_changes(data: Mapping[str, Any], key: str) -> dict[str, FieldChange]:
    changes: dict[str, FieldChange] = {}
    for name, change in _object(data, key).items():
        if not isinstance(change, dict):
            raise _Invalid(f"{key}.{name} is not an object")
        changes[name] = FieldChange(
            _field_value(change.get("before")), _field_value(change.get("after"))
        )
    return changes


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    items = _get(data, key, list)
    if not all(isinstance(item, str) for item in items):
        raise _Invalid(f"{key!r} holds something other than text")
    return tuple(items)


def _tags_change(data: Mapping[str, Any]) -> TagsChange | None:
    if "tags" not in data:
        return None
    tags = _object(data, "tags")
    return TagsChange(_strings(tags, "before"), _strings(tags, "after"))


def _live_from_json(data: Mapping[str, Any]) -> LiveContact:
    return LiveContact(
        id=_get(data, "id", int),
        uuid=_get(data, "uuid", str),
        phone=_get(data, "phone", str),
        first=_optional(data, "first", str),
        last=_optional(data, "last", str),
        display_name=_optional(data, "display_name", str),
        email=_optional(data, "email", str),
        is_opted_out=_get(data, "is_opted_out", bool),
        custom=dict(_object(data, "custom")),
        rev=_get(data, "rev", int),
        updated=_get(data, "updated", str),
        raw=dict(_object(data, "raw")),
    )


def _change_from_json(data: Mapping[str, Any], records: Mapping[str, LiveContact]) -> Change:
    action = _get(data, "action", str)
    if action not in ("create", "update", "delete"):
        raise _Invalid(f"unknown action {action!r}")
    phone = _get(data, "phone", str)
    fields = _field_changes(data, "fields")
    custom = _field_changes(data, "custom")
    tags = _tags_change(data)
    if action == "create":
        return Create(phone, _source(_get(data, "source", str)), fields, custom, tags)
    contact_id = _get(data, "contact_id", str)
    rev = _get(data, "rev", int)
    updated = _get(data, "updated", str)
    if action == "update":
        return Update(
            phone=phone,
            contact_id=contact_id,
            rev=rev,
            updated=updated,
            source=_source(_get(data, "source", str)),
            fields=fields,
            custom=custom,
            adopt=_get(data, "adopt", bool),
            tags=tags,
        )
    if contact_id not in records:
        raise _Invalid(f"no live record for the delete of contact {contact_id}")
    return Delete(phone, contact_id, rev, updated, fields, custom, records[contact_id])


def _notice_from_json(data: Mapping[str, Any]) -> Notice:
    source = _optional(data, "source", str)
    return Notice(
        message=_get(data, "message", str),
        phone=_optional(data, "phone", str),
        source=_source(source) if source is not None else None,
    )


def parse_saved_plan(document: Any, *, origin: str) -> SavedPlan:
    """A saved plan from its decoded JSON; ``origin`` names the file in error messages."""
    again = f"Run `reconciler plan --out {origin}` again."
    if not isinstance(document, dict) or document.get("kind") != _KIND:
        printed = isinstance(document, dict) and "kind" not in document
        if printed and "format_version" in document and "changes" in document:
            # `plan --format json > FILE` looks like a saved plan but lacks the live records
            # and fingerprints that the staleness guard needs.
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
    try:
        if version != SAVED_PLAN_FORMAT:
            raise _Invalid(f"unknown saved-plan format {version!r}")
        context = _object(document, "context")
        records = {
            live.uuid: live for live in map(_live_from_json, _objects(document, "deleted_records"))
        }
        plan_data: Mapping[str, Any] = document
        if plan_data.get("format_version") != FORMAT_VERSION:
            raise _Invalid(f"unknown plan format {plan_data.get('format_version')!r}")
        changes = tuple(
            _change_from_json(change, records) for change in _objects(plan_data, "changes")
        )
        plan = Plan(
            changes=changes,
            unchanged=_get(_object(plan_data, "summary"), "unchanged", int),
            marker=Marker(_get(context, "marker_field", str), _get(context, "owner", str)),
            fields_to_create=_strings(plan_data, "fields_to_create"),
            warnings=tuple(map(_notice_from_json, _objects(plan_data, "warnings"))),
            errors=tuple(map(_notice_from_json, _objects(plan_data, "errors"))),
            prune=_get(context, "prune", bool),
            owned_live_count=_get(context, "owned_live_count", int),
            prune_candidates=_get(context, "prune_candidates", int),
        )
        freshness = tuple(
            Freshness(
                phone=_get(entry, "phone", str),
                contact_id=_optional(entry, "contact_id", str),
                rev=_optional(entry, "rev", int),
                updated=_optional(entry, "updated", str),
            )
            for entry in _objects(document, "freshness")
        )
        return SavedPlan(
            plan=plan,
            freshness=freshness,
            desired_digest=_get(document, "desired_digest", str),
            tool_version=_get(document, "tool_version", str),
            created_at=_get(document, "created_at", str),
            git_commit=_optional(document, "git_commit", str),
        )
    except _Invalid as problem:
        raise SavedPlanError(f"{origin} is damaged ({problem}). {again}") from None


def check_fresh(saved: SavedPlan, live: Sequence[LiveContact], desired_digest: str) -> None:
    """Raise ``StalePlanError`` unless the desired state is the one planned and every contact
    the plan touches is as it was (same id, ``rev`` and ``updated``; creates still absent)."""
    again = "Make a new plan (`reconciler plan --out FILE`), review it, and apply that."
    if desired_digest != saved.desired_digest:
        raise StalePlanError(f"The desired state changed since the plan was saved. {again}")
    live_by_phone: dict[str, LiveContact] = {}
    for contact in live:
        live_by_phone.setdefault(contact.phone, contact)
    stale: list[str] = []
    for entry in saved.freshness:
        current = live_by_phone.get(entry.phone)
        if entry.contact_id is None:
            if current is not None:
                stale.append(entry.phone)
        elif current is None or (current.uuid, current.rev, current.updated) != (
            entry.contact_id,
            entry.rev,
            entry.updated,
        ):
            stale.append(entry.phone)
    if stale:
        shown = ", ".join(stale[:3]) + (f" and {len(stale) - 3} more" if len(stale) > 3 else "")
        raise StalePlanError(
            f"{len(stale)} contacts changed in the account since the plan was saved "
            f"({shown}). {again}"
        )


# --- the I/O edge ------------------------------------------------------------------------


def current_git_commit(directory: Path | None = None) -> str | None:
    """The commit checked out in ``directory``, or ``None`` outside a repository or without
    git: a missing commit never stops a plan from being saved."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = completed.stdout.strip()
    if completed.returncode != 0 or not commit or any(c not in "0123456789abcdef" for c in commit):
        return None
    return commit


def write_saved_plan(
    path: Path,
    plan: Plan,
    *,
    desired_digest: str,
    repository: Path | None = None,
    now: datetime | None = None,
) -> SavedPlan:
    """Write the plan to ``path`` atomically, readable only by its owner (it holds contact
    data), and return what was saved."""
    created_at = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    created_at = created_at.replace("+00:00", "Z")
    git_commit = current_git_commit(repository)
    document = saved_plan_document(
        plan, desired_digest=desired_digest, created_at=created_at, git_commit=git_commit
    )
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    try:
        write_atomically(path, text, private=True, durable=True)
    except OSError as error:
        raise SavedPlanError(
            f"cannot write the plan to {path}: {error.strerror or error}. "
            "Check the directory exists and is writable."
        ) from None
    return SavedPlan(
        plan=plan,
        freshness=freshness_of(plan),
        desired_digest=desired_digest,
        tool_version=__version__,
        created_at=created_at,
        git_commit=git_commit,
    )


def read_saved_plan(path: Path) -> SavedPlan:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SavedPlanError(
            f"no saved plan at {path}. Make one with `reconciler plan --out {path}`."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SavedPlanError(f"cannot read the saved plan {path}: {error}.") from None
    try:
        document = decode_json(text)
    except UnreadableJson as error:
        where = f"line {error.line}" if error.line is not None else error.reason
        raise SavedPlanError(
            f"{path} is not valid JSON ({where}), so not a saved plan. "
            f"Run `reconciler plan --out {path}` again."
        ) from None
    return parse_saved_plan(document, origin=str(path))
