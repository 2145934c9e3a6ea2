"""Timestamps as the tool writes them: UTC, ISO 8601, with ``Z``; a fraction of a second
only when the moment has one (the API's ``updated`` has whole seconds; journal lines, saved
plans and backups are stamped to the second)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_text(moment: datetime) -> str:
    """``2026-11-29T23:30:00Z`` (``...00.250000Z`` when the moment has a fraction)."""
    utc = moment.astimezone(UTC)
    spec = "microseconds" if utc.microsecond else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def utc_seconds_text(moment: datetime) -> str:
    """``utc_text`` to the whole second."""
    return utc_text(moment.replace(microsecond=0))
