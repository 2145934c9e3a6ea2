"""Phone numbers as people write them in contacts files, read into the one identity that
``core.phones`` defines (E.164 digits without the ``+``).

Accepted: the canonical digits (``"14155550101"``, read country code first, as E.164 is),
an international spelling (``"+1 (415) 555-0101"``, ``"+44 20 7946 0958"``), and a national
one (``"(415) 555-0101"``) only when ``phones.default_region`` says which country it is in.
The reading is the ``phonenumbers`` library's; what it must not do is decide the identity
alone: the result is accepted only when it is canonical by ``core.phones``' own rule.

Refused, with the canonical form to write when there is one: characters other than digits,
spaces and ``+ - . ( )``; a national spelling without a default region; a number that is
not possible for its country (a wrong length); canonical-looking digits that are not the
number's canonical form. A possible number that the library does not know as assigned is
read, with a warning: the metadata lags behind new number ranges, so refusing would block
real numbers.

Reading costs tens of microseconds, so each distinct spelling is read once per process."""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat, ValidationResult
from phonenumbers.phonemetadata import PhoneMetadata

from reconciler.core.phones import is_canonical_phone

# The shape of a spelling: "+" only first, and it starts and ends with what belongs to the
# number. A space at either end is refused as before: it is how an invisible extra
# ("14155550101\n" once passed for a phone) hides in a quoted value.
_SPELLING = re.compile(r"\+?[0-9(][0-9 ().-]*[0-9]")
_DIGITS = re.compile(r"[0-9]+")
# A YAML number with a zero fraction or an exponent (14155550101.0, 1.4155550101e10): its
# digits are not the phone that was meant. One dot with digits after it may be a spelling
# ("01512.3456789"), and is read as one.
_DECIMAL = re.compile(r"[0-9]+\.0*|[0-9.]+[eE][-+]?[0-9]+")
_EXAMPLE = '"+1 510 555 1234" or "15105551234"'
_WHY_IMPOSSIBLE = {
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "too short (a local number without its area code)",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "of a length no number there has",
    ValidationResult.INVALID_COUNTRY_CODE: "not in a country code that exists",
}


class PhoneProblem(NamedTuple):
    """Why a declared phone is not usable, and the canonical form to write when one exists."""

    message: str
    suggestion: str | None


class ReadPhone(NamedTuple):
    """A declared phone's identity, and a warning when the number may not be in service."""

    phone: str
    warning: str | None


def is_known_region(region: str) -> bool:
    """Whether ``phones.default_region`` names a region the numbering metadata covers."""
    return region in phonenumbers.SUPPORTED_REGIONS


@functools.lru_cache(maxsize=1 << 18)
def read_phone(written: str, default_region: str | None = None) -> ReadPhone | PhoneProblem:
    """The canonical phone ``written`` spells, or the problem with it."""
    shown = written if written.isprintable() else ascii(written)[1:-1]
    if _DECIMAL.fullmatch(written):
        return PhoneProblem(
            f"phone {shown} is a decimal number, not a phone; write the digits in quotes, "
            f"e.g. {_EXAMPLE}",
            None,
        )
    if not _SPELLING.fullmatch(written):
        return PhoneProblem(
            f'phone "{shown}" is not a phone number; write it with its country code, e.g. '
            f"{_EXAMPLE} (only digits, spaces and + - . ( ) may be written)",
            None,
        )
    nanpa = _read_nanpa(written, default_region)
    if nanpa is not None:
        return nanpa
    bare_digits = _DIGITS.fullmatch(written) is not None
    if bare_digits or written.startswith("+"):
        return _international(written, bare_digits, default_region)
    if default_region is None:
        return PhoneProblem(
            f'phone "{written}" has no country code; write it with "+" and the country code '
            '(e.g. "+1 415 555 0101"), or set phones.default_region in reconciler.yaml '
            "(e.g. US) to read numbers written without one",
            None,
        )
    return _judged(written, _parsed(written, default_region, written), None)


# +1 and ten digits whose first is 2-9: the North American numbering plan, most of any
# account's contacts. Such a number cannot start with the plan's national prefix (1), so
# the library's parse (half the cost of a reading) would return exactly this number.
_NANPA = re.compile(r"1[2-9][0-9]{9}")


_NANPA_REGIONS = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])
_NOT_DIGITS = re.compile(r"[^0-9]")


def _read_nanpa(written: str, default_region: str | None) -> ReadPhone | None:
    """A valid North American number read without the library's string parse: written as
    digits or with "+1", or in national form (ten digits) where the default region is in
    the plan. ``None`` (read it the long way) for anything else, so every message and every
    other reading stays the long way's."""
    digits = _NOT_DIGITS.sub("", written)
    if written[0] == "+" or digits == written:
        phone = digits
    elif default_region in _NANPA_REGIONS and len(digits) == 10:
        phone = "1" + digits
    else:
        return None
    if not _NANPA.fullmatch(phone):
        return None
    if _nanpa_valid(phone[1:]):
        return ReadPhone(phone, None)
    return None


# How many digits of a ten-digit North American number decide whether the library holds it
# valid: every number pattern of the plan's regions (today's metadata) ends in a free run of
# at least three digits, and the regions' leading digits are area codes, so the first seven
# decide. Checked against the metadata in use at import (and by a property test); where it
# does not hold, each number is judged on its own. One judgement per prefix instead of one
# per number is what keeps reading 100k phones near the cost of checking their digits.
_FREE_TAIL = re.compile(r"(?:\\d|\[0-9\])\{(\d+)(?:,\d*)?\}$")
_NANPA_DECIDING_DIGITS = 7


