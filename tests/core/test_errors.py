"""The exit code of a run over several accounts: the most severe of theirs."""

from __future__ import annotations

import pytest

from reconciler.core.errors import worst_exit_code


@pytest.mark.parametrize(
    ("codes", "worst"),
    [
        ([], 0),
        ([0, 0], 0),
        ([0, 2], 2),
        ([2, 1, 0], 1),
        ([1, 3, 2], 3),
        ([3, 130], 130),
        ([0, 7], 7),
    ],
)
def test_the_worst_code_wins(codes: list[int], worst: int) -> None:
    assert worst_exit_code(codes) == worst
