"""The plans of several accounts as one document: a section per account, totals, the
account on every JSON change, and a markdown comment that fits GitHub's limit however many
accounts and changes there are."""

from __future__ import annotations

import json
import re

from reconciler.core.diff import DiffSettings, diff
from reconciler.core.plan import Plan
from reconciler.render import RenderOptions
from reconciler.render.accounts import render_account_plans
from reconciler.render.markdown import GITHUB_COMMENT_LIMIT
from tests.builders import FIELDS, MARKER, OWNER, declared, live

SETTINGS = DiffSettings(MARKER, OWNER, max_delete_percent=100)


def small_plan(*phones: str) -> Plan:
    contacts = [
        declared(phone, index + 1, first=f"Name {index}") for index, phone in enumerate(phones)
    ]
    return diff(contacts, [], FIELDS, SETTINGS, prune=False)


def big_plan(size: int) -> Plan:
    contacts = [
        declared(f"1510{n:07d}", n, first="x" * 300, is_opted_out=False) for n in range(size)
    ]
    accounts = [live(f"1510{n:07d}", n + 1, is_opted_out=True) for n in range(size)]
    return diff(contacts, accounts, FIELDS, SETTINGS, prune=False)


def test_text_has_a_section_per_account_and_the_totals() -> None:
    plans = [("us", small_plan("15105550001")), ("uk", small_plan("447700900123", "15105550001"))]
    rendered = render_account_plans(plans, "text", RenderOptions())
    out = rendered.stdout
    assert out.index('=== account "us" ===') < out.index('=== account "uk" ===')
    assert out.count("Plan: 1 to create") == 1 and out.count("Plan: 2 to create") == 1
    assert out.endswith("2 accounts: Plan: 3 to create, 0 to update, 0 to delete.\n")


def test_text_notices_say_their_account() -> None:
    plans = [("us", small_plan("15105550001")), ("uk", big_plan(2))]
    rendered = render_account_plans(plans, "text", RenderOptions())
    lines = rendered.stderr.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("[uk] Warning: ") for line in lines)


def test_json_keeps_the_plan_fields_with_totals_and_the_account_on_every_change() -> None:
    plans = [("us", small_plan("15105550001")), ("uk", big_plan(2))]
    document = json.loads(render_account_plans(plans, "json", RenderOptions()).stdout)
    assert list(document)[:6] == [
        "format_version",
        "summary",
        "changes",
        "warnings",
        "errors",
        "fields_to_create",
    ]
    assert document["summary"] == {"create": 1, "update": 2, "delete": 0, "unchanged": 0}
    assert [change["account"] for change in document["changes"]] == ["us", "uk", "uk"]
    assert [warning["account"] for warning in document["warnings"]] == ["uk", "uk"]
    assert [account["name"] for account in document["accounts"]] == ["us", "uk"]


def test_masking_applies_to_every_account() -> None:
    plans = [("us", small_plan("15105550001")), ("uk", small_plan("447700900123"))]
    for output_format in ("text", "markdown", "json"):
        rendered = render_account_plans(plans, output_format, RenderOptions(mask_pii=True))
        shown = rendered.stdout + rendered.stderr
        assert "15105550001" not in shown and "447700900123" not in shown
        assert "Name 0" not in shown


def test_markdown_of_several_large_accounts_fits_a_github_comment() -> None:
    plans = [(f"account-{n}", big_plan(400)) for n in range(3)]
    markdown = render_account_plans(plans, "markdown", RenderOptions()).stdout
    assert len(markdown) < GITHUB_COMMENT_LIMIT
    assert [f"#### Account `account-{n}`" in markdown for n in range(3)] == [True] * 3
    # Every account lists some of its rows: none is crowded out by another.
    sections = re.split(r"#### Account ", markdown)[1:]
    assert all(re.search(r"^\| 1510", section, flags=re.MULTILINE) for section in sections)


def test_markdown_of_very_many_accounts_still_fits() -> None:
    plans = [(f"a{n}", big_plan(60)) for n in range(60)]
    markdown = render_account_plans(plans, "markdown", RenderOptions()).stdout
    assert len(markdown) < GITHUB_COMMENT_LIMIT
    assert all(f"`a{n}`" in markdown for n in range(60))
