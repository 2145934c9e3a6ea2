"""The client on a bad day: rate limits, 5xx, dropped connections, timeouts, refused
credentials and bodies that are not JSON. Over real HTTP against the sandbox where its faults
can produce the case; MockTransport only for exact sequences and headers it cannot."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from reconciler.core.errors import (
    ApiError,
    AuthenticationError,
    BadResponseError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from reconciler.heymarket import (
    ApiKeyCredentials,
    HeymarketClient,
    JwtCredentials,
    StoredContact,
)
from reconciler.heymarket.ratelimit import SlidingWindowLimiter
from tests.fake_clock import FakeClock, highest
from tests.mock_api import mock_client
from tests.sandbox_handle import SandboxHandle


def client_for(sandbox: SandboxHandle, clock: FakeClock, **options: Any) -> HeymarketClient:
    options.setdefault("requests_per_minute", 100_000)
    return sandbox.client(clock=clock.monotonic, sleep=clock.sleep, uniform=highest, **options)


def seed_contacts(sandbox: SandboxHandle, count: int) -> list[dict[str, Any]]:
    return sandbox.seed([{"phone": f"1415555{n:04d}", "first": f"N{n}"} for n in range(count)])


def creates(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "contact_channels": [{"channel_type": "phone", "channel_id": f"1628555{n:04d}"}],
            "first": f"New {n}",
        }
        for n in range(start, start + count)
    ]


def route_count(sandbox: SandboxHandle, route: str) -> int:
    count: int = sandbox.stats()["by_route"].get(route, 0)
    return count


# -- rate limits ----------------------------------------------------------------------------


def test_a_429_with_retry_after_is_waited_out_and_the_listing_completes(
    sandbox: SandboxHandle,
) -> None:
    seed_contacts(sandbox, 250)
    sandbox.set_faults(rate_limit=2, retry_after=True)
    # The server's window "rolls over" while the client sleeps.
    clock = FakeClock(on_sleep=lambda seconds: sandbox.set_faults(rate_limit=0))
    with client_for(sandbox, clock) as client:
        contacts = client.list_contacts()

    assert len({contact.id for contact in contacts}) == 250
    # The third request met the limit; the client waited what Retry-After asked, once.
    assert len(clock.slept) == 1
    assert 1 <= clock.slept[0] <= 60


def test_a_429_is_retried_for_the_whole_wait_budget_then_reported(
    sandbox: SandboxHandle,
) -> None:
    sandbox.set_faults(rate_limit=1)
    clock = FakeClock()
    with client_for(sandbox, clock, max_retry_wait=120.0) as client:
        assert client.count() == 0
        with pytest.raises(RateLimitedError) as raised:
            client.count()

    # Well past a whole rate-limit window of waiting, and not a fixed handful of tries.
    assert sum(clock.slept) == pytest.approx(120.0)
    assert len(clock.slept) > 5
    error = raised.value
    assert error.status == 429
    assert error.request_id
    assert "429" in str(error) and error.request_id in str(error)
    assert "too many requests" in str(error)


def test_a_retry_after_longer_than_the_budget_gives_up_at_once(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(rate_limit=1, retry_after=True)
    clock = FakeClock()
    with client_for(sandbox, clock, max_retry_wait=10.0) as client:
        client.count()
        with pytest.raises(RateLimitedError):
            client.count()
    assert clock.slept == []


def test_writes_are_retried_after_a_429_because_nothing_was_written(
    sandbox: SandboxHandle,
) -> None:
    sandbox.set_faults(rate_limit=1)
    clock = FakeClock(on_sleep=lambda seconds: sandbox.set_faults(rate_limit=0))
    with client_for(sandbox, clock) as client:
        client.count()
        result = client.bulk_upsert(creates(3))

    assert len(result.succeeded) == 3 and not result.ambiguous and not result.failed
    assert len(sandbox.contacts()) == 3


def test_the_limiter_keeps_a_long_listing_under_the_server_limit() -> None:
    clock = FakeClock()
    server_sends: list[float] = []
    stored = [
        {"id": n, "uuid": f"u{n}", "phone": f"1{n:010d}", "updated": "2025-01-01T00:00:00Z"}
        for n in range(1, 3_001)
    ]

    def limited_server(request: httpx.Request) -> httpx.Response:
        # The server's own sliding window, on the same clock as the client.
        recent = [t for t in server_sends if t > clock.now - 60]
        if len(recent) >= 20:
            return httpx.Response(429, json={"error": "rate_limited", "message": "slow down"})
        server_sends.append(clock.now)
        options = json.loads(request.content)
        start = options["page"] * options["limit"]
        return httpx.Response(200, json=stored[start : start + options["limit"]])

    client = mock_client(limited_server, clock, requests_per_minute=20)
    with client:
        contacts = client.list_contacts()

    assert len(contacts) == 3_000
    # 31 requests at 20 a minute, none of them refused.
    assert client.request_count == len(server_sends) == 31
    assert clock.now - 1_000.0 >= 60


def test_the_limiter_lets_a_small_run_go_at_full_speed_and_caps_any_minute() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(500, clock=clock.monotonic, sleep=clock.sleep)
    sent: list[float] = []
    for _ in range(500):
        limiter.acquire()
        sent.append(clock.now)
    assert clock.slept == []
    for _ in range(700):
        limiter.acquire()
        sent.append(clock.now)
    for index, moment in enumerate(sent):
        in_window = [t for t in sent[index:] if t < moment + 60]
        assert len(in_window) <= 500


# -- server errors, dropped connections and timeouts -------------------------------------------


def test_dropped_connections_on_reads_are_retried(sandbox: SandboxHandle) -> None:
    seed_contacts(sandbox, 150)
    sandbox.set_faults(drop_connections=2)
    clock = FakeClock()
    with client_for(sandbox, clock) as client:
        contacts = client.list_contacts()
        requests = client.request_count

    assert len({contact.id for contact in contacts}) == 150
    assert requests == 3 + 2
    assert len(clock.slept) == 2


def test_random_server_errors_on_reads_are_retried(sandbox: SandboxHandle) -> None:
    seed_contacts(sandbox, 500)
    sandbox.set_faults(fail_rate=0.1)
    with client_for(sandbox, FakeClock()) as client:
        contacts = client.list_contacts()
        assert len(client.search_by_phones([f"1415555{n:04d}" for n in range(500)])) == 500
    assert len({contact.id for contact in contacts}) == 500


def test_a_write_answered_with_500_after_it_committed_is_ambiguous_and_not_resent(
    sandbox: SandboxHandle,
) -> None:
    sandbox.set_faults(commit_then_fail=1)
    items = creates(150)
    with client_for(sandbox, FakeClock()) as client:
        result = client.bulk_upsert(items)

    assert [unknown.item for unknown in result.ambiguous] == items[:100]
    assert len(result.succeeded) == 50
    assert route_count(sandbox, "POST /v2/contacts") == 2
    # It did commit: a blind re-send would have created 100 duplicates (or failures).
    assert len(sandbox.contacts()) == 150


def test_a_write_whose_connection_drops_after_commit_is_ambiguous(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(drop_connections=1, drop_after_commit=True)
    with client_for(sandbox, FakeClock()) as client:
        result = client.bulk_upsert(creates(2))
        found = client.search_by_phones(["16285550000", "16285550001"])

    assert len(result.ambiguous) == 2 and not result.succeeded
    assert route_count(sandbox, "POST /v2/contacts") == 1
    assert len(found) == 2


def test_a_delete_answered_with_500_is_ambiguous(sandbox: SandboxHandle) -> None:
    stored = seed_contacts(sandbox, 3)
    sandbox.set_faults(commit_then_fail=1)
    uuids = [record["uuid"] for record in stored]
    with client_for(sandbox, FakeClock()) as client:
        result = client.bulk_delete(uuids)
    assert result.ambiguous == uuids and result.deleted == []
    assert route_count(sandbox, "DELETE /v2/contacts") == 1


def test_a_write_that_times_out_is_ambiguous_and_a_read_that_times_out_is_retried(
    sandbox: SandboxHandle,
) -> None:
    sandbox.set_faults(latency_ms=400)
    clock = FakeClock()
    with client_for(sandbox, clock, timeout=0.1, write_timeout=0.1) as client:
        result = client.bulk_upsert(creates(1))
        with pytest.raises(TransportError, match="lost the connection"):
            client.count()
        requests = client.request_count

    assert len(result.ambiguous) == 1
    # One write, never re-sent; the read tried six times.
    assert requests == 1 + 6


def test_a_bulk_write_may_take_longer_than_a_read_before_it_counts_as_timed_out(
    sandbox: SandboxHandle,
) -> None:
    sandbox.set_faults(latency_ms=400)
    with client_for(sandbox, FakeClock(), timeout=0.1, write_timeout=5.0) as client:
        result = client.bulk_upsert(creates(2))
    assert len(result.succeeded) == 2 and not result.ambiguous


def test_a_server_that_cannot_be_reached_is_reported_after_retries() -> None:
    clock = FakeClock()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = mock_client(refuse, clock)
    with client, pytest.raises(TransportError, match="could not reach Heymarket"):
        client.bulk_upsert(creates(1))
    # Nothing reached the server, so even a write is retried (a few times: a server that
    # refuses connections rarely accepts them seconds later).
    assert client.request_count == 3


def test_a_write_is_retried_when_the_connection_was_refused_then_succeeds() -> None:
    answers: Iterator[httpx.Response | None] = iter(
        [None, httpx.Response(200, json={"contacts": [{"id": 1}], "failed_contacts": []})]
    )
    sent: list[bytes] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if answer is None:
            raise httpx.ConnectError("connection refused", request=request)
        sent.append(request.content)
        return answer

    clock = FakeClock()
    client = mock_client(flaky, clock)
    with client:
        result = client.bulk_upsert(creates(1))
    # The answer names neither a phone nor a uuid: stored, as it says, under nothing known.
    assert result.succeeded == [StoredContact(phone=None, uuid=None)] and not result.ambiguous
    assert len(sent) == 1


def test_server_errors_on_reads_back_off_then_report_status_request_id_and_message() -> None:
    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            503,
            json={"error": "unavailable", "message": "maintenance window"},
            headers={"X-Request-Id": "req-503"},
        )

    clock = FakeClock()
    client = mock_client(failing, clock, uniform=highest)
    with client, pytest.raises(ServerError) as raised:
        client.list_custom_fields()
    assert raised.value.status == 503
    assert raised.value.request_id == "req-503"
    assert "maintenance window" in str(raised.value)
    # Exponential: each wait twice the one before (jitter pinned at its ceiling).
    assert clock.slept == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_retry_after_as_an_http_date_is_honoured() -> None:
    server_now = 1_750_000_000.0
    answers = iter(
        [
            httpx.Response(
                429,
                json={"error": "rate_limited", "message": "slow down"},
                headers={
                    "Retry-After": email.utils.formatdate(server_now + 7, usegmt=True),
                    "Date": email.utils.formatdate(server_now, usegmt=True),
                },
            ),
            httpx.Response(200, json={"count": 4}),
        ]
    )
    clock = FakeClock()
    client = mock_client(
        lambda request: next(answers),
        clock,
        # A local clock far from the server's must not matter.
        wall_clock=lambda: server_now + 3_600,
    )
    with client:
        assert client.count() == 4
    assert clock.slept == [7.0]


# -- batches the server calls too large -----------------------------------------------------


def test_a_batch_the_server_calls_too_large_is_halved_and_the_size_remembered(
    sandbox: SandboxHandle,
) -> None:
    sandbox.set_faults(bulk_cap=30)
    with client_for(sandbox, FakeClock()) as client:
        first = client.bulk_upsert(creates(100))
        after_first = route_count(sandbox, "POST /v2/contacts")
        second = client.bulk_upsert(creates(50, start=100))
        remembered = client.batch_size

    assert len(first.succeeded) == 100 and len(second.succeeded) == 50
    # 100 and 50 refused, then four batches of 25; later calls start at 25.
    assert after_first == 2 + 4
    assert remembered == 25
    assert route_count(sandbox, "POST /v2/contacts") == after_first + 2
    assert len(sandbox.contacts()) == 150


def test_deletes_are_batched_and_halved_too(sandbox: SandboxHandle) -> None:
    stored = seed_contacts(sandbox, 120)
    sandbox.set_faults(bulk_cap=50)
    with client_for(sandbox, FakeClock()) as client:
        result = client.bulk_delete([record["uuid"] for record in stored])

    assert sorted(result.deleted) == sorted(record["uuid"] for record in stored)
    assert sandbox.contacts() == []


# -- refused credentials and other refusals -----------------------------------------------


def test_a_wrong_api_key_names_the_variable_never_the_value(sandbox: SandboxHandle) -> None:
    wrong = "wrong-key-0123456789"
    with (
        HeymarketClient(sandbox.url, ApiKeyCredentials(wrong)) as client,
        pytest.raises(AuthenticationError) as raised,
    ):
        client.count()
    message = str(raised.value)
    assert "HEYMARKET_API_KEY" in message
    assert wrong not in message and wrong not in repr(client)
    assert raised.value.status == 401 and raised.value.request_id
    assert client.request_count == 1


def test_wrong_jwt_secrets_are_retried_once_with_a_fresh_token_then_named(
    sandbox: SandboxHandle,
) -> None:
    credentials = JwtCredentials(sandbox.secret_id, "not-the-secret-key")
    with (
        HeymarketClient(sandbox.url, credentials) as client,
        pytest.raises(AuthenticationError) as raised,
    ):
        client.list_custom_fields()
    message = str(raised.value)
    assert "HEYMARKET_SECRET_ID/HEYMARKET_SECRET_KEY" in message
    assert sandbox.secret_id not in message and "not-the-secret-key" not in message
    assert client.request_count == 2


def test_a_token_refused_as_expired_is_signed_anew_and_the_request_succeeds(
    sandbox: SandboxHandle,
) -> None:
    # The first token is signed by a clock ten minutes slow, so the sandbox finds it expired.
    readings = iter([time.time() - 600])
    credentials = JwtCredentials(sandbox.secret_id, sandbox.secret_key)
    with HeymarketClient(
        sandbox.url, credentials, wall_clock=lambda: next(readings, time.time())
    ) as client:
        assert client.count() == 0
        assert client.request_count == 2


def test_jwt_credentials_work_against_the_sandbox(sandbox: SandboxHandle) -> None:
    seed_contacts(sandbox, 3)
    credentials = JwtCredentials(sandbox.secret_id, sandbox.secret_key)
    with HeymarketClient(sandbox.url, credentials) as client:
        assert client.count() == 3
        assert len(client.list_contacts()) == 3


def test_a_403_says_what_to_check() -> None:
    def denied(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": "denied", "message": "no API access"})

    client = HeymarketClient(
        "https://heymarket.test",
        ApiKeyCredentials("key-value"),
        transport=httpx.MockTransport(denied),
    )
    with client, pytest.raises(AuthenticationError, match="HEYMARKET_API_KEY may use"):
        client.count()


def test_a_bad_data_refusal_carries_the_servers_message(sandbox: SandboxHandle) -> None:
    with client_for(sandbox, FakeClock()) as client, pytest.raises(ApiError) as raised:
        client.create_custom_fields(["  "])
    assert raised.value.status == 400
    assert raised.value.code == "bad_data"
    assert "non-empty title" in str(raised.value)


@pytest.mark.parametrize("status", [200, 404])
def test_an_html_page_instead_of_json_is_a_bad_response_with_status_and_request_id(
    status: int,
) -> None:
    def proxy_page(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            text="<html><body>Welcome to nginx</body></html>",
            headers={"Content-Type": "text/html", "X-Request-Id": "req-html"},
        )

    client = mock_client(proxy_page)
    with client, pytest.raises(BadResponseError) as raised:
        client.list_contacts()
    assert raised.value.status == status
    assert raised.value.request_id == "req-html"
    assert "not JSON (text/html)" in str(raised.value)


# -- where the documentation leaves the server's answers open -------------------------------


def _mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> HeymarketClient:
    return mock_client(handler, FakeClock(), uniform=highest)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (413, "Request Entity Too Large"),
        (400, "Maximum 40 contacts per request"),
        (400, "batch exceeds the limit of 40"),
    ],
)
def test_other_wordings_of_a_batch_over_the_limit_are_split_too(status: int, message: str) -> None:
    sizes: list[int] = []

    def capped(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)["contacts"]
        sizes.append(len(items))
        if len(items) > 40:
            return httpx.Response(status, json={"error": "bad_data", "message": message})
        return httpx.Response(200, json={"contacts": items, "failed_contacts": []})

    with _mock_client(capped) as client:
        result = client.bulk_upsert(creates(100))

    assert len(result.succeeded) == 100 and not result.ambiguous
    assert sizes == [100, 50, 25, 25, 25, 25]


def test_a_delete_answered_with_ok_as_plain_text_counts_as_done() -> None:
    with _mock_client(lambda request: httpx.Response(200, text="ok")) as client:
        result = client.bulk_delete(["uuid-1", "uuid-2"])
    assert result.deleted == ["uuid-1", "uuid-2"] and not result.ambiguous


@pytest.mark.parametrize("body", [b"<html>Accepted</html>", b'{"unexpected": true}', b"[1, 2]"])
def test_a_write_answered_with_an_unreadable_success_is_ambiguous_not_an_error(
    body: bytes,
) -> None:
    # It may have written: reporting it ambiguous makes apply re-read instead of giving up.
    with _mock_client(lambda request: httpx.Response(200, content=body)) as client:
        upserted = client.bulk_upsert(creates(3))
        deleted = client.bulk_delete(["uuid-1"])
    assert len(upserted.ambiguous) == 3 and not upserted.succeeded
    assert deleted.ambiguous == ["uuid-1"] and not deleted.deleted
