"""`reconciler fmt`: canonical layout, every comment kept, --check changes nothing."""

from __future__ import annotations

import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.desired.canonical import format_directory, format_text
from reconciler.desired.loader import load_desired_state, parse_file
from reconciler.desired.yaml_safety import LoadedYaml, load_yaml

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
def project_files() -> dict[str, str]:
    return {
        "contacts/messy.yaml": MESSY,
        "contacts/tidy.yaml": 'contacts:\n  - phone: "15105550100"\n',
    }


@pytest.fixture
def project_env() -> dict[str, str]:
    """No server: fmt never connects."""
    return {}


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
    for path in sorted((Path(__file__).parents[2] / "contacts").rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert format_text(text) == text, path.name


@pytest.mark.parametrize(
    "entry",
    [
        'last: "Lindqvi\tst"  # from the CRM',
        "last: Lindqvi\tst  # from the CRM",
        "last:\tLindqvi\tst\t# from the CRM",
        "last: 'Lindqvi\tst'\t# from the CRM",
    ],
    ids=["double-quoted", "plain", "tab-separated", "single-quoted"],
)
def test_a_tab_validate_accepts_is_formatted_keeping_the_value_and_the_comment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    entry: str,
) -> None:
    (tmp_path / "contacts").mkdir()
    path = tmp_path / "contacts" / "crm.yaml"
    path.write_text(f'contacts:\n  - phone: "14155550101"\n    {entry}\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 0

    assert main(["fmt"]) == 0

    captured = capsys.readouterr()
    assert "Error" not in captured.err and "Warning" not in captured.err
    # The comment keeps its column, wherever the value's new spelling ends.
    assert re.fullmatch(
        r'contacts:\n  - phone: "14155550101"\n    last: "Lindqvi\\tst" +# from the CRM\n',
        path.read_text(encoding="utf-8"),
    )
    (contact,) = load_desired_state(tmp_path / "contacts").contacts
    assert contact.fields == {"last": "Lindqvi\tst"}
    assert main(["fmt", "--check"]) == 0


# --- fmt agrees with validate on every file validate accepts --------------------------------

# Characters YAML readers treat specially, mixed into arbitrary text: C0 and C1 controls, NEL,
# LS/PS, a BOM, tabs, line ends, quotes, backslashes and the indicators of the syntax.
AWKWARD = (
    "\t\n\r\x00\x01\x07\x1b\x7f\x80\x85\x9f\xa0\u2028\u2029\ufeff\ufffe\"'\\#:-?|>{}[],&*!%@` "
)
awkward_text = st.one_of(
    st.text(alphabet=st.sampled_from(AWKWARD + "xyé🙂"), max_size=10),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=10),
)
SCALAR_STYLES = ("plain", "single", "double", "escaped", "literal", "folded", "flow")


def _escaped(value: str) -> str:
    """A double-quoted scalar spelling every character outside printable ASCII as an escape."""
    named = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\\0", "\x85": "\\N", "\u2028": "\\L"}
    named |= {"\u2029": "\\P", "\xa0": "\\_", '"': '\\"', "\\": "\\\\"}
    out = []
    for char in value:
        if char in named:
            out.append(named[char])
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def _scalar(value: str, style: str, indent: str, newline: str) -> str:
    """``value`` written in ``style``, as a careless hand might: raw characters stay raw."""
    if style == "plain":
        return value
    if style == "single":
        return "'" + value.replace("'", "''") + "'"
    if style == "double":
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if style in ("literal", "folded"):
        lines = value.split("\n")
        head = ("|" if style == "literal" else ">") + ("-" if len(lines) % 2 else "")
        return head + "".join(newline + indent + "  " + line for line in lines)
    return _escaped(value)


def _reads_as_text(entry: str) -> bool:
    """Whether libyaml reads this one ``key: value`` line as text (else the generator writes
    the value with escapes, so that most generated files are valid)."""
    loaded = load_yaml(entry.encode("utf-8"), "entry")
    return (
        isinstance(loaded, LoadedYaml)
        and isinstance(loaded.value, dict)
        and all(isinstance(value, str) for value in loaded.value.values())
    )


