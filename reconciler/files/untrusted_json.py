"""The one JSON decoder of the package. Every file it reads back (backups, saved plans, the
live snapshot, the parse cache), every answer of a server and every body the sandbox is sent
may be damaged or hostile; all of them come through ``decode_json``.

The standard decoder lets four kinds of trouble out past a plain ``except ValueError``, or
not at all: nesting deep enough to raise ``RecursionError``, bytes that are not UTF-8,
``NaN``/``Infinity`` (not JSON, and a NaN compares unequal to everything, so a guard reading
it would pass), and a lone UTF-16 surrogate such as ``"\\ud800"``, which decodes to a string
that cannot be written to a file, a terminal or a request later. Here each of them is one
``UnreadableJson`` with a one-line reason, which the caller words as its own typed error."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from reconciler.core.errors import one_line

# A high surrogate escape not followed by a low one, or a low one not preceded by a high one.
# A false positive (an escaped backslash before "u") only costs the exact check below.
_LONE_SURROGATE_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


class UnreadableJson(ValueError):
    """Text that does not decode to a JSON value. ``reason`` is one line; ``line`` is where
    the decoder stopped, when it knows (1-based). ``not_json`` is true when the text is not
    JSON at all (not UTF-8, or a syntax error), false when it is JSON no value can be made of
    (too deep, NaN, a number out of range, a lone surrogate)."""

    def __init__(self, reason: str, line: int | None = None, *, not_json: bool = False) -> None:
        self.reason = one_line(reason)
        self.line = line
        self.not_json = not_json
        super().__init__(self.reason if line is None else f"line {line}: {self.reason}")


def _no_constant(name: str) -> Any:
    raise UnreadableJson(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise UnreadableJson(f"the number {text[:40]} is too large")
    return value


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)


def _has_lone_surrogate(value: object) -> bool:
    # Iterative: the value may be nested nearly as deep as the decoder allows.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def decode_json(data: str | bytes) -> Any:
    """The JSON value ``data`` holds (bytes must be UTF-8), or ``UnreadableJson``."""
    if isinstance(data, bytes):
        try:
            # Strict UTF-8 (the standard decoder would let encoded surrogates pass).
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise UnreadableJson(
                f"not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})",
                not_json=True,
            ) from None
    else:
        text = data
    try:
        value = _DECODER.decode(text)
    except UnreadableJson:
        raise
    except json.JSONDecodeError as error:
        raise UnreadableJson(error.msg, error.lineno, not_json=True) from None
    except RecursionError:
        raise UnreadableJson("nested too deeply to read") from None
    except ValueError:  # an integer of more digits than Python converts
        raise UnreadableJson("a number with too many digits to read") from None
    # Every surrogate escape starts "\ud" or "\uD": two substring searches rule most texts
    # out far faster than the pattern (which a warm plan would run over every cache entry).
    maybe_surrogate = "\\ud" in text or "\\uD" in text
    if maybe_surrogate and _LONE_SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise UnreadableJson("a string holds a lone UTF-16 surrogate, which is not text")
    return value
