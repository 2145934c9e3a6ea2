"""Listing every contact exactly once: against the sandbox over real HTTP, and against an
in-memory server (MockTransport) for page caps, timestamp layouts and concurrent writes that
the sandbox cannot be steered through deterministically."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.core.errors import BadResponseError
from reconciler.heymarket import HeymarketClient
from tests.mock_api import mock_client
from tests.sandbox_handle import SandboxHandle

BASE_TIME = datetime(2025, 3, 1, tzinfo=UTC)
LIST_ROUTE = "POST /v2/contacts/list"


def stamp(seconds: int) -> str:
    return (BASE_TIME + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def phone(number: int) -> str:
    return f"1510{number:07d}"


def sandbox_client(sandbox: SandboxHandle, **options: Any) -> HeymarketClient:
    options.setdefault("requests_per_minute", 100_000)
    return sandbox.client(**options)


def ten_thousand_with_a_shared_second() -> list[dict[str, Any]]:
    """10,000 contacts with distinct `updated` seconds, except 500 that share one second and
    start in the middle of a page (offset 4,037)."""
    contacts = []
    for number in range(10_000):
        second = 4_037 if 4_037 <= number < 4_537 else number
        contacts.append({"phone": phone(number), "first": f"C{number}", "updated": stamp(second)})
    return contacts


def test_ten_thousand_contacts_with_500_in_one_second_are_listed_once_in_pages_plus_one(
    sandbox: SandboxHandle,
) -> None:
    stored = sandbox.seed(ten_thousand_with_a_shared_second())
    with sandbox_client(sandbox) as client:
        contacts = client.list_contacts()
        requests = client.request_count

    assert sorted(contact.id for contact in contacts) == sorted(record["id"] for record in stored)
    assert len({contact.id for contact in contacts}) == 10_000
    # 100 full pages of 100 and the empty page that ends the listing.
    assert requests == 101
    assert sandbox.stats()["by_route"] == {LIST_ROUTE: 101}


def test_a_silent_page_cap_below_the_asked_limit_is_no_end_of_the_listing(
    sandbox: SandboxHandle,
) -> None:
    sandbox.seed(ten_thousand_with_a_shared_second()[:1_000])
    sandbox.set_faults(page_cap=37)
    with sandbox_client(sandbox, page_size=100) as client:
        contacts = client.list_contacts()
        requests = client.request_count

    assert len(contacts) == 1_000
    assert len({contact.id for contact in contacts}) == 1_000
    # ceil(1000 / 37) = 28 pages and the empty one.
    assert requests == 29


def test_every_contact_sharing_one_second_is_listed_once(sandbox: SandboxHandle) -> None:
    # A bulk import stamps all its contacts alike: the cursor cannot move, only `page` can.
    sandbox.seed([{"phone": phone(n), "updated": stamp(0)} for n in range(730)])
    with sandbox_client(sandbox) as client:
        contacts = client.list_contacts()
        requests = client.request_count

    assert len({contact.id for contact in contacts}) == len(contacts) == 730
    assert requests == 9


def test_contacts_written_during_the_listing_are_neither_lost_nor_duplicated(
    sandbox: SandboxHandle,
) -> None:
    sandbox.seed([{"phone": phone(n), "updated": stamp(n)} for n in range(1_000)])
    writer = sandbox_client(sandbox)
    listed_so_far: list[int] = []

    def write_between_pages(method: str, path: str) -> None:
        listed_so_far.append(1)
        if len(listed_so_far) in (3, 5, 7):
            live = {c["phone"]: c["uuid"] for c in sandbox.contacts()}
            page = len(listed_so_far)
            # Contacts on the page just read, one long read, and one not read yet move to
            # the end of the order; and a new contact appears.
            touched = [phone(page * 100 - 1), phone(page * 100 - 50), phone(50), phone(990)]
            updates = [{"contact_id": live[p], "first": f"moved at {page}"} for p in touched]
            creates = [
                {"contact_channels": [{"channel_type": "phone", "channel_id": phone(5000 + page)}]}
            ]
            result = writer.bulk_upsert(updates + creates)
            assert not result.failed and not result.ambiguous

    with sandbox_client(sandbox, on_request=write_between_pages) as client:
        contacts = client.list_contacts()
    writer.close()

    live = {record["id"]: record for record in sandbox.contacts()}
    assert len(contacts) == len({contact.id for contact in contacts}) == 1_003
    assert {contact.id for contact in contacts} == set(live)
    # Each contact comes back in its newest version.
    assert all(contact.rev == live[contact.id]["rev"] for contact in contacts)
    assert {c.first for c in contacts if c.phone == phone(50)} == {"moved at 7"}


def test_listing_since_a_time_returns_the_contacts_updated_at_or_after_it(
    sandbox: SandboxHandle,
) -> None:
    sandbox.seed([{"phone": phone(n), "updated": stamp(n // 3)} for n in range(600)])
    with sandbox_client(sandbox) as client:
        recent = client.list_contacts_since(stamp(150))

    assert sorted(contact.phone for contact in recent) == [phone(n) for n in range(450, 600)]


def test_an_empty_account_takes_one_request(sandbox: SandboxHandle) -> None:
    with sandbox_client(sandbox) as client:
        assert client.list_contacts() == []
        assert client.request_count == 1


# -- an in-memory server with the same ordering rules, steerable between requests ---------


@dataclass(frozen=True)
class Stored:
    id: int
    updated: int
    rev: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uuid": f"uuid-{self.id}",
            "phone": phone(self.id),
            "updated": stamp(self.updated),
            "rev": self.rev,
            "custom": None,
        }


class MemoryAccount:
    """POST /v2/contacts/list as heymarket-api.md assumes it: (updated, id) order, inclusive
    `date`, `page` in pages of the capped limit. ``between_requests`` runs before each
    answer, so a test can write to the account mid-listing."""

    def __init__(self, updated: list[int], page_cap: int) -> None:
        self.contacts = {n: Stored(n, second, 1) for n, second in enumerate(updated, start=1)}
        self.page_cap = page_cap
        self.requests = 0
        self.clock = max(updated, default=0) + 1
        self.between_requests: Callable[[MemoryAccount], None] = lambda account: None

    def touch(self, contact_id: int) -> None:
        old = self.contacts[contact_id]
        self.contacts[contact_id] = replace(old, updated=self.clock, rev=old.rev + 1)

    def create(self) -> None:
        new_id = max(self.contacts, default=0) + 1
        self.contacts[new_id] = Stored(new_id, self.clock, 1)

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v2/contacts/list"
        self.requests += 1
        self.between_requests(self)
        self.clock += 1
        body = json.loads(request.content)
        assert body["ascending"] is True
        since = datetime.fromisoformat(body["date"].replace("Z", "+00:00"))
        since_seconds = int((since - BASE_TIME).total_seconds())
        limit = min(body["limit"], self.page_cap)
        ordered = sorted(
            (c for c in self.contacts.values() if c.updated >= since_seconds),
            key=lambda c: (c.updated, c.id),
        )
        page = ordered[body["page"] * limit : (body["page"] + 1) * limit]
        return httpx.Response(200, json=[c.as_json() for c in page])


def memory_client(account: MemoryAccount, page_size: int = 100) -> HeymarketClient:
    return mock_client(account.handle, page_size=page_size, requests_per_minute=1_000_000)


def test_a_page_cap_of_37_with_runs_of_shared_seconds_lists_each_contact_once() -> None:
    rng = random.Random(7)
    updated = sorted(rng.choice([n, n, n, n // 50]) for n in range(5_000))
    account = MemoryAccount(updated, page_cap=37)
    with memory_client(account) as client:
        contacts = client.list_contacts()

    assert sorted(contact.id for contact in contacts) == sorted(account.contacts)
    # Re-reading a little inside runs is allowed; re-reading the account is not.
    assert account.requests <= -(-5_000 // 37) * 1.1 + 1


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(
    seconds=st.lists(st.integers(min_value=0, max_value=40), min_size=0, max_size=400),
    page_cap=st.integers(min_value=1, max_value=60),
    page_size=st.integers(min_value=1, max_value=100),
    writes=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=60), st.integers(min_value=0, max_value=10**6)
        ),
        max_size=12,
    ),
)
def test_any_layout_cap_and_writes_during_the_listing_yield_every_contact_once(
    seconds: list[int],
    page_cap: int,
    page_size: int,
    writes: list[tuple[int, int]],
) -> None:
    account = MemoryAccount(sorted(seconds), page_cap=page_cap)
    planned: dict[int, list[int]] = {}
    for at_request, pick in writes:
        planned.setdefault(at_request, []).append(pick)

    def write(target: MemoryAccount) -> None:
        for pick in planned.get(target.requests, []):
            if pick % 4 == 0 or not target.contacts:
                target.create()
            else:
                target.touch(sorted(target.contacts)[pick % len(target.contacts)])

    existing_before = set(account.contacts)
    account.between_requests = write
    with memory_client(account, page_size=page_size) as client:
        contacts = client.list_contacts()

    listed = {contact.id: contact for contact in contacts}
    assert len(listed) == len(contacts)
    # Every contact that existed throughout is listed; one created during the listing may be.
    assert existing_before <= set(listed) <= set(account.contacts)
    # A contact written during the listing may come back in the version read before the
    # write (a snapshot cannot be exact), never in one that did not exist.
    assert all(1 <= c.rev <= account.contacts[i].rev for i, c in listed.items())


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(
    seconds=st.lists(st.integers(min_value=0, max_value=30), max_size=500),
    page_cap=st.integers(min_value=1, max_value=60),
    page_size=st.integers(min_value=1, max_value=100),
)
def test_a_quiet_account_is_listed_in_the_fewest_requests_whatever_its_layout(
    seconds: list[int], page_cap: int, page_size: int
) -> None:
    account = MemoryAccount(sorted(seconds), page_cap=page_cap)
    with memory_client(account, page_size=page_size) as client:
        contacts = client.list_contacts()

    assert sorted(contact.id for contact in contacts) == sorted(account.contacts)
    full_pages = -(-len(seconds) // min(page_cap, page_size))
    assert account.requests == full_pages + 1


def test_a_server_that_ignores_page_is_reported_not_looped_on() -> None:
    records = [Stored(n, 0, 1).as_json() for n in range(1, 101)]

    def same_page_always(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=records, headers={"X-Request-Id": "req-7"})

    client = mock_client(same_page_always)
    with client, pytest.raises(BadResponseError, match="ignore `page`"):
        client.list_contacts()
    assert client.request_count == 2
