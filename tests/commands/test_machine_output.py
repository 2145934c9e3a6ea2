"""`--format json` as a script reads it: validate, plan, apply and restore print one document
on stdout (people's text goes to stderr), any error is one JSON object with its exit code,
and every document validates against its schema in `schemas/`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from reconciler.cli import main
from reconciler.commands.apply import ApplyRequest
from reconciler.commands.apply import run as run_apply
from reconciler.commands.context import Settings
from reconciler.commands.environment import Environment
from reconciler.heymarket import HeymarketClient, credentials_from_env
from reconciler.report.console import Console
from tests.account import by_phone, declare, owned
from tests.sandbox_handle import SandboxHandle

SCHEMAS = Path(__file__).parents[2] / "schemas"
GOLDEN = Path(__file__).parents[1] / "golden"


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def document(text: str, schema: str) -> dict[str, Any]:
    """``text`` is exactly one JSON document, valid against ``schema``."""
    parsed = json.loads(text)
    _validator(schema).validate(parsed)
    assert isinstance(parsed, dict)
    return parsed


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- validate ------------------------------------------------------------------------------


def test_validate_json_counts_a_valid_desired_state(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(project, {"phone": "15105551234", "first": "Ann"}, {"phone": "15550000001"})
    code, out, err = run(["validate", "--format", "json"], capsys)
    result = document(out, "validate-result.schema.json")
    assert (code, err) == (0, "")
    assert result["valid"] is True
    assert (result["contacts"], result["files"], result["problems"]) == (2, 1, [])
    # A number not known to be assigned is a warning, located like a problem.
    (warning,) = result["warnings"]
    assert (warning["file"], warning["line"]) == ("contacts/team.yaml", 8)
    assert warning["message"].startswith("phone 15550000001: not known to be an assigned number")


def test_validate_json_lists_every_problem_with_its_place(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "contacts" / "a.yaml").write_text(
        'contacts:\n  - phone: "15105551234"\n    frist: Ann\n  - phone: "510 555 1235"\n',
        encoding="utf-8",
    )
    # json wins over the annotations GitHub Actions would otherwise get.
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out, err = run(["validate", "--format", "json"], capsys)
    result = document(out, "validate-result.schema.json")
    assert code == 1
    assert result["valid"] is False
    assert (result["contacts"], result["files"]) == (None, None)
    assert [(p["file"], p["line"], p["column"]) for p in result["problems"]] == [
        ("contacts/a.yaml", 3, 5),
        ("contacts/a.yaml", 4, 5),
    ]
    assert result["problems"][0]["message"].startswith('unknown key "frist"')
    assert err == "Found 2 problems in 1 file.\n"


# --- plan ----------------------------------------------------------------------------------


def test_the_plan_document_and_the_golden_plan_follow_the_plan_schema(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    owned(sandbox, "15105550008", "15105550009")
    sandbox.seed([{"phone": "15105550001", "first": "Unmarked"}])
    declare(
        project,
        {"phone": "15105550001", "first": "Adopted", "tags": ["VIP"], "custom": {"Tier": "gold"}},
        {"phone": "15105550002", "first": "New", "is_opted_out": True},
        {"phone": "15105550008", "first": "Owned 08"},
    )
    code, out, err = run(["plan", "--format", "json", "--prune", "--out", "plan.json"], capsys)
    assert code == 0, err
    plan = document(out, "plan.schema.json")
    assert [change["action"] for change in plan["changes"]] == ["create", "update", "delete"]
    document((project / "plan.json").read_text(encoding="utf-8"), "plan.schema.json")
    code, out, err = run(["plan", "--format", "json", "--target", "15105550001"], capsys)
    assert code == 0, err
    targeted = document(out, "plan.schema.json")
    assert targeted["targets"] == ["15105550001"]
    assert targeted["changes"][0]["tags"] == {"before": [], "after": ["VIP"]}
    document((GOLDEN / "plan.json").read_text(encoding="utf-8"), "plan.schema.json")


# --- apply ---------------------------------------------------------------------------------


def test_apply_json_is_one_result_document_and_the_people_text_goes_to_stderr(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    owned(sandbox, "15105550008", "15105550009")
    declare(project, {"phone": "15105550001", "first": "New"}, {"phone": "15105550008"})
    code, out, err = run(["apply", "--auto-approve", "--prune", "--format", "json"], capsys)
    assert code == 0, err
    result = document(out, "apply-result.schema.json")
    assert result["command"] == "apply"
    assert (result["created"], result["updated"], result["deleted"]) == (1, 0, 1)
    assert (result["failed"], result["unknown"], result["failures"]) == (0, 0, [])
    assert result["plan"] == {"create": 1, "update": 0, "delete": 1, "unchanged": 1}
    assert (result["saved_plan"], result["prune"], result["plan_errors"]) == (None, True, 0)
    assert result["journal"] == ".reconciler/journal.jsonl"
    assert result["backup"].startswith(".reconciler/backups/prune-")
    assert (project / result["backup"]).is_file()
    assert (project / result["journal"]).is_file()
    # What a person reads is all on stderr.
    assert "Plan: 1 to create, 0 to update, 1 to delete." in err
    assert "Apply complete: 1 created, 0 updated, 1 deleted, 0 failed." in err

    # Nothing left to do is a document too, with the saved plan it was given.
    assert run(["plan", "--prune", "--out", "again.json"], capsys)[0] == 0
    code, out, _ = run(["apply", "again.json", "--prune", "--format", "json"], capsys)
    result = document(out, "apply-result.schema.json")
    assert code == 0
    assert (result["created"], result["deleted"], result["backup"]) == (0, 0, None)
    assert result["saved_plan"] == "again.json"
    assert result["plan"] == {"create": 0, "update": 0, "delete": 0, "unchanged": 2}


def test_apply_json_lists_refused_contacts_masked(project: Path, sandbox: SandboxHandle) -> None:
    declare(
        project,
        {"phone": "15105551002", "first": "Created meanwhile"},
        {"phone": "15105551003", "first": "Created"},
    )
    out: list[str] = []
    err: list[str] = []

    def ask(_question: str) -> str:
        # While the prompt waits, someone adds the same phone in the app.
        sandbox.seed([{"phone": "15105551002", "first": "From the app"}])
        return "yes\n"

    console = Console(out=out.append, err=err.append, ask=ask, stdin_is_tty=True)
    request = ApplyRequest(output_format="json", mask_pii=True)
    assert run_apply(request, Environment(environ=os.environ, cwd=project, console=console)) == 1
    result = document("".join(out), "apply-result.schema.json")
    assert (result["created"], result["failed"], result["unknown"]) == (1, 1, 0)
    (failure,) = result["failures"]
    assert failure["action"] == "create"
    assert failure["phone"] == "1510*****02"
    assert failure["source"].startswith("contacts/team.yaml:")
    assert "duplicate_phone" in failure["reason"]
    assert failure["outcome"] == "failed"
    assert "15105551002" not in "".join(out + err)
    assert "Failed: create 1510*****02" in "".join(err)
    assert by_phone(sandbox)["15105551003"]["first"] == "Created"


def test_apply_json_counts_an_outcome_still_unknown_apart_from_the_failures(
    project: Path, sandbox: SandboxHandle
) -> None:
    """A server whose write answer names no contact, again and again: the create is re-read
    each time and never found, so its outcome stays unknown (the next apply settles it)."""
    declare(project, {"phone": "15105550001", "first": "New"})
    real = httpx.HTTPTransport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v2/contacts":
            return httpx.Response(200, json={"contacts": [], "failed_contacts": []})
        return real.handle_request(request)

    def connect(settings: Settings, environ: Mapping[str, str], insecure: bool) -> HeymarketClient:
        return HeymarketClient(
            settings.api_url, credentials_from_env(environ), transport=httpx.MockTransport(handler)
        )

    out: list[str] = []
    err: list[str] = []
    console = Console(out=out.append, err=err.append, ask=input)
    environment = Environment(
        environ=dict(sandbox.env()), cwd=project, console=console, connect_client=connect
    )
    with real:
        code = run_apply(ApplyRequest(auto_approve=True, output_format="json"), environment)
    assert code == 1
    result = document("".join(out), "apply-result.schema.json")
    assert (result["created"], result["failed"], result["unknown"]) == (0, 0, 1)
    (failure,) = result["failures"]
    assert (failure["phone"], failure["outcome"]) == ("15105550001", "unknown")
    assert "outcome still unknown" in failure["reason"]


# --- restore -------------------------------------------------------------------------------


def test_restore_json_counts_restored_and_skipped(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    owned(sandbox, "15105550008", "15105550009")
    declare(project)
    assert main(["apply", "--auto-approve", "--prune", "--max-deletes", "2"]) == 0
    capsys.readouterr()
    (backup,) = (project / ".reconciler" / "backups").glob("prune-*.jsonl")
    sandbox.seed([{"phone": "15105550009", "first": "Back already"}])
    code, out, err = run(["restore", str(backup), "--auto-approve", "--format", "json"], capsys)
    assert code == 0
    result = document(out, "restore-result.schema.json")
    assert (result["created"], result["skipped"], result["failed"]) == (1, 1, 0)
    assert result["backup"] == backup.relative_to(project).as_posix()
    assert result["journal"] == ".reconciler/journal.jsonl"
    assert "Conversation history cannot be restored" in err


# --- errors --------------------------------------------------------------------------------


def _error(out: str, exit_code: int) -> str:
    error = document(out, "error.schema.json")["error"]
    assert error["exit_code"] == exit_code
    message = error["message"]
    assert isinstance(message, str)
    return message


def test_every_error_is_one_json_object_with_its_exit_code(
    project: Path,
    sandbox: SandboxHandle,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    declare(project, {"phone": "15105550001", "first": "New"})
    # A guard: approval cannot be asked for without a terminal (exit 3), nothing written.
    code, out, err = run(["apply", "--format", "json"], capsys)
    assert code == 3
    assert _error(out, 3).startswith("apply needs approval, and stdin is not a terminal")
    assert "Plan: 1 to create" in err
    assert "Error: apply needs approval" in err
    # A usage error, before any command runs (and no destructive flag suggested).
    code, out, err = run(["plan", "--format", "json", "--prun"], capsys)
    assert code == 1
    assert _error(out, 1) == "No such option '--prun'."
    assert "Usage: reconciler plan" in err
    code, out, _ = run(["validate", "--format=json", "--contacts", "missing"], capsys)
    assert code == 1
    assert _error(out, 1).startswith('contacts directory "missing" does not exist')
    # No credentials: the message, and nothing else, on stdout.
    monkeypatch.delenv("HEYMARKET_API_KEY")
    code, out, _ = run(["plan", "--format", "json"], capsys)
    assert code == 1
    assert _error(out, 1).startswith("no Heymarket credentials")
    # Text formats are unchanged: nothing on stdout.
    assert run(["plan"], capsys)[:2] == (1, "")


def test_a_json_error_is_masked_and_scrubbed_like_every_output(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "contacts" / "bad.yaml").write_text(
        'contacts:\n  - phone: "510 555 0031"\n', encoding="utf-8"
    )
    code, out, err = run(["plan", "--format", "json", "--mask-pii"], capsys)
    assert code == 1
    assert _error(out, 1) == (
        "Found 1 problem in 1 file; nothing was planned and no request was made"
    )
    (problem,) = json.loads(out)["error"]["problems"]
    assert (problem["file"], problem["line"], problem["column"]) == ("contacts/bad.yaml", 2, 5)
    assert "0031" not in out + err
    assert "5105****31" in problem["message"]
    # apply says it the same way, before taking any step.
    code, out, _ = run(["apply", "--auto-approve", "--format", "json", "--mask-pii"], capsys)
    assert code == 1
    assert json.loads(out)["error"]["problems"] == [problem]
    # A credential that finds its way into a message never reaches stdout.
    secret = "s3cr3t-value-for-the-test"
    monkeypatch.setenv("HEYMARKET_API_KEY", secret)
    monkeypatch.setenv("HEYMARKET_API_URL", f"https://{secret}.example/")
    (project / "contacts" / "bad.yaml").write_text("contacts: []\n", encoding="utf-8")
    code, out, err = run(["plan", "--format", "json", "--api-url", f"ftp://{secret}"], capsys)
    assert code == 1
    assert "not an http(s) URL" in _error(out, 1)
    assert secret not in out + err


# --- small messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["plan", "--dry-run"],
            "Error: No such option '--dry-run'. `reconciler plan` is the dry run: it only "
            "reads the account, and apply writes.",
        ),
        (["apply", "--prun"], "Error: No such option '--prun'."),
        (["apply", "--auto"], "Error: No such option '--auto'."),
        (["init", "--forc"], "Error: No such option '--forc'."),
        # A harmless flag is still suggested.
        (["plan", "--mask"], "Error: No such option '--mask'. Did you mean '--mask-pii'?"),
    ],
)
def test_a_typo_is_never_answered_with_a_destructive_flag(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(args, capsys)
    assert (code, out) == (1, "")
    assert err.splitlines()[-1] == said
