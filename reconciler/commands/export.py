"""``reconciler export``: the live account as contacts files, so an existing account can be
adopted by a repository.

What is written is exactly what a plan would then find unchanged:

- contacts sorted by phone, keys in canonical order, custom fields by title (``fmt``'s
  canonical form, through ``fmt.contacts_text``);
- a field that is empty live is left out, not written as ``null``: a left-out field is not
  managed, so the export claims no more than the account holds. Writing ``null`` would make
  the repository clear any value someone later types into the Heymarket app, a consequence
  nobody asked for by exporting; a team that wants a field managed everywhere adds it;
- ``is_opted_out`` is written only when it is ``true``: ``false`` can never opt a contact back
  in, and declaring it would turn every later STOP into a warning in each plan;
- the ownership marker is not written: apply writes it, and the plan shows the adoption of
  every exported contact that lacks it.

``build_export`` is pure; ``write_export`` does the file I/O; ``run`` is the command."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from reconciler.commands.context import cache_directory, fetch_live_state, open_settings
from reconciler.commands.environment import Environment
from reconciler.core.errors import EXIT_OK, ExportError, one_line
from reconciler.core.masking import contact_names
from reconciler.core.model import STANDARD_FIELDS, CustomField, LiveContact
from reconciler.core.normalize import custom_value_text, normalize_text
from reconciler.core.ownership import FieldIndex, Marker, Ownership
from reconciler.desired.canonical import contacts_text
from reconciler.desired.emails import email_problem
from reconciler.desired.loader import (
    contact_files,
)
from reconciler.desired.schemas import CONTACTS_SCHEMA, load_schema
from reconciler.desired.tags import MAX_TAGS, read_tags
from reconciler.desired.yaml_text import writable
from reconciler.files.atomic import write_atomically
from reconciler.files.paths import display_path

SINGLE_FILE = "contacts.yaml"
OTHER_INITIAL_FILE = "other.yaml"
UNTAGGED_FILE = "untagged.yaml"


class SplitBy(Enum):
    """How the exported contacts are spread over files."""

    NONE = "none"
    TAG = "tag"
    INITIAL = "initial"


@dataclass(frozen=True, slots=True)
class ExportSettings:
    split_by: SplitBy
    owned_only: bool
    marker_field: str
    owner: str


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One file to write: its name inside the output directory and its canonical text."""

    name: str
    text: str
    contacts: int


@dataclass(frozen=True, slots=True)
class Export:
    files: tuple[ExportFile, ...]
    warnings: tuple[str, ...]
    # Exported contacts without the ownership marker: the plan adopts these.
    unmarked: int

    @property
    def contacts(self) -> int:
        return sum(file.contacts for file in self.files)


@dataclass(frozen=True, slots=True)
class WrittenExport:
    written: tuple[str, ...]
    removed: tuple[str, ...]


