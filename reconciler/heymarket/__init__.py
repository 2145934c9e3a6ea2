"""The Heymarket API client: credentials, HTTP with retries and rate limiting, and parsing of
the answers into model values.

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
from reconciler.heymarket.parse import FailedItem

__all__ = [
    "ApiKeyCredentials",
    "Credentials",
    "DeleteResult",
    "FailedItem",
    "HeymarketClient",
    "JwtCredentials",
    "UpsertResult",
    "credentials_from_env",
]
