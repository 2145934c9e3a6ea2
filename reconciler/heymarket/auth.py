"""Heymarket credentials: where they come from and how they become an Authorization header.

The values are secrets. They are read from the environment only, and no repr, message or
log line ever shows them: errors name the environment variables instead."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass

import httpx

from reconciler.core.errors import CredentialsError
from reconciler.core.redaction import (
    API_KEY_VARIABLE,
    SECRET_ID_VARIABLE,
    SECRET_KEY_VARIABLE,
    SecretScrubber,
    signing_secret,
)

# Heymarket rejects a token 5 minutes after its `iat`; renewing a minute early leaves room for
# a slow request and a little clock skew.
TOKEN_LIFETIME_SECONDS = 300
TOKEN_RENEW_MARGIN_SECONDS = 60
# A server whose clock runs a little behind ours refuses a token issued "in the future", as
# strict JWT checks do: date `iat` this far back (the token then lives that much less).
TOKEN_BACKDATE_SECONDS = 30


@dataclass(frozen=True, slots=True, repr=False)
class JwtCredentials:
    """The preferred credentials: a secret id and key that sign short-lived HS256 tokens."""

    secret_id: str
    secret_key: str

    @property
    def variables(self) -> str:
        """The environment variables these came from, for messages (names, never values)."""
        return f"{SECRET_ID_VARIABLE}/{SECRET_KEY_VARIABLE}"

    def __repr__(self) -> str:
        return f"JwtCredentials(from {self.variables})"


@dataclass(frozen=True, slots=True, repr=False)
class ApiKeyCredentials:
    """The legacy team API key, sent as a bearer token as it is."""

    api_key: str

    @property
    def variables(self) -> str:
        return API_KEY_VARIABLE

    def __repr__(self) -> str:
        return f"ApiKeyCredentials(from {self.variables})"


Credentials = JwtCredentials | ApiKeyCredentials


def credentials_from_env(environ: Mapping[str, str]) -> Credentials:
    """The credentials in ``environ``: the JWT pair when set, else the legacy API key."""
    secret_id = environ.get(SECRET_ID_VARIABLE, "").strip()
    secret_key = environ.get(SECRET_KEY_VARIABLE, "").strip()
    api_key = environ.get(API_KEY_VARIABLE, "").strip()
    if secret_id and secret_key:
        return JwtCredentials(secret_id=secret_id, secret_key=secret_key)
    if (secret_id or secret_key) and not api_key:
        present, missing = (
            (SECRET_ID_VARIABLE, SECRET_KEY_VARIABLE)
            if secret_id
            else (SECRET_KEY_VARIABLE, SECRET_ID_VARIABLE)
        )
        raise CredentialsError(
            f"{present} is set but {missing} is not: set both (or {API_KEY_VARIABLE} instead)"
        )
    if api_key:
        return ApiKeyCredentials(api_key=api_key)
    raise CredentialsError(
        f"no Heymarket credentials: set {SECRET_ID_VARIABLE} and {SECRET_KEY_VARIABLE} "
        f"(preferred) or {API_KEY_VARIABLE} in the environment"
    )


def credential_values(credentials: Credentials) -> tuple[str, ...]:
    """Every secret ``credentials`` holds, as text a server could echo back."""
    if isinstance(credentials, ApiKeyCredentials):
        return (credentials.api_key,)
    return (
        credentials.secret_id,
        credentials.secret_key,
        signing_secret(credentials.secret_id, credentials.secret_key),
    )


def sign_token(credentials: JwtCredentials, issued_at: int) -> str:
    """A Heymarket JWT: HS256 over ``{"iss": id, "iat": issued_at}`` with key ``id||key``."""
    # Imported here: PyJWT brings in the cryptography package, which a run with an API key
    # never needs (a tenth of a warm plan's start-up).
    import jwt

    with warnings.catch_warnings():
        # Heymarket fixes the key format; a short secret is the account's choice, not ours.
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(
            {"iss": credentials.secret_id, "iat": issued_at},
            signing_secret(credentials.secret_id, credentials.secret_key),
            algorithm="HS256",
        )


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer ...`` to every request, renewing the JWT before it expires.

    Thread-safe: concurrent requests share one token and renew it once. Each token signed is
    handed to ``scrubber``, so no answer can show it back."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        wall_clock: Callable[[], float] = time.time,
        scrubber: SecretScrubber | None = None,
    ) -> None:
        self._credentials = credentials
        self._wall_clock = wall_clock
        self.scrubber = scrubber or SecretScrubber(credential_values(credentials))
        self._lock = threading.Lock()
        self._token: str | None = None
        self._issued_at = 0

    def __repr__(self) -> str:
        return f"BearerAuth({self._credentials!r})"

    def token(self, *, force_renew: bool = False) -> str:
        credentials = self._credentials
        if isinstance(credentials, ApiKeyCredentials):
            return credentials.api_key
        with self._lock:
            now = int(self._wall_clock())
            renew_at = self._issued_at + TOKEN_LIFETIME_SECONDS - TOKEN_RENEW_MARGIN_SECONDS
            if force_renew or self._token is None or now >= renew_at:
                issued_at = now - TOKEN_BACKDATE_SECONDS
                self._token = sign_token(credentials, issued_at)
                self.scrubber.remember(self._token)
                self._issued_at = issued_at
            return self._token

    def renew(self) -> None:
        """Sign a fresh token now (after a 401 that may come from an expired one)."""
        self.token(force_renew=True)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        yield request
