"""The fast path for a contacts file that is valid, which is nearly every file on nearly
every run: libyaml's event stream turned straight into plain values (no node graph), then a
compiled validator generated from the same ``contacts.schema.json``.

It answers only "these are the contacts" or "not sure". Anything unusual (an anchor, an
alias, a tag, a duplicate key, deep nesting, a syntax error, a second document, any schema
violation) makes it step aside, and the reference loader (``yaml_safety`` + jsonschema)
decides and words the problems. So the fast path can never accept what the reference path
refuses, and every message stays the reference path's own."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any, NamedTuple

import fastjsonschema
import yaml

from reconciler.core.model import STANDARD_FIELDS, StandardValue
from reconciler.core.normalize import CustomValue
from reconciler.desired.emails import EMAIL_RULE, is_email
from reconciler.desired.phone_spellings import ReadPhone, read_phone
from reconciler.desired.schemas import CONTACTS_SCHEMA, load_schema
from reconciler.desired.tags import read_tags
from reconciler.desired.unicode_form import composed_custom, composed_fields
from reconciler.desired.yaml_safety import (
    _BOOLS,
    _FLOAT,
    _INT,
    _NULLS,
    _NUMBER_START,
    MAX_NESTING,
    PlainValue,
    _CoreSchemaLoader,
    core_float,
    decode_text,
)


class ContactRow(NamedTuple):
    """One valid declared contact, without the file it came from (so it can be cached by
    content): the values (the phone canonical), the line of its item, where its ``phone``
    key is written, and the warning its phone earned (``phone_spellings``), if any."""

    phone: str
    fields: dict[str, StandardValue]
    custom: dict[str, CustomValue]
    line: int
    phone_line: int
    phone_column: int
    phone_warning: str | None = None
    # The tags as ``read_tags`` reads them; None: not managed.
    tags: list[str] | None = None


class _NotPlain(Exception):
    """The file needs the reference loader's judgement."""


@functools.cache
def _compiled_validator() -> Callable[[object], object]:
    schema: dict[str, Any] = copy.deepcopy(load_schema(CONTACTS_SCHEMA))
    # fastjsonschema knows drafts 4, 6 and 7; this schema uses nothing a later draft changed.
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    validate: Callable[[object], object] = fastjsonschema.compile(
        # The reference path's own email check, so the fast path accepts no address it
        # refuses (a refused one sends the file to the reference path, which words it).
        schema,
        formats={"email": is_email},
    )
    return validate


@functools.cache
def schema_digest() -> str:
    """Changes whenever the contacts schema or the email rule does: part of every cache
    key, so no file is served from the cache as valid under an older rule."""
    schema = load_schema(CONTACTS_SCHEMA)
    text = json.dumps(schema, sort_keys=True) + EMAIL_RULE
    return hashlib.sha256(text.encode()).hexdigest()


def _scalar(value: str, plain: bool) -> PlainValue:
    # The YAML 1.2 core schema exactly as yaml_safety._CoreSchemaLoader resolves it.
    if not plain:
        return value
    if value in _NULLS:
        return None
    if value in _BOOLS:
        return _BOOLS[value]
    if value[0] in _NUMBER_START:
        if _INT.fullmatch(value):
            return int(value, 0) if value.startswith(("0o", "0x")) else int(value, 10)
        if _FLOAT.fullmatch(value):
            return core_float(value)
    return value


def _is_number(value: str, plain: bool) -> bool:
    return (
        plain
        and value not in _NULLS
        and value[0] in _NUMBER_START
        and bool(_INT.fullmatch(value) or _FLOAT.fullmatch(value))
    )


class _Built(NamedTuple):
    value: PlainValue
    # For each item of the top-level "contacts" list that is a mapping: its line, and the
    # line and column of its "phone" key (0, 0 when it has none).
    items: list[tuple[int, int, int]]


def _build(text: str) -> _Built:
    """Plain values from the event stream; raises ``_NotPlain`` at the first thing the
    reference loader would treat specially."""
    parser = _CoreSchemaLoader(text)
    try:
        return _build_from(parser)
    except yaml.YAMLError:
        raise _NotPlain from None
    finally:
        parser.dispose()


