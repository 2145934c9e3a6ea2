"""What a server says never leaks a credential, and with masking on nothing printed shows a
phone, an email or a known name in full: the server's refusals, apply's notes and the
guards' errors included, on stdout, stderr and in the GitHub job summary.

A server that echoes the Authorization header is something the sandbox will not do, so
those tests answer through an ``httpx.MockTransport``; everything else runs against the
sandbox."""

from __future__ import annotations

import contextlib
import json
import os
import re
import string
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.commands.apply import ApplyRequest
from reconciler.commands.apply import run as run_apply
from reconciler.commands.context import Settings
from reconciler.commands.environment import Environment
from reconciler.core.errors import ReconcilerError
from reconciler.core.masking import KnownNames, mask_email, mask_phone, mask_text
from reconciler.heymarket import HeymarketClient, credentials_from_env
from reconciler.report.console import Console, OutputFilter
from tests.account import OWNER, declare, owned
from tests.sandbox_handle import SandboxHandle

SUMMARY = "step-summary.md"
FAST = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}")


def _console(on_ask: Callable[[], None] | None = None) -> tuple[Console, list[str]]:
    """A terminal user who answers "yes" (after ``on_ask`` ran while the prompt waited)."""
    printed: list[str] = []

    def ask(_question: str) -> str:
        if on_ask is not None:
            on_ask()
        return "yes\n"

    return Console(out=printed.append, err=printed.append, ask=ask, stdin_is_tty=True), printed


def _with_summary(project: Path) -> dict[str, str]:
    return {**os.environ, "GITHUB_STEP_SUMMARY": str(project / SUMMARY)}


def _summary(project: Path) -> str:
    path = project / SUMMARY
    return path.read_text(encoding="utf-8") if path.exists() else ""


# --- masking: the leaks found, one by one -----------------------------------------------


def test_a_refusal_that_quotes_the_phone_is_masked_on_stderr_and_in_the_job_summary(
    project: Path, sandbox: SandboxHandle
) -> None:
    declare(project, {"phone": "15105551002", "first": "Created meanwhile"})

    def meanwhile() -> None:
        # While the prompt waits, the phone is added in the app: the create is refused.
        sandbox.seed([{"phone": "15105551002", "first": "From the app"}])

    console, printed = _console(meanwhile)
    environ = _with_summary(project)
    request = ApplyRequest(mask_pii=True)
    assert run_apply(request, Environment(environ=environ, cwd=project, console=console)) == 1
    text, summary = "".join(printed), _summary(project)
    assert "Failed: create 1510*****02 (contacts/team.yaml:" in text
    assert "duplicate_phone" in text and "duplicate_phone" in summary
    for stream in (text, summary):
        assert "15105551002" not in stream


def test_the_already_gone_note_of_a_prune_is_masked(project: Path, sandbox: SandboxHandle) -> None:
    seeded = owned(sandbox, "15105552000", "15105552001")
    declare(project, {"phone": "15105552000"})

    def meanwhile() -> None:
        with sandbox.client() as client:
            client.bulk_delete([seeded[1]["uuid"]])

    console, printed = _console(meanwhile)
    request = ApplyRequest(prune=True, max_deletes=1, mask_pii=True)
    assert run_apply(request, Environment(environ=os.environ, cwd=project, console=console)) == 0
    text = "".join(printed)
    assert "Note: delete 1510*****01: already gone" in text
    assert "15105552001" not in text


@pytest.mark.parametrize("how", ["--mask-pii", "output.mask_pii"])
@pytest.mark.parametrize("stale", ["changed in the account", "protected since"])
def test_a_stale_plan_error_printed_by_the_cli_is_masked(
    project: Path,
    sandbox: SandboxHandle,
    capsys: pytest.CaptureFixture[str],
    how: str,
    stale: str,
) -> None:
    owned(sandbox, "15105553000", "15105553001")
    declare(project, {"phone": "15105553000"}, {"phone": "15105553002"})
    config = (project / "reconciler.yaml").read_text(encoding="utf-8")
    assert main(["plan", "--prune", "--out", "plan.json"]) == 0
    if stale == "changed in the account":
        sandbox.seed([{"phone": "15105553002", "first": "Added in the app"}])
    else:
        config += '  protect: ["15105553001"]\n'
    if how == "output.mask_pii":
        config += "output:\n  mask_pii: true\n"
    (project / "reconciler.yaml").write_text(config, encoding="utf-8")
    capsys.readouterr()
    flags = ["--mask-pii"] if how == "--mask-pii" else []
    assert main(["apply", "plan.json", "--prune", *flags]) == 3
    err = capsys.readouterr().err
    assert "Error: " in err and "1510*****0" in err
    for phone in ("15105553001", "15105553002"):
        assert phone not in err


