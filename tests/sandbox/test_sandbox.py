"""The sandbox server over real HTTP: the documented Heymarket behaviour, every assumption the
client relies on, the faults, and the control endpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.sandbox_handle import SandboxHandle


@pytest.fixture
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sandbox.url,
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
        timeout=10.0,
    ) as client:
        yield client


def phone_item(phone: str, **fields: Any) -> dict[str, Any]:
    return {"contact_channels": [{"channel_type": "phone", "channel_id": phone}], **fields}


def upsert(api: httpx.Client, *items: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v2/contacts", json={"contacts": list(items)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def list_page(api: httpx.Client, **options: Any) -> list[dict[str, Any]]:
    response = api.post("/v2/contacts/list", json=options)
    assert response.status_code == 200, response.text
    page: list[dict[str, Any]] = response.json()
    return page


def numbered(count: int, *, start: int = 0, **fields: Any) -> list[dict[str, Any]]:
    return [{"phone": f"1510555{start + n:04d}", **fields} for n in range(count)]


def token(sandbox: SandboxHandle, *, issued_at: float, secret_key: str | None = None) -> str:
    return jwt.encode(
        {"iss": sandbox.secret_id, "iat": int(issued_at)},
        f"{sandbox.secret_id}||{secret_key or sandbox.secret_key}",
        algorithm="HS256",
    )


# -- auth, errors, headers ---------------------------------------------------------------


def test_legacy_key_and_fresh_jwt_are_accepted(sandbox: SandboxHandle) -> None:
    for credential in (sandbox.api_key, token(sandbox, issued_at=time.time())):
        response = httpx.post(
            f"{sandbox.url}/v1/contacts/count",
            headers={"Authorization": f"Bearer {credential}"},
        )
        assert response.status_code == 200
        assert response.json() == {"count": 0}


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-key", "Basic abc", "expired-jwt", "jwt-signed-with-another-key"],
)
def test_missing_or_bad_credentials_get_401(
    sandbox: SandboxHandle, authorization: str | None
) -> None:
    if authorization == "expired-jwt":
        authorization = f"Bearer {token(sandbox, issued_at=time.time() - 301)}"
    elif authorization == "jwt-signed-with-another-key":
        forged = token(sandbox, issued_at=time.time(), secret_key="another-secret-key-" * 2)
        authorization = f"Bearer {forged}"
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.post(f"{sandbox.url}/v1/contacts/count", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert sandbox.api_key not in response.text


def test_control_endpoints_need_the_same_auth(sandbox: SandboxHandle) -> None:
    assert httpx.get(f"{sandbox.url}/_sandbox/stats").status_code == 401


def test_every_response_has_a_request_id(api: httpx.Client) -> None:
    responses = [
        api.post("/v1/contacts/count"),
        api.post("/v2/contacts/list", content=b"{not json"),
        api.get("/v2/nowhere"),
        httpx.post(f"{api.base_url}/v1/contacts/count"),
    ]
    assert [r.status_code for r in responses] == [200, 400, 404, 401]
    ids = [r.headers.get("X-Request-Id") for r in responses]
    assert all(ids) and len(set(ids)) == len(ids)


def test_unknown_route_is_404_json_and_bad_json_is_400_bad_data(api: httpx.Client) -> None:
    missing = api.post("/v3/contacts")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    broken = api.post("/v2/contacts", content=b'{"contacts": [')
    assert broken.status_code == 400
    assert broken.json()["error"] == "bad_data"


# -- creates, updates, failed_contacts -----------------------------------------------------


def test_create_normalises_values_and_defaults_display_name(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    tier = sandbox.create_fields(["Tier"])["Tier"]
    body = upsert(
        api,
        phone_item(
            "15105551234",
            first="  Alice ",
            last="Smith",
            email=" Alice@Example.COM ",
            custom={tier: 3},
        ),
    )
    assert body["failed_contacts"] == []
    (created,) = body["contacts"]
    assert created["id"] and created["uuid"] and created["rev"] == 1
    (stored,) = sandbox.contacts()
    assert stored["first"] == "Alice"
    assert stored["display_name"] == "Alice Smith"
    assert stored["email"] == "alice@example.com"
    assert stored["custom"] == {tier: "3"}
    assert stored["is_opted_out"] is False


def test_refused_items_are_reported_and_the_others_applied(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    sandbox.seed([{"phone": "15105550000", "first": "Existing"}])
    items = [
        phone_item("15105551111", first="Good"),
        phone_item("+15105552222"),
        phone_item("123"),
        phone_item("15105550000"),
        phone_item("15105551111"),
        phone_item("15105553333", custom={"999": "x"}),
        {"contact_id": "00000000-0000-0000-0000-000000000000", "first": "Ghost"},
        {"first": "No phone"},
    ]
    body = upsert(api, *items)
    assert [c["phone"] for c in body["contacts"]] == ["15105551111"]
    failures = {json.dumps(f["contact"], sort_keys=True): f for f in body["failed_contacts"]}
    codes = [failures[json.dumps(item, sort_keys=True)]["error"] for item in items[1:]]
    assert codes == [
        "invalid_phone",
        "invalid_phone",
        "duplicate_phone",
        "duplicate_phone",
        "invalid_field",
        "not_found",
        "invalid_phone",
    ]
    assert all(f["message"] for f in body["failed_contacts"])
    assert sorted(c["phone"] for c in sandbox.contacts()) == ["15105550000", "15105551111"]


def test_update_changes_only_carried_fields_and_merges_custom(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    ids = sandbox.create_fields(["Tier", "Region", "Owner"])
    (seeded,) = sandbox.seed(
        [
            {
                "phone": "15105551234",
                "first": "Alice",
                "last": "Smith",
                "email": "a@example.com",
                "custom": {ids["Tier"]: "gold", ids["Region"]: "west", ids["Owner"]: "ops"},
                "updated": "2024-01-01T00:00:00Z",
            }
        ]
    )
    body = upsert(
        api,
        {
            "contact_id": seeded["uuid"],
            "last": "Jones",
            "email": None,
            "first": "",
            "custom": {ids["Tier"]: "silver", ids["Region"]: None, ids["Owner"]: ""},
        },
    )
    assert body["failed_contacts"] == []
    (stored,) = sandbox.contacts()
    assert stored["last"] == "Jones"
    assert stored["first"] is None
    assert stored["email"] is None
    assert stored["display_name"] == "Alice Smith"
    assert stored["custom"] == {ids["Tier"]: "silver"}
    assert stored["rev"] == seeded["rev"] + 1
    assert stored["updated"] > seeded["updated"]
    assert stored["uuid"] == seeded["uuid"] and stored["phone"] == "15105551234"


def test_a_bulk_write_stamps_every_item_with_the_same_second(api: httpx.Client) -> None:
    body = upsert(api, *[phone_item(f"1510555{n:04d}") for n in range(100)])
    assert len({c["updated"] for c in body["contacts"]}) == 1
    assert body["contacts"][0]["updated"].endswith("Z")


def test_more_than_100_contacts_in_one_bulk_write_is_refused(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    items = [phone_item(f"1510555{n:04d}") for n in range(101)]
    response = api.post("/v2/contacts", json={"contacts": items})
    assert response.status_code == 400
    assert response.json() == {"error": "bad_data", "message": "too many contacts"}
    assert sandbox.contacts() == []
    sandbox.set_faults(bulk_cap=10)
    assert api.post("/v2/contacts", json={"contacts": items[:11]}).status_code == 400
    assert api.post("/v2/contacts", json={"contacts": items[:10]}).status_code == 200


def test_delete_answers_ok_and_ignores_unknown_ids(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    seeded = sandbox.seed(numbered(3))
    body = {
        "contact_channels": [
            {"channel_type": "id", "channel_ids": [seeded[0]["uuid"], "no-such-contact"]}
        ]
    }
    response = api.request("DELETE", "/v2/contacts", json=body)
    assert response.status_code == 200
    assert response.json() == "ok"
    assert [c["uuid"] for c in sandbox.contacts()] == [s["uuid"] for s in seeded[1:]]
    too_many = {"contact_channels": [{"channel_type": "id", "channel_ids": ["x"] * 101}]}
    assert api.request("DELETE", "/v2/contacts", json=too_many).status_code == 400


def test_legacy_batch_skips_existing_phones_unless_overwrite(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    sandbox.seed([{"phone": "15105550000", "first": "Old"}])
    batch = [{"phone": "15105550000", "first": "New"}, {"phone": "15105550001", "first": "B"}]
    response = api.post("/v1/batch/contacts", json=batch)
    assert response.json() == "ok"
    assert {c["phone"]: c["first"] for c in sandbox.contacts()} == {
        "15105550000": "Old",
        "15105550001": "B",
    }
    response = api.post("/v1/batch/contacts?overwrite=true", json=[*batch, {"phone": "12"}])
    assert response.json() == [
        {
            "contact": {"phone": "12"},
            "error": "invalid_phone",
            "message": response.json()[0]["message"],
        }
    ]
    assert {c["phone"]: c["first"] for c in sandbox.contacts()}["15105550000"] == "New"


# -- listing -------------------------------------------------------------------------------


def test_list_caps_pages_at_100_silently_and_defaults_to_30(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    sandbox.seed(numbered(150))
    assert len(list_page(api, limit=500, ascending=True)) == 100
    assert len(list_page(api)) == 30
    sandbox.set_faults(page_cap=7)
    assert len(list_page(api, limit=100)) == 7


def test_list_orders_by_updated_then_id_with_an_inclusive_date_and_page_offset(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    sandbox.seed(numbered(5, updated="2024-01-01T00:00:02Z"))
    sandbox.seed(numbered(5, start=5, updated="2024-01-01T00:00:01Z"))
    sandbox.seed(numbered(5, start=10, updated="2024-01-01T00:00:03Z"))
    everything = list_page(api, limit=100, ascending=True)
    keys = [(c["updated"], c["id"]) for c in everything]
    assert keys == sorted(keys) and len(keys) == 15

    from_two = list_page(api, limit=3, ascending=True, date="2024-01-01T00:00:02Z")
    assert [c["id"] for c in from_two] == [c["id"] for c in everything[5:8]]
    second_page = list_page(api, limit=3, page=1, ascending=True, date="2024-01-01T00:00:02Z")
    assert [c["id"] for c in second_page] == [c["id"] for c in everything[8:11]]

    same_instant = "2024-01-01T01:00:02+01:00"
    newest_first = list_page(api, limit=100, ascending=False, date=same_instant)
    assert [c["id"] for c in newest_first] == [c["id"] for c in reversed(everything[:10])]
    assert list_page(api, ascending=True, date="2030-01-01T00:00:00Z") == []


def test_list_rejects_a_malformed_date(api: httpx.Client) -> None:
    response = api.post("/v2/contacts/list", json={"date": "yesterday"})
    assert response.status_code == 400
    assert response.json()["error"] == "bad_data"


def test_list_and_search_items_carry_uuid_and_contact_channels(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    (seeded, _) = sandbox.seed(numbered(2))
    listed = list_page(api, limit=10, ascending=True)[0]
    search = {"contact_channels": [{"channel_type": "phone", "channel_ids": [seeded["phone"]]}]}
    response = api.post("/v2/contacts/search", json=search)
    assert response.status_code == 200
    (found,) = response.json()
    for item in (listed, found):
        assert item["uuid"] == seeded["uuid"]
        assert item["contact_channels"] == [
            {"channel_type": "phone", "channel_id": seeded["phone"]}
        ]
        assert {"id", "phone", "first", "last", "email", "custom", "rev", "updated"} <= item.keys()


def test_count_reports_the_number_of_contacts(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.seed(numbered(12))
    assert api.post("/v1/contacts/count").json() == {"count": 12}


def test_custom_fields_are_listed_and_created_by_title(api: httpx.Client) -> None:
    created = api.post("/v1/contacts/fields", json=[{"title": "Tier"}, {"title": "Region"}])
    assert [(f["title"], f["duplicate"]) for f in created.json()] == [
        ("Tier", False),
        ("Region", False),
    ]
    again = api.post("/v1/contacts/fields", json=[{"title": "Tier"}]).json()
    assert again == [{"id": created.json()[0]["id"], "title": "Tier", "duplicate": True}]
    listed = api.post("/v1/contact-fields").json()
    assert [f["title"] for f in listed] == ["Tier", "Region"]


# -- faults and statistics -------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_only_when_asked(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    sandbox.set_faults(rate_limit=2)
    statuses = [api.post("/v1/contacts/count").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = api.post("/v1/contacts/count")
    assert limited.json()["error"] == "rate_limited"
    assert "Retry-After" not in limited.headers
    sandbox.set_faults(retry_after=True)
    retry_after = api.post("/v1/contacts/count").headers["Retry-After"]
    assert 1 <= int(retry_after) <= 60


def test_fail_rate_one_fails_every_request_before_it_writes(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    sandbox.set_faults(fail_rate=1.0)
    response = api.post("/v2/contacts", json={"contacts": [phone_item("15105551234")]})
    assert response.status_code == 500
    assert sandbox.contacts() == []


def test_commit_then_fail_commits_and_answers_500(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    sandbox.set_faults(commit_then_fail=1)
    first = api.post("/v2/contacts", json={"contacts": [phone_item("15105551234")]})
    assert first.status_code == 500
    assert [c["phone"] for c in sandbox.contacts()] == ["15105551234"]
    retry = upsert(api, phone_item("15105551234"))
    assert retry["failed_contacts"][0]["error"] == "duplicate_phone"


@pytest.mark.parametrize("after_commit", [False, True])
def test_dropped_connection_gives_no_answer(
    sandbox: SandboxHandle, api: httpx.Client, after_commit: bool
) -> None:
    sandbox.set_faults(drop_connections=1, drop_after_commit=after_commit)
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/v2/contacts", json={"contacts": [phone_item("15105551234")]})
    assert len(sandbox.contacts()) == (1 if after_commit else 0)
    assert api.post("/v1/contacts/count").status_code == 200


def test_unknown_fault_is_refused(sandbox: SandboxHandle) -> None:
    with pytest.raises(AssertionError, match="unknown fault"):
        sandbox.set_faults(explode=True)


def test_stats_count_api_requests_by_route(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.seed(numbered(3))
    for _ in range(2):
        list_page(api, limit=10)
    api.post("/v1/contacts/count")
    assert sandbox.stats() == {
        "requests": 3,
        "by_route": {"POST /v2/contacts/list": 2, "POST /v1/contacts/count": 1},
    }


def test_reset_empties_the_account_and_clears_faults(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    sandbox.create_fields(["Tier"])
    sandbox.seed(numbered(2))
    sandbox.set_faults(fail_rate=1.0)
    sandbox.reset()
    assert sandbox.contacts() == []
    assert api.post("/v1/contact-fields").json() == []
    assert api.post("/v1/contacts/count").status_code == 200


def test_seed_creates_fields_named_by_title(sandbox: SandboxHandle) -> None:
    (stored,) = sandbox.seed([{"phone": "15105551234", "custom": {"Managed by": "crm"}}])
    field_id = sandbox.create_fields(["Managed by"])["Managed by"]
    assert stored["custom"] == {field_id: "crm"}


# -- the command ---------------------------------------------------------------------------


def start_sandbox(
    arguments: list[str], environment: dict[str, str]
) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "sandbox", "--port", "0", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **environment},
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline() + process.stdout.readline()


def test_command_serves_a_seed_file_keeps_its_db_and_stops_cleanly(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text("- phone: '15105551234'\n  first: Alice\n", encoding="utf-8")
    database = tmp_path / "account.db"
    secret = "kept-out-of-the-output"
    process, banner = start_sandbox(
        ["--seed", str(seed), "--db", str(database)], {"HEYMARKET_API_KEY": secret}
    )
    url = banner.splitlines()[0].removeprefix("Sandbox listening on ")
    assert f"export HEYMARKET_API_URL={url}" in banner
    assert secret not in banner
    headers = {"Authorization": f"Bearer {secret}"}
    assert httpx.post(f"{url}/v1/contacts/count", headers=headers).json() == {"count": 1}
    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Traceback" not in errors

    restarted, banner = start_sandbox(["--db", str(database)], {})
    url = banner.splitlines()[0].removeprefix("Sandbox listening on ")
    generated_key = banner.split("HEYMARKET_API_KEY=")[1].split()[0]
    headers = {"Authorization": f"Bearer {generated_key}"}
    assert httpx.post(f"{url}/v1/contacts/count", headers=headers).json() == {"count": 1}
    restarted.send_signal(signal.SIGINT)
    restarted.communicate(timeout=10)
    assert restarted.returncode == 0


def test_command_reports_a_bad_seed_file_in_one_line(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text('[{"phone": "12"}]', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "sandbox", "--port", "0", "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: seed file")
    assert len(result.stderr.strip().splitlines()) == 1


def test_more_than_five_tags_refuse_that_contact_only(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    body = upsert(
        api,
        phone_item("15105551111", tags=["a", "b", "c", "d", "e", "f"]),
        phone_item("15105552222", tags=["a", "b", "c", "d", "e"]),
    )
    assert [c["phone"] for c in body["contacts"]] == ["15105552222"]
    (failure,) = body["failed_contacts"]
    assert failure["error"] == "invalid_field" and "at most 5 tags" in failure["message"]
    assert failure["contact"]["tags"] == ["a", "b", "c", "d", "e", "f"]
    assert [c["phone"] for c in sandbox.contacts()] == ["15105552222"]
