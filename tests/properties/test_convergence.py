"""Convergence and the prune's promises, over generated accounts and desired states.

Each example seeds a fresh sandbox account (owned, unowned and other-owned contacts, opted-out
ones, custom fields that exist or not yet), writes a desired state (names full of YAML-special
characters and unicode, fields managed, cleared or left out, protected phones), then runs
apply --auto-approve --prune the way the CLI does and checks what a user relies on:

- with the default caps, a prune over either cap is refused and nothing is written;
- with the caps raised, apply converges: the next plan is empty (or, when the plan holds
  errors that stop the prune, it has nothing left but the skipped deletes);
- no delete ever touches an unowned, protected or declared contact, nor exceeds either cap;
- no contact that was opted out is ever opted back in;
- export, then plan against the exported files: nothing but adoptions.

``HYPOTHESIS_PROFILE=soak`` runs many more examples than CI does."""

from __future__ import annotations

import fnmatch
import io
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler.commands.apply import ApplyRequest
from reconciler.commands.apply import run as run_apply
from reconciler.commands.context import (
    cache_directory,
    connect,
    fetch_live_state,
    load_desired,
    make_plan,
    resolve_settings,
)
from reconciler.commands.environment import Environment
from reconciler.commands.export import ExportRequest, SplitBy
from reconciler.commands.export import run as run_export
from reconciler.core.diff import DiffSettings, diff
from reconciler.core.errors import PruneCapExceededError
from reconciler.core.model import CustomField, DesiredContact, LiveContact, SourceLocation
from reconciler.core.plan import Delete, Plan, Update
from reconciler.files.saved_plans import (
    current_provenance,
    write_saved_plan,
)
from reconciler.report.console import Console
from tests.account import write_count
from tests.sandbox_handle import SandboxHandle

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "soak",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

OWNER = "team-p"
OTHER_OWNER = "team-q"
MARKER = "Managed by"
PHONES = tuple(f"1510555{n:04d}" for n in range(10))
DEFAULT_MAX_DELETES = 25
DEFAULT_MAX_PERCENT = 5.0
RAISED_MAX_PERCENT = 100.0

# Pieces that YAML would read as something else than text if written carelessly, and unicode.
TOKENS = (
    "Ann",
    "O'Brien",
    'Say "hi"',
    "null",
    "~",
    "yes",
    "No",
    "1e3",
    "0777",
    "key: value",
    "#hash",
    "- dash",
    "&anchor",
    "*alias",
    "!tag",
    "|",
    ">",
    "%pct",
    "@at",
    "`tick`",
    "[list]",
    "{map}",
    "Zoë",
    "名前",
    "Ωmega",
    "🙂",
    "tab\there",
)
names = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=3).map(" ".join)
emails = st.sampled_from(["a@example.com", "Mixed.Case@Example.org", "zoe+tag@example.net"])
protect_patterns = st.sampled_from([(), ("15105550009",), ("1510555000[0-3]",), ("*1", "*2")])


@dataclass(frozen=True)
class LiveSpec:
    owner: str | None
    first: str | None
    email: str | None
    opted_out: bool
    tier: str | None


@dataclass(frozen=True)
class Scenario:
    live: dict[str, LiveSpec]
    desired: dict[str, dict[str, Any]]
    protect: tuple[str, ...]
    tier_exists: bool
    saved_plan: bool


live_specs = st.builds(
    LiveSpec,
    owner=st.sampled_from([None, OWNER, OWNER, OWNER, None, OTHER_OWNER]),
    first=st.none() | names,
    email=st.none() | emails,
    opted_out=st.booleans(),
    tier=st.none() | names,
)