# --- credentials a server echoes --------------------------------------------------------

_SECRET_PART = st.text(string.ascii_letters + string.digits + "-_/+=", max_size=20)
# Any characters a key may hold, around a core no message of ours contains: a generated
# "secret" that is also a word of our own text ("contacts", "/v1/cont") would be found in
# the output without having leaked from anywhere.
SECRET_TEXT = st.builds(lambda head, tail: f"{head}Qz7{tail}", _SECRET_PART, _SECRET_PART).filter(
    lambda secret: len(secret) >= 8
)


@dataclass(frozen=True)
class EchoingServer:
    """A server that quotes the request's Authorization header (and the token's payload on
    its own) back: in an error answer of ``status`` to every request, or, with ``status``
    None, as the reason of every contact a bulk write refuses."""

    status: int | None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        authorization = request.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ")
        parts = token.split(".")
        payload = parts[1] if len(parts) == 3 else token
        echo = f"rejected Authorization: {authorization} (token {token}, payload {payload})"
        if self.status is not None:
            return httpx.Response(
                self.status,
                json={"error": "echo", "message": echo},
                headers={"X-Request-Id": f"req {token}", "Content-Type": "application/json"},
            )
        route = f"{request.method} {request.url.path}"
        body = json.loads(request.content or b"null")
        if route == "POST /v1/contacts/fields":
            return httpx.Response(
                200, json=[{"id": str(n), "title": item["title"]} for n, item in enumerate(body)]
            )
        if route == "POST /v2/contacts":
            refused = [
                {"contact": item, "error": f"invalid {token}", "message": echo}
                for item in body["contacts"]
            ]
            return httpx.Response(200, json={"contacts": [], "failed_contacts": refused})
        if route == "POST /v1/contacts/count":
            return httpx.Response(200, json={"count": 0})
        return httpx.Response(200, json=[])


def _connect_to(server: EchoingServer) -> Any:
    def connect(settings: Settings, environ: Mapping[str, str], insecure: bool) -> HeymarketClient:
        return HeymarketClient(
            settings.api_url,
            credentials_from_env(environ),
            transport=httpx.MockTransport(server),
            sleep=lambda _seconds: None,
            max_retry_wait=1.0,
        )

    return connect


@FAST
@given(
    credentials=st.one_of(
        st.builds(lambda key: {"HEYMARKET_API_KEY": key}, SECRET_TEXT),
        st.builds(
            lambda secret_id, key: {"HEYMARKET_SECRET_ID": secret_id, "HEYMARKET_SECRET_KEY": key},
            SECRET_TEXT,
            SECRET_TEXT,
        ),
    ),
    status=st.sampled_from([None, 400, 401, 403, 404, 429, 500]),
)
def test_no_credential_a_server_echoes_is_printed_journaled_or_summarised(
    credentials: dict[str, str], status: int | None
) -> None:
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HEYMARKET_")},
        **credentials,
        "HEYMARKET_API_URL": "https://api.heymarket.test",
    }
    secrets = list(credentials.values())
    if "HEYMARKET_SECRET_ID" in credentials:
        secrets.append(
            f"{credentials['HEYMARKET_SECRET_ID']}||{credentials['HEYMARKET_SECRET_KEY']}"
        )
    with tempfile.TemporaryDirectory() as directory:
        project = Path(directory)
        (project / "reconciler.yaml").write_text(f"ownership:\n  owner: {OWNER}\n")
        declare_in = project / "contacts"
        declare_in.mkdir()
        (declare_in / "team.yaml").write_text(
            json.dumps({"contacts": [{"phone": "15105554000", "first": "Echo"}]})
        )
        environ["GITHUB_STEP_SUMMARY"] = str(project / SUMMARY)
        console, printed = _console()
        try:
            run_apply(
                ApplyRequest(auto_approve=True),
                Environment(
                    environ=environ,
                    cwd=project,
                    console=console,
                    connect_client=_connect_to(EchoingServer(status)),
                ),
            )
        except ReconcilerError as error:
            printed.append(str(error))
        else:
            assert status is None
        journal = project / ".reconciler" / "journal.jsonl"
        streams = {
            "output": "".join(printed),
            "summary": _summary(project),
            "journal": journal.read_text(encoding="utf-8") if journal.exists() else "",
        }
    assert "echo" in streams["output"] or "rejected" in streams["output"]
    for name, text in streams.items():
        for secret in secrets:
            assert secret not in text, (name, text)
        assert not JWT_SHAPE.search(text), (name, text)
    if status is None:
        assert "[redacted]" in streams["journal"]