def _build_from(parser: Any) -> _Built:
    scalar_event = yaml.ScalarEvent
    mapping_start = yaml.MappingStartEvent
    sequence_start = yaml.SequenceStartEvent
    end_events = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    # Each frame: [container, pending key (mappings), keys seen (mappings)].
    stack: list[list[Any]] = []
    items: list[tuple[int, int, int]] = []
    root: PlainValue = None
    documents = 0
    get_event = parser.get_event
    while True:
        event = get_event()
        kind = type(event)
        if kind is scalar_event:
            if event.anchor is not None or event.tag is not None:
                raise _NotPlain
            plain = event.implicit[0]
            if not stack:
                root = _scalar(event.value, plain)
                continue
            frame = stack[-1]
            container = frame[0]
            if type(container) is list:
                container.append(_scalar(event.value, plain))
                continue
            key = frame[1]
            if key is None:
                name: str = event.value
                if name in container:
                    raise _NotPlain
                frame[1] = name
                if name == "phone" and len(stack) == 3 and items:
                    mark = event.start_mark
                    line, _, _ = items[-1]
                    items[-1] = (line, mark.line + 1, mark.column + 1)
                continue
            if key == "phone" and _is_number(event.value, plain):
                # An unquoted phone is read as the digits written (as the reference does).
                container[key] = event.value
            else:
                container[key] = _scalar(event.value, plain)
            frame[1] = None
            continue
        if kind is mapping_start or kind is sequence_start:
            if event.anchor is not None or event.tag is not None:
                raise _NotPlain
            if len(stack) >= MAX_NESTING:
                raise _NotPlain
            new: PlainValue = {} if kind is mapping_start else []
            if stack:
                frame = stack[-1]
                container = frame[0]
                if type(container) is list:
                    container.append(new)
                    if len(stack) == 2 and kind is mapping_start:
                        items.append((event.start_mark.line + 1, 0, 0))
                elif frame[1] is None:
                    raise _NotPlain  # a list or mapping as a key
                else:
                    if len(stack) == 1 and frame[1] != "contacts":
                        raise _NotPlain
                    container[frame[1]] = new
                    frame[1] = None
            else:
                root = new
            stack.append([new, None])
            continue
        if kind in end_events:
            stack.pop()
            continue
        if kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _NotPlain
            continue
        if kind is yaml.StreamEndEvent:
            break
        if kind is yaml.AliasEvent:
            raise _NotPlain
    if documents == 0:
        raise _NotPlain  # an empty file: the reference path words it
    return _Built(root, items)


def valid_contact_rows(data: bytes, default_region: str | None = None) -> list[ContactRow] | None:
    """The contacts of one file when it is plainly valid, its phones read with
    ``default_region``, else ``None`` (ask the reference loader, which finds and words every
    problem)."""
    text = decode_text(data, "")
    if not isinstance(text, str):
        return None
    try:
        built = _build(text)
    except _NotPlain:
        return None
    try:
        _compiled_validator()(built.value)
    except fastjsonschema.JsonSchemaException:
        return None
    assert isinstance(built.value, dict)
    declared = built.value["contacts"]
    assert isinstance(declared, list)
    if len(declared) != len(built.items):
        return None
    rows: list[ContactRow] = []
    for item, (line, phone_line, phone_column) in zip(declared, built.items, strict=True):
        assert isinstance(item, dict)
        custom = item.get("custom", {})
        assert isinstance(custom, dict)
        phone = read_phone(str(item["phone"]), default_region)
        if not isinstance(phone, ReadPhone):
            return None
        tags: list[str] | None = None
        if "tags" in item:
            read = read_tags(item["tags"])  # type: ignore[arg-type]
            if isinstance(read, list):
                return None
            tags = list(read)
        rows.append(
            ContactRow(
                phone=phone.phone,
                fields=composed_fields(
                    {name: item[name] for name in STANDARD_FIELDS if name in item}  # type: ignore[misc]
                ),
                custom=composed_custom(custom),  # type: ignore[arg-type]
                line=line,
                phone_line=phone_line,
                phone_column=phone_column,
                phone_warning=phone.warning,
                tags=tags,
            )
        )
    return rows
