"""Credentials out of every text a server sends back: a server (or a proxy in front of it)
that echoes the ``Authorization`` header in an error message must not get the API key, the
secret id and key, or a signed token printed in a CI log, journaled or put in a job summary.

A ``SecretScrubber`` knows the credential values and every token signed with them, and also
replaces anything shaped like a JSON Web Token (a token signed in another process, or one
half of one, still carries the secret id in its payload)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import NamedTuple

# Where the credentials come from (reconciler.heymarket.auth reads them); named here so that
# the output edge can keep their values out of what it prints without loading the client.
# One account's variables share a prefix: HEYMARKET_ by default, an account's
# ``credentials_env`` when several are configured.
DEFAULT_CREDENTIALS_PREFIX = "HEYMARKET"


class CredentialVariables(NamedTuple):
    """The names of one account's credential variables."""

    secret_id: str
    secret_key: str
    api_key: str

    @classmethod
    def with_prefix(cls, prefix: str = DEFAULT_CREDENTIALS_PREFIX) -> CredentialVariables:
        return cls(f"{prefix}_SECRET_ID", f"{prefix}_SECRET_KEY", f"{prefix}_API_KEY")


SECRET_ID_VARIABLE, SECRET_KEY_VARIABLE, API_KEY_VARIABLE = CredentialVariables.with_prefix()

REDACTED = "[redacted]"
# Shorter values are not credentials anyone issues; replacing them would blank out ordinary
# words and numbers all over the output.
MIN_SECRET_LENGTH = 6
# A JWT's header and payload are base64url JSON objects, so each starts with "eyJ" ('{"');
# one segment alone is enough to reveal the payload's `iss` (the secret id).
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}(?:\.[A-Za-z0-9_-]*){0,2}")


def _escaped_forms(value: str) -> set[str]:
    """``value`` as it appears in text, and inside a JSON string (some encoders also write
    ``/`` as ``\\/``): the quick check on a raw body must see all of them."""
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]
    return {value, escaped, escaped.replace("/", "\\/")}


class SecretScrubber:
    """Replaces credential values and token-shaped text with ``[redacted]``. Thread-safe:
    a client signs tokens and reads answers on several threads."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()
        self._forms: tuple[str, ...] = ()
        self.remember(*values)

    def remember(self, *values: str) -> None:
        """Also scrub these values from now on (a token just signed, say)."""
        kept = {value for value in values if len(value) >= MIN_SECRET_LENGTH}
        with self._lock:
            known = set(self._values) | kept
            # Longest first: `id||key` goes before `id`, or its `||key` would be left over.
            self._values = tuple(sorted(known, key=len, reverse=True))
            self._forms = tuple({form for value in known for form in _escaped_forms(value)})

    def might_hold(self, text: str) -> bool:
        """Whether ``text`` (decoded or still JSON-encoded) may hold a secret; a cheap check
        that lets the common answer skip the full scrub."""
        forms = self._forms
        return any(form in text for form in forms) or JWT_SHAPE.search(text) is not None

    def scrub(self, text: str) -> str:
        values = self._values
        for value in values:
            if value in text:
                text = text.replace(value, REDACTED)
        return JWT_SHAPE.sub(REDACTED, text)

    def scrub_json(self, value: object) -> object:
        """A decoded JSON value with every string in it (keys included) scrubbed."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, list):
            return [self.scrub_json(item) for item in value]
        if isinstance(value, Mapping):
            return {self.scrub(str(key)): self.scrub_json(item) for key, item in value.items()}
        return value


def signing_secret(secret_id: str, secret_key: str) -> str:
    """The HS256 key of a Heymarket JWT (a secret in its own right)."""
    return f"{secret_id}||{secret_key}"


def credential_values_in(
    environ: Mapping[str, str], prefixes: Iterable[str] = (DEFAULT_CREDENTIALS_PREFIX,)
) -> tuple[str, ...]:
    """Every credential value set in ``environ`` under each of ``prefixes``, whether or not
    they make usable credentials: what the output edge must never print."""
    values: list[str] = []
    for prefix in prefixes:
        names = CredentialVariables.with_prefix(prefix)
        secret_id = environ.get(names.secret_id, "").strip()
        secret_key = environ.get(names.secret_key, "").strip()
        values += [secret_id, secret_key, environ.get(names.api_key, "").strip()]
        if secret_id and secret_key:
            values.append(signing_secret(secret_id, secret_key))
    return tuple(value for value in values if value)