@st.composite
def declarations(draw: st.DrawFn, phone: str) -> dict[str, Any]:
    """A declared contact: each field left out (unmanaged), set, or null (cleared)."""
    contact: dict[str, Any] = {"phone": phone}
    for name, values in (("first", names), ("last", names), ("email", emails)):
        choice = draw(st.sampled_from(["omit", "set", "set", "null"]))
        if choice == "set":
            contact[name] = draw(values)
        elif choice == "null":
            contact[name] = None
    opted = draw(st.sampled_from([None, True, False]))
    if opted is not None:
        contact["is_opted_out"] = opted
    custom: dict[str, Any] = {}
    for title in ("Tier", "Brand new"):
        choice = draw(st.sampled_from(["omit", "omit", "set", "null"]))
        if choice == "set":
            custom[title] = draw(names)
        elif choice == "null":
            custom[title] = None
    if custom:
        contact["custom"] = custom
    return contact


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    # Each phone of the pool: live or not, declared or not, independently.
    live_phones = [phone for phone in PHONES if draw(st.booleans())]
    declared_phones = [phone for phone in PHONES if draw(st.booleans())]
    live = {phone: draw(live_specs) for phone in live_phones}
    desired = {phone: draw(declarations(phone)) for phone in declared_phones}
    return Scenario(live, desired, draw(protect_patterns), draw(st.booleans()), draw(st.booleans()))


def _yaml_text(document: dict[str, Any]) -> str:
    """YAML 1.2 as the loader reads it: the dumper quotes whatever would not stay text."""
    stream = io.StringIO()
    YAML().dump(document, stream)
    return stream.getvalue()


def _config(protect: tuple[str, ...], max_percent: float) -> str:
    return yaml.safe_dump(
        {
            "ownership": {"marker_field": MARKER, "owner": OWNER},
            "prune": {
                "max_deletes": DEFAULT_MAX_DELETES,
                "max_delete_percent": max_percent,
                "protect": list(protect),
            },
        }
    )


def _seed(sandbox: SandboxHandle, scenario: Scenario) -> tuple[dict[str, dict[str, Any]], str]:
    """The account before the run, by uuid, and the marker field's id."""
    titles = [MARKER] + (["Tier"] if scenario.tier_exists else [])
    field_ids = sandbox.create_fields(titles)
    records: list[dict[str, Any]] = []
    for phone, spec in scenario.live.items():
        custom: dict[str, str] = {}
        if spec.owner is not None:
            custom[field_ids[MARKER]] = spec.owner
        if spec.tier is not None and scenario.tier_exists:
            custom[field_ids["Tier"]] = spec.tier
        record: dict[str, Any] = {"phone": phone, "is_opted_out": spec.opted_out, "custom": custom}
        if spec.first is not None:
            record["first"] = spec.first
        if spec.email is not None:
            record["email"] = spec.email
        records.append(record)
    if records:
        sandbox.seed(records)
    return {record["uuid"]: record for record in sandbox.contacts()}, field_ids[MARKER]


def _plan(
    project: Path,
    environ: dict[str, str],
    contacts_dir: Path | None = None,
    config_file: Path | None = None,
    save_to: Path | None = None,
) -> Plan:
    """What `reconciler plan --prune [--out FILE]` would show, from a fresh read."""
    found = resolve_settings(
        config_file=config_file,
        contacts_dir=contacts_dir,
        api_url=None,
        environ=environ,
        cwd=project,
    )
    desired = load_desired(found)
    with connect(found, environ) as client:
        live = fetch_live_state(client, cache_dir=cache_directory(found))
    plan = make_plan(desired, live, found.config, prune=True).plan
    if save_to is not None:
        provenance = current_provenance(desired.contacts, found.api_url, plan.marker, project)
        write_saved_plan(save_to, plan, provenance)
    return plan


def _quiet_console() -> tuple[Console, list[str]]:
    printed: list[str] = []
    return Console(out=printed.append, err=printed.append, ask=lambda _q: "no"), printed


def _owner_of(record: dict[str, Any], marker_id: str) -> str | None:
    value = record.get("custom", {}).get(marker_id)
    return str(value).strip() if value is not None else None


