"""Who the sandbox lets in: the legacy team API key, or a JWT signed the way Heymarket's
authentication page describes (HS256 over ``{"iss", "iat"}`` with ``SECRET_ID||SECRET_KEY``,
valid for five minutes). Checked here from the documentation, not with the client's signer,
so a client that signs wrongly is refused."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import jwt

TOKEN_LIFETIME_SECONDS: Final = 300
# Tolerated clock difference between a client and the sandbox when checking `iat`.
CLOCK_SKEW_SECONDS: Final = 10


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the sandbox accepts: the legacy key, or a JWT signed with id||key."""

    api_key: str = field(repr=False)
    secret_id: str = field(repr=False)
    secret_key: str = field(repr=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> tuple[Credentials, frozenset[str]]:
        """Each of HEYMARKET_API_KEY / _SECRET_ID / _SECRET_KEY from ``environ`` if set,
        otherwise generated; also returns the names that were generated."""
        generated: set[str] = set()

        def pick(name: str, make: Callable[[], str]) -> str:
            value = environ.get(name, "").strip()
            if value:
                return value
            generated.add(name)
            return make()

        credentials = cls(
            api_key=pick("HEYMARKET_API_KEY", lambda: "sandbox-" + secrets.token_hex(16)),
            secret_id=pick("HEYMARKET_SECRET_ID", lambda: "sandbox-id-" + secrets.token_hex(6)),
            secret_key=pick("HEYMARKET_SECRET_KEY", lambda: secrets.token_hex(24)),
        )
        return credentials, frozenset(generated)

    def accepts(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        token = authorization.removeprefix("Bearer ").strip()
        if hmac.compare_digest(token.encode(), self.api_key.encode()):
            return True
        try:
            claims = jwt.decode(
                token,
                f"{self.secret_id}||{self.secret_key}",
                algorithms=["HS256"],
                options={"require": ["iss", "iat"]},
                leeway=CLOCK_SKEW_SECONDS,
            )
        except jwt.PyJWTError:
            return False
        issued_at = claims.get("iat")
        return (
            claims.get("iss") == self.secret_id
            and isinstance(issued_at, int | float)
            and time.time() <= issued_at + TOKEN_LIFETIME_SECONDS
        )
