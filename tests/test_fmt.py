"""`reconciler fmt`: canonical layout, every comment kept, --check changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.desired.canonical import format_text

MESSY = """\
# Sales team
contacts:
  # Key accounts first
  - first: Zed   # nickname
    custom:
      Region: EMEA  # moved
    phone: 15105550009
  # Bob heads west
  - last: Builder
    phone: '15105550001'
    email:
    first: Bob
# end of file
"""

CANONICAL = """\
# Sales team
contacts:
  # Key accounts first
  # Bob heads west
  - phone: "15105550001"
    first: Bob
    last: Builder
    email: null
  - phone: "15105550009"
    first: Zed   # nickname
    custom:
      Region: EMEA  # moved
# end of file
"""


def comments(text: str) -> list[str]:
    return sorted(re.findall(r"#.*", text))


def test_canonical_order_quotes_and_sorting_keep_every_comment() -> None:
    formatted = format_text(MESSY)
    assert formatted == CANONICAL
    assert comments(formatted) == comments(MESSY)


def test_canonical_text_is_a_fixed_point() -> None:
    assert format_text(CANONICAL) == CANONICAL


def test_comments_above_a_contact_move_with_it() -> None:
    text = (
        "contacts:\n"
        '  - phone: "15105550003"\n'
        "    first: C\n"
        "  # about A\n"
        '  - phone: "15105550001"\n'
        "    first: A\n"
        "\n"
        "  # about B\n"
        '  - phone: "15105550002"\n'
        "    first: B\n"
    )
    assert format_text(text) == (
        "contacts:\n"
        "  # about A\n"
        '  - phone: "15105550001"\n'
        "    first: A\n"
        "\n"
        "  # about B\n"
        '  - phone: "15105550002"\n'
        "    first: B\n"
        '  - phone: "15105550003"\n'
        "    first: C\n"
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "contacts").mkdir()
    (tmp_path / "contacts" / "messy.yaml").write_text(MESSY, encoding="utf-8")
    (tmp_path / "contacts" / "tidy.yaml").write_text(
        'contacts:\n  - phone: "15105550100"\n', encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_lists_files_and_changes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fmt", "--check"]) == 1
    assert capsys.readouterr().out == (
        "would reformat contacts/messy.yaml\n1 file(s) would be reformatted, 1 already canonical.\n"
    )
    assert (project / "contacts" / "messy.yaml").read_text(encoding="utf-8") == MESSY


def test_fmt_rewrites_then_check_passes(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fmt"]) == 0
    assert capsys.readouterr().out == (
        "reformatted contacts/messy.yaml\n1 file(s) reformatted, 1 already canonical.\n"
    )
    assert (project / "contacts" / "messy.yaml").read_text(encoding="utf-8") == CANONICAL
    assert main(["fmt", "--check"]) == 0
    assert main(["validate"]) == 0


def test_fmt_keeps_each_file_s_permissions(project: Path) -> None:
    messy = project / "contacts" / "messy.yaml"
    messy.chmod(0o640)
    assert main(["fmt"]) == 0
    assert messy.read_text(encoding="utf-8") == CANONICAL
    assert messy.stat().st_mode & 0o777 == 0o640


def test_fmt_refuses_an_invalid_desired_state(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = 'contacts:\n  - phone: "15105550100"\n    frist: A\n'
    (project / "contacts" / "broken.yaml").write_text(broken, encoding="utf-8")
    assert main(["fmt"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith('contacts/broken.yaml:3:5: unknown key "frist"')
    assert captured.err == "Nothing was formatted: fix the problems above first.\n"
    assert (project / "contacts" / "messy.yaml").read_text(encoding="utf-8") == MESSY


def test_example_contacts_are_canonical() -> None:
    for path in sorted((Path(__file__).parent.parent / "contacts").rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert format_text(text) == text, path.name