def test_the_cli_never_prints_a_credential_whatever_text_carries_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The last line: the error handler redacts the environment's credentials from any
    message, even one no server wrote (here a config path that happens to hold the key)."""
    key = "k3y-" + "x" * 20
    monkeypatch.setenv("HEYMARKET_API_KEY", key)
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "--config", f"missing-{key}.yaml"]) == 1
    err = capsys.readouterr().err
    assert "Error: " in err and "[redacted]" in err
    assert key not in err


# --- masking, over generated contacts ---------------------------------------------------

# Possible numbers only: a declared phone of another length is refused before any output.
PHONES = st.from_regex(r"1510[2-9][0-9]{6}", fullmatch=True)
EMAILS = st.from_regex(r"[a-z]{2,8}\.[a-z]{2,8}@[a-z]{3,8}\.(com|org|net)", fullmatch=True)
NAMES = st.from_regex(r"[A-Z][a-z]{3,8}", fullmatch=True)
PEOPLE = st.lists(
    st.tuples(PHONES, EMAILS, NAMES), min_size=2, max_size=4, unique_by=lambda p: p[0]
).filter(lambda people: len({email for _, email, _ in people}) == len(people))


def _written_forms(phone: str) -> list[str]:
    """A phone as people and servers write it."""
    forms = [phone, f"+{phone}"]
    if len(phone) >= 10:
        forms.append(f"+{phone[:-7]} ({phone[-7:-4]}) {phone[-4:]}")
    return forms


def _leaks(text: str, people: list[tuple[str, str, str]]) -> list[str]:
    found = []
    for phone, email, name in people:
        found += [form for form in _written_forms(phone) if form in text]
        if email in text:
            found.append(email)
        if re.search(rf"(?<!\w){name}(?!\w)", text):
            found.append(name)
    return found


@settings(FAST, max_examples=8)
@given(people=PEOPLE, output_format=st.sampled_from(["text", "markdown", "json"]))
def test_with_masking_on_no_command_prints_a_phone_email_or_name_in_full(
    sandbox: SandboxHandle,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    people: list[tuple[str, str, str]],
    output_format: str,
) -> None:
    sandbox.reset()
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    created, updated, *pruned = people
    sandbox.seed(
        [
            {
                "phone": phone,
                "first": name,
                "email": f"old.{email}",
                "custom": {"Managed by": OWNER},
            }
            for phone, email, name in [updated, *pruned]
        ]
    )
    streams: list[str] = []
    with tempfile.TemporaryDirectory() as directory, contextlib.chdir(directory):
        project = Path(directory)
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project / SUMMARY))
        (project / "reconciler.yaml").write_text(
            f"ownership:\n  owner: {OWNER}\nprune:\n  max_deletes: 10\n"
            "  max_delete_percent: 100\noutput:\n  mask_pii: true\n"
        )
        declare_in = project / "contacts"
        declare_in.mkdir()
        (declare_in / "team.yaml").write_text(
            json.dumps(
                {
                    "contacts": [
                        {"phone": phone, "first": name, "last": name, "email": email}
                        for phone, email, name in (created, updated)
                    ]
                }
            )
        )

        def run(*args: str) -> int:
            code = main(list(args))
            captured = capsys.readouterr()
            streams.extend([captured.out, captured.err])
            return code

        assert run("plan", "--prune", "--format", output_format) == 0
        assert run("plan", "--prune", "--out", "plan.json") == 0
        # Someone adds the phone the plan creates: the saved plan is stale, and says which.
        sandbox.seed([{"phone": created[0], "first": created[2], "email": created[1]}])
        assert run("apply", "plan.json", "--prune") == 3
        assert run("apply", "--auto-approve", "--prune") == 0
        backups = sorted((project / ".reconciler" / "backups").glob("*.jsonl"))
        assert len(backups) == (1 if pruned else 0)
        for backup in backups:
            assert run("restore", str(backup), "--auto-approve") == 0
        assert run("export", "--out", "exported") == 0
        streams.append(_summary(project))
    output = "\n".join(streams)
    assert "1510" in output and "Export" in output
    assert _leaks(output, people) == []


@dataclass(frozen=True)
class RefusingServer:
    """A server that refuses every contact written, quoting its phone (as people write it),
    email and name in the reason."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        route = f"{request.method} {request.url.path}"
        body = json.loads(request.content or b"null")
        if route == "POST /v1/contacts/fields":
            return httpx.Response(
                200, json=[{"id": str(n), "title": item["title"]} for n, item in enumerate(body)]
            )
        if route == "POST /v2/contacts":
            refused = []
            for item in body["contacts"]:
                phone = item["contact_channels"][0]["channel_id"]
                quoted = ", ".join(_written_forms(phone))
                refused.append(
                    {
                        "contact": item,
                        "error": "invalid",
                        "message": f"{item.get('first')} <{item.get('email')}> at {quoted}",
                    }
                )
            return httpx.Response(200, json={"contacts": [], "failed_contacts": refused})
        return httpx.Response(200, json=[])


