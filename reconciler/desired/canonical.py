"""``reconciler fmt``: the canonical layout of a contacts file, comments kept.

Canonical means: keys in the order phone, first, last, display_name, email, is_opted_out,
custom; phones double-quoted (so YAML never reads them as numbers); contacts sorted by phone
within a file; two-space indentation with list dashes indented under ``contacts:``. Only a
file that loads without problems is rewritten, so formatting never hides an error."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from reconciler.core.errors import FormatError
from reconciler.core.model import CANONICAL_KEY_ORDER
from reconciler.desired.loader import contact_files, display_path, load_desired_state
from reconciler.files.atomic import write_atomically


class FmtResult(NamedTuple):
    changed: tuple[str, ...]
    unchanged: int


def _round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never fold a long name or comment onto two lines
    # "email: null" says "managed and cleared" louder than an empty value does.
    yaml.representer.add_representer(type(None), _represent_null)
    return yaml


def _represent_null(representer: Any, _: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _canonical_contact(contact: Any) -> None:
    if not isinstance(contact, CommentedMap):
        return
    order = {key: index for index, key in enumerate(CANONICAL_KEY_ORDER)}
    for key in sorted(contact, key=lambda key: order.get(key, len(order))):
        contact.move_to_end(key)
    if "phone" in contact and contact["phone"] is not None:
        contact["phone"] = DoubleQuotedScalarString(str(contact["phone"]))


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


def _canonical_contacts(contacts: CommentedSeq) -> CommentedSeq:
    items = list(contacts)
    if not all(isinstance(item, CommentedMap) for item in items):
        return contacts
    trailing = [_detach_trailing_lines(item) for item in items]
    # Lines after item i sit above item i + 1; those after the last item end the list.
    above = ["", *trailing[:-1]]
    end_of_list = trailing[-1] if trailing else ""
    for item in items:
        _canonical_contact(item)
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


def format_text(text: str) -> str:
    """The canonical form of one valid contacts file."""
    yaml = _round_trip()
    document = yaml.load(text)
    if isinstance(document, CommentedMap) and isinstance(document.get("contacts"), CommentedSeq):
        document["contacts"] = _canonical_contacts(document["contacts"])
    output = io.StringIO()
    yaml.dump(document, output)
    return output.getvalue()


def contacts_text(contacts: Sequence[Mapping[str, Any]]) -> str:
    """A new contacts file in canonical form, for commands that write one (``export``).

    Going through the same representer and the same sort as ``format_text`` keeps one
    canonical form: ``fmt --check`` finds nothing to change in what this writes."""
    yaml = _round_trip()
    items = CommentedSeq(CommentedMap(contact) for contact in contacts)
    document = CommentedMap(contacts=_canonical_contacts(items))
    output = io.StringIO()
    yaml.dump(document, output)
    return output.getvalue()


def format_directory(contacts_dir: Path, cwd: Path, *, check: bool) -> FmtResult:
    """Format every contacts file (or with ``check``, only report which would change).

    Raises ``DesiredStateError`` (every problem) when the desired state does not load."""
    load_desired_state(contacts_dir, cwd)
    changed: list[str] = []
    unchanged = 0
    for path in contact_files(contacts_dir):
        text = path.read_text(encoding="utf-8-sig")
        formatted = format_text(text)
        if formatted == text:
            unchanged += 1
            continue
        shown = display_path(path, cwd)
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
    return FmtResult(tuple(changed), unchanged)
