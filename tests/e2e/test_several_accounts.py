"""Two Heymarket accounts in one repository, each on its own sandbox with its own
credentials: each is planned and applied against its own server, a phone may live in both,
caps and backups and journal lines are per account, and one account failing never stops the
other from being applied and reported; the exit code is the worst of the two."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconciler.cli import main
from reconciler.commands.apply import ApplyRequest
from reconciler.commands.apply import run as run_apply
from reconciler.commands.context import Settings
from reconciler.commands.environment import Environment
from reconciler.commands.plan import PlanRequest
from reconciler.commands.plan import run as run_plan
from reconciler.heymarket import HeymarketClient, credentials_from_env
from reconciler.report.console import Console
from tests.account import OWNER, by_phone, contacts_yaml, journal_lines, owned, write_count
from tests.sandbox_handle import SandboxHandle, started_sandbox

CONFIG = f"""\
ownership: {{owner: {OWNER}}}
prune: {{max_deletes: 25, max_delete_percent: 100}}
accounts:
  us:
    contacts: contacts/us
    credentials_env: HEYMARKET_US
  uk:
    contacts: contacts/uk
    credentials_env: HEYMARKET_UK
    prune: {{max_deletes: 1}}
"""
SHARED_PHONE = "15105550001"
SCHEMAS = Path(__file__).parents[2] / "schemas"


def valid(text: str, schema: str) -> dict[str, Any]:
    """``text`` is one JSON document, valid against ``schemas/<schema>``."""
    parsed = json.loads(text)
    loaded = json.loads((SCHEMAS / schema).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(loaded)
    jsonschema.Draft202012Validator(loaded).validate(parsed)
    assert isinstance(parsed, dict)
    return parsed


@pytest.fixture(scope="module")
def uk_server() -> Iterator[SandboxHandle]:
    """A second sandbox, with credentials of its own."""
    with started_sandbox("uk") as handle:
        yield handle


@pytest.fixture
def uk(uk_server: SandboxHandle) -> SandboxHandle:
    uk_server.reset()
    return uk_server


@pytest.fixture
def project_files() -> dict[str, str]:
    return {"reconciler.yaml": CONFIG}


@pytest.fixture
def project_env(sandbox: SandboxHandle, uk: SandboxHandle) -> dict[str, str]:
    """The us account by its API key, the uk account by its JWT pair: neither set of
    credentials opens the other's server."""
    return {
        "HEYMARKET_US_API_URL": sandbox.url,
        "HEYMARKET_US_API_KEY": sandbox.api_key,
        "HEYMARKET_UK_API_URL": uk.url,
        "HEYMARKET_UK_SECRET_ID": uk.secret_id,
        "HEYMARKET_UK_SECRET_KEY": uk.secret_key,
    }


def declare(project: Path, account: str, *contacts: dict[str, Any]) -> None:
    directory = project / "contacts" / account
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "team.yaml").write_text(contacts_yaml(*contacts), encoding="utf-8")


def test_each_account_is_applied_to_its_own_server_and_a_phone_may_live_in_both(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project, "us", {"phone": SHARED_PHONE, "first": "Alice"})
    declare(project, "uk", {"phone": SHARED_PHONE, "first": "Alicia"}, {"phone": "442079460958"})

    assert main(["apply", "--auto-approve"]) == 0
    out = capsys.readouterr().out
    assert '=== account "us" ===' in out and '=== account "uk" ===' in out
    assert "Accounts: us applied, uk applied." in out
    assert by_phone(sandbox)[SHARED_PHONE]["first"] == "Alice"
    assert set(by_phone(sandbox)) == {SHARED_PHONE}
    assert by_phone(uk)[SHARED_PHONE]["first"] == "Alicia"
    assert set(by_phone(uk)) == {SHARED_PHONE, "442079460958"}

    lines = journal_lines(project)
    assert sorted((line["account"], line["phone"]) for line in lines) == [
        ("uk", SHARED_PHONE),
        ("uk", "442079460958"),
        ("us", SHARED_PHONE),
    ]
    # Each account keeps its own snapshot.
    assert (project / ".reconciler" / "cache" / "us").is_dir()
    assert (project / ".reconciler" / "cache" / "uk").is_dir()

    assert main(["plan", "--detailed-exitcode"]) == 0
    assert "2 accounts: Plan: 0 to create, 0 to update, 0 to delete." in capsys.readouterr().out


