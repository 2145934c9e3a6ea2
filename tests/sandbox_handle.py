"""A test's handle on the sandbox server: its address, its credentials, a client of its
API, and its control endpoints (``/_sandbox/...``) for seeding state, injecting faults and
counting requests."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from reconciler.heymarket import HeymarketClient, credentials_from_env
from reconciler.sandbox.launch import running_sandbox


@dataclass(frozen=True)
class SandboxHandle:
    """One running ``reconciler sandbox``; every test gets it reset to an empty account."""

    url: str
    api_key: str = field(repr=False)
    secret_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    _control: httpx.Client = field(repr=False, compare=False)

    @classmethod
    def connect(cls, url: str, api_key: str, secret_id: str, secret_key: str) -> SandboxHandle:
        control = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60.0
        )
        return cls(url, api_key, secret_id, secret_key, control)

    def close(self) -> None:
        self._control.close()

    def env(self, *, jwt: bool = False) -> dict[str, str]:
        """Environment variables for a CLI run against this sandbox."""
        if jwt:
            return {
                "HEYMARKET_API_URL": self.url,
                "HEYMARKET_SECRET_ID": self.secret_id,
                "HEYMARKET_SECRET_KEY": self.secret_key,
            }
        return {"HEYMARKET_API_URL": self.url, "HEYMARKET_API_KEY": self.api_key}

    def client(self, *, jwt: bool = False, **options: Any) -> HeymarketClient:
        """A client of this sandbox, signed in as a CLI run with ``env(jwt=jwt)`` would be;
        ``options`` are HeymarketClient's (a transport, a clock, page and batch sizes)."""
        return HeymarketClient(self.url, credentials_from_env(self.env(jwt=jwt)), **options)

    def seed(self, contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Preload contacts (API-shaped dicts); returns the stored records."""
        stored: list[dict[str, Any]] = self._call("POST", "/_sandbox/seed", contacts)
        return stored

    def create_fields(self, titles: list[str]) -> dict[str, str]:
        """Create custom fields; returns title -> field id."""
        ids: dict[str, str] = self._call("POST", "/_sandbox/fields", {"titles": titles})
        return ids

    def contacts(self) -> list[dict[str, Any]]:
        """Every stored contact, in the v2 list shape, by id."""
        stored: list[dict[str, Any]] = self._call("GET", "/_sandbox/contacts")
        return stored

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Change the given fault settings; returns them all."""
        current: dict[str, Any] = self._call("POST", "/_sandbox/faults", settings)
        return current

    def stats(self) -> dict[str, Any]:
        """Requests received per route since the last reset (control endpoints excluded)."""
        counts: dict[str, Any] = self._call("GET", "/_sandbox/stats")
        return counts

    def reset(self) -> None:
        """An empty account, faults as started, statistics at zero."""
        self._call("POST", "/_sandbox/reset")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._control.request(method, path, json=body if body is not None else None)
        if response.status_code != 200:
            raise AssertionError(
                f"sandbox control {method} {path} answered {response.status_code}: {response.text}"
            )
        return response.json()


@contextlib.contextmanager
def started_sandbox(name: str) -> Iterator[SandboxHandle]:
    """A ``reconciler sandbox --port 0`` subprocess with credentials of its own (``name``
    starts each, so a leaked one says which server it belongs to), stopped on exit."""
    api_key = f"{name}-key-" + secrets.token_hex(8)
    secret_id = f"{name}-id-" + secrets.token_hex(4)
    secret_key = secrets.token_hex(16)
    credentials = {
        "HEYMARKET_API_KEY": api_key,
        "HEYMARKET_SECRET_ID": secret_id,
        "HEYMARKET_SECRET_KEY": secret_key,
    }
    with running_sandbox(credentials) as url:
        handle = SandboxHandle.connect(url, api_key, secret_id, secret_key)
        try:
            yield handle
        finally:
            handle.close()
