"""The sandbox server over real HTTP: the documented Heymarket behaviour, every assumption the
client relies on, the faults, and the control endpoints."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sandbox_handle import SandboxHandle


@pytest.fixture
def api(sandbox: SandboxHandle) -> httpx.Client:
    with httpx.Client(
        base_url=sandbox.url,
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
        timeout=10.0,
    ) as client:
        yield client


def phone_item(phone: str, **fields: Any) -> dict[str, Any]:
    return {"contact_channels": [{"channel_type": "phone", "channel_id": phone}], **fields}


def test_create_then_list(sandbox: SandboxHandle, api: httpx.Client) -> None:
    response = api.post("/v2/contacts", json={"contacts": [phone_item("15105551234", first="Al")]})
    assert response.status_code == 200
    assert [c["phone"] for c in sandbox.contacts()] == ["15105551234"]
