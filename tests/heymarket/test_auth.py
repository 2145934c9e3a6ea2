"""Credentials from the environment, the JWT Heymarket expects, and secrets kept out of sight."""

from __future__ import annotations

import httpx
import jwt
import pytest

from reconciler.core.errors import CredentialsError
from reconciler.heymarket import (
    ApiKeyCredentials,
    HeymarketClient,
    JwtCredentials,
    credentials_from_env,
)
from reconciler.heymarket.auth import BearerAuth

SECRET_ID = "team-id-4711"
SECRET_KEY = "s3cr3t-key-value-0815"
API_KEY = "legacy-api-key-9999"


def test_the_jwt_pair_is_preferred_over_the_legacy_key() -> None:
    credentials = credentials_from_env(
        {
            "HEYMARKET_SECRET_ID": SECRET_ID,
            "HEYMARKET_SECRET_KEY": SECRET_KEY,
            "HEYMARKET_API_KEY": API_KEY,
        }
    )
    assert credentials == JwtCredentials(SECRET_ID, SECRET_KEY)


def test_the_legacy_key_is_used_when_no_jwt_pair_is_set() -> None:
    assert credentials_from_env({"HEYMARKET_API_KEY": f"  {API_KEY}\n"}) == ApiKeyCredentials(
        API_KEY
    )


def test_no_credentials_names_the_variables_to_set() -> None:
    with pytest.raises(CredentialsError) as raised:
        credentials_from_env({"HEYMARKET_API_KEY": "   "})
    message = str(raised.value)
    for name in ("HEYMARKET_SECRET_ID", "HEYMARKET_SECRET_KEY", "HEYMARKET_API_KEY"):
        assert name in message


def test_half_a_jwt_pair_says_which_half_is_missing() -> None:
    with pytest.raises(CredentialsError, match="HEYMARKET_SECRET_KEY is not"):
        credentials_from_env({"HEYMARKET_SECRET_ID": SECRET_ID})


def test_half_a_jwt_pair_with_a_legacy_key_uses_the_key() -> None:
    credentials = credentials_from_env(
        {"HEYMARKET_SECRET_KEY": SECRET_KEY, "HEYMARKET_API_KEY": API_KEY}
    )
    assert credentials == ApiKeyCredentials(API_KEY)


def test_no_repr_or_str_shows_a_secret() -> None:
    jwt_credentials = JwtCredentials(SECRET_ID, SECRET_KEY)
    key_credentials = ApiKeyCredentials(API_KEY)
    client = HeymarketClient("https://heymarket.test", jwt_credentials)
    shown = " ".join(
        [
            repr(jwt_credentials),
            str(jwt_credentials),
            repr(key_credentials),
            str(key_credentials),
            repr(client),
            repr(BearerAuth(jwt_credentials)),
        ]
    )
    client.close()
    for secret in (SECRET_ID, SECRET_KEY, API_KEY):
        assert secret not in shown
    assert "HEYMARKET_SECRET_ID/HEYMARKET_SECRET_KEY" in shown
    assert "HEYMARKET_API_KEY" in shown


def test_the_token_is_hs256_over_iss_and_iat_signed_with_id_and_key() -> None:
    auth = BearerAuth(JwtCredentials(SECRET_ID, SECRET_KEY), wall_clock=lambda: 1_700_000_000.7)
    claims = jwt.decode(
        auth.token(),
        f"{SECRET_ID}||{SECRET_KEY}",
        algorithms=["HS256"],
        options={"verify_iat": False},
    )
    # Dated back 30 s, for a server whose clock is behind this machine's.
    assert claims == {"iss": SECRET_ID, "iat": 1_700_000_000 - 30}
    assert jwt.get_unverified_header(auth.token())["alg"] == "HS256"


def test_the_token_is_reused_then_renewed_a_minute_before_it_expires() -> None:
    now = [1_700_000_000.0]
    auth = BearerAuth(JwtCredentials(SECRET_ID, SECRET_KEY), wall_clock=lambda: now[0])
    first = auth.token()
    # Its `iat` is 30 s back, so it expires 270 s from now: renewed 60 s before that.
    now[0] += 209
    assert auth.token() == first
    now[0] += 1
    renewed = auth.token()
    assert renewed != first
    claims = jwt.decode(renewed, options={"verify_signature": False})
    assert claims["iat"] == 1_700_000_210 - 30


def test_requests_carry_the_bearer_token() -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json={"count": 0})

    transport = httpx.MockTransport(record)
    with HeymarketClient(
        "https://heymarket.test", ApiKeyCredentials(API_KEY), transport=transport
    ) as client:
        client.count()
    with HeymarketClient(
        "https://heymarket.test", JwtCredentials(SECRET_ID, SECRET_KEY), transport=transport
    ) as client:
        client.count()

    assert seen[0] == f"Bearer {API_KEY}"
    token = seen[1].removeprefix("Bearer ")
    assert jwt.decode(token, f"{SECRET_ID}||{SECRET_KEY}", algorithms=["HS256"])["iss"] == SECRET_ID


def test_an_accounts_prefix_names_its_variables_and_only_those_are_read() -> None:
    environ = {"HEYMARKET_SECRET_ID": SECRET_ID, "HEYMARKET_SECRET_KEY": SECRET_KEY}
    with pytest.raises(CredentialsError) as caught:
        credentials_from_env({**environ, "HEYMARKET_UK_SECRET_ID": SECRET_ID}, "HEYMARKET_UK")
    assert str(caught.value) == (
        "HEYMARKET_UK_SECRET_ID is set but HEYMARKET_UK_SECRET_KEY is not: set both "
        "(or HEYMARKET_UK_API_KEY instead)"
    )
    credentials = credentials_from_env({**environ, "HEYMARKET_UK_API_KEY": API_KEY}, "HEYMARKET_UK")
    assert credentials == ApiKeyCredentials(API_KEY, prefix="HEYMARKET_UK")
    assert credentials.variables == "HEYMARKET_UK_API_KEY"
    assert API_KEY not in repr(credentials)
