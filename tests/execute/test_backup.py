"""Prune backups on disk: the file name, one full record a line, never overwritten, private,
read back exactly; a directory that cannot be written is an error before any delete."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.core.errors import BackupError
from reconciler.core.model import CustomField, LiveContact
from reconciler.core.ownership import Marker
from reconciler.execute.backup import backup_line, read_backup, write_backup
from reconciler.heymarket.parse import parse_live_contact
from tests.builders import record

MARKER = Marker("Managed by", "team-a")
FIELDS = [CustomField("1", "Managed by"), CustomField("2", "Tier")]
WHEN = datetime(2026, 11, 26, 10, 15, 0, tzinfo=UTC)


def contact(phone: str, **extra: object) -> LiveContact:
    raw = {
        "id": int(phone[-3:]),
        "uuid": f"uuid-{phone}",
        "phone": phone,
        "first": "Ada",
        "last": None,
        "display_name": "Ada",
        "email": "ada@example.com",
        "is_opted_out": True,
        "custom": {"1": "team-a", "2": "gold", "9": "orphan"},
        "rev": 3,
        "updated": "2026-11-20T08:00:00Z",
        "tags": ["vip"],
        **extra,
    }
    return LiveContact(
        id=int(phone[-3:]),
        uuid=f"uuid-{phone}",
        phone=phone,
        first="Ada",
        last=None,
        display_name="Ada",
        email="ada@example.com",
        is_opted_out=True,
        custom={"1": "team-a", "2": "gold", "9": "orphan"},
        rev=3,
        updated="2026-11-20T08:00:00Z",
        raw=raw,
    )


def test_one_full_record_a_line_named_by_the_apply_time(tmp_path: Path) -> None:
    path = write_backup(
        tmp_path / "backups", [contact("15105550001"), contact("15105550002")], FIELDS, MARKER, WHEN
    )
    assert path == tmp_path / "backups" / "prune-20261126T101500Z.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["phone"] for line in lines] == ["15105550001", "15105550002"]
    assert lines[0]["record"]["tags"] == ["vip"]  # the whole record, not only what we model
    assert lines[0]["custom_by_title"] == {"Managed by": "team-a", "Tier": "gold"}
    assert lines[0]["marker"] == {"field": "Managed by", "owner": "team-a"}

    records = read_backup(path)
    assert [record.contact.phone for record in records] == ["15105550001", "15105550002"]
    assert records[0].contact.is_opted_out is True
    assert records[0].custom_by_title == {"Managed by": "team-a", "Tier": "gold"}
    assert records[1].line == 2
    assert records[0].marker == MARKER


def test_an_earlier_backup_is_never_overwritten(tmp_path: Path) -> None:
    first = write_backup(tmp_path, [contact("15105550001")], FIELDS, MARKER, WHEN)
    second = write_backup(tmp_path, [contact("15105550002")], FIELDS, MARKER, WHEN)
    assert first != second
    assert read_backup(first)[0].contact.phone == "15105550001"
    assert read_backup(second)[0].contact.phone == "15105550002"


def test_a_directory_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("in the way\n")
    with pytest.raises(BackupError, match="Nothing was deleted"):
        write_backup(tmp_path / "file" / "backups", [contact("15105550001")], FIELDS, MARKER, WHEN)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "not a line of a reconciler prune backup"),
        (
            '{"kind": "reconciler prune backup", "backup_format": 99}',
            "unknown backup format 99",
        ),
        (
            '{"kind": "reconciler prune backup", "backup_format": 1, "marker": {"field": "M", '
            '"owner": "o"}, "custom_by_title": {}, "record": {"id": 1}}',
            "`record` is damaged",
        ),
    ],
)
def test_a_damaged_line_names_itself(tmp_path: Path, line: str, message: str) -> None:
    path = write_backup(tmp_path, [contact("15105550001")], FIELDS, MARKER, WHEN)
    path.write_text(path.read_text() + line + "\n")
    with pytest.raises(BackupError, match=f":2: {message}"):
        read_backup(path)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no backup file at"):
        read_backup(tmp_path / "nope.jsonl")


@pytest.mark.parametrize("phone", ["14155550101\n", "1415555010x", "+1 415 555 0101 ext 2"])
def test_a_backup_line_whose_phone_is_not_a_phone_is_a_located_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], phone: str
) -> None:
    monkeypatch.chdir(tmp_path)
    backup = tmp_path / "prune.jsonl"
    line = json.loads(backup_line(parse_live_contact(record()), {"7": "Tier"}, MARKER))
    line["record"]["phone"] = phone
    line["phone"] = phone
    backup.write_text(json.dumps(line) + "\n", encoding="utf-8")
    assert main(["restore", str(backup), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {backup}:1: the phone ") and "is not a phone number" in err
    assert err.count("\n") == 1
