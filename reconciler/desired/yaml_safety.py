"""Untrusted YAML in, plain values out, without ever expanding, executing or hanging.

Every file goes through the same gate, fastest checks first:

1. size cap, checked before the bytes are read (a 50 MB file is refused, never parsed);
2. bytes: no NUL (binary), valid UTF-8, no tab in indentation;
3. anchors and aliases refused from the event stream, before a node graph exists
   (a "billion laughs" file is refused in microseconds);
4. libyaml composes the node graph (C, YAML 1.2 core scalars, nesting capped by libyaml);
5. one pass over the nodes builds plain values, refusing duplicate keys (the stock safe
   loaders silently keep the last one), unsupported tags and deep nesting.

The node graph is kept so that a problem found later (by the schema) can be located to
line and column without parsing the file again."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.core.errors import Problem

MAX_FILE_BYTES = 20 * 1024 * 1024
# Desired state needs 4 levels (file, list, contact, custom); anything far deeper is hostile.
MAX_NESTING = 16

STR_TAG = "tag:yaml.org,2002:str"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
BOOL_TAG = "tag:yaml.org,2002:bool"
NULL_TAG = "tag:yaml.org,2002:null"
SEQ_TAG = "tag:yaml.org,2002:seq"
MAP_TAG = "tag:yaml.org,2002:map"

PlainValue = str | int | float | bool | None | list["PlainValue"] | dict[str, "PlainValue"]

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# YAML 1.2 core schema, as ruamel.yaml (used by `fmt`) reads it: `no`, `on`, `yes` and
# dates stay strings, so `Region: NO` means Norway in both.
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_NUMBER_START = frozenset("0123456789+-.")


class _CoreSchemaLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """libyaml's composer with YAML 1.2 core-schema tag resolution."""

    def resolve(self, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if not implicit[0]:
                return STR_TAG
            if value in _NULLS:
                return NULL_TAG
            if value in _BOOLS:
                return BOOL_TAG
            if value[0] in _NUMBER_START:
                if _INT.fullmatch(value):
                    return INT_TAG
                if _FLOAT.fullmatch(value):
                    return FLOAT_TAG
            return STR_TAG
        return SEQ_TAG if kind is SequenceNode else MAP_TAG


class LoadedYaml(NamedTuple):
    """A parsed file: its plain value and the node graph that locates every part of it."""

    value: PlainValue
    root: Node


class _Refused(Exception):
    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


def read_capped(path: Path, display_path: str) -> bytes | Problem:
    """The file's bytes, or the problem that it is too large (decided before reading it)."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        return Problem(display_path, 1, 1, f"cannot read the file: {error.strerror}")
    if len(data) > MAX_FILE_BYTES:
        size_mb = path.stat().st_size / (1024 * 1024)
        return Problem(
            display_path,
            1,
            1,
            f"file is {size_mb:.1f} MB, over the {MAX_FILE_BYTES // (1024 * 1024)} MB limit; "
            "split it into smaller files",
        )
    return data


def _line_col(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


def decode_text(data: bytes, display_path: str) -> str | Problem:
    """UTF-8 text without NUL bytes (binary) or tab indentation, or the first such problem."""
    nul = data.find(b"\x00")
    if nul >= 0:
        line, column = _line_col(data, nul)
        return Problem(
            display_path, line, column, "binary file (NUL byte); contacts files are UTF-8 text"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line, column = _line_col(data, error.start)
        byte = data[error.start]
        return Problem(
            display_path,
            line,
            column,
            f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8",
        )
    if "\t" in text:
        tab_lines = [
            number
            for number, line in enumerate(text.splitlines(), start=1)
            if "\t" in line[: len(line) - len(line.lstrip(" \t"))]
        ]
        if tab_lines:
            more = f" (and {len(tab_lines) - 1} more lines)" if len(tab_lines) > 1 else ""
            first = text.splitlines()[tab_lines[0] - 1]
            column = first.index("\t") + 1
            return Problem(
                display_path,
                tab_lines[0],
                column,
                f"tab character in indentation{more}; indent with spaces",
            )
    return text


def _anchor_problem(text: str, display_path: str) -> Problem | None:
    """An anchor or alias, found from events so that nothing is ever expanded."""
    try:
        for event in yaml.parse(text, Loader=_CoreSchemaLoader):
            if isinstance(event, yaml.AliasEvent):
                what = f"alias *{event.anchor}"
            elif isinstance(event, yaml.NodeEvent) and event.anchor is not None:
                what = f"anchor &{event.anchor}"
            else:
                continue
            mark = event.start_mark
            return Problem(
                display_path,
                mark.line + 1 if mark else 1,
                mark.column + 1 if mark else 1,
                f"{what}: anchors and aliases are not allowed; write the values out",
            )
    except yaml.YAMLError:
        return None  # the composer reports the syntax error with its position
    return None


def _syntax_problem(error: yaml.YAMLError, display_path: str) -> Problem:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        detail = error.problem or "invalid YAML"
        if error.context:
            detail = f"{detail} ({error.context})"
        return Problem(display_path, mark.line + 1, mark.column + 1, f"YAML syntax error: {detail}")
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return Problem(display_path, 1, 1, f"YAML syntax error: {first_line}")


def core_float(value: str) -> float:
    """A YAML 1.2 core float (``.inf``, ``-.Inf``, ``.NaN`` included) as Python reads it."""
    lowered = value.lower()
    if lowered.endswith((".inf", ".nan")):
        return float(lowered.replace(".", ""))
    return float(value)


def _short(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _scalar(node: ScalarNode) -> PlainValue:
    tag = node.tag
    value: str = node.value
    if tag == STR_TAG:
        return value
    if tag == NULL_TAG:
        return None
    if tag == BOOL_TAG:
        return _BOOLS[value] if value in _BOOLS else value.lower() == "true"
    if tag == INT_TAG:
        if value.startswith(("0o", "0x")):
            return int(value, 0)
        return int(value, 10)
    if tag == FLOAT_TAG:
        return core_float(value)
    raise _Refused(node, f"YAML tag {_short(tag)} is not allowed; write a plain value")


def _describe_key(node: Node) -> str:
    return f'"{node.value}"' if isinstance(node, ScalarNode) else "a key"


def _build(node: Node, depth: int) -> PlainValue:
    if depth > MAX_NESTING:
        raise _Refused(node, f"nested deeper than {MAX_NESTING} levels")
    if isinstance(node, ScalarNode):
        return _scalar(node)
    if isinstance(node, SequenceNode):
        if node.tag != SEQ_TAG:
            raise _Refused(node, f"YAML tag {_short(node.tag)} is not allowed; write a plain list")
        return [_build(item, depth + 1) for item in node.value]
    if not isinstance(node, MappingNode) or node.tag != MAP_TAG:
        raise _Refused(node, f"YAML tag {_short(node.tag)} is not allowed; write a plain mapping")
    mapping: dict[str, PlainValue] = {}
    first_seen: dict[str, Node] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            raise _Refused(key_node, "a mapping key must be plain text")
        # Keys are names (contact fields, custom-field titles): their text is what counts.
        key: str = key_node.value
        if key in mapping:
            earlier = first_seen[key].start_mark.line + 1
            raise _Refused(
                key_node, f'key "{key}" appears twice in this mapping (first at line {earlier})'
            )
        first_seen[key] = key_node
        if value_node.tag in (INT_TAG, FLOAT_TAG) and key == "phone":
            # An unquoted phone is read as the digits written, never as a number
            # (which would drop a leading zero or accept "+1…" silently).
            mapping[key] = value_node.value
        else:
            mapping[key] = _build(value_node, depth + 1)
    return mapping


def load_yaml(data: bytes, display_path: str) -> LoadedYaml | Problem | None:
    """Parse one file's bytes: its value and nodes, ``None`` for an empty document, or the
    problem that makes it unreadable (one per file: past it nothing is reliable)."""
    text = decode_text(data, display_path)
    if isinstance(text, Problem):
        return text
    if "&" in text or "*" in text:
        anchor = _anchor_problem(text, display_path)
        if anchor is not None:
            return anchor
    try:
        root = yaml.compose(text, Loader=_CoreSchemaLoader)
    except yaml.YAMLError as error:
        return _syntax_problem(error, display_path)
    except RecursionError:  # only the pure-Python fallback composer recurses
        return Problem(display_path, 1, 1, f"nested deeper than {MAX_NESTING} levels")
    if root is None:
        return None
    try:
        value = _build(root, 0)
    except _Refused as refused:
        mark = refused.node.start_mark
        return Problem(display_path, mark.line + 1, mark.column + 1, refused.message)
    return LoadedYaml(value, root)


def locate(root: Node, path: Iterable[str | int]) -> tuple[Node | None, Node]:
    """The key node (``None`` for list items and the root) and value node at ``path``;
    stops at the deepest node that exists."""
    key_node: Node | None = None
    node = root
    for step in path:
        if isinstance(node, MappingNode) and isinstance(step, str):
            found = next((pair for pair in node.value if pair[0].value == step), None)
            if found is None:
                break
            key_node, node = found
        elif isinstance(node, SequenceNode) and isinstance(step, int) and step < len(node.value):
            key_node, node = None, node.value[step]
        else:
            break
    return key_node, node


def position(node: Node) -> tuple[int, int]:
    """1-based line and column where ``node`` starts."""
    return node.start_mark.line + 1, node.start_mark.column + 1