@settings(settings.get_profile(PROFILE))
@given(scenario=scenarios())
def test_apply_converges_and_prunes_only_what_it_owns(
    sandbox: SandboxHandle, scenario: Scenario
) -> None:
    sandbox.reset()
    before, marker_id = _seed(sandbox, scenario)
    environ = {**os.environ, **sandbox.env()}
    with tempfile.TemporaryDirectory() as directory:
        project = Path(directory)
        (project / "contacts").mkdir()
        (project / "contacts" / "team.yaml").write_text(
            _yaml_text({"contacts": list(scenario.desired.values())}),
            encoding="utf-8",
        )
        (project / "reconciler.yaml").write_text(
            _config(scenario.protect, DEFAULT_MAX_PERCENT), encoding="utf-8"
        )
        raised = project / "raised.yaml"
        raised.write_text(_config(scenario.protect, RAISED_MAX_PERCENT), encoding="utf-8")

        first_plan = _plan(project, environ)
        deletes = len(first_plan.deletes)
        owned_count = first_plan.owned_live_count
        over_default = deletes > DEFAULT_MAX_DELETES or (
            deletes > 0 and 100.0 * deletes / max(owned_count, 1) > DEFAULT_MAX_PERCENT
        )

        event(f"plan: {deletes} deletes, {'errors' if first_plan.has_errors else 'no errors'}")
        event(f"refused by the default caps: {over_default}")
        # With the default caps: a prune over either cap is refused before any write.
        console, printed = _quiet_console()
        request = ApplyRequest(auto_approve=True, prune=True)
        if over_default:
            with pytest.raises(PruneCapExceededError):
                run_apply(request, Environment(environ=environ, cwd=project, console=console))
            assert write_count(sandbox) == 0
        else:
            code = run_apply(request, Environment(environ=environ, cwd=project, console=console))
            assert code == (1 if first_plan.has_errors else 0), "".join(printed)

        # With the caps raised, apply goes all the way: afresh, or a plan saved and reviewed.
        console, printed = _quiet_console()
        raised_request = ApplyRequest(config_file=raised, auto_approve=True, prune=True)
        if scenario.saved_plan:
            saved = project / "plan.json"
            _plan(project, environ, config_file=raised, save_to=saved)
            raised_request = ApplyRequest(plan_file=saved, config_file=raised, prune=True)
        code = run_apply(raised_request, Environment(environ=environ, cwd=project, console=console))
        assert code == (1 if first_plan.has_errors else 0), "".join(printed)

        after_records = sandbox.contacts()
        after = {record["uuid"]: record for record in after_records}
        phone_counts = Counter(record["phone"] for record in after_records)
        assert not phone_counts or max(phone_counts.values()) == 1

        deleted = [before[uuid] for uuid in before.keys() - after.keys()]
        for record in deleted:
            assert _owner_of(record, marker_id) == OWNER
            assert record["phone"] not in scenario.desired
            assert not any(fnmatch.fnmatchcase(record["phone"], p) for p in scenario.protect)
        if deleted:
            assert len(deleted) <= DEFAULT_MAX_DELETES
            assert 100.0 * len(deleted) / owned_count <= RAISED_MAX_PERCENT
            assert not first_plan.has_errors

        for uuid, record in before.items():
            if record["is_opted_out"] and uuid in after:
                assert after[uuid]["is_opted_out"] is True, record["phone"]
            if _owner_of(record, marker_id) == OTHER_OWNER:
                # Declared or not, another team's contact is neither written nor deleted.
                assert after[uuid] == record

        second_plan = _plan(project, environ)
        assert not second_plan.creates and not second_plan.updates, second_plan.changes
        if not first_plan.has_errors:
            assert not second_plan.changes
        else:
            assert second_plan.deletes == first_plan.deletes

        # Export the account into a second repository: its plan only adopts.
        exported = project / "exported"
        export_code = run_export(
            ExportRequest(out_dir=exported, split_by=SplitBy.NONE),
            Environment(environ=environ, cwd=project, console=_quiet_console()[0]),
        )
        assert export_code == 0
        export_plan = _plan(project, environ, contacts_dir=exported)
        unmarked = {
            record["phone"] for record in after.values() if _owner_of(record, marker_id) is None
        }
        for change in export_plan.changes:
            assert isinstance(change, Update) and change.adopt, change
            assert change.phone in unmarked
            assert not change.fields
            assert set(change.custom) == {MARKER}
        assert {change.phone for change in export_plan.changes} == unmarked