@st.composite
def contacts_files(draw: st.DrawFn) -> tuple[bytes, int]:
    """A contacts file as a person or another tool might write it, and how many contacts it
    declares: any text in any scalar style, tabs between tokens, comments in odd places,
    LF or CRLF line ends, a BOM."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    gap = draw(st.sampled_from([" ", "\t", " \t "]))
    lines = [draw(st.sampled_from(["", "\ufeff", "# team" + newline])) + "contacts:"]
    count = draw(st.integers(min_value=1, max_value=3))
    for number in range(count):
        phone = f'"1415555{number:04d}"'
        values = {}
        for name in draw(st.lists(st.sampled_from(["first", "last", "display_name"]), unique=True)):
            values[name] = draw(awkward_text)
        custom = {
            draw(st.sampled_from(["Region", "Notes", "tab\tkey", "Zoë"])): draw(awkward_text)
            for _ in range(draw(st.integers(0, 2)))
        }
        # Tags: none (not managed), cleared, or a few, as a flow list or a block list.
        tags = draw(
            st.none()
            | st.lists(
                awkward_text.filter(str.strip),
                max_size=3,
                unique_by=lambda tag: unicodedata.normalize("NFC", tag.strip()),
            )
        )
        flow_tags = "null" if tags == [] else f"[{', '.join(map(_escaped, tags or []))}]"
        if draw(st.booleans()):
            # The whole contact in flow style, values double-quoted with escapes.
            pairs = [f"phone: {phone}"]
            pairs += [f"{name}:{gap}{_escaped(value)}" for name, value in values.items()]
            if tags is not None:
                pairs.append(f"tags: {flow_tags}")
            if custom:
                inner = ", ".join(f"{_escaped(t)}: {_escaped(v)}" for t, v in custom.items())
                pairs.append(f"custom: {{{inner}}}")
            lines.append("  - {" + ",".join(pairs) + "}")
            continue
        lines.append(f"  - phone: {phone}")
        if tags is not None and (not tags or draw(st.booleans())):
            lines.append(f"    tags: {flow_tags}")
        elif tags is not None:
            lines.append("    tags:" + draw(st.sampled_from(["", f"{gap}# tags"])))
            lines += [f"      - {_escaped(tag)}" for tag in tags]
        entries = [(name, value, "    ") for name, value in values.items()]
        if custom:
            header = "    custom:" + draw(st.sampled_from(["", f"{gap}# custom"]))
            entries.append(("", header, ""))
            entries += [(title, value, "      ") for title, value in custom.items()]
        for key, value, indent in entries:
            if not key:
                lines.append(value)
                continue
            style = draw(st.sampled_from(SCALAR_STYLES))
            scalar = _scalar(value, style, indent, newline)
            comment = draw(st.sampled_from(["", f"{gap}# note", f"{gap}#\ttabbed"]))
            if style in ("literal", "folded"):
                comment = ""  # a comment after a block scalar's last line would be content
            written_key = key if "\t" not in key or style == "plain" else _escaped(key)
            line = f"{indent}{written_key}:{gap}{scalar}{comment}"
            if not _reads_as_text(line + newline):
                line = f"{indent}{written_key}:{gap}{_escaped(value)}{comment}"
            lines.append(line)
    return newline.join(lines).encode("utf-8") + newline.encode(), count


def _contacts_of(
    directory: Path,
) -> list[tuple[str, dict[str, Any], dict[str, Any], tuple[str, ...] | None]]:
    return sorted(
        (contact.phone, dict(contact.fields), dict(contact.custom), contact.tags)
        for contact in load_desired_state(directory, directory).contacts
    )


@settings(max_examples=150, deadline=None)
@given(case=contacts_files())
# A block scalar ending in LS, which YAML reads as a line break: it took two passes to
# settle, so a second fmt changed the file.
@example(
    case=(
        b'contacts:\n  - phone: "14155550000"\n    last: |-\n      :\xe2\x80\xa8\n'
        b'    first: ""\n  - phone: "14155550001"\n',
        2,
    )
)
def test_fmt_formats_every_file_validate_accepts_and_keeps_every_value(
    case: tuple[bytes, int],
) -> None:
    data, count = case
    parsed = parse_file(data, "generated.yaml")
    assume(not parsed.problems and len(parsed.contacts) == count)
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        path = directory / "generated.yaml"
        path.write_bytes(data)
        before = _contacts_of(directory)

        first = format_directory(directory, directory, check=False)
        formatted = path.read_bytes()
        event(f"comments kept: {not first.rebuilt}")
        event(f"tags declared: {any(contact[3] for contact in before)}")

        assert _contacts_of(directory) == before
        again = format_directory(directory, directory, check=False)
        assert again.changed == () and path.read_bytes() == formatted


def test_a_file_the_comment_keeping_writer_reads_otherwise_is_written_from_its_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The block's content is indented deeper than the comment after it: libyaml ends the
    # block before the comment, ruamel.yaml does not. The values win; fmt says what it lost.
    (tmp_path / "contacts").mkdir()
    path = tmp_path / "contacts" / "notes.yaml"
    path.write_text(
        'contacts:\n  - phone: "14155550000"\n    last: |-\n       a\n\n      # note\n'
        "    first: x\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 0

    assert main(["fmt"]) == 0

    assert capsys.readouterr().err == (
        "Warning: contacts/notes.yaml was written from its values, without its comments: the "
        "comment-keeping writer cannot rewrite it without changing a value.\n"
    )
    assert path.read_text(encoding="utf-8") == (
        'contacts:\n  - phone: "14155550000"\n    first: x\n    last: a\n'
    )
    assert main(["fmt", "--check"]) == 0


SPELLED = """\
contacts:
  - phone: +44 20 7946 0958  # the London office
    first: Lon
  - phone: "(415) 555-0101"  # front desk
  - phone: '+1 510-555-1234'
  - phone: 15105550001
"""

# Comments stay in their column (as for any value fmt rewrites).
SPELLED_CANONICAL = """\
contacts:
  - phone: "14155550101"     # front desk
  - phone: "15105550001"
  - phone: "15105551234"
  - phone: "442079460958"    # the London office
    first: Lon
"""


def test_fmt_rewrites_every_spelling_to_canonical_digits_and_is_idempotent(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "contacts" / "messy.yaml").unlink()
    (project / "contacts" / "spelled.yaml").write_text(SPELLED, encoding="utf-8")
    assert main(["fmt"]) == 1  # without a default region, "(415) 555-0101" is refused
    assert "has no country code" in capsys.readouterr().out
    (project / "reconciler.yaml").write_text("phones:\n  default_region: US\n", encoding="utf-8")
    assert main(["fmt"]) == 0
    assert (project / "contacts" / "spelled.yaml").read_text(encoding="utf-8") == SPELLED_CANONICAL
    assert format_text(SPELLED_CANONICAL, "US") == SPELLED_CANONICAL
    assert format_text(SPELLED, "US") == SPELLED_CANONICAL
    assert main(["fmt", "--check"]) == 0
    (project / "reconciler.yaml").unlink()
    assert main(["validate"]) == 0  # canonical digits need no region
