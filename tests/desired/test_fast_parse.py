"""The fast path and the reference loader must agree on every file: same contacts, same
positions, same problems. Generated files lean on the scalars YAML reads surprisingly."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.desired.fast_parse import ContactRow, valid_contact_rows
from reconciler.desired.loader import parse_file, parse_file_fast

# Plain scalars whose type depends on the YAML version or on the resolver's rules.
TRICKY_PLAIN = [
    "NO", "no", "yes", "on", "Off", "y", "~", "null", "Null", "NULL", "true", "True", "TRUE",
    "false", "FALSE", "tRUE", "0x1F", "0o17", "0b11", "012", "+1", "-0", "1_000", "1e3",
    "1.5", ".5", "5.", "-.inf", ".Inf", ".NAN", ".nan", "2024-01-01", "12:30", "1:2:3",
    "15105551234", "+15105551234", "1234567", "123456", "1234567890123456", "a@b", "@",
    "no-at-sign", "user@example.com", "Ölçü", "💡", "x # not a comment?", "a: b",
]  # fmt: skip
TRICKY_QUOTED = [
    "", " ", "NO", "true", "null", "~", "15105551234", "1234567\\n", "12345678 ", " 1234567",
    "+1 510-555-1234", "a@b", "@", "tab\\there", "line\\nbreak", "0x10", "1e3",
]  # fmt: skip
KEYS = [
    "phone", "first", "last", "display_name", "email", "is_opted_out", "custom", "frist", "tags",
]  # fmt: skip
CUSTOM_TITLES = ["Account tier", "Region", "Seats", "phone", "", "NO", "1"]


def _plain(text: str) -> str:
    return text


def _double_quoted(text: str) -> str:
    return f'"{text}"'


scalar = st.one_of(
    st.sampled_from(TRICKY_PLAIN).map(_plain),
    st.sampled_from(TRICKY_QUOTED).map(_double_quoted),
    st.sampled_from(["[gold]", "{a: 1}", "[]", "!!str 12", "!!int '12'", "&a x", "*a"]),
)
phone_value = st.one_of(
    st.integers(min_value=1_000_000, max_value=999_999_999_999_999).map(str),
    st.integers(min_value=1_000_000, max_value=999_999_999_999_999).map(lambda n: f'"{n}"'),
    scalar,
)


@st.composite
def contact_text(draw: st.DrawFn) -> str:
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=5))
    if draw(st.booleans()):
        keys = ["phone", *keys]
    lines: list[str] = []
    for index, key in enumerate(keys):
        lead = "  - " if index == 0 else "    "
        if key == "custom":
            titles = draw(st.lists(st.sampled_from(CUSTOM_TITLES), min_size=1, max_size=3))
            lines.append(f"{lead}custom:")
            lines.extend(f"      {title or '?'}: {draw(scalar)}" for title in titles)
        elif key == "phone":
            lines.append(f"{lead}phone: {draw(phone_value)}")
        elif key == "tags" and draw(st.booleans()):
            tags = draw(st.lists(scalar | st.sampled_from(["VIP", " VIP", "b"]), max_size=7))
            if draw(st.booleans()):
                lines.append(f"{lead}tags: [{', '.join(tags)}]")
            else:
                lines.append(f"{lead}tags:")
                lines.extend(f"      - {tag}" for tag in tags)
        else:
            lines.append(f"{lead}{key}: {draw(scalar)}")
    if not lines:
        lines.append('  - phone: "15105550000"')
    return "\n".join(lines)


@st.composite
def contacts_file(draw: st.DrawFn) -> bytes:
    contacts = draw(st.lists(contact_text(), max_size=6))
    body = "contacts:\n" + "\n".join(contacts) + "\n" if contacts else "contacts: []\n"
    prefix = draw(st.sampled_from(["", "# team\n", "---\n", "%YAML 1.2\n---\n"]))
    suffix = draw(st.sampled_from(["", "# end\n", "other: 1\n", "---\ncontacts: []\n"]))
    return (prefix + body + suffix).encode()


def _outcome(parsed: object) -> str:
    return repr(parsed)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contacts_file())
def test_fast_path_and_reference_path_agree(data: bytes) -> None:
    reference = parse_file(data, "contacts/team.yaml")
    fast = parse_file_fast(data, "contacts/team.yaml")
    rows = valid_contact_rows(data)
    if rows is None:
        assert isinstance(fast, type(reference))
        assert _outcome(fast) == _outcome(reference)
        return
    # The fast path said "valid": the reference path must find no problem and the same
    # contacts, at the same lines and phone positions.
    assert reference.problems == []
    assert [row.phone for row in rows] == [c.phone for c in reference.contacts]
    assert [repr(dict(row.fields)) for row in rows] == [
        repr(dict(c.fields)) for c in reference.contacts
    ]
    assert [repr(dict(row.custom)) for row in rows] == [
        repr(dict(c.custom)) for c in reference.contacts
    ]
    assert [row.line for row in rows] == [c.source.line for c in reference.contacts]
    assert [None if row.tags is None else tuple(row.tags) for row in rows] == [
        c.tags for c in reference.contacts
    ]
    assert [(row.phone, row.phone_line, row.phone_column) for row in rows] == [
        (p.phone, p.line, p.column) for p in reference.phones
    ]


def test_an_ordinary_file_takes_the_fast_path_with_the_reference_values() -> None:
    data = (
        b"# sales team\n"
        b"contacts:\n"
        b'  - phone: "15105551234"\n'
        b"    first: Alice\n"
        b"    email: null\n"
        b"    is_opted_out: false\n"
        b"    custom:\n"
        b"      Region: NO\n"
        b"      Seats: 12\n"
        b"      Ratio: 0.5\n"
        b"  - phone: 15105555678\n"
        b"    last: ~\n"
    )
    assert valid_contact_rows(data) == [
        ContactRow(
            "15105551234",
            {"first": "Alice", "email": None, "is_opted_out": False},
            {"Region": "NO", "Seats": 12, "Ratio": 0.5},
            3,
            3,
            5,
        ),
        ContactRow("15105555678", {"last": None}, {}, 11, 11, 5),
    ]


def test_anything_unusual_is_left_to_the_reference_loader() -> None:
    unusual = [
        b"",
        b"contacts:\n  - &a {phone: '15105551234'}\n",
        b"contacts:\n  - phone: !!str 15105551234\n",
        b"contacts:\n  - phone: '15105551234'\n    phone: '15105551235'\n",
        b"contacts: [\n",
        b"contacts: []\n---\ncontacts: []\n",
        b"contacts:\n  - phone: '1234567\\n'\n",
        b'contacts:\n  - phone: "1234567\\n"\n',
        b"contacts:\n\t- phone: '15105551234'\n",
        json.dumps({"contacts": [{"phone": "15105551234", "email": "no-at-sign"}]}).encode(),
    ]
    for data in unusual:
        assert valid_contact_rows(data) is None, data
