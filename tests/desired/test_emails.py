"""Email addresses are checked for syntax by email-validator, with no network lookup: a
refused address is a validate problem at its line and column, on the reference path and
the fast path alike, and the domain shortcut agrees with the library on every address."""

from __future__ import annotations

from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.errors import DesiredStateError
from reconciler.desired.emails import email_problem
from reconciler.desired.fast_parse import valid_contact_rows
from reconciler.desired.loader import load_desired_state, parse_file

INVALID = ["ana@localhost", "ana..b@example.com", "Ana <ana@example.com>", "ana@-x.com"]


def _library_accepts(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@pytest.mark.parametrize("address", INVALID)
def test_an_invalid_email_is_a_located_problem_and_the_fast_path_steps_aside(
    tmp_path: Path, address: str
) -> None:
    data = f'contacts:\n  - phone: "15105550001"\n    email: "{address}"\n'.encode()
    assert valid_contact_rows(data) is None
    parsed = parse_file(data, "contacts/a.yaml")
    assert parsed.contacts == []
    (problem,) = parsed.problems
    assert (problem.line, problem.column) == (3, 12)
    assert f'email "{address}" is not a valid email address' in problem.message

    (tmp_path / "contacts").mkdir()
    (tmp_path / "contacts" / "a.yaml").write_bytes(data)
    with pytest.raises(DesiredStateError) as caught:
        load_desired_state(tmp_path / "contacts", tmp_path, cache_dir=tmp_path / "cache")
    assert str(caught.value.problems[0]).startswith("contacts/a.yaml:3:12: email")


@pytest.mark.parametrize(
    "address", ["ana@example.com", "Mixed.Case@Example.org", "zoë@exämple.com"]
)
def test_a_valid_email_passes_both_paths_alike(address: str) -> None:
    data = f'contacts:\n  - phone: "15105550001"\n    email: "{address}"\n'.encode()
    rows = valid_contact_rows(data)
    assert rows is not None and rows[0].fields["email"] == address
    assert parse_file(data, "a.yaml").problems == []


_ATEXT = "abcxyzABC019!#$%&'*+/=?^_`{|}~-."


@given(
    local=st.text(_ATEXT + 'é "@', min_size=0, max_size=70),
    domain=st.sampled_from(
        ["example.com", "localhost", "x.test", "-a.com", "ex ample.com", "é.fr"]
    ),
)
def test_the_domain_shortcut_agrees_with_the_library(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    # Checked trimmed, as the account stores it.
    assert (email_problem(address) is None) == _library_accepts(address.strip())
