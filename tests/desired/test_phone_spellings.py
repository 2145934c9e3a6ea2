"""Phones as people write them: every accepted spelling is one canonical identity, and
every refusal says what to write instead when it can."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumber

from reconciler.desired import phone_spellings
from reconciler.desired.phone_spellings import PhoneProblem, ReadPhone, is_known_region, read_phone

SAN_FRANCISCO = "14155550101"
LONDON = "442079460958"


@pytest.mark.parametrize(
    ("written", "region", "phone"),
    [
        ("14155550101", None, SAN_FRANCISCO),
        ("14155550101", "US", SAN_FRANCISCO),
        ("+14155550101", None, SAN_FRANCISCO),
        ("+1 415 555 0101", None, SAN_FRANCISCO),
        ("+1 (415) 555-0101", None, SAN_FRANCISCO),
        ("+1-415-555-0101", None, SAN_FRANCISCO),
        ("+1.415.555.0101", None, SAN_FRANCISCO),
        ("+1 (415) 555-0101", "GB", SAN_FRANCISCO),
        ("(415) 555-0101", "US", SAN_FRANCISCO),
        ("415-555-0101", "US", SAN_FRANCISCO),
        ("415.555.0101", "US", SAN_FRANCISCO),
        ("1 415 555 0101", "US", SAN_FRANCISCO),
        ("(415) 555-0101", "CA", SAN_FRANCISCO),
        ("442079460958", None, LONDON),
        ("+44 20 7946 0958", None, LONDON),
        ("+44 (0)20 7946 0958", None, LONDON),
        ("020 7946 0958", "GB", LONDON),
        ("+44 20 7946 0958", "US", LONDON),
    ],
)
def test_every_accepted_spelling_is_the_one_canonical_identity(
    written: str, region: str | None, phone: str
) -> None:
    assert read_phone(written, region) == ReadPhone(phone, None)


@pytest.mark.parametrize("written", ["(415) 555-0101", "415-555-0101", "1 415 555 0101"])
def test_a_national_spelling_without_a_default_region_is_refused_with_the_fix(
    written: str,
) -> None:
    problem = read_phone(written, None)
    assert isinstance(problem, PhoneProblem)
    assert f'phone "{written}" has no country code' in problem.message
    assert '"+1 415 555 0101"' in problem.message
    assert "phones.default_region" in problem.message


def test_bare_digits_are_e164_even_with_a_default_region_and_the_message_says_what_to_write() -> (
    None
):
    # Read country code first, 4155550101 is a Swiss number with too few digits.
    problem = read_phone("4155550101", "US")
    assert problem == PhoneProblem(
        'phone "4155550101" is not a possible number: read as +41 (CH), it is too short; '
        'write "14155550101"',
        "14155550101",
    )
    without_region = read_phone("4155550101", None)
    assert isinstance(without_region, PhoneProblem)
    assert without_region.suggestion is None
    assert "check its digits" in without_region.message


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("1234567", "too short"),
        ("+1 415 555 01011", "too long"),
        ("1510555123412345", "too long"),
        ("555-12", "too short"),
    ],
)
def test_a_number_of_an_impossible_length_is_refused(written: str, why: str) -> None:
    problem = read_phone(written, "US")
    assert isinstance(problem, PhoneProblem)
    assert f'phone "{written}" is not a possible number' in problem.message
    assert why in problem.message


def test_digits_that_are_not_the_numbers_canonical_form_are_refused_with_it() -> None:
    # The national prefix 0 after the country code: the number is 442079460958.
    assert read_phone("4402079460958", None) == PhoneProblem(
        'phone "4402079460958" is not in canonical form; write "442079460958"', LONDON
    )


@pytest.mark.parametrize(
    "written",
    [
        "14155550101\n",
        "\t14155550101",
        " 14155550101",
        "14155550101 ",
        "1415555\n0101",
        "+1 415 555 0101 ext 2",
        "+1 415 555 0101#",
        "1+4155550101",
        "call me",
        "\u0661\u0664\u0661\u0665\u0665\u0665\u0665\u0660\u0661\u0660\u0661",
        "\uff11\uff14\uff11\uff15\uff15\uff15\uff15\uff10\uff11\uff10\uff11",
        "+1\u00a0415\u00a0555\u00a00101",
    ],
)
def test_other_characters_are_refused_without_a_guess(written: str) -> None:
    problem = read_phone(written, "US")
    assert isinstance(problem, PhoneProblem)
    assert problem.suggestion is None
    assert "only digits, spaces and + - . ( ) may be written" in problem.message
    assert "\n" not in problem.message and "\t" not in problem.message


@pytest.mark.parametrize("written", ["14155550101.0", "1.4155550101e10", "14155550101."])
def test_a_decimal_number_is_refused_without_a_guess(written: str) -> None:
    problem = read_phone(written, "US")
    assert isinstance(problem, PhoneProblem)
    assert "decimal number" in problem.message and problem.suggestion is None


def test_a_country_code_that_does_not_exist_is_refused() -> None:
    problem = read_phone("+999 1234567", None)
    assert isinstance(problem, PhoneProblem)
    assert "no country code that exists" in problem.message


@pytest.mark.parametrize("written", ["15550000001", "+1 555 000 0001", "(555) 000-0001"])
def test_a_possible_number_not_known_as_assigned_is_read_with_a_warning(written: str) -> None:
    read = read_phone(written, "US")
    assert isinstance(read, ReadPhone)
    assert read.phone == "15550000001"
    assert read.warning is not None
    assert "not known to be an assigned number in +1 (US)" in read.warning


def test_known_regions() -> None:
    assert is_known_region("US") and is_known_region("GB")
    assert not is_known_region("XX") and not is_known_region("us")


_NANPA_SPELLINGS = st.builds(
    lambda area, exchange, line, style, region: (
        [
            f"1{area}{exchange}{line}",
            f"+1 ({area}) {exchange}-{line}",
            f"+1.{area}.{exchange}.{line}",
            f"({area}) {exchange}-{line}",
            f"{area}-{exchange}-{line}",
            f"1 {area} {exchange} {line}",
        ][style],
        region,
    ),
    st.from_regex(r"[2-9][0-9]{2}", fullmatch=True),
    st.from_regex(r"[0-9]{3}", fullmatch=True),
    st.from_regex(r"[0-9]{4}", fullmatch=True),
    st.integers(0, 5),
    st.sampled_from([None, "US", "CA", "GB", "JM"]),
)


@settings(max_examples=500, deadline=None)
@given(_NANPA_SPELLINGS)
def test_the_north_american_shortcut_reads_every_spelling_as_the_library_does(
    spelling: tuple[str, str | None],
) -> None:
    written, region = spelling
    read = phone_spellings._read_nanpa(written, region)
    if read is not None:
        read_phone.cache_clear()
        bare = written.isdigit()
        if bare or written.startswith("+"):
            assert read == phone_spellings._international(written, bare, region)
        else:
            number = phone_spellings._parsed(written, region, written)
            assert read == phone_spellings._judged(written, number, None)


@settings(max_examples=1000, deadline=None)
@given(st.from_regex(r"[2-9][0-9]{9}", fullmatch=True))
def test_a_north_american_number_is_judged_valid_exactly_as_the_library_judges_it(
    national: str,
) -> None:
    number = PhoneNumber(country_code=1, national_number=int(national))
    assert phone_spellings._nanpa_valid(national) == phonenumbers.is_valid_number(number)