@FAST
@given(people=PEOPLE, flag=st.booleans())
def test_with_masking_on_a_refusal_quoting_the_contact_is_masked_everywhere(
    people: list[tuple[str, str, str]], flag: bool
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        project = Path(directory)
        config = f"ownership:\n  owner: {OWNER}\n" + ("" if flag else "output:\n  mask_pii: true\n")
        (project / "reconciler.yaml").write_text(config)
        (project / "contacts").mkdir()
        (project / "contacts" / "team.yaml").write_text(
            json.dumps(
                {
                    "contacts": [
                        {"phone": phone, "first": name, "email": email}
                        for phone, email, name in people
                    ]
                }
            )
        )
        environ = {
            **os.environ,
            "HEYMARKET_API_KEY": "key-for-a-refusing-server",
            "HEYMARKET_API_URL": "https://api.heymarket.test",
            "GITHUB_STEP_SUMMARY": str(project / SUMMARY),
        }
        console, printed = _console()
        request = ApplyRequest(auto_approve=True, mask_pii=flag)
        connect = _connect_to_transport(RefusingServer())
        code = run_apply(
            request,
            Environment(environ=environ, cwd=project, console=console, connect_client=connect),
        )
        assert code == 1
        output = "".join(printed) + _summary(project)
    assert output.count(": invalid: ") == 2 * len(people)
    assert _leaks(output, people) == []


def _connect_to_transport(handler: Callable[[httpx.Request], httpx.Response]) -> Any:
    def connect(settings: Settings, environ: Mapping[str, str], insecure: bool) -> HeymarketClient:
        return HeymarketClient(
            settings.api_url,
            credentials_from_env(environ),
            transport=httpx.MockTransport(handler),
            sleep=lambda _seconds: None,
        )

    return connect


# --- the filter itself ------------------------------------------------------------------


@given(phone=st.from_regex(r"[1-9][0-9]{6,14}", fullmatch=True), email=EMAILS)
def test_mask_text_masks_phones_and_emails_however_written(phone: str, email: str) -> None:
    for form in _written_forms(phone):
        text = f"refused: contact {form} <{email}> exists."
        masked = mask_text(text)
        assert masked == f"refused: contact {mask_phone(phone)} <{mask_email(email)}> exists."
        assert mask_text(masked) == masked


@pytest.mark.parametrize(
    "text",
    [
        "Backed up 2 contacts to .reconciler/backups/prune-20261129T233000Z.jsonl before deleting.",
        "delete contact 12345678-1234-4123-8123-123456789012: changed",
        "Heymarket answered 500 (HTTP 500, request id 123456789012)",
        "Apply complete: 120345 created, 0 updated, 0 deleted, 1 failed.",
        "| 1 | 0 | 0 | 1 |",
        '  "rev": 12345678,',
        "held since 2026-11-29T23:30:00Z by pid 4242",
    ],
)
def test_mask_text_leaves_what_is_not_personal_data_alone(text: str) -> None:
    assert mask_text(text, KnownNames().adding(["Alice"])) == text


def test_known_names_are_masked_as_whole_words_only() -> None:
    names = KnownNames().adding(["Mary Ann", "Mary", "Al"])
    assert mask_text("Mary Ann and Mary, not Alice or Already; Al.", names) == (
        "M*** and M***, not Alice or Already; A***."
    )


def test_the_output_filter_redacts_every_credential_and_any_token() -> None:
    screen = OutputFilter(["secret-id-1", "secret-key-2", "secret-id-1||secret-key-2"])
    text = screen("id secret-id-1||secret-key-2, token eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln")
    assert text == "id [redacted], token [redacted]"
