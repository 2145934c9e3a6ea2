"""The text of a progress line and its pace: at most one line per interval, none for an
operation shorter than one interval."""

from __future__ import annotations

from reconciler.core.progress import PROGRESS_INTERVAL_SECONDS, Pacer, progress_text


def test_a_line_counts_with_thousands_separators_and_marks_an_estimate() -> None:
    assert progress_text("Writing", 3000, 10000, unit="changes") == (
        "Writing: 3,000 of 10,000 changes"
    )
    assert progress_text("Listing contacts", 40000, 100000, approximate=True) == (
        "Listing contacts: 40,000 of ~100,000"
    )
    assert progress_text("Listing contacts", 40000, None) == "Listing contacts: 40,000 so far"
    assert progress_text("Deleting", 7, None, unit="contacts") == "Deleting: 7 contacts so far"


def test_the_first_line_waits_a_whole_interval_then_one_line_per_interval() -> None:
    interval = PROGRESS_INTERVAL_SECONDS
    pacer = Pacer(100.0)
    assert not pacer.due(100.0 + interval - 0.001)
    assert pacer.due(100.0 + interval)
    # However often it is asked, the next line waits a full interval after the last one.
    asked = [100.0 + interval + step * 0.25 for step in range(1, 4 * int(interval) * 3)]
    lines = [now for now in asked if pacer.due(now)]
    assert all(b - a >= interval for a, b in zip([100.0 + interval, *lines], lines, strict=False))
    assert len(lines) == 2
    assert pacer.elapsed(100.0 + 2.5 * interval) == int(2.5 * interval)
