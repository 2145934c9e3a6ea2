"""Reading the body of an answer: the one door through which a server's words enter the
program. Every string in it is scrubbed of credentials here, as it is decoded, so a server
that echoes the Authorization header cannot get a credential printed, journaled or put in a
job summary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from reconciler.core.errors import BadResponseError, one_line
from reconciler.core.redaction import SecretScrubber
from reconciler.files.untrusted_json import UnreadableJson, decode_json

# What an answer no Heymarket would give means, after "<the URL> ": a wrong URL, not an outage.
NOT_THE_API = (
    "does not look like the Heymarket API; check the API URL "
    "(--api-url, HEYMARKET_API_URL or api.url in reconciler.yaml)"
)


def success_body(
    response: httpx.Response, request_id: str | None, scrubber: SecretScrubber
) -> object:
    """The JSON of a 2xx answer; raises ``BadResponseError`` when it cannot be read."""
    if 200 <= response.status_code < 300:
        text = response.content.strip()
        # "ok" as bare text (not a JSON string) or an empty success: the delete documents
        # only the word, not its encoding.
        if text.lower() in (b"ok", b""):
            return "ok"
    try:
        return _decoded(response.content, scrubber)
    except UnreadableJson as error:
        if not error.not_json:
            raise BadResponseError(
                f"Heymarket answered with JSON that cannot be read ({error.reason}): "
                f"the API URL {NOT_THE_API}",
                status=response.status_code,
                request_id=request_id,
            ) from None
        content_type = _content_type(response, scrubber)
        raise BadResponseError(
            f"Heymarket answered with a body that is not JSON ({content_type}): "
            f"the API URL {NOT_THE_API}",
            status=response.status_code,
            request_id=request_id,
        ) from None


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """The ``error`` code and ``message`` of an error answer, whatever its shape."""

    code: str | None
    message: str
    is_json: bool

    @classmethod
    def of(cls, response: httpx.Response, scrubber: SecretScrubber) -> ErrorBody:
        try:
            body = _decoded(response.content, scrubber)
        except UnreadableJson as error:
            if not error.not_json:
                return cls(None, f"a JSON body that cannot be read ({error.reason})", is_json=False)
            content_type = _content_type(response, scrubber)
            return cls(None, f"a body that is not JSON ({content_type})", is_json=False)
        if isinstance(body, Mapping):
            code = body.get("error")
            message = body.get("message") or code or "no message"
            return cls(
                None if code is None else server_words(str(code)),
                server_words(str(message)),
                is_json=True,
            )
        if isinstance(body, str) and body:
            return cls(None, server_words(body), is_json=True)
        return cls(None, "no message", is_json=True)


# A server's own words go into our one-line messages; a proxy or a broken server can send
# kilobytes of them, which would bury the advice that follows.
MAX_SERVER_MESSAGE = 300


def server_words(text: str) -> str:
    """A server's own words as our messages quote them: one line, and short."""
    text = one_line(text)
    if len(text) <= MAX_SERVER_MESSAGE:
        return text
    return f"{text[:MAX_SERVER_MESSAGE]}... ({len(text)} characters)"


def _decoded(content: bytes, scrubber: SecretScrubber) -> object:
    """An answer's JSON with every string in it scrubbed of credentials: the one door through
    which a server's words enter the program (error messages, ``failed_contacts`` reasons,
    the values a parse error quotes, contact fields alike). Raises ``UnreadableJson``."""
    body: object = decode_json(content)
    if scrubber.might_hold(content.decode("utf-8", "replace")):
        body = scrubber.scrub_json(body)
    return body


def _content_type(response: httpx.Response, scrubber: SecretScrubber) -> str:
    return scrubber.scrub(response.headers.get("Content-Type", "no content type"))
