"""Hostile JSON never crashes a reader: a prune backup, a saved plan, the live snapshot, the
parse cache, a sandbox seed, a sandbox database row and a request body sent to the sandbox
each end in their own clean error (or a cache miss), never in a RecursionError, a
UnicodeDecodeError or a traceback. Every decode in the package goes through one decoder,
``reconciler.files.untrusted_json.decode_json``; a scan of the source keeps it that way."""

from __future__ import annotations

import ast
import hashlib
import json
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.core.errors import BackupError, SandboxError, SavedPlanError
from reconciler.core.model import CustomField, SourceLocation
from reconciler.core.ownership import Marker
from reconciler.core.plan import Create, Delete, FieldChange, Plan, Update
from reconciler.core.proof import (
    Provenance,
    saved_plan_document,
)
from reconciler.desired.fast_parse import ContactRow
from reconciler.desired.parse_cache import ENTRY_FORMAT, ParseCache
from reconciler.execute.backup import backup_line, read_backup
from reconciler.files.saved_plans import (
    read_saved_plan,
)
from reconciler.files.untrusted_json import UnreadableJson, decode_json
from reconciler.heymarket.parse import parse_live_contact
from reconciler.live.snapshot import _read as read_snapshot
from reconciler.live.snapshot import _write as write_snapshot
from reconciler.live.snapshot import read_live_state, snapshot_path
from reconciler.sandbox.server import load_seed_file
from reconciler.sandbox.store import ContactStore, DamagedStoreError
from tests.builders import record
from tests.sandbox_handle import SandboxHandle

PACKAGE = Path(__file__).parents[2] / "reconciler"
DEEP = "[" * 100_000
API_URL = "http://127.0.0.1:9"
MARKER = Marker("Managed by", "team-a")
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


# --- one decoder -------------------------------------------------------------------------


def _raw_decodes(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("json", "json.decoder"):
            for alias in node.names:
                if alias.name in ("load", "loads", "JSONDecoder"):
                    yield node.lineno, f"from {node.module} import {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("orjson", "ujson", "simplejson", "rapidjson"):
                    yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.Attribute) and node.attr in ("load", "loads", "JSONDecoder"):
            if isinstance(node.value, ast.Name) and node.value.id == "json":
                yield node.lineno, f"json.{node.attr}"
        elif isinstance(node, ast.Attribute) and node.attr == "raw_decode":
            yield node.lineno, ".raw_decode"


def test_every_json_decode_in_the_package_goes_through_the_one_decoder() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {what}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "untrusted_json.py"
        for line, what in _raw_decodes(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert found == [], "decode JSON with reconciler.files.untrusted_json.decode_json: " + str(
        found
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (DEEP, "nested too deeply"),
        ('{"a":' * 50_000, "nested too deeply"),
        (b"\xff[]", "not UTF-8"),
        (b'"\xed\xa0\x80"', "not UTF-8"),  # a surrogate encoded as UTF-8 bytes
        ('"\\ud800"', "lone UTF-16 surrogate"),
        ('{"first": "a\\udc00"}', "lone UTF-16 surrogate"),
        ("NaN", "NaN is not a JSON value"),
        ("[-Infinity]", "-Infinity is not a JSON value"),
        ("1e999", "too large"),
        ("1" * 5000, "too many digits"),
    ],
)
def test_the_decoder_turns_every_hostile_text_into_one_clean_failure(
    data: str | bytes, reason: str
) -> None:
    with pytest.raises(UnreadableJson) as raised:
        decode_json(data)
    assert reason in str(raised.value) and "\n" not in str(raised.value)


def test_the_decoder_reads_what_the_package_writes() -> None:
    assert decode_json('{"a": ["\\ud83d\\ude00", 1.5, null, true]}') == {
        "a": ["\U0001f600", 1.5, None, True]
    }
    assert decode_json("\ufeff[1]".encode()) == [1]


# --- each reader, one example each -------------------------------------------------------