def test_export_keeps_its_snapshot_in_the_project_it_was_given(
    sandbox: SandboxHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The property above exports from the test process's directory into a project; the
    live snapshot belongs beside that project's configuration, like plan's and apply's."""
    sandbox.seed([{"phone": PHONES[0], "first": "Ann"}])
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "reconciler.yaml").write_text(_config((), DEFAULT_MAX_PERCENT), encoding="utf-8")
    monkeypatch.chdir(elsewhere)
    console, _printed = _quiet_console()
    environ = {**os.environ, **sandbox.env()}
    run_export(
        ExportRequest(out_dir=None, split_by=SplitBy.NONE),
        Environment(environ=environ, cwd=project, console=console),
    )
    assert not (elsewhere / ".reconciler").exists()
    assert (project / ".reconciler" / "cache").is_dir()


# --- phones live twice: the sandbox keeps phones unique, so this one runs on the pure diff.

MARKER_FIELD = CustomField(id="1", title=MARKER)


@st.composite
def accounts_with_duplicates(
    draw: st.DrawFn,
) -> tuple[list[LiveContact], list[DesiredContact], tuple[str, ...]]:
    live: list[LiveContact] = []
    for number, phone in enumerate(
        draw(st.lists(st.sampled_from(PHONES), max_size=2 * len(PHONES))), start=1
    ):
        owner = draw(st.sampled_from([None, OWNER, OTHER_OWNER]))
        live.append(
            LiveContact(
                id=number,
                uuid=f"uuid-{number}",
                phone=phone,
                first=draw(st.none() | names),
                last=None,
                display_name=None,
                email=None,
                is_opted_out=draw(st.booleans()),
                custom={MARKER_FIELD.id: owner} if owner is not None else {},
                rev=1,
                updated="2026-01-01T00:00:00Z",
            )
        )
    desired = [
        DesiredContact(
            phone=phone,
            fields={"first": draw(names), "is_opted_out": draw(st.booleans())},
            custom={},
            source=SourceLocation("contacts/team.yaml", line),
        )
        for line, phone in enumerate(draw(st.lists(st.sampled_from(PHONES), unique=True)), start=2)
    ]
    return live, desired, draw(protect_patterns)


@settings(settings.get_profile(PROFILE), max_examples=200 if PROFILE == "ci" else 2000)
@given(account=accounts_with_duplicates())
def test_a_phone_live_twice_is_never_written_nor_pruned(
    account: tuple[list[LiveContact], list[DesiredContact], tuple[str, ...]],
) -> None:
    live, desired, protect = account
    plan = diff(
        desired,
        live,
        [MARKER_FIELD],
        DiffSettings(marker_field=MARKER, owner=OWNER, protect=protect),
        prune=True,
    )
    copies = Counter(contact.phone for contact in live)
    declared = {contact.phone for contact in desired}
    by_uuid = {contact.uuid: contact for contact in live}
    for change in plan.changes:
        assert copies[change.phone] <= 1, change
        if isinstance(change, Delete):
            doomed = by_uuid[change.contact_id]
            assert doomed.custom.get(MARKER_FIELD.id) == OWNER
            assert doomed.phone not in declared
            assert not any(fnmatch.fnmatchcase(doomed.phone, p) for p in protect)
        if isinstance(change, Update) and "is_opted_out" in change.fields:
            assert change.fields["is_opted_out"].after is True
    for phone in declared:
        if copies[phone] > 1:
            assert any(notice.phone == phone for notice in plan.errors)