def test_one_account_refused_by_its_server_leaves_the_other_applied_and_both_reported(
    project: Path,
    sandbox: SandboxHandle,
    uk: SandboxHandle,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong_key = "not-the-uk-key-" + secrets.token_hex(8)
    monkeypatch.setenv("HEYMARKET_UK_SECRET_KEY", wrong_key)
    declare(project, "us", {"phone": SHARED_PHONE, "first": "Alice"})
    declare(project, "uk", {"phone": SHARED_PHONE, "first": "Alicia"})

    assert main(["apply", "--auto-approve"]) == 1
    captured = capsys.readouterr()
    assert by_phone(sandbox)[SHARED_PHONE]["first"] == "Alice"
    assert by_phone(uk) == {}
    assert "Apply complete: 1 created" in captured.out
    assert "Accounts: us applied, uk failed (exit 1)." in captured.out
    (error,) = [line for line in captured.err.splitlines() if "account uk" in line]
    assert "HEYMARKET_UK_SECRET_ID/HEYMARKET_UK_SECRET_KEY" in error
    for secret in (wrong_key, uk.secret_id, sandbox.api_key):
        assert secret not in captured.out + captured.err


def impatient(settings: Settings, environ: Mapping[str, str], insecure: bool) -> HeymarketClient:
    """The account's client, retrying without waiting (the sandbox's 500s are all it gets)."""
    credentials = credentials_from_env(environ, settings.credentials_env)
    return HeymarketClient(settings.api_url, credentials, sleep=lambda seconds: None)


def test_a_server_fault_in_one_account_leaves_the_other_applied(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle
) -> None:
    sandbox.set_faults(fail_rate=1.0)
    declare(project, "us", {"phone": SHARED_PHONE, "first": "Alice"})
    declare(project, "uk", {"phone": SHARED_PHONE, "first": "Alicia"})
    printed: list[str] = []
    console = Console(out=printed.append, err=printed.append, ask=input)
    env = Environment(environ=os.environ, cwd=project, console=console, connect_client=impatient)

    assert run_plan(PlanRequest(detailed_exitcode=True), env) == 1
    text = "".join(printed)
    assert "Error: account us:" in text
    assert '=== account "uk" ===' in text and "Plan: 1 to create" in text
    assert "1 account: Plan: 1 to create, 0 to update, 0 to delete." in text
    # Said last: the plan above is not every account's.
    assert text.rstrip().endswith("Not planned: account us (see the error above).")

    printed.clear()
    assert run_apply(ApplyRequest(auto_approve=True), env) == 1
    assert "Accounts: us failed (exit 1), uk applied." in "".join(printed)
    assert by_phone(uk)[SHARED_PHONE]["first"] == "Alicia"


def test_prune_caps_and_backups_are_per_account_and_the_exit_code_is_the_worst(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    owned(sandbox, "15105550011", "15105550012")
    owned(uk, "15105550011", "15105550012")
    declare(project, "us", {"phone": SHARED_PHONE})
    declare(project, "uk", {"phone": SHARED_PHONE})

    # uk allows one delete and has two to do: refused (3); us allows 25: pruned (0).
    assert main(["apply", "--prune", "--auto-approve"]) == 3
    captured = capsys.readouterr()
    assert "Accounts: us applied, uk refused (exit 3)." in captured.out
    assert "Refusing to prune 2 contacts" in captured.err
    assert set(by_phone(sandbox)) == {SHARED_PHONE}
    assert set(by_phone(uk)) == {"15105550011", "15105550012"}
    assert write_count(uk) == 0
    (backup,) = (project / ".reconciler" / "backups" / "us").iterdir()
    assert len(backup.read_text(encoding="utf-8").splitlines()) == 2
    assert not (project / ".reconciler" / "backups" / "uk").exists()
    deletes = [line for line in journal_lines(project) if line["action"] == "delete"]
    assert {(line["account"], line["result"]) for line in deletes} == {("us", "applied")}

    # A backup goes back into one account: the one --account names, or the one whose
    # backup directory holds it; elsewhere, restore does not guess.
    moved = project / backup.name
    moved.write_bytes(backup.read_bytes())
    assert main(["restore", str(moved), "--auto-approve"]) == 1
    assert "choose one with --account NAME" in capsys.readouterr().err
    assert main(["restore", str(moved), "--auto-approve", "--account", "uk"]) == 0
    capsys.readouterr()
    assert set(by_phone(uk)) == {"15105550011", "15105550012"}  # exist there: skipped
    assert main(["restore", str(backup.relative_to(project)), "--auto-approve"]) == 0
    assert set(by_phone(sandbox)) == {SHARED_PHONE, "15105550011", "15105550012"}
    restores = [line for line in journal_lines(project) if line["command"] == "restore"]
    assert {line["account"] for line in restores} == {"us"}


def test_account_selects_and_json_names_the_account_of_every_change(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project, "us", {"phone": SHARED_PHONE, "first": "Alice"})
    declare(project, "uk", {"phone": SHARED_PHONE}, {"phone": "442079460958"})

    assert main(["plan", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["summary"] == {"create": 3, "update": 0, "delete": 0, "unchanged": 0}
    assert [(c["account"], c["phone"]) for c in document["changes"]] == [
        ("us", SHARED_PHONE),
        ("uk", SHARED_PHONE),
        ("uk", "442079460958"),
    ]
    assert [account["name"] for account in document["accounts"]] == ["us", "uk"]

    assert main(["apply", "--auto-approve", "--account", "uk"]) == 0
    capsys.readouterr()
    assert by_phone(sandbox) == {}
    assert set(by_phone(uk)) == {SHARED_PHONE, "442079460958"}

    assert main(["plan", "--account", "nope"]) == 1
    err = capsys.readouterr().err
    assert err == 'Error: no account named "nope"; the configured accounts are: us, uk\n'


def test_the_markdown_plan_has_a_section_per_account(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project, "us", {"phone": SHARED_PHONE, "first": "Alice"})
    declare(project, "uk", {"phone": "442079460958"})

    assert main(["plan", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### reconciler plan\n\n**2 accounts: Plan: 2 to create,")
    assert out.index("#### Account `us`") < out.index("#### Account `uk`")


def test_a_saved_plan_holds_each_accounts_plan_and_apply_proves_each(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project, "us", {"phone": SHARED_PHONE, "first": "Alice"})
    declare(project, "uk", {"phone": SHARED_PHONE, "first": "Alicia"})

    assert main(["plan", "--out", "both.json"]) == 0
    assert "Saved the plans of 2 accounts to both.json" in capsys.readouterr().out
    document = json.loads((project / "both.json").read_text(encoding="utf-8"))
    # A reviewer reads one JSON plan; apply proves each account's own.
    assert [change["account"] for change in document["changes"]] == ["us", "uk"]
    assert {name: plan["account"] for name, plan in document["account_plans"].items()} == {
        "us": "us",
        "uk": "uk",
    }
    assert document["account_plans"]["uk"]["api_url"] == uk.url

    # Meanwhile someone adds the uk contact in the app: uk's saved plan is stale, us's not.
    uk.seed([{"phone": SHARED_PHONE, "first": "From the app"}])
    assert main(["apply", "both.json"]) == 3
    captured = capsys.readouterr()
    assert "Accounts: us applied, uk refused (exit 3)." in captured.out
    assert "Error: account uk: both.json is not the plan apply derives now" in captured.err
    assert by_phone(sandbox)[SHARED_PHONE]["first"] == "Alice"
    assert by_phone(uk)[SHARED_PHONE]["first"] == "From the app"


def test_a_saved_plan_of_one_account_is_applied_to_that_account_only(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project, "us", {"phone": SHARED_PHONE, "first": "Alice"})
    declare(project, "uk", {"phone": SHARED_PHONE, "first": "Alicia"})

    assert main(["plan", "--account", "uk", "--out", "uk.json"]) == 0
    assert "reconciler apply --account uk uk.json" in capsys.readouterr().out
    assert main(["apply", "--account", "us", "uk.json"]) == 3
    assert 'uk.json holds no plan for account "us" (it holds uk)' in capsys.readouterr().err
    assert write_count(sandbox) == 0

    assert main(["apply", "uk.json"]) == 0
    assert "Accounts: uk applied." in capsys.readouterr().out
    assert by_phone(uk)[SHARED_PHONE]["first"] == "Alicia"
    assert by_phone(sandbox) == {}


def test_a_saved_plan_is_not_saved_when_an_account_cannot_be_planned(
    project: Path,
    uk: SandboxHandle,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HEYMARKET_UK_SECRET_KEY", "not-the-uk-key-" + secrets.token_hex(8))
    declare(project, "us", {"phone": SHARED_PHONE})
    declare(project, "uk", {"phone": SHARED_PHONE})
    assert main(["plan", "--out", "both.json"]) == 1
    assert "Error: the plan was not saved to both.json: account uk could not be planned." in (
        capsys.readouterr().err
    )
    assert not (project / "both.json").exists()


def test_every_accounts_credentials_are_kept_out_of_the_output(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    # A contact whose name happens to be the other account's secret: never printed.
    declare(project, "us", {"phone": SHARED_PHONE, "first": uk.secret_key})
    declare(project, "uk", {"phone": SHARED_PHONE, "first": sandbox.api_key})

    assert main(["plan", "--account", "us"]) == 0
    out = capsys.readouterr().out
    assert uk.secret_key not in out
    assert 'first: "[redacted]"' in out
    assert main(["plan", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert sandbox.api_key not in out and uk.secret_key not in out


def test_validate_checks_every_account_and_names_each(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project, "us", {"phone": SHARED_PHONE})
    declare(project, "uk", {"phone": "12"})
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("contacts/uk/team.yaml:")

    declare(project, "uk", {"phone": "442079460958"}, {"phone": SHARED_PHONE})
    assert main(["validate"]) == 0
    assert capsys.readouterr().out == (
        'Account "us": 1 contact in 1 file is valid.\n'
        'Account "uk": 2 contacts in 1 file are valid.\n'
    )
    assert main(["validate", "--account", "uk"]) == 0
    assert capsys.readouterr().out == 'Account "uk": 2 contacts in 1 file are valid.\n'


def test_export_works_on_one_account_at_a_time(
    project: Path, uk: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    uk.seed([{"phone": "442079460958", "first": "Olivia"}])
    assert main(["export"]) == 1
    assert capsys.readouterr().err == (
        "Error: this command works on one account at a time, and 2 are selected (us, uk): "
        "choose one with --account NAME\n"
    )
    assert main(["export", "--out", "exported"]) == 1
    assert "works on one account at a time" in capsys.readouterr().err
    assert main(["export", "--account", "uk"]) == 0
    capsys.readouterr()
    exported = (project / "contacts" / "uk" / "contacts.yaml").read_text(encoding="utf-8")
    assert "442079460958" in exported and "Olivia" in exported
    assert not (project / "contacts" / "us").exists()


def test_account_without_accounts_configured_is_an_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "reconciler.yaml").write_text(f"ownership: {{owner: {OWNER}}}\n", encoding="utf-8")
    assert main(["plan", "--account", "us"]) == 1
    assert capsys.readouterr().err.startswith(
        "Error: --account selects one of several accounts, and this configuration has none"
    )


def test_masking_asked_by_one_account_masks_the_whole_run(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    config = CONFIG.replace("    prune: {max_deletes: 1}\n", "    output: {mask_pii: true}\n")
    (project / "reconciler.yaml").write_text(config, encoding="utf-8")
    declare(project, "us", {"phone": "15105550077", "first": "Maximilian"})
    declare(project, "uk", {"phone": "442079460958", "first": "Olivia"})

    for command in (["plan"], ["plan", "--format", "json"], ["apply", "--auto-approve"]):
        assert main(command) == 0
        captured = capsys.readouterr()
        shown = captured.out + captured.err
        for personal in ("15105550077", "Maximilian", "442079460958", "Olivia"):
            assert personal not in shown, (command, personal)
    assert by_phone(sandbox)["15105550077"]["first"] == "Maximilian"


def test_flags_that_set_one_accounts_settings_need_one_account(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project, "us", {"phone": SHARED_PHONE, "first": "Alice"})
    (project / "elsewhere").mkdir()
    (project / "elsewhere" / "none.yaml").write_text("contacts: []\n", encoding="utf-8")
    assert main(["plan", "--api-url", sandbox.url]) == 1
    assert capsys.readouterr().err == (
        "Error: --api-url sets one account's settings, and 2 accounts are selected: choose "
        "one with --account NAME\n"
    )
    assert main(["plan", "--contacts", "elsewhere"]) == 1
    assert "Error: --contacts sets one account's settings" in capsys.readouterr().err
    # For one account they apply as they always did.
    assert main(["plan", "--account", "us", "--contacts", "elsewhere", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == []
    assert main(["plan", "--account", "us", "--api-url", sandbox.url, "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["changes"]) == 1


def test_the_job_summary_has_each_account(
    project: Path,
    sandbox: SandboxHandle,
    uk: SandboxHandle,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = project / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    declare(project, "us", {"phone": SHARED_PHONE, "first": "Alice"})
    declare(project, "uk", {"phone": SHARED_PHONE, "first": "Alicia"})

    assert main(["plan"]) == 0
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("### reconciler plan\n\n**2 accounts: Plan: 2 to create,")
    assert "#### Account `us`" in text and "#### Account `uk`" in text

    summary.unlink()
    assert main(["apply", "--auto-approve"]) == 0
    capsys.readouterr()
    text = summary.read_text(encoding="utf-8")
    assert text.index("### reconciler apply: account `us`") < text.index(
        "### reconciler apply: account `uk`"
    )


def test_a_phone_target_selects_its_changes_in_every_account_where_it_is(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project, "us", {"phone": SHARED_PHONE, "first": "Alice"}, {"phone": "15105550002"})
    declare(project, "uk", {"phone": "442079460958"})
    # Not declared in uk, but live there: the target selects it there too.
    owned(uk, SHARED_PHONE)

    assert main(["plan", "--target", "+1 (510) 555-0001", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["targets"] == [SHARED_PHONE]
    assert [(c["account"], c["phone"]) for c in document["changes"]] == [("us", SHARED_PHONE)]
    assert [account["name"] for account in document["accounts"]] == ["us", "uk"]

    # A phone only one account knows: the other is read, then left out.
    assert main(["plan", "--target", "15105550002", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert [account["name"] for account in json.loads(captured.out)["accounts"]] == ["us"]
    assert "Note: account uk: the targets select nothing in it; it is left out." in captured.err

    # With --prune the phone's delete in uk is selected too (deletes only by phone).
    assert main(["apply", "--prune", "--target", "+1 510-555-0001", "--auto-approve"]) == 0
    out = capsys.readouterr().out
    assert "Accounts: us applied, uk applied." in out
    assert set(by_phone(sandbox)) == {SHARED_PHONE}
    assert set(by_phone(uk)) == set()

    # A phone that is nowhere selects nothing: an error, and nothing is written anywhere.
    writes_before = (write_count(sandbox), write_count(uk))
    assert main(["plan", "--target", "15105559999"]) == 1
    err = capsys.readouterr().err
    assert err.endswith(
        "Error: --target 15105559999 is neither declared nor in the account, in any of the "
        "selected accounts (us, uk); check the number\n"
    )
    declare(project, "us", {"phone": SHARED_PHONE, "first": "Changed"}, {"phone": "15105550002"})
    assert (
        main(["apply", "--target", SHARED_PHONE, "--target", "15105559999", "--auto-approve"]) == 1
    )
    assert "--target 15105559999 is neither declared" in capsys.readouterr().err
    assert (write_count(sandbox), write_count(uk)) == writes_before
    assert by_phone(sandbox)[SHARED_PHONE]["first"] == "Alice"
    assert "15105550002" not in by_phone(sandbox)


def test_a_phone_target_is_read_with_each_accounts_default_region(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "reconciler.yaml").write_text(
        CONFIG.replace("    prune: {max_deletes: 1}\n", "    phones: {default_region: GB}\n"),
        encoding="utf-8",
    )
    declare(project, "us", {"phone": SHARED_PHONE})
    declare(project, "uk", {"phone": "442079460958"}, {"phone": "442079460959"})

    assert main(["plan", "--target", "020 7946 0958", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [(c["account"], c["phone"]) for c in document["changes"]] == [("uk", "442079460958")]


def test_a_file_target_selects_in_the_account_whose_directory_holds_it(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project, "us", {"phone": SHARED_PHONE, "first": "Alice"})
    declare(project, "uk", {"phone": SHARED_PHONE, "first": "Alicia"})

    assert main(["plan", "--target", "contacts/us/team.yaml", "--out", "us.json"]) == 0
    captured = capsys.readouterr()
    assert '=== account "us" ===' in captured.out
    assert '=== account "uk" ===' not in captured.out
    assert "Note: account uk: the targets select nothing in it; it is left out." in captured.err
    # Nothing was asked of the account the target is not in.
    assert uk.stats()["by_route"] == {}
    # The saved plan records the targets of the account it holds, and apply proves them.
    saved = json.loads((project / "us.json").read_text(encoding="utf-8"))
    assert saved["account"] == "us" and saved["targets"] == ["contacts/us/team.yaml"]

    assert main(["apply", "us.json"]) == 0
    assert "Accounts: us applied." in capsys.readouterr().out
    assert by_phone(sandbox)[SHARED_PHONE]["first"] == "Alice"
    assert by_phone(uk) == {}

    # A glob over both directories selects in both; its saved plan proves each account.
    assert main(["plan", "--target", "contacts/*/team.yaml", "--out", "both.json"]) == 0
    capsys.readouterr()
    saved = json.loads((project / "both.json").read_text(encoding="utf-8"))
    assert {name: plan["targets"] for name, plan in saved["account_plans"].items()} == {
        "us": ["contacts/*/team.yaml"],
        "uk": ["contacts/*/team.yaml"],
    }
    (project / "contacts" / "uk" / "team.yaml").write_text(
        contacts_yaml({"phone": SHARED_PHONE, "first": "Changed"}), encoding="utf-8"
    )
    assert main(["apply", "both.json"]) == 3
    captured = capsys.readouterr()
    assert "Accounts: us applied, uk refused (exit 3)." in captured.out
    assert by_phone(uk) == {}

    # A file in no account's directory is an error before any request.
    requests = sandbox.stats()["requests"], uk.stats()["requests"]
    assert main(["plan", "--target", "contacts/nowhere.yaml"]) == 1
    assert "matches no contacts file" in capsys.readouterr().err
    assert (sandbox.stats()["requests"], uk.stats()["requests"]) == requests


def test_a_file_target_never_deletes_in_any_account(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    owned(sandbox, "15105550011")
    owned(uk, "15105550011")
    declare(project, "us", {"phone": SHARED_PHONE})
    declare(project, "uk", {"phone": SHARED_PHONE})

    assert main(["apply", "--prune", "--target", "contacts/uk", "--auto-approve"]) == 0
    out = capsys.readouterr().out
    assert "Accounts: us left out (the targets select nothing in it), uk applied." in out
    assert set(by_phone(uk)) == {SHARED_PHONE, "15105550011"}
    assert set(by_phone(sandbox)) == {"15105550011"}
    assert not (project / ".reconciler" / "backups").exists()

    # A phone declared nowhere selects its delete where it is live, and only there.
    owned(uk, "15105550012")
    assert main(["apply", "--prune", "--target", "15105550012", "--auto-approve"]) == 0
    out = capsys.readouterr().out
    us_section = out[out.index('=== account "us" ===') : out.index('=== account "uk" ===')]
    assert "The targets select nothing in this account; nothing to apply." in us_section
    assert "Accounts: us left out (the targets select nothing in it), uk applied." in out
    assert set(by_phone(uk)) == {SHARED_PHONE, "15105550011"}
    assert set(by_phone(sandbox)) == {"15105550011"}
    (backup,) = (project / ".reconciler" / "backups" / "uk").iterdir()
    assert "15105550012" in backup.read_text(encoding="utf-8")


def test_each_account_says_how_its_live_state_was_read(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project, "us", {"phone": SHARED_PHONE})
    declare(project, "uk", {"phone": SHARED_PHONE})
    assert main(["plan", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [sorted(account["live"]) for account in document["accounts"]] == [
        ["read", "requests"],
        ["read", "requests"],
    ]
    assert main(["plan"]) == 0
    assert capsys.readouterr().out.count("Live state read") == 2


def test_json_results_of_several_accounts(
    project: Path,
    sandbox: SandboxHandle,
    uk: SandboxHandle,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    declare(project, "us", {"phone": SHARED_PHONE})
    declare(project, "uk", {"phone": SHARED_PHONE}, {"phone": "442079460958"})
    assert main(["validate", "--format", "json"]) == 0
    document = valid(capsys.readouterr().out, "validate-result.schema.json")
    assert (document["valid"], document["contacts"], document["files"]) == (True, 3, 2)
    assert document["accounts"] == [
        {"name": "us", "valid": True, "contacts": 1, "files": 1, "problems": []},
        {"name": "uk", "valid": True, "contacts": 2, "files": 1, "problems": []},
    ]

    # One result document: the totals, and each account's own result.
    assert main(["apply", "--auto-approve", "--format", "json"]) == 0
    captured = capsys.readouterr()
    document = valid(captured.out, "apply-result.schema.json")
    assert (document["created"], document["plan"]["create"]) == (3, 3)
    assert [(a["name"], a["exit_code"], a["created"]) for a in document["accounts"]] == [
        ("us", 0, 1),
        ("uk", 0, 2),
    ]
    assert '=== account "us" ===' in captured.err

    # An account that fails before its result: its error is in its entry, not on stdout.
    monkeypatch.setenv("HEYMARKET_UK_SECRET_KEY", "not-the-uk-key-" + secrets.token_hex(8))
    declare(project, "us", {"phone": SHARED_PHONE, "first": "Alice"})
    assert main(["apply", "--auto-approve", "--format", "json"]) == 1
    captured = capsys.readouterr()
    document = valid(captured.out, "apply-result.schema.json")
    (us, uk_entry) = document["accounts"]
    assert (us["name"], us["exit_code"], us["updated"]) == ("us", 0, 1)
    assert uk_entry["name"] == "uk" and uk_entry["exit_code"] == 1
    assert "HEYMARKET_UK_SECRET_ID/HEYMARKET_UK_SECRET_KEY" in uk_entry["error"]
    assert set(uk_entry) == {"name", "exit_code", "error"}
    assert document["updated"] == 1
    assert "Error: account uk:" in captured.err


def test_validate_json_names_each_accounts_problems(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project, "us", {"phone": SHARED_PHONE})
    declare(project, "uk", {"phone": "not a phone"})
    assert main(["validate", "--format", "json"]) == 1
    document = valid(capsys.readouterr().out, "validate-result.schema.json")
    (problem,) = document["problems"]
    assert problem["file"] == "contacts/uk/team.yaml"
    assert document["accounts"] == [
        {"name": "us", "valid": True, "contacts": 1, "files": 1, "problems": []},
        {"name": "uk", "valid": False, "contacts": None, "files": None, "problems": [problem]},
    ]


def test_apply_json_of_several_accounts_names_the_account_of_each_failure(
    project: Path, sandbox: SandboxHandle, uk: SandboxHandle
) -> None:
    declare(project, "us", {"phone": SHARED_PHONE})
    declare(project, "uk", {"phone": "442079460958", "first": "Created meanwhile"})
    out: list[str] = []
    err: list[str] = []
    asked: list[str] = []

    def ask(question: str) -> str:
        asked.append(question)
        if len(asked) == 2:
            # While uk's prompt waits, someone adds the same phone in the app.
            uk.seed([{"phone": "442079460958", "first": "From the app"}])
        return "yes\n"

    console = Console(out=out.append, err=err.append, ask=ask, stdin_is_tty=True)
    request = ApplyRequest(output_format="json", mask_pii=True)
    assert run_apply(request, Environment(environ=os.environ, cwd=project, console=console)) == 1
    document = valid("".join(out), "apply-result.schema.json")
    assert (document["created"], document["failed"]) == (1, 1)
    (failure,) = document["failures"]
    assert (failure["account"], failure["phone"], failure["action"]) == (
        "uk",
        "4420******58",
        "create",
    )
    us, uk_entry = document["accounts"]
    assert (us["name"], us["exit_code"], us["created"], us["failures"]) == ("us", 0, 1, [])
    assert (uk_entry["name"], uk_entry["exit_code"], uk_entry["failed"]) == ("uk", 1, 1)
    assert uk_entry["failures"] == [{k: v for k, v in failure.items() if k != "account"}]
    assert uk_entry["journal"] == document["journal"] == ".reconciler/journal.jsonl"
