"""`reconciler validate` as a user runs it: output, annotations, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli import main

VALID = 'contacts:\n  - phone: "15105551234"\n    first: Alice\n  - phone: "15105551235"\n'
INVALID = 'contacts:\n  - phone: "15105551234"\n    frist: Alice\n  - phone: "510 555 1235"\n'
ALLOWED = "(allowed: phone, first, last, display_name, email, is_opted_out, tags, custom)"


@pytest.fixture
def project_files() -> dict[str, str]:
    return {}


@pytest.fixture
def project_env() -> dict[str, str]:
    """No server: these commands never connect."""
    return {}


def test_valid_desired_state(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "contacts" / "a.yaml").write_text(VALID, encoding="utf-8")
    (project / "contacts" / "b.yaml").write_text("contacts: []\n", encoding="utf-8")
    assert main(["validate"]) == 0
    assert capsys.readouterr().out == "2 contacts in 2 files are valid.\n"


def test_every_problem_then_exit_1(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "contacts" / "a.yaml").write_text(INVALID, encoding="utf-8")
    assert main(["validate"]) == 1
    captured = capsys.readouterr()
    assert captured.out == (
        f'contacts/a.yaml:3:5: unknown key "frist" {ALLOWED}\n'
        'contacts/a.yaml:4:5: phone "510 555 1235" has no country code; write it with "+" and '
        'the country code (e.g. "+1 415 555 0101"), or set phones.default_region in '
        "reconciler.yaml (e.g. US) to read numbers written without one\n"
    )
    assert captured.err == "Found 2 problems in 1 file.\n"


def test_github_annotations_in_actions(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "contacts" / "a.yaml").write_text(INVALID, encoding="utf-8")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert main(["validate"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (f'::error file=contacts/a.yaml,line=3,col=5::unknown key "frist" {ALLOWED}')
    assert main(["validate", "--format", "text"]) == 1
    assert "::error" not in capsys.readouterr().out


def test_format_github_outside_actions(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "contacts" / "a.yaml").write_text("contacts:\n  - phone: 5%\n", encoding="utf-8")
    assert main(["validate", "--format", "github"]) == 1
    assert capsys.readouterr().out.splitlines()[1] == (
        '::error file=contacts/a.yaml,line=2,col=5::phone "5%25" is not a phone number; '
        'write it with its country code, e.g. "+1 510 555 1234" or "15105551234" (only '
        "digits, spaces and + - . ( ) may be written)"
    )


def test_contacts_option_and_config_contacts(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "people").mkdir()
    (project / "people" / "a.yaml").write_text(VALID, encoding="utf-8")
    assert main(["validate", "--contacts", "people"]) == 0
    (project / "reconciler.yaml").write_text("contacts: people\n", encoding="utf-8")
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.count("2 contacts in 1 file are valid.") == 2


def test_missing_directory(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--contacts", "nowhere"]) == 1
    assert capsys.readouterr().err == (
        'Error: contacts directory "nowhere" does not exist; create it or pass --contacts DIR\n'
    )


def test_invalid_config_is_reported_like_contacts(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "reconciler.yaml").write_text("prune:\n  max_deletes: lots\n", encoding="utf-8")
    assert main(["validate"]) == 1
    assert capsys.readouterr().out == (
        'reconciler.yaml:2:3: "max_deletes" must be an integer, not a string\n'
    )


def test_hostile_files_never_crash_the_process(project: Path) -> None:
    contacts = project / "contacts"
    (contacts / "binary.yaml").write_bytes(bytes(range(256)))
    (contacts / "bomb.yaml").write_text("a: &a [x, x]\nb: &b [*a, *a]\n", encoding="utf-8")
    (contacts / "deep.yaml").write_text("[" * 50_000, encoding="utf-8")
    with (contacts / "huge.yaml").open("wb") as stream:
        stream.truncate(50 * 1024 * 1024)
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate"],
        capture_output=True,
        text=True,
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "contacts/binary.yaml",
        "contacts/bomb.yaml",
        "contacts/deep.yaml",
        "contacts/huge.yaml",
    ]
    assert result.stderr == "Found 4 problems in 4 files.\n"


def test_with_masking_on_a_problem_never_shows_a_phone_or_email_in_full(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "reconciler.yaml").write_text("output:\n  mask_pii: true\n", encoding="utf-8")
    (project / "contacts" / "a.yaml").write_text(
        'contacts:\n  - phone: "15105551234"\n    email: bad-address\n'
        '  - phone: "15105551234"\n    email: alice@example.com\n',
        encoding="utf-8",
    )
    assert main(["validate", "--format", "github"]) == 1
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert "15105551234" not in printed and "1510*****34" in printed
    assert "declared twice" in printed


UNASSIGNED_WARNING = (
    "contacts/a.yaml:3:5: warning: phone 15550000001: not known to be an assigned number in "
    "+1 (US), though its length is possible; check it (messages to it may not be delivered)\n"
)


def test_warnings_follow_the_result_and_leave_the_exit_code_alone(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spelled = 'contacts:\n  - phone: "+1 (510) 555-1234"\n  - phone: "+1 555 000 0001"\n'
    (project / "contacts" / "a.yaml").write_text(spelled, encoding="utf-8")
    assert main(["validate"]) == 0
    assert capsys.readouterr().out == "2 contacts in 1 file are valid.\n" + UNASSIGNED_WARNING
    (project / "contacts" / "b.yaml").write_text('contacts:\n  - phone: "1234567"\n')
    assert main(["validate"]) == 1
    captured = capsys.readouterr()
    assert captured.out == (
        'contacts/b.yaml:2:5: phone "1234567" is not a possible number: read as +1 (US), it is '
        "too short; check its digits\n" + UNASSIGNED_WARNING
    )
    assert captured.err == "Found 1 problem in 1 file.\n"


def test_national_spellings_need_the_default_region_of_the_config(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    national = 'contacts:\n  - phone: "(510) 555-1234"\n  - phone: "15105551234"\n'
    (project / "contacts" / "a.yaml").write_text(national, encoding="utf-8")
    assert main(["validate"]) == 1
    assert "phones.default_region" in capsys.readouterr().out
    (project / "reconciler.yaml").write_text("phones:\n  default_region: US\n", encoding="utf-8")
    assert main(["validate"]) == 1
    assert capsys.readouterr().out == (
        "contacts/a.yaml:3:5: phone 15105551234 is declared twice: here and at "
        "contacts/a.yaml:2:5\n"
    )


def test_one_contact_is_counted_in_the_singular(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "contacts" / "a.yaml").write_text(
        'contacts:\n  - phone: "15105551234"\n', encoding="utf-8"
    )
    assert main(["validate"]) == 0
    assert capsys.readouterr().out == "1 contact in 1 file is valid.\n"
