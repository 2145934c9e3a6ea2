"""Plan renderings: text, markdown and json, plain and masked, against the golden files
in tests/golden/ (tests/golden_files.py says how to regenerate them)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from reconciler.core.diff import DiffSettings, diff
from reconciler.core.masking import mask_email, mask_name, mask_phone
from reconciler.core.plan import LiveRead, Plan
from reconciler.render import FORMATS, RenderOptions, render_plan
from reconciler.render.markdown import GITHUB_COMMENT_LIMIT
from tests.builders import FIELDS, MARKER, MARKER_ID, OWNER, TIER_ID, declared, live
from tests.golden_files import assert_golden

SETTINGS = DiffSettings(MARKER, OWNER, max_delete_percent=100)
ANSI = re.compile("\033\\[")


def sample_plan() -> Plan:
    contacts = [
        declared("15105551234", 3, first="Alice", last="Smith", email="alice@example.com"),
        declared("15105555678", 9, last="Jones-Smith", custom={"Account tier": "gold"}),
        declared("15105550001", 15, first="Carl", custom={"Region": "west"}),
        declared("15105550002", 20, first="Dana", is_opted_out=False),
        declared("15105550003", 24, first="Eve"),
    ]
    accounts = [
        live("15105555678", 2, last="Jones", custom={MARKER_ID: OWNER, TIER_ID: "silver"}),
        live("15105550001", 3, first="Carl", custom={}),
        live("15105550002", 4, first="Dana", is_opted_out=True),
        live("15105550003", 5, first="Eva", custom={MARKER_ID: "support"}),
        live("15105559999", 6, first="Bob", email="bob@example.com"),
    ]
    return diff(contacts, accounts, FIELDS, SETTINGS, prune=True)


@pytest.mark.parametrize(
    ("name", "output_format", "options"),
    [
        ("plan.txt", "text", RenderOptions()),
        ("plan-color.txt", "text", RenderOptions(color=True)),
        ("plan-masked.txt", "text", RenderOptions(mask_pii=True)),
        ("plan.md", "markdown", RenderOptions()),
        ("plan-masked.md", "markdown", RenderOptions(mask_pii=True)),
        ("plan.json", "json", RenderOptions()),
    ],
)
def test_rendering_matches_golden_file(
    name: str, output_format: str, options: RenderOptions
) -> None:
    rendered = render_plan(sample_plan(), output_format, options)

    assert_golden(name, rendered.stdout)
    if output_format == "text":
        assert_golden(name.replace(".txt", ".stderr.txt"), rendered.stderr)
    else:
        assert rendered.stderr == ""


def test_text_ends_with_terraforms_summary_and_keeps_notices_off_stdout() -> None:
    rendered = render_plan(sample_plan(), "text", RenderOptions())

    assert rendered.stdout.endswith("Plan: 1 to create, 2 to update, 1 to delete.\n")
    assert "  ~ adopt 15105550001" in rendered.stdout
    assert '      ~ last: "Jones" -> "Jones-Smith"' in rendered.stdout
    assert "Warning:" not in rendered.stdout
    assert "Warning: 15105550002 (contacts/team.yaml:20): declares is_opted_out" in rendered.stderr
    assert "Error: 15105550003 (contacts/team.yaml:24): is owned by 'support'" in rendered.stderr


def test_colour_only_when_asked() -> None:
    plain = render_plan(sample_plan(), "text", RenderOptions(color=False))
    coloured = render_plan(sample_plan(), "text", RenderOptions(color=True))

    assert not ANSI.search(plain.stdout + plain.stderr)
    assert ANSI.search(coloured.stdout)
    assert ANSI.search(coloured.stderr)


@pytest.mark.parametrize("output_format", ["text", "markdown"])
def test_an_empty_plan_says_no_changes(output_format: str) -> None:
    plan = diff(
        [declared("15105551234", first="Al")],
        [live("15105551234", first="Al")],
        FIELDS,
        SETTINGS,
        prune=False,
    )

    rendered = render_plan(plan, output_format, RenderOptions())

    assert "No changes." in rendered.stdout
    assert "to create" not in rendered.stdout


@pytest.mark.parametrize("output_format", ["text", "markdown"])
def test_no_changes_with_errors_does_not_claim_the_account_matches(output_format: str) -> None:
    plan = diff(
        [declared("15105551234", first="Al")],
        [live("15105551234", first="Bo", custom={MARKER_ID: "support"})],
        FIELDS,
        SETTINGS,
        prune=False,
    )

    rendered = render_plan(plan, output_format, RenderOptions())

    assert "No changes." in rendered.stdout
    assert "matches" not in rendered.stdout
    assert "1 declared contacts were left untouched: see the errors." in rendered.stdout


def test_without_prune_the_text_says_what_prune_would_show() -> None:
    plan = diff([], [live("15105551234")], FIELDS, SETTINGS, prune=False)

    text = render_plan(plan, "text", RenderOptions()).stdout

    assert "No changes." in text
    assert "1 owned contacts are no longer declared; `plan --prune` shows them" in text


def test_json_is_the_plans_json_document() -> None:
    plan = sample_plan()

    rendered = render_plan(plan, "json", RenderOptions()).stdout

    assert json.loads(rendered) == plan.to_json_dict()


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown plan format 'yaml'"):
        render_plan(sample_plan(), "yaml", RenderOptions())


# --- masking -----------------------------------------------------------------------------


def test_masks_keep_enough_to_tell_rows_apart() -> None:
    assert mask_phone("15105551234") == "1510*****34"
    assert mask_phone("4412") == "**12"
    assert mask_email("alice@example.com") == "a***@example.com"
    assert mask_email("not-an-email") == "n***"
    assert mask_name("Alice") == "A***"
    assert mask_name("") == ""


@pytest.mark.parametrize("output_format", FORMATS)
def test_masked_output_holds_no_phone_email_or_name(output_format: str) -> None:
    rendered = render_plan(sample_plan(), output_format, RenderOptions(mask_pii=True))
    everything = rendered.stdout + rendered.stderr

    for secret in ("15105551234", "5551234", "alice@", "Alice", "Smith", "Jones", "Bob"):
        assert secret not in everything, secret
    assert "1510" in everything  # rows still readable: the prefix stays


# --- untrusted data and size -------------------------------------------------------------


def test_live_data_cannot_inject_terminal_escapes_or_markup() -> None:
    hostile = "\033[2J</details><script>x</script> | `code` *bold*\nnext"
    plan = diff(
        [declared("15105551234", first="Alice")],
        [live("15105551234", first=hostile)],
        FIELDS,
        SETTINGS,
        prune=False,
    )

    text = render_plan(plan, "text", RenderOptions()).stdout
    markdown = render_plan(plan, "markdown", RenderOptions()).stdout

    assert "\033" not in text
    assert "\\u001b[2J" in text
    assert "<script>" not in markdown
    assert "</details><script>" not in markdown
    assert "&lt;script&gt;" in markdown
    table_row = next(line for line in markdown.splitlines() if "15105551234" in line)
    assert table_row.count(" | ") == 2  # the value's pipe did not open a new column


def test_markdown_of_5000_changes_fits_a_github_comment() -> None:
    contacts = [
        declared(f"1510{n:07d}", n, first=f"First {n}", last=f"Last-name {n}" * 3)
        for n in range(5000)
    ]
    accounts = [live(f"1510{n:07d}", n + 1, first="Old") for n in range(0, 5000, 2)]
    plan = diff(contacts, accounts, FIELDS, SETTINGS, prune=False)
    assert len(plan.changes) == 5000

    markdown = render_plan(plan, "markdown", RenderOptions()).stdout

    assert len(markdown) < GITHUB_COMMENT_LIMIT
    left_out = re.search(r"_(\d+) of 5000 changes are not listed", markdown)
    assert left_out is not None
    listed = len(re.findall(r"^\| 1510", markdown, flags=re.MULTILINE))
    assert listed + int(left_out.group(1)) == 5000
    assert listed > 50
    # The counts per action and per field cover every change, listed or not.
    assert "| create | first | 2500 |" in markdown
    assert "| update | last | 2500 |" in markdown
    assert "<summary>Create (" in markdown and "Update (" in markdown


def test_markdown_stays_under_the_limit_with_huge_values_and_many_warnings() -> None:
    contacts = [
        declared(f"1510{n:07d}", n, first="x" * 5000, is_opted_out=False) for n in range(2000)
    ]
    accounts = [live(f"1510{n:07d}", n + 1, is_opted_out=True) for n in range(2000)]
    plan = diff(contacts, accounts, FIELDS, SETTINGS, prune=False)
    assert len(plan.warnings) == 2000

    markdown = render_plan(plan, "markdown", RenderOptions()).stdout

    assert len(markdown) < GITHUB_COMMENT_LIMIT
    assert re.search(r"- … and \d+ more", markdown)


@pytest.mark.parametrize("mask_pii", [False, True])
def test_how_the_live_state_was_read_is_one_line_in_every_format(mask_pii: bool) -> None:
    plan = dataclasses.replace(sample_plan(), live_read=LiveRead("incremental", 4))
    options = RenderOptions(mask_pii=mask_pii)
    line = "Live state read incrementally: 4 API requests."

    text = render_plan(plan, "text", options).stdout
    assert text.startswith(line + "\n\nreconciler will perform these actions:")
    markdown = render_plan(plan, "markdown", options).stdout
    assert "| 1 | 2 (1 adopted) | 1 | 1 |\n\n" + line + "\n\n" in markdown
    document = json.loads(render_plan(plan, "json", options).stdout)
    assert document["live"] == {"read": "incremental", "requests": 4}

    full = dataclasses.replace(plan, live_read=LiveRead("full", 1001))
    assert (
        "Live state read in full: 1,001 API requests." in render_plan(full, "text", options).stdout
    )
    assert "live" not in json.loads(render_plan(sample_plan(), "json", options).stdout)