def _contact_validator() -> Draft202012Validator:
    item_schema = load_schema(CONTACTS_SCHEMA)["properties"]["contacts"]["items"]
    return Draft202012Validator(item_schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


class _Exporter:
    def __init__(self, fields: Sequence[CustomField], settings: ExportSettings) -> None:
        self.settings = settings
        index = FieldIndex.of(fields)
        self.titles = index.titles
        self.ownership = Ownership.of(index, Marker(settings.marker_field, settings.owner))
        self.validator = _contact_validator()
        self.warnings: list[str] = []

    def declaration(self, live: LiveContact) -> dict[str, Any] | None:
        """The contact as a file declares it, or None (with a warning) when it cannot be."""
        declared: dict[str, Any] = {"phone": live.phone}
        for name in STANDARD_FIELDS:
            value = live.standard_value(name)
            if name == "is_opted_out":
                if value is True:
                    declared[name] = True
                continue
            text = normalize_text(value) if isinstance(value, str) else None
            if text is not None:
                declared[name] = text
        if live.tags:
            # Only a contact that has tags declares them: an exported file manages what the
            # account holds, and "tags: []" on every other contact would say nothing new.
            declared["tags"] = list(live.tags)
        custom: dict[str, str] = {}
        for field_id, custom_value in sorted(live.custom.items()):
            if field_id == self.ownership.marker_id:
                continue
            text = custom_value_text(custom_value)
            if text is None:
                continue
            title = self.titles.get(field_id)
            if title is None:
                self.warnings.append(
                    f"{live.phone}: custom field #{field_id} has no definition in the "
                    "account, so it has no title to declare it by: left out."
                )
                continue
            custom[title] = text
        if custom:
            declared["custom"] = dict(sorted(custom.items()))
        return self.checked(declared)

    def checked(self, declared: dict[str, Any]) -> dict[str, Any] | None:
        """The declaration minus what the contacts schema would refuse, so the files always
        validate; each field dropped is named in a warning."""
        phone = declared["phone"]
        for name in STANDARD_FIELDS:
            value = declared.get(name)
            if isinstance(value, str) and not writable(value):
                del declared[name]
                self.warnings.append(
                    f"{phone}: the live {name} holds a character no file can hold (a lone "
                    "surrogate): left out, so it is not managed."
                )
        tags = declared.get("tags")
        if tags is not None:
            read = read_tags(tags) if all(map(writable, tags)) else None
            if not isinstance(read, tuple):
                del declared["tags"]
                self.warnings.append(
                    f"{phone}: the live tags cannot be declared as they are (more than "
                    f"{MAX_TAGS}, blank, repeated, or holding a character no file can hold): "
                    "left out, so they are not managed."
                )
            else:
                declared["tags"] = list(read)
        custom = declared.get("custom", {})
        for title, value in list(custom.items()):
            if not writable(title) or (isinstance(value, str) and not writable(value)):
                del custom[title]
                self.warnings.append(
                    f"{phone}: custom field {title!r} has a value a file cannot hold: left out."
                )
        for error in self.validator.iter_errors(declared):
            path = list(error.absolute_path)
            if not path or path[0] == "phone":
                self.warnings.append(
                    f"{phone}: the phone number is not E.164 digits; contact not exported."
                )
                return None
            if path[0] == "custom" and len(path) > 1:
                declared["custom"].pop(path[1], None)
                self.warnings.append(
                    f"{phone}: custom field {path[1]!r} has a value a file cannot hold: left out."
                )
            else:
                declared.pop(path[0], None)
                self.warnings.append(
                    f"{phone}: the live {path[0]} does not pass the contacts schema "
                    f"({error.message}): left out, so it is not managed."
                )
        email = declared.get("email")
        problem = email_problem(email) if isinstance(email, str) else None
        if problem is not None:
            del declared["email"]
            self.warnings.append(
                f"{phone}: the live email is not a valid email address ({problem}): left "
                "out, so it is not managed."
            )
        if "custom" in declared and not declared["custom"]:
            del declared["custom"]
        return declared


def build_export(
    live_contacts: Sequence[LiveContact],
    fields: Sequence[CustomField],
    settings: ExportSettings,
) -> Export:
    """The files that declare the live account (pure)."""
    exporter = _Exporter(fields, settings)
    by_phone: dict[str, list[LiveContact]] = {}
    for live in live_contacts:
        by_phone.setdefault(live.phone, []).append(live)
    groups: dict[str, list[dict[str, Any]]] = {}
    unmarked = 0
    for phone in sorted(by_phone):
        copies = sorted(by_phone[phone], key=lambda contact: contact.id)
        kept = copies[0]
        if len(copies) > 1:
            others = ", ".join(str(copy.id) for copy in copies[1:])
            exporter.warnings.append(
                f"{phone}: exists {len(copies)} times in the account; exported contact id "
                f"{kept.id}, not {others}. Merge or delete the duplicates in Heymarket: "
                "plan and apply leave this phone untouched until then."
            )
        marker = exporter.ownership.marker_of(kept)
        if settings.owned_only and not exporter.ownership.owns(kept):
            continue
        declared = exporter.declaration(kept)
        if declared is None:
            continue
        if marker is None:
            unmarked += 1
        groups.setdefault(_file_name(kept, settings.split_by), []).append(declared)
    if not groups:
        # An empty account still exports a desired state that loads: one that declares none.
        groups[SINGLE_FILE] = []
    files = tuple(
        ExportFile(name, contacts_text(contacts), len(contacts))
        for name, contacts in sorted(groups.items())
    )
    return Export(files, tuple(exporter.warnings), unmarked)


def _file_name(contact: LiveContact, split_by: SplitBy) -> str:
    if split_by is SplitBy.INITIAL:
        return _initial_file(contact)
    if split_by is SplitBy.TAG:
        return _tag_file(contact)
    return SINGLE_FILE


def _initial_file(contact: LiveContact) -> str:
    """By the first letter of the last name, else of the display name; accents dropped
    (``Élodie`` goes to ``e.yaml``), anything else to ``other.yaml``."""
    name = normalize_text(contact.last) or normalize_text(contact.display_name) or ""
    decomposed = unicodedata.normalize("NFKD", name[:1]).casefold()
    letter = decomposed[:1]
    if "a" <= letter <= "z":
        return f"{letter}.yaml"
    return OTHER_INITIAL_FILE


def _tag_file(contact: LiveContact) -> str:
    """By the first tag, made safe as a file name; a file name must not start with a dot
    (the loader skips hidden files)."""
    for tag in contact.tags:
        ascii_tag = unicodedata.normalize("NFKD", tag).encode("ascii", "ignore").decode()
        slug = re.sub(r"[^a-z0-9_-]+", "-", ascii_tag.casefold()).strip("-_")
        if slug:
            return f"{slug}.yaml"
    return UNTAGGED_FILE


def check_out_dir(out_dir: Path, cwd: Path, *, force: bool) -> None:
    """Refuse a non-empty ``out_dir`` unless ``force``: checked before any network call, so
    the refusal is immediate."""
    shown_dir = display_path(out_dir, cwd)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f'"{shown_dir}" is a file, not a directory; pass --out DIR')
    if force or not out_dir.is_dir():
        return
    entries = sum(1 for _ in out_dir.iterdir())
    if entries:
        raise ExportError(
            f'directory "{shown_dir}" is not empty ({entries} entries): export into an empty '
            "one with --out DIR, or pass --force to replace the contacts files in it"
        )


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """The flags of one ``export`` run; ``out_dir`` defaults to the configuration's
    contacts directory."""

    out_dir: Path | None = None
    config_file: Path | None = None
    api_url: str | None = None
    insecure: bool = False
    split_by: SplitBy = SplitBy.NONE
    owned_only: bool = False
    force: bool = False


