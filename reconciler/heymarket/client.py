"""The Heymarket contacts API over HTTP: listing, search, custom fields and bulk writes, with
honest reporting of writes whose outcome is unknown.

Each request goes through ``transport.Transport`` (rate limiting, retries, credential
scrubbing); a write it cannot call done or not done raises ``AmbiguousWriteError``, and the
bulk methods report those items as *ambiguous*, never re-sent blindly, because a second
create would duplicate the contact. The caller re-reads them. Bulk answers come out typed
(``parse.StoredContact``, ``parse.Refusal``, ``parse.UnknownOutcome``): no raw answer leaves
this package.

429s are retried for up to ``max_retry_wait`` seconds of waiting (default 120): Heymarket
counts requests per minute, so 429s can follow one another until the window rolls over."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, TypeVar

import httpx

from reconciler.core.errors import (
    AmbiguousWriteError,
    ApiError,
    BadResponseError,
    TransportError,
)
from reconciler.core.model import CustomField, LiveContact
from reconciler.core.progress import Estimate, ProgressSink
from reconciler.heymarket.auth import Credentials
from reconciler.heymarket.listing import keep_newest, list_contacts
from reconciler.heymarket.pagination import PageRequest
from reconciler.heymarket.parse import (
    Refusal,
    StoredContact,
    UnknownOutcome,
    canonical_timestamp,
    parse_contact_list,
    parse_count,
    parse_custom_fields,
    parse_delete_answer,
    parse_upsert_answer,
)
from reconciler.heymarket.retry import default_uniform
from reconciler.heymarket.transport import BatchTooLarge, Transport, TransportOptions

LIST_PATH: Final = "/v2/contacts/list"
SEARCH_PATH: Final = "/v2/contacts/search"
BULK_PATH: Final = "/v2/contacts"
COUNT_PATH: Final = "/v1/contacts/count"
FIELDS_LIST_PATH: Final = "/v1/contact-fields"
FIELDS_CREATE_PATH: Final = "/v1/contacts/fields"

EPOCH: Final = "1970-01-01T00:00:00Z"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What ``bulk_upsert`` did, item by item.

    ``ambiguous`` holds the items of batches whose outcome is unknown (a timeout, 5xx or
    dropped connection after the body was sent): they may or may not have been written."""

    succeeded: list[StoredContact] = field(default_factory=list)
    failed: list[Refusal] = field(default_factory=list)
    ambiguous: list[UnknownOutcome] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What ``bulk_delete`` did: the server answered "ok" for ``deleted``; the outcome of
    ``ambiguous`` is unknown."""

    deleted: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)


class HeymarketClient:
    """A client for one Heymarket account. Thread-safe; use as a context manager."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        requests_per_minute: int = 500,
        timeout: float = 30.0,
        write_timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
        page_size: int = 100,
        batch_size: int = 100,
        max_retry_wait: float = 120.0,
        on_request: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        uniform: Callable[[float, float], float] = default_uniform,
    ) -> None:
        if page_size < 1 or batch_size < 1:
            raise ValueError("page_size and batch_size must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._transport = Transport(
            self.base_url,
            credentials,
            TransportOptions(
                requests_per_minute=requests_per_minute,
                timeout=timeout,
                write_timeout=write_timeout,
                max_retry_wait=max_retry_wait,
                on_request=on_request,
                clock=clock,
                sleep=sleep,
                wall_clock=wall_clock,
                uniform=uniform,
            ),
            transport,
        )
        self.page_size = page_size
        self.batch_size = batch_size
        self.delete_batch_size = batch_size
        self.search_batch_size = batch_size
        # Where a listing reports how far it is (the run's console); ``None``: nowhere.
        self.progress: ProgressSink | None = None

    @property
    def request_count(self) -> int:
        return self._transport.request_count

    def __repr__(self) -> str:
        return f"HeymarketClient({self.base_url!r}, {self._credentials!r})"

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> HeymarketClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- reads -------------------------------------------------------------------------

    def list_contacts(self) -> list[LiveContact]:
        """Every contact of the account exactly once (its newest version seen), in
        ascending ``updated`` order."""
        return self._list_from(EPOCH, self._count_once())

    def list_contacts_since(self, updated: str) -> list[LiveContact]:
        """Every contact whose ``updated`` is at or after ``updated`` (RFC 3339), once each."""
        try:
            start = canonical_timestamp(updated, "since")
        except BadResponseError:
            raise ValueError(f"not an RFC 3339 timestamp: {updated!r}") from None
        return self._list_from(start)

    def search_by_phones(self, phones: Sequence[str]) -> list[LiveContact]:
        """The contacts with these phone numbers (those that exist), once each."""
        unique = list(dict.fromkeys(phones))
        found: dict[int, LiveContact] = {}

        def send(batch: Sequence[str]) -> None:
            body = {"contact_channels": [{"channel_type": "phone", "channel_ids": list(batch)}]}
            answer = self._transport.call("POST", SEARCH_PATH, body, write=False, batched=True)
            for contact in parse_contact_list(answer.body):
                keep_newest(found, contact)

        self._run_batches(unique, "search_batch_size", send)
        return list(found.values())

    def count(self) -> int:
        return parse_count(self._transport.call("POST", COUNT_PATH, {}, write=False).body)

    def list_custom_fields(self) -> list[CustomField]:
        return parse_custom_fields(
            self._transport.call("POST", FIELDS_LIST_PATH, {}, write=False).body
        )

    # -- writes ------------------------------------------------------------------------

    def create_custom_fields(self, titles: Sequence[str]) -> list[CustomField]:
        """Create custom fields by title; one that exists already comes back with its id.

        Raises ``AmbiguousWriteError`` when the outcome is unknown (list them to find out)."""
        if not titles:
            return []
        body = [{"title": title} for title in titles]
        return parse_custom_fields(
            self._transport.call("POST", FIELDS_CREATE_PATH, body, write=True).body
        )

    def bulk_upsert(self, items: Sequence[Mapping[str, Any]]) -> UpsertResult:
        """Create (no ``contact_id``) or update contacts through ``POST /v2/contacts``."""
        result = UpsertResult()

        def send(batch: Sequence[Mapping[str, Any]]) -> None:
            try:
                answer = self._transport.call(
                    "POST", BULK_PATH, {"contacts": list(batch)}, write=True, batched=True
                )
            except AmbiguousWriteError:
                result.ambiguous.extend(UnknownOutcome.of(item) for item in batch)
                return
            try:
                succeeded, failed = parse_upsert_answer(answer.body)
            except BadResponseError:
                succeeded, failed = [], []
            if len(succeeded) + len(failed) != len(batch):
                # A success we cannot read, or one that does not account for every item, may
                # still have written: the caller re-reads instead of trusting it.
                result.ambiguous.extend(UnknownOutcome.of(item) for item in batch)
                return
            result.succeeded.extend(succeeded)
            result.failed.extend(failed)

        self._run_batches(list(items), "batch_size", send)
        return result

    def bulk_delete(self, uuids: Sequence[str]) -> DeleteResult:
        """Delete contacts permanently through ``DELETE /v2/contacts``."""
        result = DeleteResult()

        def send(batch: Sequence[str]) -> None:
            body = {"contact_channels": [{"channel_type": "id", "channel_ids": list(batch)}]}
            try:
                answer = self._transport.call("DELETE", BULK_PATH, body, write=True, batched=True)
            except AmbiguousWriteError:
                result.ambiguous.extend(batch)
                return
            try:
                parse_delete_answer(answer.body)
            except BadResponseError:
                # A success we cannot read: the caller's search tells what is gone.
                result.ambiguous.extend(batch)
                return
            result.deleted.extend(batch)

        self._run_batches(list(dict.fromkeys(uuids)), "delete_batch_size", send)
        return result

    # -- listing -----------------------------------------------------------------------

    def _count_once(self) -> Estimate:
        """The account's contact count, asked for once and only if a progress line shows it:
        a guide to a whole listing's length, never worth failing the listing for."""
        asked: list[int | None] = []

        def estimate() -> int | None:
            if not asked:
                try:
                    asked.append(self.count())
                except (ApiError, TransportError):
                    asked.append(None)
            return asked[0]

        return estimate

    def _list_from(self, start: str, estimate: Estimate | None = None) -> list[LiveContact]:
        progress = self.progress
        if progress is not None:
            progress.begin_progress()
        try:
            return self._list_pages(start, progress, estimate)
        finally:
            if progress is not None:
                progress.end_progress()

    def _list_pages(
        self, start: str, progress: ProgressSink | None, estimate: Estimate | None
    ) -> list[LiveContact]:
        while True:
            answered = False
            read = 0

            def fetch_page(request: PageRequest) -> list[LiveContact]:
                nonlocal answered, read
                # Only the first page can tell that `limit` is over the server's largest
                # (later ones ask for no more than it served); a refusal then is a smaller
                # page size to try, as a silent cap would have been.
                body = self._transport.call(
                    "POST",
                    LIST_PATH,
                    request.body(),
                    write=False,
                    batched=not answered and request.limit > 1,
                ).body
                answered = True
                # A whole account: typed fields only (~150 MB less at 100k contacts); whatever
                # needs a full record (a prune backup) re-reads those contacts by search.
                page = parse_contact_list(body, keep_raw=False)
                read += len(page)
                if progress is not None:
                    progress.progress("Listing contacts", read, estimate=estimate)
                return page

            try:
                return list_contacts(fetch_page, start, self.page_size)
            except BatchTooLarge:
                self.page_size = max(1, self.page_size // 2)

    # -- batching ----------------------------------------------------------------------

    def _run_batches(
        self, items: list[T], size_attribute: str, send: Callable[[Sequence[T]], None]
    ) -> None:
        """Send ``items`` in batches of the size in ``size_attribute``, halving it (and
        remembering the smaller size) each time the server calls a batch too large."""
        position = 0
        while position < len(items):
            size: int = getattr(self, size_attribute)
            batch = items[position : position + size]
            try:
                send(batch)
            except BatchTooLarge as too_large:
                if len(batch) == 1:
                    raise too_large.error from None
                setattr(self, size_attribute, max(1, min(size, len(batch)) // 2))
                continue
            position += len(batch)