def _top_level_alternatives(pattern: str) -> list[str]:
    alternatives: list[str] = []
    current: list[str] = []
    depth = 0
    for char in pattern:
        depth += (char == "(") - (char == ")")
        if char == "|" and depth == 0:
            alternatives.append("".join(current))
            current = []
        else:
            current.append(char)
    return [*alternatives, "".join(current)]


def _prefix_decides_nanpa_validity() -> bool:
    free_tail = 10 - _NANPA_DECIDING_DIGITS
    for region in _NANPA_REGIONS:
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None:
            return False
        for name in _NUMBER_TYPES:
            description = getattr(metadata, name, None)
            if description is None or description.national_number_pattern is None:
                continue
            for alternative in _top_level_alternatives(description.national_number_pattern):
                tail = _FREE_TAIL.search(alternative)
                if tail is None or int(tail.group(1)) < free_tail:
                    return False
    return True


_NUMBER_TYPES = (
    "general_desc",
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)


@functools.cache
def _prefix_nanpa_valid(prefix: str) -> bool:
    filler = "0" * (10 - len(prefix))
    number = PhoneNumber(country_code=1, national_number=int(prefix + filler))
    return bool(phonenumbers.is_valid_number(number))


def _nanpa_valid(national: str) -> bool:
    if _PREFIX_DECIDES:
        return _prefix_nanpa_valid(national[:_NANPA_DECIDING_DIGITS])
    return bool(
        phonenumbers.is_valid_number(PhoneNumber(country_code=1, national_number=int(national)))
    )


def _international(
    written: str, bare_digits: bool, default_region: str | None
) -> ReadPhone | PhoneProblem:
    number = _parsed("+" + written if bare_digits else written, None, written)
    if isinstance(number, PhoneProblem) or not bare_digits:
        return _judged(written, number, None)
    # Digits alone are E.164, country code first, even with a default region; reading them
    # as national too only tells the author what to write when the E.164 reading fails, so
    # it is done only then (it would double the cost of every canonical phone).
    judged = _judged(written, number, None)
    if isinstance(judged, PhoneProblem) and default_region is not None:
        national = _parsed(written, default_region, written)
        suggestion = _possible_phone(national) if isinstance(national, PhoneNumber) else None
        judged = _judged(written, number, suggestion)
    if isinstance(judged, ReadPhone) and judged.phone != written:
        return PhoneProblem(
            f'phone "{written}" is not in canonical form; write "{judged.phone}"', judged.phone
        )
    return judged


def _parsed(text: str, region: str | None, written: str) -> PhoneNumber | PhoneProblem:
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException as error:
        if error.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            reason = "it starts with no country code that exists"
        else:
            reason = "it has too few or too many digits"
        return PhoneProblem(
            f'phone "{written}" is not a phone number: {reason}; write it with its country '
            f"code, e.g. {_EXAMPLE}",
            None,
        )


def _possible_phone(number: PhoneNumber) -> str | None:
    if not phonenumbers.is_possible_number(number):
        return None
    phone = phonenumbers.format_number(number, PhoneNumberFormat.E164)[1:]
    return phone if is_canonical_phone(phone) else None


def _judged(
    written: str, number: PhoneNumber | PhoneProblem, suggestion: str | None
) -> ReadPhone | PhoneProblem:
    if isinstance(number, PhoneProblem):
        return number
    code = number.country_code or 0  # parse always sets it
    country = f"+{code}"
    region = phonenumbers.region_code_for_country_code(code)
    if region != phonenumbers.UNKNOWN_REGION:
        country += f" ({region})"
    reason = phonenumbers.is_possible_number_with_reason(number)
    phone = phonenumbers.format_number(number, PhoneNumberFormat.E164)[1:]
    if reason != ValidationResult.IS_POSSIBLE or not is_canonical_phone(phone):
        why = _WHY_IMPOSSIBLE.get(reason, "too long")
        fix = f'write "{suggestion}"' if suggestion is not None else "check its digits"
        return PhoneProblem(
            f'phone "{written}" is not a possible number: read as {country}, it is {why}; {fix}',
            suggestion,
        )
    if phonenumbers.is_valid_number(number):
        return ReadPhone(phone, None)
    return ReadPhone(
        phone,
        f"not known to be an assigned number in {country}, though its length is possible; "
        "check it (messages to it may not be delivered)",
    )


# A protect pattern's parts: a wildcard or a digit, a bracket range, or what people put
# between digits (dropped, as in a phone).
_PROTECT_PART = re.compile(r"\[!?[0-9-]+\]|[0-9*?]|[ ().-]")


def canonical_protect_pattern(written: str) -> str:
    """A ``prune.protect`` pattern as it matches canonical phones: written like a phone
    (``"+1 510 555-07*"``) it becomes ``"1510555 07*"`` without its separators and ``+``
    (``"151055507*"``). The config schema has already refused anything else."""
    text = written.strip(" ")
    text = text.removeprefix("+")
    return "".join(
        part for part in _PROTECT_PART.findall(text) if part not in (" ", "(", ")", ".", "-")
    )


_PREFIX_DECIDES = _prefix_decides_nanpa_validity()
