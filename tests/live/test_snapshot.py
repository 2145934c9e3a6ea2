"""Incremental refresh of the live state, against the sandbox over real HTTP: every create,
update and delete made behind the tool's back is seen, and whatever cannot be proven current
is listed again in full."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.commands.context import fetch_live_state
from reconciler.core.model import LiveContact
from reconciler.heymarket import HeymarketClient, credentials_from_env
from reconciler.live.snapshot import LiveListing, read_live_state, snapshot_path
from tests.account import SNAPSHOT_COLUMNS, forge_snapshot
from tests.sandbox_handle import SandboxHandle

LIST_ROUTE = "POST /v2/contacts/list"
COUNT_ROUTE = "POST /v1/contacts/count"


def create(client: HeymarketClient, phone: str) -> None:
    client.bulk_upsert([{"contact_channels": [{"channel_type": "phone", "channel_id": phone}]}])


def seeded(sandbox: SandboxHandle, count: int, **extra: Any) -> list[dict[str, Any]]:
    return sandbox.seed(
        [{"phone": f"1510555{n:04d}", "first": f"First{n}", **extra} for n in range(count)]
    )


@pytest.fixture
def client(sandbox: SandboxHandle) -> Iterator[HeymarketClient]:
    with sandbox.client() as api:
        yield api


def state_of(contacts: list[LiveContact]) -> list[tuple[Any, ...]]:
    return sorted(
        (c.id, c.uuid, c.phone, c.first, c.last, c.email, c.rev, c.updated, dict(c.custom))
        for c in contacts
    )


def full_listing(sandbox: SandboxHandle) -> list[tuple[Any, ...]]:
    with sandbox.client() as fresh:
        return state_of(fresh.list_contacts())


def refresh(client: HeymarketClient, cache: Path, sandbox: SandboxHandle) -> LiveListing:
    """One read of the live state; checks it against a full listing of the account."""
    listing = read_live_state(client, cache, "auto")
    assert state_of(listing.contacts) == full_listing(sandbox)
    return listing


def requests_by_route(sandbox: SandboxHandle, run: Any) -> dict[str, int]:
    before: dict[str, int] = sandbox.stats()["by_route"]
    run()
    after: dict[str, int] = sandbox.stats()["by_route"]
    return {route: after[route] - before.get(route, 0) for route in after}


def counted_refresh(
    client: HeymarketClient, cache: Path, sandbox: SandboxHandle
) -> tuple[LiveListing, dict[str, int]]:
    """``refresh``, and the requests its read alone used."""
    listings: list[LiveListing] = []
    used = requests_by_route(
        sandbox, lambda: listings.append(read_live_state(client, cache, "auto"))
    )
    assert state_of(listings[0].contacts) == full_listing(sandbox)
    return listings[0], used


def test_a_second_read_lists_only_what_changed_and_sees_creates_updates_and_deletes(
    sandbox: SandboxHandle, client: HeymarketClient, tmp_path: Path
) -> None:
    sandbox.set_faults(page_cap=10)
    records = seeded(sandbox, 95, updated="2024-01-01T00:00:00Z")
    assert refresh(client, tmp_path, sandbox).how == "full"

    _, quiet = counted_refresh(client, tmp_path, sandbox)
    # The snapshot's newest second is re-read (inclusive): all 95 share it, 10 pages + 1.
    assert quiet[LIST_ROUTE] == 11

    renamed = records[3]
    client.bulk_upsert([{"contact_id": renamed["uuid"], "first": "Renamed"}])
    client.bulk_upsert(
        [{"contact_channels": [{"channel_type": "phone", "channel_id": "14155550001"}]}]
    )
    listing = refresh(client, tmp_path, sandbox)
    assert listing.how == "incremental"
    by_phone = {contact.phone: contact for contact in listing.contacts}
    assert by_phone[renamed["phone"]].first == "Renamed"
    assert "14155550001" in by_phone

    client.bulk_delete([records[40]["uuid"]])
    listing = refresh(client, tmp_path, sandbox)
    assert records[40]["phone"] not in {contact.phone for contact in listing.contacts}


def test_incremental_read_costs_the_changes_not_the_account(
    sandbox: SandboxHandle, client: HeymarketClient, tmp_path: Path
) -> None:
    sandbox.set_faults(page_cap=10)
    records = seeded(sandbox, 200, updated="2024-01-01T00:00:00Z")
    refresh(client, tmp_path, sandbox)
    client.bulk_upsert([{"contact_id": r["uuid"], "last": "Changed"} for r in records[:5]])
    refresh(client, tmp_path, sandbox)  # moves the snapshot's newest second to the write's

    client.bulk_upsert([{"contact_id": records[50]["uuid"], "last": "Again"}])
    _, used = counted_refresh(client, tmp_path, sandbox)
    # At most the 5 contacts of the previous write's second and this one: one page + the end.
    assert used[LIST_ROUTE] <= 2
    assert used[COUNT_ROUTE] == 1


def test_contacts_read_from_the_snapshot_equal_those_listed(
    sandbox: SandboxHandle, client: HeymarketClient, tmp_path: Path
) -> None:
    """Every field survives the snapshot: names, email, opt-out, custom values of each
    type, tags, rev and updated (including a fraction of a second)."""
    ids = sandbox.create_fields(["Tier", "Seats", "Active", "Ratio"])
    sandbox.seed(
        [
            {
                "phone": f"1510555{n:04d}",
                "first": f"First{n}",
                "last": None if n % 2 else "Last",
                "display_name": "Ünïcode ✓",
                "email": f"user{n}@example.com",
                "is_opted_out": n == 1,
                "custom": {ids["Tier"]: "gold", ids["Seats"]: n, ids["Active"]: n % 2 == 0}
                | ({ids["Ratio"]: 0.5} if n == 2 else {}),
                "tags": ["VIP", "Wholesale"] if n == 0 else [],
                "updated": f"2024-01-01T00:00:0{n}.250000Z" if n == 3 else "2024-01-01T00:00:00Z",
            }
            for n in range(5)
        ]
    )
    listed = read_live_state(client, tmp_path, "auto")
    again = read_live_state(client, tmp_path, "auto")
    assert (listed.how, again.how) == ("full", "incremental")
    by_id = sorted(listed.contacts, key=lambda contact: contact.id)
    assert sorted(again.contacts, key=lambda contact: contact.id) == by_id
    assert {contact.tags for contact in again.contacts} == {("VIP", "Wholesale"), ()}


def test_a_delete_and_a_create_between_two_reads_are_both_seen(
    sandbox: SandboxHandle, client: HeymarketClient, tmp_path: Path
) -> None:
    records = seeded(sandbox, 12, updated="2024-01-01T00:00:00Z")
    client.bulk_upsert([{"contact_id": records[0]["uuid"], "first": "Newest"}])
    refresh(client, tmp_path, sandbox)

    # Same count afterwards: only the deleted contact's absence can tell.
    client.bulk_delete([records[5]["uuid"]])
    client.bulk_upsert(
        [{"contact_channels": [{"channel_type": "phone", "channel_id": "14155550002"}]}]
    )
    listing = refresh(client, tmp_path, sandbox)
    phones = {contact.phone for contact in listing.contacts}
    assert records[5]["phone"] not in phones
    assert "14155550002" in phones


def test_deleting_a_contact_of_the_newest_second_is_seen(
    sandbox: SandboxHandle, client: HeymarketClient, tmp_path: Path
) -> None:
    records = seeded(sandbox, 6, updated="2024-01-01T00:00:00Z")
    refresh(client, tmp_path, sandbox)
    client.bulk_delete([records[2]["uuid"]])
    client.bulk_upsert(
        [{"contact_channels": [{"channel_type": "phone", "channel_id": "14155550003"}]}]
    )
    listing = refresh(client, tmp_path, sandbox)
    assert records[2]["phone"] not in {contact.phone for contact in listing.contacts}


def test_a_snapshot_of_another_account_at_the_same_url_is_not_trusted(
    sandbox: SandboxHandle, client: HeymarketClient, tmp_path: Path
) -> None:
    seeded(sandbox, 5, updated="2024-06-01T00:00:00Z")
    refresh(client, tmp_path, sandbox)
    sandbox.reset()
    sandbox.seed(
        [{"phone": f"1415555{n:04d}", "updated": "2024-01-01T00:00:00Z"} for n in range(5)]
    )
    listing = refresh(client, tmp_path, sandbox)
    assert listing.how == "full"


def test_changed_custom_fields_force_a_full_listing(
    sandbox: SandboxHandle, client: HeymarketClient, tmp_path: Path
) -> None:
    seeded(sandbox, 3)
    refresh(client, tmp_path, sandbox)
    sandbox.create_fields(["Account tier"])
    assert refresh(client, tmp_path, sandbox).how == "full"
    assert refresh(client, tmp_path, sandbox).how == "incremental"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda text: text[: len(text) // 2], id="truncated"),
        pytest.param(lambda text: "not json", id="garbage"),
        pytest.param(lambda text: json.dumps({"format": 99}), id="foreign"),
        pytest.param(lambda text: text.replace('"15105550001"', '"15105550009"'), id="edited"),
        pytest.param(lambda text: text.rsplit("\n", 2)[0] + "\n", id="no-trailer"),
        pytest.param(lambda text: text + "[]\n", id="extra-line"),
    ],
)
def test_an_unusable_snapshot_means_a_full_listing_never_an_error(
    sandbox: SandboxHandle, client: HeymarketClient, tmp_path: Path, damage: Any
) -> None:
    seeded(sandbox, 4)
    refresh(client, tmp_path, sandbox)
    path = snapshot_path(tmp_path, client.base_url)
    path.write_text(damage(path.read_text(encoding="utf-8")), encoding="utf-8")
    assert refresh(client, tmp_path, sandbox).how == "full"


def put(column: str, index: int, value: Any) -> Any:
    def edit(columns: dict[str, list[Any]]) -> None:
        columns[column][index] = value

    return edit


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(put("phone", 0, 15105550000), id="phone-not-text"),
        pytest.param(put("uuid", 1, " "), id="blank-uuid"),
        pytest.param(put("first", 1, ["a"]), id="name-not-text"),
        pytest.param(put("is_opted_out", 2, 0), id="opt-out-not-boolean"),
        pytest.param(put("custom", 2, {"1": {"nested": True}}), id="custom-not-scalar"),
        pytest.param(put("custom", 2, []), id="custom-not-object"),
        pytest.param(put("rev", 3, "1"), id="rev-not-integer"),
        pytest.param(put("id", 3, 1), id="id-twice"),
        pytest.param(put("updated", 0, "2024-01-01 00:00:00"), id="updated-not-canonical"),
        pytest.param(put("updated", 0, "2099-13-45T00:00:00Z"), id="updated-no-moment"),
        pytest.param(put("tags", 0, [1]), id="tag-not-text"),
        pytest.param(lambda columns: columns["email"].pop(), id="short-column"),
    ],
)
def test_a_forged_snapshot_of_the_wrong_shape_means_a_full_listing(
    sandbox: SandboxHandle, client: HeymarketClient, tmp_path: Path, edit: Any
) -> None:
    """A snapshot can come from a cache someone else wrote: with a matching checksum, every
    value must still be of the type a parsed listing holds, or the snapshot is not used."""
    seeded(sandbox, 4, updated="2024-01-01T00:00:00Z")
    refresh(client, tmp_path, sandbox)
    forge_snapshot(snapshot_path(tmp_path, client.base_url), edit)
    assert refresh(client, tmp_path, sandbox).how == "full"


@pytest.mark.parametrize("row", [-1, 1, "0"], ids=["negative", "past-the-end", "not-integer"])
def test_a_forged_custom_value_index_means_a_full_listing(
    sandbox: SandboxHandle, client: HeymarketClient, tmp_path: Path, row: Any
) -> None:
    """Contacts with the same custom values share one entry; an index to none is a miss."""
    seeded(sandbox, 3, updated="2024-01-01T00:00:00Z")
    refresh(client, tmp_path, sandbox)
    path = snapshot_path(tmp_path, client.base_url)
    header, *columns, _ = path.read_text(encoding="utf-8").splitlines()
    custom = SNAPSHOT_COLUMNS.index("custom")
    shared, rows = json.loads(columns[custom])
    assert (len(shared), rows) == (1, [0, 0, 0])
    columns[custom] = json.dumps([shared, [0, row, 0]])
    body = "".join(column + "\n" for column in columns)
    trailer = json.dumps({"sha256": hashlib.sha256(body.encode()).hexdigest()})
    path.write_text(f"{header}\n{body}{trailer}\n", encoding="utf-8")
    assert refresh(client, tmp_path, sandbox).how == "full"


def test_a_forged_snapshot_hiding_a_contact_is_caught_by_the_count(
    sandbox: SandboxHandle, client: HeymarketClient, tmp_path: Path
) -> None:
    records = sandbox.seed(
        [{"phone": f"1510555{n:04d}", "updated": f"2024-01-0{n + 1}T00:00:00Z"} for n in range(4)]
    )
    refresh(client, tmp_path, sandbox)

    def hide_the_oldest(columns: dict[str, list[Any]]) -> None:
        for values in columns.values():
            del values[0]

    forge_snapshot(snapshot_path(tmp_path, client.base_url), hide_the_oldest)
    listing = refresh(client, tmp_path, sandbox)
    assert listing.how == "full"
    assert records[0]["phone"] in {contact.phone for contact in listing.contacts}


def test_an_unchanged_account_leaves_the_snapshot_unwritten(
    sandbox: SandboxHandle, client: HeymarketClient, tmp_path: Path
) -> None:
    records = seeded(sandbox, 5, updated="2024-01-01T00:00:00Z")
    refresh(client, tmp_path, sandbox)
    path = snapshot_path(tmp_path, client.base_url)
    path.touch()  # a marker: a rewrite replaces the file (and its inode)
    inode = path.stat().st_ino
    listing = refresh(client, tmp_path, sandbox)
    assert listing.how == "incremental"
    assert path.stat().st_ino == inode

    client.bulk_upsert([{"contact_id": records[1]["uuid"], "first": "Changed"}])
    assert refresh(client, tmp_path, sandbox).how == "incremental"
    assert path.stat().st_ino != inode
    assert refresh(client, tmp_path, sandbox).how == "incremental"


def test_the_listing_says_how_many_requests_it_used(
    sandbox: SandboxHandle, client: HeymarketClient, tmp_path: Path
) -> None:
    sandbox.set_faults(page_cap=10)
    seeded(sandbox, 25, updated="2024-01-01T00:00:00Z")
    listing, used = counted_refresh(client, tmp_path, sandbox)
    assert (listing.how, listing.requests) == ("full", sum(used.values()))
    assert listing.requests == 1 + 4  # the custom fields, 3 pages and the empty one
    listing, used = counted_refresh(client, tmp_path, sandbox)
    assert (listing.how, listing.requests) == ("incremental", sum(used.values()))


def test_refresh_full_lists_everything_even_with_a_good_snapshot(
    sandbox: SandboxHandle, client: HeymarketClient, tmp_path: Path
) -> None:
    sandbox.set_faults(page_cap=10)
    seeded(sandbox, 30)
    fetch_live_state(client, cache_dir=tmp_path)
    used = requests_by_route(
        sandbox, lambda: fetch_live_state(client, refresh="full", cache_dir=tmp_path)
    )
    assert used[LIST_ROUTE] == 4
    assert COUNT_ROUTE not in used or used[COUNT_ROUTE] == 0


def test_snapshot_is_private_and_holds_no_credential(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    seeded(sandbox, 2)
    for jwt in (False, True):
        with sandbox.client(jwt=jwt) as api:
            read_live_state(api, tmp_path, "auto")
    path = snapshot_path(tmp_path, sandbox.url)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    text = path.read_text(encoding="utf-8")
    for secret in (sandbox.api_key, sandbox.secret_id, sandbox.secret_key):
        assert secret not in text
        assert secret not in str(path)
    assert sandbox.url not in text


def test_a_listing_at_the_servers_rate_limit_gets_no_429(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    sandbox.set_faults(rate_limit=30, page_cap=5)
    seeded(sandbox, 145)  # 29 full pages + the empty page that ends the listing = 30
    with sandbox.client(
        requests_per_minute=30,
        max_retry_wait=0,  # a single 429 would fail the listing
    ) as api:
        contacts = api.list_contacts()
        assert api.request_count == 30
    assert len(contacts) == 145


class MinuteWindowServer:
    """The sandbox's listing and per-minute limit on a simulated clock, so a listing that
    takes several minutes of limiter waits runs in milliseconds."""

    def __init__(self, contacts: int, limit: int) -> None:
        self.now = 0.0
        self.limit = limit
        self.accepted: list[float] = []
        self.rejected = 0
        self.records = [
            {"id": n + 1, "uuid": f"u{n}", "phone": f"1510555{n:04d}", "rev": 1,
             "updated": f"2024-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"}
            for n in range(contacts)
        ]  # fmt: skip

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.accepted = [moment for moment in self.accepted if self.now - moment < 60.0]
        if len(self.accepted) >= self.limit:
            self.rejected += 1
            return httpx.Response(429, json={"error": "rate_limited", "message": "slow down"})
        self.accepted.append(self.now)
        body = json.loads(request.content)
        limit = min(int(body["limit"]), 100)
        matching = [r for r in self.records if r["updated"] >= body["date"]]
        start = int(body["page"]) * limit
        return httpx.Response(200, json=matching[start : start + limit])


def test_the_limiter_keeps_a_long_listing_under_a_per_minute_limit() -> None:
    server = MinuteWindowServer(contacts=1000, limit=4)
    client = HeymarketClient(
        "https://api.example.test",
        credentials_from_env({"HEYMARKET_API_KEY": "k"}),
        requests_per_minute=4,
        page_size=100,
        transport=httpx.MockTransport(server.handle),
        clock=lambda: server.now,
        sleep=server.sleep,
        max_retry_wait=0,
    )
    with client:
        contacts = client.list_contacts()
    assert len(contacts) == 1000
    assert server.rejected == 0
    # 11 requests at 4 a minute: the limiter waited out two full windows.
    assert client.request_count == 11
    assert server.now >= 120.0
