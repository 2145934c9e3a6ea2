"""The parse cache: a warm load gives exactly what a cold one gives, and a damaged, truncated
or foreign entry is a miss, never an error."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from reconciler.core.errors import DesiredStateError
from reconciler.desired import loader as desired_state
from reconciler.desired.loader import load_desired_state

VALID = (
    'contacts:\n  - phone: "15105551234"\n    first: Alice\n    tags: [VIP, " Zoe\u0308 "]\n'
    "    custom:\n      Seats: 3\n"
)


@pytest.fixture
def project_files() -> dict[str, str]:
    return {"contacts/a.yaml": VALID, "contacts/b.yaml": 'contacts:\n  - phone: "15105550000"\n'}


@pytest.fixture
def project_env() -> dict[str, str]:
    """No server: loading the desired state never connects."""
    return {}


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.json"))


def test_warm_load_equals_cold_load_and_entries_are_private(project: Path) -> None:
    cache = project / ".reconciler" / "cache" / "desired"
    cold = load_desired_state(project / "contacts", project, cache_dir=cache)
    assert len(entries(cache)) == 2
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in entries(cache))
    warm = load_desired_state(project / "contacts", project, cache_dir=cache)
    assert warm == cold
    assert warm == load_desired_state(project / "contacts", project)
    # Trimmed and composed once, when parsed: the cache holds the tags as declared.
    assert {contact.tags for contact in warm.contacts} == {("VIP", "Zo\u00eb"), None}


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"\x00\xff garbage", id="garbage"),
        pytest.param(lambda data: b'{"format": 1}\n[]', id="foreign"),
        pytest.param(lambda data: data.replace(b"Alice", b"Mallory"), id="body-changed"),
        pytest.param(lambda data: data.replace(b'"format": 1', b'"format": 2'), id="other-format"),
        pytest.param(lambda data: data.split(b"\n")[0] + b"\n[[1, 2]]", id="wrong-shape"),
    ],
)
def test_a_damaged_entry_is_a_miss(project: Path, damage: object) -> None:
    cache = project / "cache"
    expected = load_desired_state(project / "contacts", project, cache_dir=cache)
    for path in entries(cache):
        path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    assert load_desired_state(project / "contacts", project, cache_dir=cache) == expected


def test_an_invalid_file_is_never_cached_and_still_reports_its_problems(project: Path) -> None:
    cache = project / "cache"
    (project / "contacts" / "c.yaml").write_text('contacts:\n  - phone: "12"\n')
    with pytest.raises(DesiredStateError) as first:
        load_desired_state(project / "contacts", project, cache_dir=cache)
    assert len(entries(cache)) == 2
    with pytest.raises(DesiredStateError) as second:
        load_desired_state(project / "contacts", project, cache_dir=cache)
    assert first.value.problems == second.value.problems
    assert "contacts/c.yaml:2:5" in str(second.value)


def test_the_same_bytes_under_another_name_keep_their_own_path(project: Path) -> None:
    cache = project / "cache"
    load_desired_state(project / "contacts", project, cache_dir=cache)
    (project / "contacts" / "b.yaml").unlink()
    (project / "contacts" / "z.yaml").write_text(VALID.replace("1234", "9999"))
    (project / "contacts" / "a.yaml").rename(project / "contacts" / "moved.yaml")
    state = load_desired_state(project / "contacts", project, cache_dir=cache)
    assert [str(contact.source) for contact in state.contacts] == [
        "contacts/moved.yaml:2",
        "contacts/z.yaml:2",
    ]


def test_files_parsed_in_worker_processes_give_the_same_state_and_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(desired_state, "PARALLEL_MIN_BYTES", 1)
    contacts = tmp_path / "contacts"
    contacts.mkdir()
    for file_number in range(6):
        lines = ["contacts:\n"]
        for n in range(500):
            lines.append(f'  - phone: "1{file_number}{n:09d}"\n    first: F{n}\n    last: L\n')
        (contacts / f"team{file_number}.yaml").write_text("".join(lines))
    (contacts / "bad.yaml").write_text("contacts:\n  - phone: x\n")
    with pytest.raises(DesiredStateError) as parallel:
        load_desired_state(contacts, tmp_path, cache_dir=tmp_path / "cache")
    assert [str(p) for p in parallel.value.problems] == [
        'contacts/bad.yaml:2:5: phone "x" is not a phone number; write it with its country '
        'code, e.g. "+1 510 555 1234" or "15105551234" (only digits, spaces and + - . ( ) may '
        "be written)"
    ]
    (contacts / "bad.yaml").unlink()
    state = load_desired_state(contacts, tmp_path, cache_dir=tmp_path / "cache")
    assert len(state.contacts) == 3000
    monkeypatch.setattr(desired_state, "PARALLEL_MIN_BYTES", 10**12)
    assert state == load_desired_state(contacts, tmp_path)
