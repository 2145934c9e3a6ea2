"""The Heymarket API client: credentials, HTTP with retries and rate limiting, the items sent
(``encode``) and the answers read into model values (``parse``).

    from reconciler.heymarket import HeymarketClient, credentials_from_env

    with HeymarketClient(url, credentials_from_env(os.environ)) as client:
        live = client.list_contacts()
"""

from reconciler.heymarket.auth import (
    ApiKeyCredentials,
    Credentials,
    JwtCredentials,
    credentials_from_env,
)
from reconciler.heymarket.client import DeleteResult, HeymarketClient, UpsertResult
from reconciler.heymarket.parse import Refusal, StoredContact, UnknownOutcome

__all__ = [
    "ApiKeyCredentials",
    "Credentials",
    "DeleteResult",
    "HeymarketClient",
    "JwtCredentials",
    "Refusal",
    "StoredContact",
    "UnknownOutcome",
    "UpsertResult",
    "credentials_from_env",
]
