"""``reconciler fmt``: the canonical layout of a contacts file, comments kept.

Canonical means: keys in the order phone, first, last, display_name, email, is_opted_out,
tags, custom; tags in the order written (a set: their order means nothing to a plan, and
keeping it keeps the author's); phones as their canonical digits (``"+1 (415) 555-0101"``
becomes ``"14155550101"``), double-quoted (so YAML never reads them as numbers); contacts
sorted by phone within a file; two-space indentation with list dashes indented under
``contacts:``; text that any YAML reader could fold, refuse or read otherwise (controls,
tabs, line ends, NEL, LS/PS, a BOM) written as escapes in double quotes. Only a file that
loads without problems is rewritten, so formatting never hides an error.

``validate`` reads with libyaml, ``fmt`` rewrites with ruamel.yaml (the one that keeps
comments), and the two do not accept exactly the same texts. So the round trip is checked:
what ``fmt`` writes must load, through the same reader as ``validate``, to exactly the values
the file held. When ruamel.yaml cannot read a file ``validate`` accepts, or would change a
value, the file is written from its values instead, and the caller is told its comments
were not kept."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.error import YAMLError as RoundTripError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from reconciler.core.errors import FormatError
from reconciler.core.model import CANONICAL_KEY_ORDER
from reconciler.desired.loader import (
    ParsedFile,
    contact_files,
    load_desired_state,
    parse_file_fast,
)
from reconciler.desired.phone_spellings import ReadPhone, read_phone
from reconciler.desired.yaml_text import (
    readable_alike,
    round_trip_yaml,
)
from reconciler.files.atomic import write_atomically
from reconciler.files.paths import display_path

# Cheap signs that a file may hold a tab or a block scalar (most files hold neither).
_MAYBE_READ_OTHERWISE = re.compile("[\\t|>]")


class FmtResult(NamedTuple):
    changed: tuple[str, ...]
    unchanged: int
    # Files that ruamel.yaml could not rewrite faithfully: written from their values, so
    # without their comments.
    rebuilt: tuple[str, ...] = ()


class Formatted(NamedTuple):
    text: str
    # False when the file had to be written from its values (its comments are gone).
    comments_kept: bool


def _canonical_contact(contact: Any, default_region: str | None) -> None:
    if not isinstance(contact, CommentedMap):
        return
    order = {key: index for index, key in enumerate(CANONICAL_KEY_ORDER)}
    for key in sorted(contact, key=lambda key: order.get(key, len(order))):
        contact.move_to_end(key)
    if "phone" in contact and contact["phone"] is not None:
        phone = str(contact["phone"])
        read = read_phone(phone, default_region)
        contact["phone"] = DoubleQuotedScalarString(
            read.phone if isinstance(read, ReadPhone) else phone
        )


# ruamel.yaml attaches the comment lines *above* a list item to the last value of the item
# before it. Sorting or reordering keys would strand them in the wrong contact, so they are
# detached first and re-attached above the same item once it has its new place.


def _last_comment_slot(node: CommentedMap) -> tuple[CommentedMap, Any]:
    """The mapping and key whose end-of-line comment ends ``node`` in the file."""
    key = list(node)[-1]
    value = node[key]
    if isinstance(value, CommentedMap) and len(value):
        return _last_comment_slot(value)
    return node, key


def _detach_trailing_lines(contact: CommentedMap) -> str:
    if not len(contact):
        return ""
    holder, key = _last_comment_slot(contact)
    slot = holder.ca.items.get(key)
    token = slot[2] if slot and len(slot) > 2 else None
    if token is None:
        return ""
    end_of_line, _, following = str(token.value).partition("\n")
    if end_of_line:
        token.value = end_of_line + "\n"
    else:
        slot[2] = None
    return following


def _attach_trailing_lines(contact: CommentedMap, lines: str) -> None:
    if not lines or not len(contact):
        return
    holder, key = _last_comment_slot(contact)
    slot = holder.ca.items.setdefault(key, [None, None, None, None])
    token = slot[2]
    if token is None:
        slot[2] = CommentToken("\n" + lines, CommentMark(0), None)
    else:
        token.value = str(token.value).rstrip("\n") + "\n" + lines


def _canonical_contacts(contacts: CommentedSeq, default_region: str | None = None) -> CommentedSeq:
    items = list(contacts)
    if not all(isinstance(item, CommentedMap) for item in items):
        return contacts
    trailing = [_detach_trailing_lines(item) for item in items]
    # Lines after item i sit above item i + 1; those after the last item end the list.
    above = ["", *trailing[:-1]]
    end_of_list = trailing[-1] if trailing else ""
    for item in items:
        _canonical_contact(item, default_region)
    order = sorted(range(len(items)), key=lambda index: str(items[index].get("phone", "")))
    result = CommentedSeq(items[index] for index in order)
    result.ca.comment = contacts.ca.comment
    result.ca.end = contacts.ca.end
    for position, index in enumerate(order):
        if position:
            _attach_trailing_lines(result[position - 1], above[index])
    if result:
        _attach_trailing_lines(result[-1], end_of_list)
    if order:
        _attach_to_list_header(result, above[order[0]])
    return result


def _attach_to_list_header(contacts: CommentedSeq, lines: str) -> None:
    """Lines that sat above the item that is now first go under the list's own header."""
    if not lines:
        return
    header = contacts.ca.comment[1] if contacts.ca.comment and contacts.ca.comment[1] else None
    if header:
        header[-1].value = str(header[-1].value).rstrip("\n") + "\n" + lines
    else:
        contacts.ca.comment = [None, [CommentToken(lines.lstrip(" "), CommentMark(2), None)]]


