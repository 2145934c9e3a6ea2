"""One number, one identity: no spelling of a phone in a contacts file, and no answer of a
server, can make apply --prune delete a contact that is declared.

The defect this guards against: ``phone: "14155550101\\n"`` passed the schema (its pattern
was anchored with ``$``, which matches before a final newline), the plan showed a create
*and* a delete of the same number, the server refused the create as a duplicate of the
phone without the newline, that refusal was not matched to the declared phone, and prune
deleted the live contact."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.commands.apply import ApplyRequest
from reconciler.commands.apply import run as run_apply
from reconciler.commands.context import Settings
from reconciler.commands.environment import Environment
from reconciler.core.diff import DiffSettings, diff
from reconciler.core.errors import TargetError
from reconciler.core.model import CustomField, DesiredContact, LiveContact, SourceLocation
from reconciler.core.phones import is_canonical_phone
from reconciler.desired.loader import parse_file
from reconciler.desired.schemas import load_schema
from reconciler.desired.targets import read_targets
from reconciler.execute import Executor
from reconciler.execute.journal import Journal
from reconciler.heymarket import HeymarketClient, credentials_from_env
from reconciler.report.console import Console, GracefulInterrupt
from tests.account import OWNER, live_phones
from tests.sandbox_handle import SandboxHandle

PHONE = "14155550101"


def owned_account(sandbox: SandboxHandle, count: int = 30) -> list[str]:
    phones = [PHONE, *(f"1415555{n:04d}" for n in range(200, 200 + count - 1))]
    sandbox.seed([{"phone": phone, "custom": {"Managed by": OWNER}} for phone in phones])
    return phones


@pytest.mark.parametrize(
    "written",
    [
        'phone: "14155550101\\n"',
        "phone: |\n      14155550101",
        'phone: "14155550101\\t"',
        'phone: " 14155550101"',
        'phone: "\\u200b14155550101"',
        'phone: "\\uff11\\uff14\\uff11\\uff15\\uff15\\uff15\\uff15\\uff10\\uff11\\uff10\\uff11"',
    ],
)
def test_a_phone_spelled_with_an_invisible_extra_is_refused_and_nothing_is_deleted(
    project: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str], written: str
) -> None:
    phones = owned_account(sandbox)
    others = "".join(f'  - phone: "{phone}"\n' for phone in phones[1:])
    (project / "contacts" / "a.yaml").write_text(
        f"contacts:\n  - {written}\n{others}", encoding="utf-8"
    )
    assert main(["validate"]) == 1
    assert "a.yaml:2:" in capsys.readouterr().out
    assert main(["plan", "--prune"]) == 1
    assert main(["apply", "--prune", "--auto-approve"]) == 1
    assert live_phones(sandbox) == set(phones)


def test_every_schema_pattern_matches_whole_values_only() -> None:
    """JSON Schema patterns are searched, and Python's ``$`` matches before a final newline:
    a pattern anchored that way lets "value\\n" through. None of ours may be."""
    patterns: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    patterns.append(value)
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    for name in ("contacts.schema.json", "config.schema.json"):
        collect(load_schema(name))
    assert patterns
    for pattern in patterns:
        assert not pattern.rstrip(")").endswith("$"), pattern


# --- the whole class, in-process ---------------------------------------------------------

_DIGITS = st.text(alphabet="0123456789", min_size=7, max_size=15)
# Everything a hand, a spreadsheet or a hostile author could put around or inside digits.
_EXTRAS = st.sampled_from(
    [
        "",
        " ",
        "\n",
        "\t",
        "\r",
        "+",
        "-",
        ".",
        "(",
        "\u00a0",
        "\u200b",
        "\ufeff",
        "\u0085",
        "\u2028",
        "\u2029",
        "\x00",
        "\x1f",
        "0",
        "a",
    ]
)
_STYLES = st.sampled_from(["double", "single", "plain", "literal", "folded"])


def _yaml_scalar(text: str, style: str) -> str:
    if style == "double":
        return json.dumps(text)
    if style == "single":
        return "'" + text.replace("'", "''") + "'"
    if style == "plain":
        return text
    indicator = "|" if style == "literal" else ">"
    return indicator + "\n" + "".join(f"      {line}\n" for line in text.split("\n"))


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str, str]:
    digits = draw(_DIGITS)
    cut = draw(st.integers(0, len(digits)))
    spelled = draw(_EXTRAS) + digits[:cut] + draw(_EXTRAS) + digits[cut:] + draw(_EXTRAS)
    return digits, spelled, _yaml_scalar(spelled, draw(_STYLES))


def _number(phone: str) -> str:
    return "".join(character for character in phone if character in "0123456789")


def _live(phone: str) -> LiveContact:
    return LiveContact(
        id=1,
        uuid="00000000-0000-4000-8000-000000000001",
        phone=phone,
        first=None,
        last=None,
        display_name=None,
        email=None,
        is_opted_out=False,
        custom={"1": OWNER},
        rev=1,
        updated="2026-01-01T00:00:00Z",
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spellings())
def test_no_spelling_of_a_phone_makes_a_plan_create_and_delete_one_number(
    spelling: tuple[str, str, str],
) -> None:
    digits, spelled, scalar = spelling
    data = f"contacts:\n  - phone: {scalar}\n".encode()
    parsed = parse_file(data, "a.yaml")
    plan = diff(
        parsed.contacts,
        [_live(digits)],
        [CustomField("1", "Managed by")],
        DiffSettings(marker_field="Managed by", owner=OWNER, max_delete_percent=100.0),
        prune=True,
    )
    created = {change.phone for change in plan.creates}
    deleted = {change.phone for change in plan.deletes}
    # Compared as numbers (their ASCII digits), not as the strings the plan holds.
    assert not {_number(phone) for phone in created} & {_number(phone) for phone in deleted}
    # A phone is declared only as canonical digits: bare digits exactly as written, any other
    # spelling as the number it spells; whatever cannot be read is refused, never read as a
    # second identity that a prune would take for "not declared".
    if parsed.contacts:
        phone = parsed.contacts[0].phone
        assert is_canonical_phone(phone)
        if spelled.isdigit():
            assert phone == spelled
        assert deleted == ({digits} - {phone})
    else:
        assert parsed.problems


# Numbers in service, from the numbering plans of several countries.
_NUMBERS = ["14155550101", "15105551234", "442079460958", "4915123456789", "33123456789"]
_FORMATS = st.sampled_from(
    [
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.NATIONAL,
    ]
)


@st.composite
def written_forms(draw: st.DrawFn) -> tuple[str, str, str | None]:
    """A number in service as people write it, and the default region it needs (if any)."""
    canonical = draw(st.sampled_from(_NUMBERS))
    number = phonenumbers.parse("+" + canonical)
    style = draw(_FORMATS)
    written = phonenumbers.format_number(number, style)
    # People mix separators: any of them may stand where the library put another.
    separators = draw(st.lists(st.sampled_from([" ", "-", "."]), min_size=8, max_size=8))
    written = re.sub("[ -]", lambda _: separators.pop() if separators else " ", written)
    if style == phonenumbers.PhoneNumberFormat.NATIONAL:
        return canonical, written, phonenumbers.region_code_for_number(number)
    return canonical, written, draw(st.sampled_from([None, "US", "GB"]))


@settings(max_examples=300, deadline=None)
# Block scalars end in a line break, which is refused in any phone (see above).
@given(written_forms(), st.sampled_from(["double", "single", "plain"]))
def test_every_spelling_of_a_number_is_its_one_identity_in_the_plan(
    form: tuple[str, str, str | None], style: str
) -> None:
    canonical, written, region = form
    data = f"contacts:\n  - phone: {_yaml_scalar(written, style)}\n".encode()
    parsed = parse_file(data, "a.yaml", region)
    assert [contact.phone for contact in parsed.contacts] == [canonical], parsed.problems
    plan = diff(
        parsed.contacts,
        [_live(canonical)],
        [CustomField("1", "Managed by")],
        DiffSettings(marker_field="Managed by", owner=OWNER, max_delete_percent=100.0),
        prune=True,
    )
    assert not plan.creates and not plan.deletes
    # Without the region it needs, a national spelling is refused, never read otherwise.
    if region is not None and not written.startswith("+") and not written.isdigit():
        assert parse_file(data, "a.yaml").problems


# --- a phone named by --target: the same identity, or an error ---------------------------
_NOWHERE = Path("/nonexistent-contacts-repository")
_TARGET_CHARACTERS = frozenset("0123456789 +-.()")


def _phone_targets(written: str, region: str | None) -> frozenset[str] | None:
    """The phones ``--target written`` selects, or ``None`` when it is refused."""
    try:
        targets = read_targets(
            [written],
            contacts_dir=_NOWHERE / "contacts",
            cwd=_NOWHERE,
            files=[],
            default_region=region,
        )
    except TargetError:
        return None
    assert targets is not None
    return targets.phones


@settings(max_examples=200, deadline=None)
@given(written_forms())
def test_every_spelling_of_a_phone_target_selects_its_one_identity(
    form: tuple[str, str, str | None],
) -> None:
    canonical, written, region = form
    assert _phone_targets(written, region) == frozenset({canonical})


@settings(max_examples=400, deadline=None)
@given(spellings())
def test_a_target_is_read_as_the_contacts_files_read_that_phone_or_refused(
    spelled: tuple[str, str, str],
) -> None:
    # A line break, a tab, an invisible space or a letter around the digits: never read as a
    # phone (which could select a delete); with no such file, an error. Otherwise the target
    # names exactly the number a contacts file declaring that spelling would hold.
    _digits, written, _yaml = spelled
    selected = _phone_targets(written, "US")
    if set(written) - _TARGET_CHARACTERS:
        assert selected is None
        return
    declared = parse_file(f"contacts:\n  - phone: {json.dumps(written)}\n".encode(), "a.yaml", "US")
    if declared.contacts:
        assert selected == frozenset({declared.contacts[0].phone})
    else:
        assert selected is None


# --- a server answer that names no declared phone ----------------------------------------


def test_a_refusal_that_cannot_be_matched_to_a_declared_contact_is_never_taken_as_applied(
    project: Path, sandbox: SandboxHandle
) -> None:
    """A server that echoes a refused item in a form of its own (here: another phone) says
    nothing of which contact it refused. The create must be re-read, not counted as
    applied; prune does not run while any outcome is in doubt."""
    phones = owned_account(sandbox, 3)
    new_phone = "14155559999"
    contacts = [{"phone": phone} for phone in [*phones[:2], new_phone]]
    (project / "contacts" / "a.yaml").write_text(
        json.dumps({"contacts": contacts}), encoding="utf-8"
    )
    real = httpx.HTTPTransport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v2/contacts":
            sent = json.loads(request.content)["contacts"]
            body = {
                "contacts": [],
                "failed_contacts": [
                    {"contact": {"phone": "19999999999"}, "error": "duplicate_phone"}
                    for item in sent
                ],
            }
            return httpx.Response(200, json=body)
        return real.handle_request(request)

    def connect(settings: Settings, environ: Mapping[str, str], insecure: bool) -> HeymarketClient:
        return HeymarketClient(
            settings.api_url,
            credentials_from_env(environ),
            transport=httpx.MockTransport(handler),
        )

    printed: list[str] = []
    console = Console(out=printed.append, err=printed.append, ask=input)
    with real:
        code = run_apply(
            ApplyRequest(prune=True, auto_approve=True),
            Environment(
                environ=dict(sandbox.env()), cwd=project, console=console, connect_client=connect
            ),
        )
    assert code == 1
    assert live_phones(sandbox) == set(phones)
    journal = [
        json.loads(line)
        for line in (project / ".reconciler" / "journal.jsonl").read_text().splitlines()
    ]
    assert not [line for line in journal if line["result"] == "applied"]
    assert any(line["result"] == "unresolved" for line in journal)
    assert "prune skipped" in "".join(printed)


@pytest.mark.parametrize(
    "written", ["14155550101.0", "1.4155550101e10", "14155550101.", '"14155550101.0"']
)
def test_a_phone_written_as_a_decimal_number_gets_no_guess_at_another_number(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    written: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "contacts").mkdir()
    (tmp_path / "contacts" / "a.yaml").write_text(
        f"contacts:\n  - phone: {written}\n", encoding="utf-8"
    )
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "decimal number" in out
    assert "141555501010" not in out and 'write "1' not in out


def test_prune_itself_refuses_a_delete_of_a_declared_phone(
    project: Path, sandbox: SandboxHandle
) -> None:
    """The last guard before a permanent delete holds even for a plan no diff would make."""
    phones = owned_account(sandbox, 2)
    declared = DesiredContact(PHONE, {}, {}, SourceLocation("contacts/a.yaml", 2))
    settings_ = DiffSettings(marker_field="Managed by", owner=OWNER, max_delete_percent=100.0)
    printed: list[str] = []
    console = Console(out=printed.append, err=printed.append, ask=input)
    with (
        sandbox.client() as client,
        Journal(project / "journal.jsonl") as journal,
    ):
        live = client.search_by_phones(phones)
        fields = client.list_custom_fields()
        # A plan that deletes everything owned, declared or not (as a forged file would).
        plan = diff([], live, fields, settings_, prune=True)
        executor = Executor(
            client,
            console,
            journal,
            GracefulInterrupt(console),
            command="apply",
            started_at=datetime.now(UTC),
            git_commit=None,
            fields=fields,
            desired={PHONE: declared},
            settings=settings_,
            cwd=project,
        )
        executor.prune(plan.deletes, project / "backups", plan.marker)
    assert PHONE in live_phones(sandbox)
    assert phones[1] not in live_phones(sandbox)
    assert [failure.phone for failure in executor.tally.failures] == [PHONE]


@pytest.mark.parametrize("answered", ["14155550101\n", "1415555010x", "\u0661\u0664\u0661\u0665"])
def test_a_live_contact_whose_phone_cannot_be_read_is_never_pruned(answered: str) -> None:
    plan = diff(
        [],
        [_live(answered)],
        [CustomField("1", "Managed by")],
        DiffSettings(marker_field="Managed by", owner=OWNER, max_delete_percent=100.0),
        prune=True,
    )
    assert not plan.deletes
    assert "not a phone number the tool can read" in plan.warnings[0].message
    assert "\n" not in str(plan.warnings[0])
