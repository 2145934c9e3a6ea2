"""YAML text that libyaml (``validate``) and ruamel.yaml (``fmt``, which keeps comments)
read alike: how values are written (escapes in double quotes for anything a reader could
fold, refuse or read otherwise; block style only where it reads back the same), and how a
file is first rewritten where ruamel.yaml would read it otherwise than libyaml."""

from __future__ import annotations

import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter
from yaml import ScalarToken, scan

from reconciler.desired.yaml_safety import STR_TAG, _CoreSchemaLoader

_SURROGATE = re.compile("[\ud800-\udfff]")
# What every YAML reader keeps exactly as written, in every scalar style: printable
# characters other than the ones YAML reads as line breaks (NEL, LS, PS) or as a byte order
# mark. Anything else (C0 and C1 controls, tab, line ends, DEL, U+FFFE/U+FFFF, a surrogate)
# is refused raw, folded into a space, or read differently by libyaml and ruamel.yaml.
RAW_TEXT = re.compile(
    "[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*"
)


# Inside a block scalar (| or >) line ends and tabs are content, read alike by both.
_RAW_BLOCK_TEXT = re.compile(
    "[\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*"
)


_AWKWARD_BLOCK = re.compile("^\\s|[ \\t]\n|[ \\t]$|\n\n\n")


# A line of nothing but spaces and tabs, inside a block scalar's source.
_BLANK_LINE = re.compile("(?m)^[ \\t]+(?=\\r?$)")


def writable(text: str) -> bool:
    """Whether a UTF-8 file can hold ``text`` at all: a lone surrogate (which a JSON answer
    can carry as ``\\ud800``) has no UTF-8 form and no YAML escape either."""
    return _SURROGATE.search(text) is None


class _Representer(RoundTripRepresenter):
    """ruamel.yaml's representer, but a string that holds anything a reader could fold, refuse
    or read otherwise is written double-quoted, where each such character is an escape
    (``\\N`` for NEL, ``\\t`` for tab...). Left to itself, ruamel.yaml writes NEL raw in a
    single-quoted scalar, which every reader then folds into a space."""

    def represent_scalar(
        self, tag: Any, value: Any, style: Any = None, anchor: Any = None
    ) -> ScalarNode:
        if tag == STR_TAG and isinstance(value, str):
            if style in ("|", ">"):
                # A folded scalar marks its fold points with BEL, which raw text never holds.
                text = str(value).replace("\a", "") if style == ">" else str(value)
                if not block_keeps(text):
                    return super().represent_scalar(tag, text, style='"', anchor=anchor)
            elif not RAW_TEXT.fullmatch(value):
                return super().represent_scalar(tag, str(value), style='"', anchor=anchor)
        node: ScalarNode = super().represent_scalar(tag, value, style=style, anchor=anchor)
        return node


def block_keeps(text: str) -> bool:
    """Whether a value reads back the same from the block scalar ruamel.yaml writes for it,
    and from what it writes next: raw text, not empty, with no white space at either end of
    a line nor at the start, nor more than one empty line in a row. Any other value is
    written double-quoted."""
    return (
        text != ""
        and _RAW_BLOCK_TEXT.fullmatch(text) is not None
        and _AWKWARD_BLOCK.search(text) is None
    )


def _represent_null(representer: Any, _: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


# "email: null" says "managed and cleared" louder than an empty value does.
_Representer.add_representer(type(None), _represent_null)


def round_trip_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Representer = _Representer
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never fold a long name or comment onto two lines
    return yaml


def readable_alike(text: str) -> str:
    """``text`` with what ruamel.yaml reads otherwise than libyaml (or refuses) rewritten so
    that both read the same values:

    - a plain scalar holding a tab (ruamel.yaml refuses it) becomes double-quoted;
    - a tab between tokens (ruamel.yaml refuses it) becomes a space;
    - a block scalar (| or >) whose value the writer would not keep in block style anyway
      becomes double-quoted (the two readers differ on odd block indentation); in one it
      keeps, a line of only white space becomes empty, as it reads.

    Tabs inside quoted and block scalars and in comments are read alike, and stay."""
    pieces: list[str] = []
    end = 0
    for token in scan(text, Loader=_CoreSchemaLoader):
        start = token.start_mark.index
        if start < end:
            continue  # a zero-width token inside the span already copied
        pieces.append(_spaces_for_separating_tabs(text[end:start]))
        end = token.end_mark.index
        source = text[start:end]
        if isinstance(token, ScalarToken) and token.style in ("|", ">"):
            if block_keeps(token.value):
                pieces.append(_BLANK_LINE.sub("", source))
            else:
                # The comment on its header line and its line ends stay (so the next token
                # keeps its line).
                header = source.splitlines()[0]
                comment = " " + header[header.index("#") :] if "#" in header else ""
                line_ends = source[len(source.rstrip(" \t\r\n")) :]
                pieces.append(double_quoted(token.value) + comment + _BLANK_LINE.sub("", line_ends))
        elif isinstance(token, ScalarToken) and token.plain and "\t" in source:
            pieces.append(double_quoted(token.value))
        else:
            pieces.append(source)
    pieces.append(_spaces_for_separating_tabs(text[end:]))
    return "".join(pieces)


def _spaces_for_separating_tabs(between_tokens: str) -> str:
    """Between two tokens there is only white space and comments; a comment runs from
    ``#`` to the end of its line, and its tabs are its own."""
    if "\t" not in between_tokens:
        return between_tokens
    lines = between_tokens.split("\n")
    for index, line in enumerate(lines):
        before, hash_mark, comment = line.partition("#")
        lines[index] = before.replace("\t", " ") + hash_mark + comment
    return "\n".join(lines)


def double_quoted(value: str) -> str:
    """``value`` as a double-quoted scalar both readers read back exactly."""
    escaped: list[str] = []
    for char in value:
        if char in '"\\':
            escaped.append("\\" + char)
        elif RAW_TEXT.fullmatch(char):
            escaped.append(char)
        elif char <= "\xff":
            escaped.append(f"\\x{ord(char):02X}")
        elif char <= "\uffff":
            escaped.append(f"\\u{ord(char):04X}")
        else:
            escaped.append(f"\\U{ord(char):08X}")
    return '"' + "".join(escaped) + '"'