def _round_trip_format(text: str, default_region: str | None) -> str:
    yaml = round_trip_yaml()
    document = yaml.load(text)
    if isinstance(document, CommentedMap) and isinstance(document.get("contacts"), CommentedSeq):
        document["contacts"] = _canonical_contacts(document["contacts"], default_region)
    output = io.StringIO()
    yaml.dump(document, output)
    return output.getvalue()


def _declared(text: str, default_region: str | None) -> list[dict[str, Any]] | None:
    """The contacts ``text`` declares, read as ``validate`` reads them, phones canonical
    (None when invalid)."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    parsed = parse_file_fast(data, "", default_region)
    if isinstance(parsed, ParsedFile):
        if parsed.problems:
            return None
        rows = [
            (contact.phone, contact.fields, contact.custom, contact.tags)
            for contact in parsed.contacts
        ]
    else:
        rows = [
            (row.phone, row.fields, row.custom, None if row.tags is None else tuple(row.tags))
            for row in parsed
        ]
    declared: list[dict[str, Any]] = []
    for phone, fields, custom, tags in rows:
        contact: dict[str, Any] = {"phone": phone, **fields}
        if tags is not None:
            contact["tags"] = list(tags)
        if custom:
            contact["custom"] = dict(custom)
        declared.append(contact)
    return declared


def _same_values(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> bool:
    """Equal contacts, type for type (``1`` is not ``true``, ``1.0`` is not ``1``) and
    whatever their order in the file."""

    def identity(contact: dict[str, Any]) -> str:
        return repr(sorted((key, _typed(value)) for key, value in contact.items()))

    return sorted(map(identity, left)) == sorted(map(identity, right))


def _reads_as(text: str, expected: list[dict[str, Any]], default_region: str | None) -> bool:
    found = _declared(text, default_region)
    return found is not None and _same_values(found, expected)


def _typed(value: object) -> str:
    if isinstance(value, dict):
        return repr(sorted((key, _typed(item)) for key, item in value.items()))
    return repr(value)  # a repr names the type: True, 1, 1.0, '1' and nan all differ


# Formatting settles in one pass nearly always; an odd input (a block scalar holding a
# character YAML reads as a line break) can need a second to reach the form that formats to
# itself. Past this many, the file is written from its values, which always settles.
MAX_FORMAT_PASSES = 3


def format_file(text: str, default_region: str | None = None) -> Formatted:
    """The canonical form of one valid contacts file (phones written without a country code
    read in ``default_region``), comments kept where ruamel.yaml can rewrite the file
    without changing a value; otherwise written from its values. The result formats to
    itself: ``fmt --check`` right after ``fmt`` never finds anything to change."""
    current = _format_once(text, default_region)
    if current.text == text:
        return current  # formats to itself already: the common case, one pass
    for _ in range(MAX_FORMAT_PASSES):
        again = _format_once(current.text, default_region)
        if again.text == current.text:
            return current
        current = Formatted(again.text, current.comments_kept and again.comments_kept)
    expected = _declared(text, default_region)
    if expected is None:
        return current
    return Formatted(contacts_text(expected), False)


def _format_once(text: str, default_region: str | None) -> Formatted:
    expected = _declared(text, default_region)
    if expected is None:
        # Not ours to judge: validate words it.
        return Formatted(_round_trip_format(text, default_region), True)
    try:
        readable = readable_alike(text) if _MAYBE_READ_OTHERWISE.search(text) else text
        formatted = _round_trip_format(readable, default_region)
    except RoundTripError:
        formatted = None
    if formatted is not None and _reads_as(formatted, expected, default_region):
        if formatted.endswith("\n\n"):
            # Empty lines that ended a block scalar moved to the end of the file: a file
            # ends with one line end (unless they are the value's own, kept with "|+").
            trimmed = formatted.rstrip("\n") + "\n"
            if _reads_as(trimmed, expected, default_region):
                formatted = trimmed
        return Formatted(formatted, True)
    return Formatted(contacts_text(expected), False)


def format_text(text: str, default_region: str | None = None) -> str:
    """The canonical form of one valid contacts file."""
    return format_file(text, default_region).text


def contacts_text(contacts: Sequence[Mapping[str, Any]]) -> str:
    """A new contacts file in canonical form, for commands that write one (``export``).

    Going through the same representer and the same sort as ``format_text`` keeps one
    canonical form: ``fmt --check`` finds nothing to change in what this writes."""
    yaml = round_trip_yaml()
    items = CommentedSeq(CommentedMap(_with_flow_tags(contact)) for contact in contacts)
    document = CommentedMap(contacts=_canonical_contacts(items))
    output = io.StringIO()
    yaml.dump(document, output)
    return output.getvalue()


def _with_flow_tags(contact: Mapping[str, Any]) -> dict[str, Any]:
    """The contact with its tags as one flow list (``tags: [VIP, Wholesale]``): a short
    set reads best on one line."""
    tags = contact.get("tags")
    if not isinstance(tags, list):
        return dict(contact)
    flow = CommentedSeq(tags)
    flow.fa.set_flow_style()
    return {**contact, "tags": flow}


def format_directory(
    contacts_dir: Path, cwd: Path, *, check: bool, default_region: str | None = None
) -> FmtResult:
    """Format every contacts file (or with ``check``, only report which would change).

    Raises ``DesiredStateError`` (every problem) when the desired state does not load."""
    load_desired_state(contacts_dir, cwd, default_region=default_region)
    changed: list[str] = []
    rebuilt: list[str] = []
    unchanged = 0
    for path in contact_files(contacts_dir):
        text = path.read_text(encoding="utf-8-sig")
        formatted, comments_kept = format_file(text, default_region)
        if formatted == text:
            unchanged += 1
            continue
        shown = display_path(path, cwd)
        if not comments_kept:
            rebuilt.append(shown)
        if not check:
            try:
                write_atomically(path, formatted)
            except OSError as error:
                done = f" ({len(changed)} reformatted before it)" if changed else ""
                raise FormatError(
                    f"cannot rewrite {shown}: {error.strerror}{done}; make the file and its "
                    "directory writable and run fmt again"
                ) from None
        changed.append(shown)
    return FmtResult(tuple(changed), unchanged, tuple(rebuilt))
