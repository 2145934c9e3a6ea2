"""The test-control endpoints under ``/_sandbox/``: reset the account, seed it, create
fields, read every contact, change the faults, count requests. They are not Heymarket's; they
need the same credentials, and faults and statistics leave them alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from reconciler.sandbox.faults import Faults, RequestStats
from reconciler.sandbox.replies import Handler, Query, Reply
from reconciler.sandbox.store import ContactStore
from reconciler.sandbox.wire import BadRequest, json_object, parse_seed_contact, seed_contact_list

CONTROL_PREFIX: Final = "/_sandbox/"


class ControlRoutes:
    """What a test needs to set up and inspect the account around the API."""

    def __init__(self, store: ContactStore, faults: Faults, stats: RequestStats) -> None:
        self._store = store
        self._faults = faults
        self._stats = stats

    def table(self) -> dict[str, Handler]:
        """``"METHOD /_sandbox/..."`` to its handler."""
        return {
            "POST /_sandbox/reset": self._reset,
            "POST /_sandbox/seed": self._seed,
            "POST /_sandbox/fields": self._fields,
            "GET /_sandbox/contacts": self._contacts,
            "GET /_sandbox/faults": self._faults_settings,
            "POST /_sandbox/faults": self._faults_settings,
            "GET /_sandbox/stats": self._request_stats,
        }

    def _reset(self, _payload: Any, _query: Query) -> Reply:
        self._store.reset()
        self._faults.reset()
        self._stats.reset()
        return Reply(200, "ok")

    def _seed(self, payload: Any, _query: Query) -> Reply:
        seeds = [parse_seed_contact(item) for item in seed_contact_list(payload)]
        return Reply(200, [record.as_json() for record in self._store.seed(seeds)])

    def _fields(self, payload: Any, _query: Query) -> Reply:
        titles = payload.get("titles") if isinstance(payload, Mapping) else payload
        if not isinstance(titles, list) or not all(isinstance(t, str) and t for t in titles):
            raise BadRequest('body must be {"titles": ["...", ...]}')
        return Reply(200, {d.title: str(d.id) for d in self._store.create_fields(titles)})

    def _contacts(self, _payload: Any, _query: Query) -> Reply:
        return Reply(200, [record.as_json() for record in self._store.all_contacts()])

    def _faults_settings(self, payload: Any, _query: Query) -> Reply:
        if payload is not None:
            self._faults.update(json_object(payload))
        return Reply(200, self._faults.settings.as_json())

    def _request_stats(self, _payload: Any, _query: Query) -> Reply:
        return Reply(200, self._stats.as_json())