def test_a_backup_line_nested_too_deep_is_a_located_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    backup = tmp_path / "prune.jsonl"
    good = backup_line(parse_live_contact(record()), {"7": "Tier"}, MARKER)
    backup.write_text(f"{good}\n{DEEP}\n", encoding="utf-8")
    assert main(["restore", str(backup), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {backup}:2: not valid JSON (nested too deeply to read);")
    assert err.count("\n") == 1 and "unexpected" not in err


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x1c"])
def test_a_backup_value_holding_a_unicode_line_separator_reads_back(
    tmp_path: Path, separator: str
) -> None:
    # Backup lines keep text as it is; only "\n" (always escaped inside JSON) ends a line.
    contact = parse_live_contact(record(first=f"Ada{separator}Lovelace"))
    backup = tmp_path / "prune.jsonl"
    backup.write_text(backup_line(contact, {"7": "Tier"}, MARKER) + "\n", encoding="utf-8")
    (read,) = read_backup(backup)
    assert read.contact.first == f"Ada{separator}Lovelace"


def test_a_saved_plan_nested_too_deep_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "contacts").mkdir()
    (tmp_path / "contacts" / "team.yaml").write_text("contacts: []\n", encoding="utf-8")
    saved = tmp_path / "plan.json"
    saved.write_text(DEEP, encoding="utf-8")
    assert main(["apply", str(saved), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {saved} is not valid JSON (nested too deeply to read)")
    assert err.count("\n") == 1 and "unexpected" not in err


@pytest.mark.parametrize("line", [0, 1], ids=["header", "record"])
def test_a_snapshot_nested_too_deep_is_ignored_and_the_account_listed_in_full(
    sandbox: SandboxHandle, tmp_path: Path, line: int
) -> None:
    sandbox.seed([{"phone": f"1510555000{n}", "first": f"F{n}"} for n in range(3)])
    with sandbox.client() as client:
        assert read_live_state(client, tmp_path).how == "full"
        path = snapshot_path(tmp_path, client.base_url)
        lines = path.read_text(encoding="utf-8").splitlines()
        lines[line] = DEEP
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        listing = read_live_state(client, tmp_path)
    assert listing.how == "full"
    assert sorted(contact.first or "" for contact in listing.contacts) == ["F0", "F1", "F2"]


def test_a_request_body_nested_too_deep_is_a_400_from_the_sandbox(sandbox: SandboxHandle) -> None:
    answer = httpx.post(
        f"{sandbox.url}/v2/contacts/list",
        content=DEEP,
        headers={"Authorization": f"Bearer {sandbox.env()['HEYMARKET_API_KEY']}"},
        timeout=30,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_data"
    assert "nested too deeply" in answer.json()["message"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("seed.yaml", "contacts: " + DEEP),
        ("seed.yaml", "contacts:\n" + "".join(" " * i + "-\n" for i in range(0, 4000, 2))),
        ("seed.json", DEEP),
    ],
    ids=["yaml-flow", "yaml-block", "json"],
)
def test_a_seed_file_nested_too_deep_stops_the_sandbox_with_one_line(
    tmp_path: Path, name: str, text: str
) -> None:
    seed = tmp_path / name
    seed.write_text(text, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "reconciler", "sandbox", "--port", "0", "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith(f"Error: seed file {seed} is not valid JSON or YAML: ")
    assert run.stderr.count("\n") == 1 and "unexpected" not in run.stderr


# --- hostile JSON for every reader -------------------------------------------------------

HOSTILE_TEXT = st.sampled_from(
    [
        DEEP,
        '{"a":' * 20_000,
        "[" * 3000 + "]" * 3000,
        "1" * 5000,
        "-" + "9" * 4400,
        "1e999",
        "-1e400",
        "NaN",
        "Infinity",
        "-Infinity",
        '"\\ud800"',
        '"\\udc00"',
        '"a\\ud800\\ud800b"',
        '"\\\\ud800"',
        '{"kind": "\\udbff"}',
        "",
        "{",
        '"unterminated',
    ]
).map(str.encode)
HOSTILE_BYTES = st.sampled_from([b"\xff", b'"\xed\xa0\x80"', b'"\xc0\xaf"', b"\x00", b'"\x80"'])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
).map(lambda value: json.dumps(value).encode())
FRAGMENTS = st.one_of(HOSTILE_TEXT, HOSTILE_BYTES, JSON_VALUES, st.binary(max_size=20))
HOLE = "\x00hole\x00"
HOLE_JSON = json.dumps(HOLE).encode()


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _with_hole(value: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return HOLE
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _with_hole(value[path[0]], path[1:])
    return copy


@st.composite
def damaged(draw: st.DrawFn, document: Any) -> bytes:
    """``document`` as JSON with one of its values (or all of it) replaced by hostile text."""
    path = draw(st.sampled_from(list(_paths(document))))
    fragment = draw(FRAGMENTS)
    return json.dumps(_with_hole(document, path)).encode().replace(HOLE_JSON, fragment)


def _plan() -> Plan:
    live = parse_live_contact(record(phone="15105550003", uuid="u-3"))
    source = SourceLocation("contacts/team.yaml", 2)
    return Plan(
        changes=(
            Create("15105550001", source, {"first": FieldChange(None, "A")}, {}),
            Update("15105550002", "u-2", 4, "2025-03-01T12:00:00Z", source, {}, {}, adopt=True),
            Delete("15105550003", "u-3", 3, "2025-03-01T12:00:00Z", {}, {}, live),
        ),
        unchanged=1,
        marker=MARKER,
        prune=True,
    )


BACKUP_LINE = json.loads(backup_line(parse_live_contact(record()), {"7": "Tier"}, MARKER))
SAVED_PLAN = saved_plan_document(
    _plan(),
    Provenance("sha256:0", None, "https://api.heymarket.com", MARKER.field_title, MARKER.owner),
    created_at="2025-03-01T12:00:00Z",
)
ROW = ContactRow("15105551234", {"first": "A"}, {"Tier": "gold"}, 2, 2, 5)


def _one_line(error: Exception) -> None:
    assert len(str(error).splitlines()) == 1, str(error)


@FUZZ
@given(damaged(BACKUP_LINE))
def test_a_hostile_backup_line_is_a_located_backup_error_or_a_record(line: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "prune.jsonl"
        path.write_bytes(json.dumps(BACKUP_LINE).encode() + b"\n" + line + b"\n")
        try:
            records = read_backup(path)
        except BackupError as error:
            _one_line(error)
            assert str(error).startswith(f"{path}:2: ") or "cannot read the backup" in str(error)
        else:
            assert len(records) in (1, 2)


@FUZZ
@given(damaged(SAVED_PLAN))
def test_a_hostile_saved_plan_is_a_saved_plan_error_or_a_plan(text: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "plan.json"
        path.write_bytes(text)
        try:
            read_saved_plan(path)
        except SavedPlanError as error:
            _one_line(error)
            assert str(path) in str(error)


@FUZZ
@given(st.integers(min_value=0, max_value=13), st.data())
def test_a_hostile_snapshot_is_a_miss_or_a_snapshot(line: int, data: st.DataObject) -> None:
    """Any one line damaged: the header, a column, or the trailer with the checksum."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "live.json"
        fields = [CustomField("7", "Tier")]
        write_snapshot(path, API_URL, fields, [parse_live_contact(record())])
        lines = path.read_bytes().splitlines()
        assert len(lines) == 14
        lines[line] = data.draw(damaged(json.loads(lines[line])))
        path.write_bytes(b"\n".join(lines) + b"\n")
        snapshot = read_snapshot(path, API_URL)
        assert snapshot is None or len(snapshot.contacts) == 1


@FUZZ
@given(st.booleans(), st.data())
def test_a_hostile_parse_cache_entry_is_a_miss_or_rows(
    header_damaged: bool, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        cache = ParseCache(Path(directory))
        key = cache.key(b"contacts: []\n")
        body = data.draw(damaged([list(ROW)]))
        header: bytes = json.dumps(
            {"format": ENTRY_FORMAT, "key": key, "sha256": hashlib.sha256(body).hexdigest()}
        ).encode()
        if header_damaged:
            header = data.draw(damaged(json.loads(header)))
        (Path(directory) / f"{key}.json").write_bytes(header + b"\n" + body)
        rows = cache.get(key)
        assert rows is None or isinstance(rows, list)


@FUZZ
@given(damaged({"contacts": [record()]}))
def test_a_hostile_json_seed_is_a_sandbox_error_or_a_list(text: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "seed.json"
        path.write_bytes(text)
        try:
            items = load_seed_file(path)
        except SandboxError as error:
            _one_line(error)
        else:
            assert isinstance(items, list)


@settings(FUZZ, max_examples=20)  # a database file each: the slowest reader to set up
@given(st.sampled_from(["custom", "tags"]), FRAGMENTS, st.booleans())
def test_a_hostile_sandbox_database_row_is_a_damaged_store_error(
    column: str, fragment: bytes, as_text: bool
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "sandbox.db"
        ContactStore(path).close()
        value: str | bytes = fragment.decode("utf-8", "replace") if as_text else fragment
        with sqlite3.connect(path) as connection:
            connection.execute(
                "INSERT INTO contacts (id, uuid, phone, first, last, display_name, email, "
                "is_opted_out, custom, tags, created, updated, rev) "
                "VALUES (1, 'u', '15105551234', NULL, NULL, NULL, NULL, 0, ?, ?, 0, 0, 1)",
                (value, "[]") if column == "custom" else ("{}", value),
            )
        store = ContactStore(path)
        try:
            store.all_contacts()
        except DamagedStoreError as error:
            _one_line(error)
        finally:
            store.close()