def run(request: ExportRequest, env: Environment) -> int:
    """Read the live account and write it into the output directory. The files hold the
    account in full; what is printed about them is masked when the configuration asks
    (``mask_pii``)."""
    console = env.console
    settings = open_settings(
        env, config_file=request.config_file, contacts_dir=request.out_dir, api_url=request.api_url
    )
    target = settings.contacts_dir
    check_out_dir(target, env.cwd, force=request.force)
    with env.connect_client(settings, env.environ, request.insecure) as client:
        live = fetch_live_state(client, cache_dir=cache_directory(settings))
    console.screen.add_names(contact_names(live.contacts))
    export = build_export(
        live.contacts,
        live.fields,
        ExportSettings(
            split_by=request.split_by,
            owned_only=request.owned_only,
            marker_field=settings.config.ownership.marker_field,
            owner=settings.config.ownership.owner,
        ),
    )
    written = write_export(export, target, env.cwd, force=request.force)
    for warning in export.warnings:
        console.err(f"Warning: {one_line(warning)}\n")
    for path in written.removed:
        console.out(f"Removed {path}\n")
    for path, file in zip(written.written, export.files, strict=True):
        console.out(f"Wrote {path} ({_count(file.contacts, 'contact')})\n")
    console.out(
        f"Exported {_count(export.contacts, 'contact')} into {_count(len(export.files), 'file')}; "
        f"the next plan adopts the {export.unmarked} without an ownership marker.\n"
    )
    return EXIT_OK


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def write_export(export: Export, out_dir: Path, cwd: Path, *, force: bool) -> WrittenExport:
    """Write the files into ``out_dir`` (created if missing).

    A non-empty ``out_dir`` is refused without ``force``; with it, the contacts files already
    there are replaced (left in place, they would declare the exported phones twice), and any
    other file is kept."""
    check_out_dir(out_dir, cwd, force=force)
    shown_dir = display_path(out_dir, cwd)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        new_names = {file.name for file in export.files}
        removed: list[str] = []
        for old_file in contact_files(out_dir):
            if old_file.parent == out_dir and old_file.name in new_names:
                continue
            removed.append(display_path(old_file, cwd))
            old_file.unlink()
        written: list[str] = []
        for file in export.files:
            path = out_dir / file.name
            write_atomically(path, file.text)
            written.append(display_path(path, cwd))
    except OSError as error:
        raise ExportError(
            f'could not write the export into "{shown_dir}": {error.strerror or error}'
        ) from None
    return WrittenExport(tuple(written), tuple(removed))
