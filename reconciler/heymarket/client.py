"""The Heymarket contacts API over HTTP: listing, search, custom fields and bulk writes, with
rate limiting, retries and honest reporting of writes whose outcome is unknown.

Retries: reads (list, search, count, field definitions) are retried after 429, 5xx,
timeouts and dropped connections. Writes are retried only when the request certainly did
not reach the server (a refused connection, a 429); after a timeout, a 5xx or a dropped
connection once the body was sent, the items are reported as *ambiguous* and never re-sent
blindly, because a second create would duplicate the contact. The caller re-reads them.

429s are retried for up to ``max_retry_wait`` seconds of waiting (default 120): Heymarket
counts requests per minute, so 429s can follow one another until the window rolls over."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, TypeVar

import httpx
from httpx import USE_CLIENT_DEFAULT

from reconciler import __version__
from reconciler.core.errors import (
    AmbiguousWriteError,
    ApiError,
    AuthenticationError,
    BadResponseError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from reconciler.core.model import CustomField, LiveContact
from reconciler.core.redaction import SECRET_ID_VARIABLE, SECRET_KEY_VARIABLE, SecretScrubber
from reconciler.files.untrusted_json import UnreadableJson, decode_json
from reconciler.heymarket.auth import BearerAuth, Credentials, JwtCredentials
from reconciler.heymarket.listing import keep_newest, list_contacts
from reconciler.heymarket.pagination import PageRequest
from reconciler.heymarket.parse import (
    FailedItem,
    canonical_timestamp,
    parse_bulk_write,
    parse_contact_list,
    parse_count,
    parse_custom_fields,
    parse_delete_answer,
)
from reconciler.heymarket.ratelimit import SlidingWindowLimiter
from reconciler.heymarket.retry import (
    BackoffPolicy,
    default_uniform,
    http_date_seconds,
    parse_retry_after,
)

LIST_PATH: Final = "/v2/contacts/list"
SEARCH_PATH: Final = "/v2/contacts/search"
BULK_PATH: Final = "/v2/contacts"
COUNT_PATH: Final = "/v1/contacts/count"
FIELDS_LIST_PATH: Final = "/v1/contact-fields"
FIELDS_CREATE_PATH: Final = "/v1/contacts/fields"

EPOCH: Final = "1970-01-01T00:00:00Z"
RATE_LIMIT_BACKOFF: Final = BackoffPolicy(base=1.0, cap=30.0)
FAILURE_BACKOFF: Final = BackoffPolicy(base=0.5, cap=30.0, max_attempts_on_failure=6)
# A server that cannot be reached (refused, unknown host, no answer to the handshake) rarely
# becomes reachable within seconds; a mistyped --api-url should fail in seconds, and an
# unroutable host within about half a minute, not after minutes of patient retrying.
CONNECT_TIMEOUT: Final = 10.0
MAX_ATTEMPTS_UNREACHED: Final = 3

T = TypeVar("T")

# Errors raised before a byte of the request reached the server: safe to retry any request.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What ``bulk_upsert`` did, item by item.

    ``ambiguous`` holds the items of batches whose outcome is unknown (a timeout, 5xx or
    dropped connection after the body was sent): they may or may not have been written."""

    succeeded: list[Mapping[str, Any]] = field(default_factory=list)
    failed: list[FailedItem] = field(default_factory=list)
    ambiguous: list[Mapping[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What ``bulk_delete`` did: the server answered "ok" for ``deleted``; the outcome of
    ``ambiguous`` is unknown."""

    deleted: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)


class _BatchTooLarge(Exception):
    """The server refused a batch (400 or 413), perhaps for its size: split it and retry."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    request_id: str | None
    body: object


class HeymarketClient:
    """A client for one Heymarket account. Thread-safe; use as a context manager."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        requests_per_minute: int = 500,
        timeout: float = 30.0,
        write_timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
        page_size: int = 100,
        batch_size: int = 100,
        max_retry_wait: float = 120.0,
        on_request: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        uniform: Callable[[float, float], float] = default_uniform,
    ) -> None:
        if page_size < 1 or batch_size < 1:
            raise ValueError("page_size and batch_size must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._auth = BearerAuth(credentials, wall_clock=wall_clock)
        # Every text an answer brings (bodies, headers, error descriptions) passes this
        # before anything else sees it: a server that echoes the Authorization header must
        # not get a credential printed, journaled or put in a job summary.
        self._scrubber = self._auth.scrubber
        self._limiter = SlidingWindowLimiter(requests_per_minute, clock=clock, sleep=sleep)
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=self._auth,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            transport=transport,
            headers={"User-Agent": f"reconciler/{__version__}", "Accept": "application/json"},
        )
        # A bulk write of a full batch may take the server far longer than a read, and a
        # timeout there makes the outcome unknown (a re-read and a retry): wait longer.
        self._write_timeout = httpx.Timeout(
            timeout, connect=min(timeout, CONNECT_TIMEOUT), read=max(timeout, write_timeout)
        )
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._uniform = uniform
        self._max_retry_wait = max_retry_wait
        self._on_request = on_request
        self._lock = threading.Lock()
        self.page_size = page_size
        self.batch_size = batch_size
        self.delete_batch_size = batch_size
        self.search_batch_size = batch_size
        self.request_count = 0

    def __repr__(self) -> str:
        return f"HeymarketClient({self.base_url!r}, {self._credentials!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HeymarketClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- reads -------------------------------------------------------------------------

    def list_contacts(self) -> list[LiveContact]:
        """Every contact of the account exactly once (its newest version seen), in
        ascending ``updated`` order."""
        return self._list_from(EPOCH)

    def list_contacts_since(self, updated: str) -> list[LiveContact]:
        """Every contact whose ``updated`` is at or after ``updated`` (RFC 3339), once each."""
        try:
            start = canonical_timestamp(updated, "since")
        except BadResponseError:
            raise ValueError(f"not an RFC 3339 timestamp: {updated!r}") from None
        return self._list_from(start)

    def search_by_phones(self, phones: Sequence[str]) -> list[LiveContact]:
        """The contacts with these phone numbers (those that exist), once each."""
        unique = list(dict.fromkeys(phones))
        found: dict[int, LiveContact] = {}

        def send(batch: Sequence[str]) -> None:
            body = {"contact_channels": [{"channel_type": "phone", "channel_ids": list(batch)}]}
            answer = self._call("POST", SEARCH_PATH, body, write=False, batched=True)
            for contact in parse_contact_list(answer.body):
                keep_newest(found, contact)

        self._run_batches(unique, "search_batch_size", send)
        return list(found.values())

    def count(self) -> int:
        return parse_count(self._call("POST", COUNT_PATH, {}, write=False).body)

    def list_custom_fields(self) -> list[CustomField]:
        return parse_custom_fields(self._call("POST", FIELDS_LIST_PATH, {}, write=False).body)

    # -- writes ------------------------------------------------------------------------

    def create_custom_fields(self, titles: Sequence[str]) -> list[CustomField]:
        """Create custom fields by title; one that exists already comes back with its id.

        Raises ``AmbiguousWriteError`` when the outcome is unknown (list them to find out)."""
        if not titles:
            return []
        body = [{"title": title} for title in titles]
        return parse_custom_fields(self._call("POST", FIELDS_CREATE_PATH, body, write=True).body)

    def bulk_upsert(self, items: Sequence[Mapping[str, Any]]) -> UpsertResult:
        """Create (no ``contact_id``) or update contacts through ``POST /v2/contacts``."""
        result = UpsertResult()

        def send(batch: Sequence[Mapping[str, Any]]) -> None:
            try:
                answer = self._call(
                    "POST", BULK_PATH, {"contacts": list(batch)}, write=True, batched=True
                )
            except AmbiguousWriteError:
                result.ambiguous.extend(batch)
                return
            try:
                succeeded, failed = parse_bulk_write(answer.body)
            except BadResponseError:
                succeeded, failed = [], []
            if len(succeeded) + len(failed) != len(batch):
                # A success we cannot read, or one that does not account for every item, may
                # still have written: the caller re-reads instead of trusting it.
                result.ambiguous.extend(batch)
                return
            result.succeeded.extend(succeeded)
            result.failed.extend(failed)

        self._run_batches(list(items), "batch_size", send)
        return result

    def bulk_delete(self, uuids: Sequence[str]) -> DeleteResult:
        """Delete contacts permanently through ``DELETE /v2/contacts``."""
        result = DeleteResult()

        def send(batch: Sequence[str]) -> None:
            body = {"contact_channels": [{"channel_type": "id", "channel_ids": list(batch)}]}
            try:
                answer = self._call("DELETE", BULK_PATH, body, write=True, batched=True)
            except AmbiguousWriteError:
                result.ambiguous.extend(batch)
                return
            try:
                parse_delete_answer(answer.body)
            except BadResponseError:
                # A success we cannot read: the caller's search tells what is gone.
                result.ambiguous.extend(batch)
                return
            result.deleted.extend(batch)

        self._run_batches(list(dict.fromkeys(uuids)), "delete_batch_size", send)
        return result

    # -- listing -----------------------------------------------------------------------

    def _list_from(self, start: str) -> list[LiveContact]:
        while True:
            answered = False

            def fetch_page(request: PageRequest) -> list[LiveContact]:
                nonlocal answered
                # Only the first page can tell that `limit` is over the server's largest
                # (later ones ask for no more than it served); a refusal then is a smaller
                # page size to try, as a silent cap would have been.
                body = self._call(
                    "POST",
                    LIST_PATH,
                    request.body(),
                    write=False,
                    batched=not answered and request.limit > 1,
                ).body
                answered = True
                # A whole account: typed fields only (~150 MB less at 100k contacts); whatever
                # needs a full record (a prune backup) re-reads those contacts by search.
                return parse_contact_list(body, keep_raw=False)

            try:
                return list_contacts(fetch_page, start, self.page_size)
            except _BatchTooLarge:
                self.page_size = max(1, self.page_size // 2)

    # -- batching ----------------------------------------------------------------------

    def _run_batches(
        self, items: list[T], size_attribute: str, send: Callable[[Sequence[T]], None]
    ) -> None:
        """Send ``items`` in batches of the size in ``size_attribute``, halving it (and
        remembering the smaller size) each time the server calls a batch too large."""
        position = 0
        while position < len(items):
            size: int = getattr(self, size_attribute)
            batch = items[position : position + size]
            try:
                send(batch)
            except _BatchTooLarge as too_large:
                if len(batch) == 1:
                    raise too_large.error from None
                setattr(self, size_attribute, max(1, min(size, len(batch)) // 2))
                continue
            position += len(batch)

    # -- one request -------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: object, *, write: bool, batched: bool = False
    ) -> _Answer:
        """Send one request, retrying what is safe to retry; the JSON answer of a 2xx.
        ``batched``: the body holds a batch the caller can split, so a 400 or 413 raises
        ``_BatchTooLarge``."""
        waited = 0.0
        failures = 0
        unreached = 0
        rate_limited = 0
        renewed_token = False
        while True:
            outcome = self._send_once(method, path, body, write=write, batched=batched)
            if isinstance(outcome, _Answer):
                return outcome
            if outcome.expired_token:
                if renewed_token or not isinstance(self._credentials, JwtCredentials):
                    raise outcome.problem
                # A token can expire in flight; a 401 means nothing was done, so sign anew.
                renewed_token = True
                self._auth.renew()
                continue
            if outcome.rate_limited:
                rate_limited += 1
                policy, retry_number = RATE_LIMIT_BACKOFF, rate_limited - 1
            else:
                failures += 1
                unreached += outcome.unreached
                if (
                    failures >= FAILURE_BACKOFF.max_attempts_on_failure
                    or unreached >= MAX_ATTEMPTS_UNREACHED
                ):
                    raise outcome.problem
                policy, retry_number = FAILURE_BACKOFF, failures - 1
            remaining = self._max_retry_wait - waited
            if remaining <= 0:
                raise outcome.problem
            if outcome.retry_after is not None:
                if outcome.retry_after > remaining:
                    raise outcome.problem
                delay = outcome.retry_after
            else:
                delay = min(policy.delay(retry_number, self._uniform), remaining)
            self._sleep(delay)
            waited += delay

    def _send_once(
        self, method: str, path: str, body: object, *, write: bool, batched: bool
    ) -> _Answer | _Retryable:
        """One attempt: the answer, or what went wrong when trying again may help; raises
        when it cannot (a refusal, or a write whose outcome is unknown)."""
        self._limiter.acquire()
        with self._lock:
            self.request_count += 1
        if self._on_request is not None:
            self._on_request(method, path)
        try:
            response = self._http.request(
                method,
                path,
                json=body,
                timeout=self._write_timeout if write else USE_CLIENT_DEFAULT,
            )
        except _NOT_SENT as error:
            return _Retryable(
                TransportError(
                    f"could not reach Heymarket at {self.base_url} "
                    f"({self._describe(error)}): "
                    "check --api-url / HEYMARKET_API_URL and the network"
                ),
                unreached=True,
            )
        except httpx.UnsupportedProtocol:
            raise TransportError(
                f"{self.base_url} is not an http(s) URL: check --api-url / HEYMARKET_API_URL"
            ) from None
        except httpx.TransportError as error:
            if write:
                raise AmbiguousWriteError(
                    f"{method} {path}: no answer after the request was sent "
                    f"({self._describe(error)}); re-read the contacts to learn whether it was "
                    "applied"
                ) from None
            return _Retryable(
                TransportError(
                    f"lost the connection to Heymarket at {self.base_url} ({self._describe(error)})"
                )
            )
        request_id = self._header(response, "X-Request-Id")
        status = response.status_code
        if 200 <= status < 300:
            try:
                return _Answer(status, request_id, self._json_body(response, request_id))
            except BadResponseError as unreadable:
                if write:
                    raise AmbiguousWriteError(
                        f"{method} {path}: {unreadable}; re-read the contacts to learn whether "
                        "it was applied"
                    ) from None
                raise
        error_body = _ErrorBody.of(response, self._scrubber)
        if status == 401:
            return _Retryable(self._authentication_error(response, error_body), expired_token=True)
        if status == 403:
            raise self._authentication_error(response, error_body)
        if status == 429:
            return _Retryable(
                RateLimitedError(
                    f"Heymarket kept answering 429 Too Many Requests ({error_body.message}): "
                    "lower api.requests_per_minute or try again later",
                    status=status,
                    request_id=request_id,
                    code=error_body.code,
                ),
                retry_after=self._retry_after(response),
                rate_limited=True,
            )
        if status >= 500:
            if write:
                raise AmbiguousWriteError(
                    f"{method} {path}: Heymarket answered HTTP {status} ({error_body.message}, "
                    f"request id {request_id or 'none'}) after the request was sent; "
                    "re-read the contacts to learn whether it was applied"
                )
            return _Retryable(
                ServerError(
                    f"Heymarket answered {status} ({error_body.message}): try again later",
                    status=status,
                    request_id=request_id,
                    code=error_body.code,
                ),
                retry_after=self._retry_after(response),
            )
        if batched and status in (400, 413):
            # The largest batch is undocumented, and so is how a server says a batch is over
            # it: a 413 (often a proxy's page, not JSON) or a 400 in words of its own. A
            # refusal wrote nothing, so a smaller batch is a safe way to find out; a single
            # item refused is the server's last word.
            raise _BatchTooLarge(
                ApiError(
                    f"Heymarket refused {method} {path}: {error_body.message}",
                    status=status,
                    request_id=request_id,
                    code=error_body.code,
                )
            )
        if not error_body.is_json:
            raise BadResponseError(
                f"Heymarket answered {method} {path} with {error_body.message}: check that the "
                "API URL points at the Heymarket API",
                status=status,
                request_id=request_id,
            )
        refusal = ApiError(
            f"Heymarket refused {method} {path}: {error_body.message}",
            status=status,
            request_id=request_id,
            code=error_body.code,
        )
        raise refusal

    def _retry_after(self, response: httpx.Response) -> float | None:
        # The server's own Date header, when present, keeps a skewed local clock out of it.
        now = http_date_seconds(response.headers.get("Date")) or self._wall_clock()
        return parse_retry_after(response.headers.get("Retry-After"), now=now)

    def _authentication_error(
        self, response: httpx.Response, error_body: _ErrorBody
    ) -> AuthenticationError:
        variables = self._credentials.variables
        if response.status_code == 401:
            text = f"Heymarket did not accept the credentials from {variables}"
            advice = f"check {variables}"
            if isinstance(self._credentials, JwtCredentials):
                advice += " and that this machine's clock is right (tokens live 5 minutes)"
            else:
                # Heymarket documents the team key as planned for deprecation.
                advice += (
                    f", or set {SECRET_ID_VARIABLE} and {SECRET_KEY_VARIABLE} instead "
                    "(an account may no longer accept the legacy key)"
                )
        else:
            text = f"Heymarket denied access with the credentials from {variables}"
            advice = f"check that the account behind {variables} may use the contacts API"
        return AuthenticationError(
            f"{text} ({error_body.message}): {advice}",
            status=response.status_code,
            request_id=self._header(response, "X-Request-Id"),
        )

    def _header(self, response: httpx.Response, name: str) -> str | None:
        value = response.headers.get(name)
        return None if value is None else self._scrubber.scrub(value)

    def _describe(self, error: Exception) -> str:
        return self._scrubber.scrub(_describe(error))

    def _json_body(self, response: httpx.Response, request_id: str | None) -> object:
        if 200 <= response.status_code < 300:
            text = response.content.strip()
            # "ok" as bare text (not a JSON string) or an empty success: the delete documents
            # only the word, not its encoding.
            if text.lower() in (b"ok", b""):
                return "ok"
        try:
            return _decoded(response.content, self._scrubber)
        except UnreadableJson as error:
            if not error.not_json:
                raise BadResponseError(
                    f"Heymarket answered with JSON that cannot be read ({error.reason}): check "
                    "that the API URL points at the Heymarket API",
                    status=response.status_code,
                    request_id=request_id,
                ) from None
            content_type = _content_type(response, self._scrubber)
            raise BadResponseError(
                f"Heymarket answered with a body that is not JSON ({content_type}): "
                "check that the API URL points at the Heymarket API",
                status=response.status_code,
                request_id=request_id,
            ) from None


@dataclass(frozen=True, slots=True)
class _Retryable:
    """An attempt that failed in a way another attempt may cure."""

    problem: ApiError | TransportError
    retry_after: float | None = None
    rate_limited: bool = False
    expired_token: bool = False
    # Nothing reached the server: no connection could be made.
    unreached: bool = False


@dataclass(frozen=True, slots=True)
class _ErrorBody:
    """The ``error`` code and ``message`` of an error answer, whatever its shape."""

    code: str | None
    message: str
    is_json: bool

    @classmethod
    def of(cls, response: httpx.Response, scrubber: SecretScrubber) -> _ErrorBody:
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
                None if code is None else _quoted(str(code)), _quoted(str(message)), is_json=True
            )
        if isinstance(body, str) and body:
            return cls(None, _quoted(body), is_json=True)
        return cls(None, "no message", is_json=True)


# A server's own words go into our one-line messages; a proxy or a broken server can send
# kilobytes of them, which would bury the advice that follows.
MAX_SERVER_MESSAGE = 300


def _quoted(text: str) -> str:
    if len(text) <= MAX_SERVER_MESSAGE:
        return text
    return f"{text[:MAX_SERVER_MESSAGE]}... ({len(text)} characters)"


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


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
