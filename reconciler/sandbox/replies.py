"""What a route answers, apart from how it reaches the socket: a status and a JSON body, or
DROP for a connection closed without an answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


# A handler's way of saying "close the socket without answering".
DROP: Final = Reply(status=0, body=None)

# The query string, as parse_qs reads it.
Query = Mapping[str, list[str]]

# One route: the decoded JSON body (None when empty) and the query, to a reply.
Handler = Callable[[Any, Query], Reply]


def error_reply(status: int, code: str, message: str, **headers: str) -> Reply:
    """The documented error body: ``{"error": "<code>", "message": "<text>"}``."""
    return Reply(status, {"error": code, "message": message}, headers)
