"""The sandbox account's storage rules, as heymarket-api.md states them: trimmed text,
lower-case emails, custom values as text, an empty value clears."""

from __future__ import annotations

import pytest

from reconciler.sandbox.faults import FaultSettingError, FaultSettings
from reconciler.sandbox.stored_values import (
    SentCustomValue,
    TextRewrite,
    default_display_name,
    stored_custom_value,
    stored_email,
    stored_tags,
    stored_text,
)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("Ana", "Ana"),
        ("  Ana Lopez \t", "Ana Lopez"),
        ("\u00a0Ana\u2003", "Ana"),  # non-breaking and em spaces are whitespace too
        ("  ", None),
        ("", None),
        (None, None),
    ],
)
def test_text_is_trimmed_and_empty_text_clears(sent: str | None, stored: str | None) -> None:
    assert stored_text(sent) == stored


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (" Ana@Example.COM ", "ana@example.com"),
        ("ana@example.com", "ana@example.com"),
        ("   ", None),
        (None, None),
    ],
)
def test_emails_are_trimmed_and_lower_cased(sent: str | None, stored: str | None) -> None:
    assert stored_email(sent) == stored


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("gold", "gold"),
        ("  gold  ", "gold"),
        ("", None),
        (" ", None),
        (None, None),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (42, "42"),
        (-7, "-7"),
        (2.5, "2.5"),
        (1.0, "1.0"),
        (1e21, "1e+21"),
        (12345678901234567890, "12345678901234567890"),
    ],
)
def test_custom_values_are_stored_as_text(sent: SentCustomValue, stored: str | None) -> None:
    assert stored_custom_value(sent) == stored


def test_a_custom_number_reads_back_as_the_json_it_was_sent_as() -> None:
    for number in (0.1, 3.14159, -0.0, 1e-7, 10**30):
        assert stored_custom_value(number) == repr(number)


def test_tags_are_trimmed_and_empty_tags_dropped() -> None:
    assert stored_tags([" vip ", "", "  ", "west"]) == ("vip", "west")
    assert stored_tags([]) == ()


@pytest.mark.parametrize(
    ("first", "last", "shown"),
    [
        ("Ana", "Lopez", "Ana Lopez"),
        ("Ana", None, "Ana"),
        (None, "Lopez", "Lopez"),
        (None, None, None),
    ],
)
def test_display_name_defaults_to_first_and_last(
    first: str | None, last: str | None, shown: str | None
) -> None:
    assert default_display_name(first, last) == shown


def test_a_stricter_account_rewrites_text_only_when_asked() -> None:
    assert not TextRewrite().active and TextRewrite()("Ana  Maria") == "Ana  Maria"
    assert TextRewrite(collapse_spaces=True)("Ana \t Maria") == "Ana Maria"
    assert TextRewrite(truncate_to=4)("Ana Maria") == "Ana"
    assert TextRewrite(case="upper")("Ana") == "ANA"
    assert TextRewrite(case="title")("ana maria") == "Ana Maria"
    assert TextRewrite(truncate_to=1)(None) is None
    settings = FaultSettings().updated_with({"rewrite_case": "lower", "rewrite_truncate": 3})
    assert settings.text_rewrite == TextRewrite(False, 3, "lower")
    with pytest.raises(FaultSettingError, match="rewrite_case"):
        FaultSettings().updated_with({"rewrite_case": "sideways"})
