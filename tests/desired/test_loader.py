"""Loading the desired state: values, positions, and the exact message for every bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core.errors import DesiredStateError, InputNotFoundError
from reconciler.desired.loader import load_desired_state, parse_file
from reconciler.desired.yaml_safety import MAX_FILE_BYTES


def write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def problems_of(contacts_dir: Path, cwd: Path) -> list[str]:
    with pytest.raises(DesiredStateError) as caught:
        load_desired_state(contacts_dir, cwd)
    return [str(problem) for problem in caught.value.problems]


@pytest.fixture
def contacts_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "contacts"
    directory.mkdir()
    return directory


def test_loads_contacts_with_managed_fields_sources_and_digest(
    contacts_dir: Path, tmp_path: Path
) -> None:
    write(
        contacts_dir,
        "sales.yaml",
        "# team\ncontacts:\n"
        '  - phone: "15105551234"\n'
        "    first: Alice\n"
        "    email: null\n"
        "    custom:\n"
        "      Account tier: gold\n"
        "      Seats: 12\n"
        "  - phone: 15105555678\n"
        "    is_opted_out: true\n",
    )
    write(contacts_dir, "nested/more.yml", "contacts: []\n")
    write(contacts_dir, "notes.txt", "not yaml at all: [")
    write(contacts_dir, ".hidden/skip.yaml", "garbage: [")

    state = load_desired_state(contacts_dir, tmp_path)

    alice, bob = state.contacts
    assert alice.phone == "15105551234"
    assert dict(alice.fields) == {"first": "Alice", "email": None}
    assert dict(alice.custom) == {"Account tier": "gold", "Seats": 12}
    assert str(alice.source) == "contacts/sales.yaml:3"
    assert bob.phone == "15105555678"  # unquoted, still read as the digits written
    assert dict(bob.fields) == {"is_opted_out": True}
    assert str(bob.source) == "contacts/sales.yaml:9"
    assert [path.name for path in state.files] == ["more.yml", "sales.yaml"]
    assert state.digest.startswith("sha256:")


def test_digest_changes_with_content_and_only_with_content(
    contacts_dir: Path, tmp_path: Path
) -> None:
    path = write(contacts_dir, "a.yaml", 'contacts:\n  - phone: "15105551234"\n')
    first = load_desired_state(contacts_dir, tmp_path).digest
    assert load_desired_state(contacts_dir, tmp_path).digest == first
    path.write_text('contacts:\n  - phone: "15105551235"\n', encoding="utf-8")
    assert load_desired_state(contacts_dir, tmp_path).digest != first


def test_yaml_1_2_scalars_so_norway_stays_a_string(contacts_dir: Path, tmp_path: Path) -> None:
    write(
        contacts_dir,
        "a.yaml",
        'contacts:\n  - phone: "4722123456"\n    first: "Ola"\n    custom:\n      Region: NO\n',
    )
    (contact,) = load_desired_state(contacts_dir, tmp_path).contacts
    assert contact.custom["Region"] == "NO"


def test_every_problem_is_reported_with_its_exact_message(
    contacts_dir: Path, tmp_path: Path
) -> None:
    write(
        contacts_dir,
        "sales.yaml",
        "contacts:\n"
        '  - phone: "15105550001"\n'
        "    frist: Al\n"
        '  - phone: "510-555-1234"\n'
        "    email: not-an-address\n"
        '  - phone: "call me"\n'
        "  - first: Nobody\n"
        '  - phone: "15105550002"\n'
        "    is_opted_out: maybe\n"
        "    custom:\n"
        "      Account tier: [gold]\n",
    )
    assert problems_of(contacts_dir, tmp_path) == [
        'contacts/sales.yaml:3:5: unknown key "frist" (allowed: phone, first, last, '
        "display_name, email, is_opted_out, tags, custom)",
        'contacts/sales.yaml:4:5: phone "510-555-1234" has no country code; write it with "+" '
        'and the country code (e.g. "+1 415 555 0101"), or set phones.default_region in '
        "reconciler.yaml (e.g. US) to read numbers written without one",
        'contacts/sales.yaml:5:5: email "not-an-address" is not a valid email address',
        'contacts/sales.yaml:6:5: phone "call me" is not a phone number; write it with its '
        'country code, e.g. "+1 510 555 1234" or "15105551234" (only digits, spaces and '
        "+ - . ( ) may be written)",
        'contacts/sales.yaml:7:5: missing required key "phone"',
        'contacts/sales.yaml:9:5: "is_opted_out" must be true/false or null, not a string',
        'contacts/sales.yaml:11:7: custom field "Account tier" must be a string, a number, '
        "true/false or null, not a list",
    ]


def test_a_phone_declared_twice_names_both_places(contacts_dir: Path, tmp_path: Path) -> None:
    write(contacts_dir, "a.yaml", 'contacts:\n  - phone: "15105551234"\n    first: A\n')
    write(
        contacts_dir,
        "b.yaml",
        'contacts:\n  - phone: "15105559999"\n  - phone: "15105551234"\n  - phone: "15105559999"\n',
    )
    assert problems_of(contacts_dir, tmp_path) == [
        "contacts/b.yaml:3:5: phone 15105551234 is declared twice: here and at contacts/a.yaml:2:5",
        "contacts/b.yaml:4:5: phone 15105559999 is declared twice: here and at contacts/b.yaml:2:5",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            "",
            'empty file; a contacts file holds one key, "contacts" '
            '(write "contacts: []" to declare none)',
            id="empty",
        ),
        pytest.param(
            "- phone: '15105551234'\n",
            'the top level must be a mapping with one key, "contacts", not a list',
            id="top-level-list",
        ),
        pytest.param("contacts:\n", '"contacts" must be a list, not null', id="contacts-null"),
        pytest.param(
            "contacts: [\n",
            "YAML syntax error: did not find expected node content (while parsing a flow node)",
            id="syntax",
        ),
    ],
)
def test_file_level_problems(
    contacts_dir: Path, tmp_path: Path, content: str, expected: str
) -> None:
    write(contacts_dir, "a.yaml", content)
    assert problems_of(contacts_dir, tmp_path)[0].split(": ", 1)[1] == expected


def test_top_level_without_contacts_also_names_the_missing_key(
    contacts_dir: Path, tmp_path: Path
) -> None:
    write(contacts_dir, "a.yaml", "people: []\n")
    assert problems_of(contacts_dir, tmp_path) == [
        'contacts/a.yaml:1:1: missing required key "contacts"',
        'contacts/a.yaml:1:1: unknown key "people" (allowed: contacts)',
    ]


def test_binary_file(contacts_dir: Path, tmp_path: Path) -> None:
    write(contacts_dir, "a.yaml", b"contacts:\n  - \x00\x01\x02\xff")
    assert problems_of(contacts_dir, tmp_path) == [
        "contacts/a.yaml:2:5: binary file (NUL byte); contacts files are UTF-8 text"
    ]


def test_non_utf8_file(contacts_dir: Path, tmp_path: Path) -> None:
    write(contacts_dir, "a.yaml", "contacts:\n  - first: Jos\xe9\n".encode("latin-1"))
    assert problems_of(contacts_dir, tmp_path) == [
        "contacts/a.yaml:2:15: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    ]


def test_file_over_the_size_cap_is_refused_unparsed(contacts_dir: Path, tmp_path: Path) -> None:
    path = contacts_dir / "huge.yaml"
    with path.open("wb") as stream:
        stream.truncate(50 * 1024 * 1024)  # sparse: 50 MB on paper, nothing on disk
    assert MAX_FILE_BYTES == 20 * 1024 * 1024
    assert problems_of(contacts_dir, tmp_path) == [
        "contacts/huge.yaml:1:1: file is 50.0 MB, over the 20 MB limit; split it into smaller files"
    ]


def test_billion_laughs_is_refused_at_the_first_anchor(contacts_dir: Path, tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        previous, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    write(contacts_dir, "bomb.yaml", "\n".join(lines) + "\n")
    assert problems_of(contacts_dir, tmp_path) == [
        "contacts/bomb.yaml:1:4: anchor &a: anchors and aliases are not allowed; "
        "write the values out"
    ]


def test_alias_is_refused(contacts_dir: Path, tmp_path: Path) -> None:
    write(
        contacts_dir,
        "a.yaml",
        'contacts:\n  - phone: "15105551234"\n    custom: *tier\n',
    )
    assert problems_of(contacts_dir, tmp_path)[0].startswith("contacts/a.yaml:3:13: ")


def test_ampersand_in_a_value_is_just_text(contacts_dir: Path, tmp_path: Path) -> None:
    write(contacts_dir, "a.yaml", 'contacts:\n  - phone: "15105551234"\n    last: Smith & Co *\n')
    (contact,) = load_desired_state(contacts_dir, tmp_path).contacts
    assert contact.fields["last"] == "Smith & Co *"


def test_duplicate_mapping_key_is_refused_not_silently_overwritten(
    contacts_dir: Path, tmp_path: Path
) -> None:
    write(
        contacts_dir,
        "a.yaml",
        'contacts:\n  - phone: "15105551234"\n    first: Alice\n    first: Bob\n',
    )
    assert problems_of(contacts_dir, tmp_path) == [
        'contacts/a.yaml:4:5: key "first" appears twice in this mapping (first at line 3)'
    ]


@pytest.mark.parametrize("depth", [20, 100_000])
def test_deep_nesting_is_refused(contacts_dir: Path, tmp_path: Path, depth: int) -> None:
    write(contacts_dir, "a.yaml", "contacts: " + "[" * depth + "]" * depth + "\n")
    (problem,) = problems_of(contacts_dir, tmp_path)
    assert problem.startswith("contacts/a.yaml:1:")
    assert "nest" in problem


def test_tab_indentation(contacts_dir: Path, tmp_path: Path) -> None:
    write(
        contacts_dir,
        "a.yaml",
        'contacts:\n\t- phone: "15105551234"\n\t  first: A\n  - phone: "1510\t5551235"\n',
    )
    assert problems_of(contacts_dir, tmp_path) == [
        "contacts/a.yaml:2:1: tab character in indentation (and 1 more lines); indent with spaces"
    ]


def test_unsupported_tag_is_refused(contacts_dir: Path, tmp_path: Path) -> None:
    write(
        contacts_dir,
        "a.yaml",
        'contacts:\n  - phone: "15105551234"\n    first: !!python/object:os.system x\n',
    )
    assert problems_of(contacts_dir, tmp_path) == [
        "contacts/a.yaml:3:12: YAML tag !!python/object:os.system is not allowed; "
        "write a plain value"
    ]


def test_missing_directory_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError) as caught:
        load_desired_state(tmp_path / "contacts", tmp_path)
    assert str(caught.value) == (
        'contacts directory "contacts" does not exist; create it or pass --contacts DIR'
    )


def test_directory_without_yaml_files_is_an_error(contacts_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match=r'no \*\.yaml or \*\.yml files under "contacts"'):
        load_desired_state(contacts_dir, tmp_path)


def test_parse_file_is_a_pure_function_of_bytes() -> None:
    data = b'contacts:\n  - phone: "15105551234"\n    first: A\n'
    assert parse_file(data, "x.yaml") == parse_file(data, "x.yaml")
    (contact,) = parse_file(data, "x.yaml").contacts
    assert str(contact.source) == "x.yaml:2"


def test_example_contacts_directory_is_valid() -> None:
    repository = Path(__file__).parents[2]
    state = load_desired_state(repository / "contacts", repository)
    assert len(state.contacts) >= 25
    assert any(contact.fields.get("is_opted_out") is True for contact in state.contacts)


def test_two_spellings_of_one_number_are_a_duplicate_naming_both_places(
    contacts_dir: Path, tmp_path: Path
) -> None:
    write(contacts_dir, "a.yaml", 'contacts:\n  - phone: "+1 (415) 555-0101"\n    first: A\n')
    write(contacts_dir, "b.yaml", 'contacts:\n  - phone: "14155550102"\n  - phone: 14155550101\n')
    assert problems_of(contacts_dir, tmp_path) == [
        "contacts/b.yaml:3:5: phone 14155550101 is declared twice: here and at contacts/a.yaml:2:5"
    ]
    write(contacts_dir, "b.yaml", 'contacts:\n  - phone: "415.555.0101"\n')
    with pytest.raises(DesiredStateError) as caught:
        load_desired_state(contacts_dir, tmp_path, default_region="US")
    assert [str(problem) for problem in caught.value.problems] == [
        "contacts/b.yaml:2:5: phone 14155550101 is declared twice: here and at contacts/a.yaml:2:5"
    ]


def test_every_spelling_becomes_the_canonical_identity_of_the_contact(
    contacts_dir: Path, tmp_path: Path
) -> None:
    write(
        contacts_dir,
        "a.yaml",
        "contacts:\n"
        '  - phone: "+44 20 7946 0958"\n'
        '  - phone: "(415) 555-0101"\n'
        "  - phone: 15105551234\n"
        "    first: Ann\n",
    )
    state = load_desired_state(contacts_dir, tmp_path, default_region="US")
    assert [contact.phone for contact in state.contacts] == [
        "442079460958",
        "14155550101",
        "15105551234",
    ]
    assert state.warnings == ()
    # The fast path and the reference loader read the same.
    data = (contacts_dir / "a.yaml").read_bytes()
    assert parse_file(data, "contacts/a.yaml", "US").contacts == list(state.contacts)


def test_a_phone_that_cannot_be_read_is_a_located_problem_on_either_path(
    contacts_dir: Path, tmp_path: Path
) -> None:
    write(
        contacts_dir,
        "a.yaml",
        'contacts:\n  - phone: "15105551234"\n  - phone: "(415) 555-0101"\n  - phone: "1234567"\n',
    )
    problems = problems_of(contacts_dir, tmp_path)
    assert [problem.split(": phone")[0] for problem in problems] == [
        "contacts/a.yaml:3:5",
        "contacts/a.yaml:4:5",
    ]
    assert "has no country code" in problems[0]
    assert "is not a possible number" in problems[1]


def test_an_unassigned_number_is_a_warning_not_a_problem(
    contacts_dir: Path, tmp_path: Path
) -> None:
    write(contacts_dir, "a.yaml", 'contacts:\n  - phone: "15105551234"\n  - phone: "15550000001"\n')
    for cache_dir in (None, tmp_path / "cache", tmp_path / "cache"):  # cold, stored, read back
        state = load_desired_state(contacts_dir, tmp_path, cache_dir=cache_dir)
        assert len(state.contacts) == 2
        assert [str(warning) for warning in state.warnings] == [
            "contacts/a.yaml:3:5: warning: phone 15550000001: not known to be an assigned number "
            "in +1 (US), though its length is possible; check it (messages to it may not be "
            "delivered)"
        ]
    write(contacts_dir, "b.yaml", "contacts:\n  - phone: x\n")
    with pytest.raises(DesiredStateError) as caught:
        load_desired_state(contacts_dir, tmp_path)
    assert len(caught.value.problems) == 1
    assert [line.split(": warning")[0] for line in caught.value.warnings] == ["contacts/a.yaml:3:5"]


def test_the_parse_cache_keeps_regions_apart(contacts_dir: Path, tmp_path: Path) -> None:
    write(contacts_dir, "a.yaml", 'contacts:\n  - phone: "020 7946 0958"\n')
    cache = tmp_path / "cache"
    (gb,) = load_desired_state(
        contacts_dir, tmp_path, cache_dir=cache, default_region="GB"
    ).contacts
    with pytest.raises(DesiredStateError):
        load_desired_state(contacts_dir, tmp_path, cache_dir=cache)
    with pytest.raises(DesiredStateError):
        load_desired_state(contacts_dir, tmp_path, cache_dir=cache, default_region="US")
    assert gb.phone == "442079460958"
