"""One request to the Heymarket API, with the retries that are safe for it.

``Transport.call`` sends a request and returns the JSON answer of a 2xx, or raises the error
that says what went wrong. Every answer is read through ``decoding``, which scrubs credentials
out of every string a server sends back before anything else sees it.

Retries: reads are retried after 429, 5xx, timeouts and dropped connections. Writes are
retried only when the request certainly did not reach the server (a refused connection, a
429); after a timeout, a 5xx or a dropped connection once the body was sent, a write raises
``AmbiguousWriteError`` and is never re-sent blindly, because a second create would duplicate
the contact. 429s are retried for up to ``max_retry_wait`` seconds of waiting: Heymarket counts
requests per minute, so 429s can follow one another until the window rolls over."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

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
from reconciler.core.redaction import CredentialVariables
from reconciler.heymarket.auth import BearerAuth, Credentials, JwtCredentials
from reconciler.heymarket.decoding import NOT_THE_API, ErrorBody, success_body
from reconciler.heymarket.ratelimit import SlidingWindowLimiter
from reconciler.heymarket.retry import BackoffPolicy, http_date_seconds, parse_retry_after

RATE_LIMIT_BACKOFF: Final = BackoffPolicy(base=1.0, cap=30.0)
FAILURE_BACKOFF: Final = BackoffPolicy(base=0.5, cap=30.0, max_attempts_on_failure=6)
# A server that cannot be reached (refused, unknown host, no answer to the handshake) rarely
# becomes reachable within seconds; a mistyped --api-url should fail in seconds, and an
# unroutable host within about half a minute, not after minutes of patient retrying.
CONNECT_TIMEOUT: Final = 10.0
MAX_ATTEMPTS_UNREACHED: Final = 3

# Errors raised before a byte of the request reached the server: safe to retry any request.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class BatchTooLarge(Exception):
    """The server refused a batch (400 or 413), perhaps for its size: split it and retry."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    request_id: str | None
    body: object


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """How patient the transport is, and the seams tests replace (clocks, sleep, jitter)."""

    requests_per_minute: int
    timeout: float
    write_timeout: float
    max_retry_wait: float
    on_request: Callable[[str, str], None] | None
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    wall_clock: Callable[[], float]
    uniform: Callable[[float, float], float]


class Transport:
    """Sends one request at a time with retries, rate limiting and authentication."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        options: TransportOptions,
        http_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._credentials = credentials
        self._auth = BearerAuth(credentials, wall_clock=options.wall_clock)
        # Every text an answer brings (bodies, headers, error descriptions) passes this
        # before anything else sees it: a server that echoes the Authorization header must
        # not get a credential printed, journaled or put in a job summary.
        self._scrubber = self._auth.scrubber
        self._limiter = SlidingWindowLimiter(
            options.requests_per_minute, clock=options.clock, sleep=options.sleep
        )
        timeout = options.timeout
        self._http = httpx.Client(
            base_url=base_url,
            auth=self._auth,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            transport=http_transport,
            headers={"User-Agent": f"reconciler/{__version__}", "Accept": "application/json"},
        )
        # A bulk write of a full batch may take the server far longer than a read, and a
        # timeout there makes the outcome unknown (a re-read and a retry): wait longer.
        self._write_timeout = httpx.Timeout(
            timeout,
            connect=min(timeout, CONNECT_TIMEOUT),
            read=max(timeout, options.write_timeout),
        )
        self._options = options
        self._lock = threading.Lock()
        self.request_count = 0

    def close(self) -> None:
        self._http.close()

    def call(
        self, method: str, path: str, body: object, *, write: bool, batched: bool = False
    ) -> Answer:
        """Send one request, retrying what is safe to retry; the JSON answer of a 2xx.
        ``batched``: the body holds a batch the caller can split, so a 400 or 413 raises
        ``BatchTooLarge``."""
        waited = 0.0
        failures = 0
        unreached = 0
        rate_limited = 0
        renewed_token = False
        while True:
            outcome = self._send_once(method, path, body, write=write, batched=batched)
            if isinstance(outcome, Answer):
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
            remaining = self._options.max_retry_wait - waited
            if remaining <= 0:
                raise outcome.problem
            if outcome.retry_after is not None:
                if outcome.retry_after > remaining:
                    raise outcome.problem
                delay = outcome.retry_after
            else:
                delay = min(policy.delay(retry_number, self._options.uniform), remaining)
            self._options.sleep(delay)
            waited += delay

    def _send_once(
        self, method: str, path: str, body: object, *, write: bool, batched: bool
    ) -> Answer | _Retryable:
        """One attempt: the answer, or what went wrong when trying again may help; raises
        when it cannot (a refusal, or a write whose outcome is unknown)."""
        self._limiter.acquire()
        with self._lock:
            self.request_count += 1
        if self._options.on_request is not None:
            self._options.on_request(method, path)
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
                return Answer(
                    status, request_id, success_body(response, request_id, self._scrubber)
                )
            except BadResponseError as unreadable:
                if write:
                    raise AmbiguousWriteError(
                        f"{method} {path}: {unreadable}; re-read the contacts to learn whether "
                        "it was applied"
                    ) from None
                raise
        error_body = ErrorBody.of(response, self._scrubber)
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
        if status == HTTPStatus.NOT_IMPLEMENTED and not write:
            # "This server has no such method": what a web server that is not the API says
            # (Python's own http.server, for one), not an outage to wait out.
            raise BadResponseError(
                f"{method} {path} answered HTTP 501 Not Implemented ({error_body.message}): "
                f"{self.base_url} {NOT_THE_API}",
                status=status,
                request_id=request_id,
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
            raise BatchTooLarge(
                ApiError(
                    f"Heymarket refused {method} {path}: {error_body.message}",
                    status=status,
                    request_id=request_id,
                    code=error_body.code,
                )
            )
        if not error_body.is_json:
            raise BadResponseError(
                f"{method} {path} answered HTTP {status} with {error_body.message}: "
                f"{self.base_url} {NOT_THE_API}",
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
        now = http_date_seconds(response.headers.get("Date")) or self._options.wall_clock()
        return parse_retry_after(response.headers.get("Retry-After"), now=now)

    def _authentication_error(
        self, response: httpx.Response, error_body: ErrorBody
    ) -> AuthenticationError:
        variables = self._credentials.variables
        if response.status_code == 401:
            text = f"Heymarket did not accept the credentials from {variables}"
            advice = f"check {variables}"
            if isinstance(self._credentials, JwtCredentials):
                advice += " and that this machine's clock is right (tokens live 5 minutes)"
            else:
                # Heymarket documents the team key as planned for deprecation.
                names = CredentialVariables.with_prefix(self._credentials.prefix)
                advice += (
                    f", or set {names.secret_id} and {names.secret_key} instead "
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


@dataclass(frozen=True, slots=True)
class _Retryable:
    """An attempt that failed in a way another attempt may cure."""

    problem: ApiError | TransportError
    retry_after: float | None = None
    rate_limited: bool = False
    expired_token: bool = False
    # Nothing reached the server: no connection could be made.
    unreached: bool = False


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
