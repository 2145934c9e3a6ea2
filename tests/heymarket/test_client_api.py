"""Each endpoint of the client against the sandbox over real HTTP."""

from __future__ import annotations

from typing import Any

from tests.sandbox_handle import SandboxHandle


def create(phone: str, **fields: Any) -> dict[str, Any]:
    return {"contact_channels": [{"channel_type": "phone", "channel_id": phone}], **fields}


def live_uuid(sandbox: SandboxHandle, phone: str) -> str:
    return str(next(record["uuid"] for record in sandbox.contacts() if record["phone"] == phone))


def test_bulk_upsert_creates_updates_and_reports_each_refusal_with_its_reason(
    sandbox: SandboxHandle,
) -> None:
    [existing] = sandbox.seed([{"phone": "15105550001", "first": "Old"}])
    items = [
        create("15105550002", first="Ann"),
        {"contact_id": existing["uuid"], "first": "New"},
        create("12", first="Too short"),
        create("15105550001", first="Duplicate"),
    ]
    with sandbox.client() as client:
        result = client.bulk_upsert(items)

    # Each answer entry comes out typed: the canonical phone and uuid it names (an invalid
    # phone names none), so no caller reads a raw answer.
    assert sorted((stored.phone, stored.uuid) for stored in result.succeeded) == sorted(
        [("15105550001", existing["uuid"]), ("15105550002", live_uuid(sandbox, "15105550002"))]
    )
    assert sorted((failed.code, failed.phone) for failed in result.failed) == [
        ("duplicate_phone", "15105550001"),
        ("invalid_phone", None),
    ]
    assert all(failed.message for failed in result.failed)
    assert result.ambiguous == []
    live = {record["phone"]: record for record in sandbox.contacts()}
    assert live["15105550001"]["first"] == "New" and live["15105550001"]["rev"] == 2


def test_search_by_phones_batches_and_returns_each_existing_contact_once(
    sandbox: SandboxHandle,
) -> None:
    phones = [f"1212555{n:04d}" for n in range(230)]
    sandbox.seed([{"phone": phone} for phone in phones[:200]])
    with sandbox.client() as client:
        found = client.search_by_phones([*phones, *phones[:10]])
        requests = client.request_count

    assert sorted(contact.phone for contact in found) == phones[:200]
    assert requests == 3


def test_count_and_custom_fields(sandbox: SandboxHandle) -> None:
    sandbox.seed([{"phone": f"1313555{n:04d}"} for n in range(7)])
    ids = sandbox.create_fields(["Account tier"])
    with sandbox.client() as client:
        assert client.count() == 7
        created = client.create_custom_fields(["Managed by", "Account tier"])
        listed = client.list_custom_fields()
        assert client.create_custom_fields([]) == []

    assert [field.title for field in created] == ["Managed by", "Account tier"]
    assert created[1].id == ids["Account tier"]
    assert {field.title: field.id for field in listed} == {
        "Account tier": ids["Account tier"],
        "Managed by": created[0].id,
    }


def test_listed_contacts_carry_every_managed_field(sandbox: SandboxHandle) -> None:
    field_id = sandbox.create_fields(["Account tier"])["Account tier"]
    sandbox.seed(
        [
            {
                "phone": "14155550100",
                "first": "Alice",
                "last": "Smith",
                "email": "alice@example.com",
                "is_opted_out": True,
                "custom": {field_id: "gold"},
            }
        ]
    )
    with sandbox.client() as client:
        [contact] = client.list_contacts()

    assert (contact.phone, contact.first, contact.last) == ("14155550100", "Alice", "Smith")
    assert contact.display_name == "Alice Smith"
    assert contact.email == "alice@example.com"
    assert contact.is_opted_out is True
    assert contact.custom == {field_id: "gold"}
    assert contact.uuid and contact.rev == 1 and contact.updated.endswith("Z")


def test_on_request_sees_every_request_sent(sandbox: SandboxHandle) -> None:
    sent: list[tuple[str, str]] = []
    with sandbox.client(on_request=lambda method, path: sent.append((method, path))) as client:
        client.count()
        client.bulk_delete(["no-such-uuid"])
    assert sent == [("POST", "/v1/contacts/count"), ("DELETE", "/v2/contacts")]
