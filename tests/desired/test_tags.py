"""``tags:`` in a contacts file: omitted is not managed, ``[]`` or ``null`` clears, each tag
trimmed; too many, blank or repeated tags are problems at their line, on both loader paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core.errors import DesiredStateError
from reconciler.desired.fast_parse import valid_contact_rows
from reconciler.desired.loader import load_desired_state, parse_file

VALID = b"""\
contacts:
  - phone: "15105550001"
    tags: [ VIP , Wholesale]
  - phone: "15105550002"
    tags: null
  - phone: "15105550003"
    tags: []
  - phone: "15105550004"
    tags:
      - "Zoe\\u0308"
  - phone: "15105550005"
"""

INVALID = b"""\
contacts:
  - phone: "15105550001"
    tags: [a, b, c, d, e, f]
  - phone: "15105550002"
    tags:
      - VIP
      - "  "
      - " VIP"
  - phone: "15105550003"
    tags: [2024]
  - phone: "15105550004"
    tags: VIP
"""


def test_tags_are_read_alike_on_both_paths() -> None:
    expected = [("VIP", "Wholesale"), (), (), ("Zo\u00eb",), None]
    assert [contact.tags for contact in parse_file(VALID, "team.yaml").contacts] == expected
    rows = valid_contact_rows(VALID)
    assert rows is not None
    assert [None if row.tags is None else tuple(row.tags) for row in rows] == expected


def test_every_tag_problem_is_reported_where_it_is_written(tmp_path: Path) -> None:
    contacts = tmp_path / "contacts"
    contacts.mkdir()
    (contacts / "team.yaml").write_bytes(INVALID)
    assert valid_contact_rows(INVALID) is None
    with pytest.raises(DesiredStateError) as caught:
        load_desired_state(contacts, tmp_path)
    assert [str(problem) for problem in caught.value.problems] == [
        'contacts/team.yaml:3:5: "tags" lists 6 tags; a contact has at most 5 '
        "(Heymarket's limit): remove some",
        'contacts/team.yaml:7:9: item 2 of "tags" is blank; write a tag or remove the item',
        'contacts/team.yaml:8:9: tag "VIP" is written twice in "tags" (items 1 and 3, '
        "compared after trimming); remove one",
        'contacts/team.yaml:10:12: item 1 of "tags" must be a string, not a number',
        'contacts/team.yaml:12:5: "tags" must be a list or null, not a string',
    ]


def test_tags_that_differ_only_in_case_are_two_tags() -> None:
    (contact,) = parse_file(
        b'contacts:\n  - phone: "15105550001"\n    tags: [vip, VIP]\n', "t.yaml"
    ).contacts
    assert contact.tags == ("vip", "VIP")
