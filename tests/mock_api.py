"""A client of a Heymarket that a function plays: for the exact sequences of answers and
headers the sandbox cannot produce (httpx.MockTransport, no socket)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from reconciler.heymarket import ApiKeyCredentials, HeymarketClient
from tests.fake_clock import FakeClock

Handler = Callable[[httpx.Request], httpx.Response]


def mock_client(
    handler: Handler, clock: FakeClock | None = None, **options: Any
) -> HeymarketClient:
    """A client whose every request ``handler`` answers; with ``clock``, its waits take no
    time. ``options`` are the rest of HeymarketClient's."""
    if clock is not None:
        options.update(clock=clock.monotonic, sleep=clock.sleep)
    return HeymarketClient(
        "https://heymarket.test",
        ApiKeyCredentials("key"),
        transport=httpx.MockTransport(handler),
        **options,
    )
