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


def _international(
    written: str, bare_digits: bool, default_region: str | None
) -> ReadPhone | PhoneProblem:
    number = _parsed("+" + written if bare_digits else written, None, written)
    if isinstance(number, PhoneProblem) or not bare_digits:
        return _judged(written, number, None)
    # Digits alone are E.164, country code first, even with a default region; reading them
    # as national too only tells the author what to write when the E.164 reading fails.
    national = _parsed(written, default_region, written) if default_region is not None else None
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
