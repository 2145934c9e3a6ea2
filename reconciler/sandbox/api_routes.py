"""The Heymarket contacts API the sandbox serves: list, search, bulk writes and deletes, the
legacy batch, count, and custom-field definitions, each as heymarket-api.md describes it
(documented behaviour, and the ASSUMED points where the documentation is silent)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from reconciler.sandbox.contact_changes import rewritten_write
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.replies import Handler, Query, Reply
from reconciler.sandbox.store import ContactStore
from reconciler.sandbox.wire import (
    BadRequest,
    channel_ids,
    json_object,
    parse_timestamp,
    parse_writes,
    whole_number,
)

DEFAULT_PAGE_SIZE: Final = 30


class ApiRoutes:
    """The documented endpoints over one account; the caps come from the live faults."""

    def __init__(self, store: ContactStore, faults: Faults) -> None:
        self._store = store
        self._faults = faults

    def table(self) -> dict[str, Handler]:
        """``"METHOD /path"`` to its handler."""
        return {
            "POST /v2/contacts/list": self._list,
            "POST /v2/contacts/search": self._search,
            "POST /v2/contacts": self._bulk_upsert,
            "DELETE /v2/contacts": self._bulk_delete,
            "POST /v1/batch/contacts": self._legacy_batch,
            "POST /v1/contacts/count": self._count,
            "POST /v1/contact-fields": self._list_fields,
            "POST /v1/contacts/fields": self._create_fields,
        }

    def _list(self, payload: Any, _query: Query) -> Reply:
        options = json_object(payload or {})
        limit = whole_number(options.get("limit", DEFAULT_PAGE_SIZE), "limit", minimum=1)
        page = whole_number(options.get("page", 0), "page", minimum=0)
        ascending = options.get("ascending", False)
        if not isinstance(ascending, bool):
            raise BadRequest("ascending must be true or false")
        date = options.get("date")
        records = self._store.list_page(
            # larger pages are cut down silently, as documented in heymarket-api.md
            limit=min(limit, self._faults.settings.page_cap),
            page=page,
            date=None if date in (None, "") else parse_timestamp(date),
            ascending=ascending,
        )
        return Reply(200, [record.as_json() for record in records])

    def _search(self, payload: Any, _query: Query) -> Reply:
        phones = channel_ids(payload, "phone")
        uuids = channel_ids(payload, "id")
        if phones is None and uuids is None:
            raise BadRequest("search needs a contact_channels entry of channel_type phone or id")
        found = {r.id: r for r in self._store.find_by("phone", phones or [])}
        found.update({r.id: r for r in self._store.find_by("uuid", uuids or [])})
        return Reply(200, [found[key].as_json() for key in sorted(found)])

    def _bulk_upsert(self, payload: Any, _query: Query) -> Reply:
        items = json_object(payload).get("contacts")
        if not isinstance(items, list):
            raise BadRequest('body must be {"contacts": [...]}')
        self._check_bulk_size(len(items))
        writes, refused = parse_writes(items)
        rewrite = self._faults.settings.text_rewrite
        succeeded, failed = self._store.bulk_write([rewritten_write(w, rewrite) for w in writes])
        return Reply(
            200,
            {
                "contacts": [record.as_json() for record in succeeded],
                "failed_contacts": [item.as_json() for item in refused + failed],
            },
        )

    def _bulk_delete(self, payload: Any, _query: Query) -> Reply:
        uuids = channel_ids(payload, "id")
        if uuids is None:
            raise BadRequest("delete needs a contact_channels entry of channel_type id")
        self._check_bulk_size(len(uuids))
        self._store.delete(uuids)
        return Reply(200, "ok")

    def _legacy_batch(self, payload: Any, query: Query) -> Reply:
        if not isinstance(payload, list):
            raise BadRequest("body must be a JSON array of contacts")
        self._check_bulk_size(len(payload))
        overwrite = query.get("overwrite", ["false"])[-1].lower() in ("true", "1")
        writes, refused = parse_writes(payload)
        failed = refused + self._store.legacy_batch(writes, overwrite=overwrite)
        return Reply(200, [item.as_json() for item in failed] if failed else "ok")

    def _count(self, _payload: Any, _query: Query) -> Reply:
        return Reply(200, {"count": self._store.count()})

    def _list_fields(self, _payload: Any, _query: Query) -> Reply:
        return Reply(200, [definition.as_json() for definition in self._store.fields()])

    def _create_fields(self, payload: Any, _query: Query) -> Reply:
        if not isinstance(payload, list) or not all(
            isinstance(item, Mapping) and isinstance(item.get("title"), str) for item in payload
        ):
            raise BadRequest('body must be [{"title": "..."}]')
        titles = [item["title"].strip() for item in payload]
        if not all(titles):
            raise BadRequest("a custom field needs a non-empty title")
        created = self._store.create_fields(titles)
        return Reply(
            200, [{"id": d.id, "title": d.title, "duplicate": d.duplicate} for d in created]
        )

    def _check_bulk_size(self, size: int) -> None:
        if size > self._faults.settings.bulk_cap:
            raise BadRequest("too many contacts")
