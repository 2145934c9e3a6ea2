"""``--target T`` as a person types it, read into ``core.targets.Targets``.

``T`` made only of digits, spaces and ``+ - . ( )`` is a phone, in any spelling the
contacts files accept (``phones.default_region`` applies). Anything else is a path under
the contacts directory: a file, a directory (every contacts file under it) or a glob
(``contacts/vip-*.yaml``, ``**/wholesale.yaml``), read from the working directory first and,
when nothing matches there, from the contacts directory. A target that selects nothing is an
error, never a plan of nothing."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.core.errors import TargetError
from reconciler.core.targets import Targets
from reconciler.desired.phone_spellings import PhoneProblem, read_phone
from reconciler.files.paths import display_path

_PHONE_LIKE = re.compile(r"[0-9 +().-]*[0-9][0-9 +().-]*")


def _normal(path: Path) -> Path:
    return Path(os.path.normpath(path.absolute()))


def _matches(written: str, base: Path) -> list[Path]:
    """What ``written`` names relative to ``base``: the paths its glob matches, or the path
    itself when it exists."""
    if glob.has_magic(written):
        # Not Path.glob: it refuses an absolute pattern.
        found = glob.glob(written, root_dir=base, recursive=True)  # noqa: PTH207
        return sorted({_normal(base / match) for match in found})
    path = base / written
    return [_normal(path)] if path.exists() else []


def _selected_files(
    written: str, contacts_dir: Path, cwd: Path, files: Sequence[Path]
) -> list[Path]:
    """The contacts files ``written`` selects; raises ``TargetError`` when it names only
    what lies outside the contacts directory."""
    root = _normal(contacts_dir)
    outside = False
    for base in (cwd, contacts_dir):
        matches = _matches(written, base)
        inside = [match for match in matches if match.is_relative_to(root)]
        outside = outside or len(inside) < len(matches)
        selected = [
            file
            for file in files
            if any(
                _normal(file) == match or _normal(file).is_relative_to(match) for match in inside
            )
        ]
        if selected:
            return selected
    if outside:
        raise TargetError(
            f'--target "{written}" is not under the contacts directory '
            f'"{display_path(contacts_dir, cwd)}"; name a file, a directory or a glob inside '
            "it, or a phone number"
        )
    return []


def read_targets(
    written: Sequence[str],
    *,
    contacts_dir: Path,
    cwd: Path,
    files: Sequence[Path],
    default_region: str | None,
) -> Targets | None:
    """The targets of ``--target`` values (``None`` when there are none); ``files`` are the
    contacts files the desired state was loaded from. Raises ``TargetError`` for a target
    that selects nothing."""
    if not written:
        return None
    shown: list[str] = []
    phones: set[str] = set()
    selected: set[str] = set()
    for target in written:
        if not target.strip():
            raise TargetError("--target is empty; name a phone number or a contacts file")
        if _PHONE_LIKE.fullmatch(target):
            # As a contacts file reads it, spaces around the digits included: one reading.
            phone = read_phone(target, default_region)
            if isinstance(phone, PhoneProblem):
                raise TargetError(f"--target: {phone.message}")
            phones.add(phone.phone)
            label = phone.phone
        else:
            matched = _selected_files(target, contacts_dir, cwd, files)
            if not matched:
                raise TargetError(
                    f'--target "{target}" matches no contacts file: name a phone number, or '
                    "a file, directory or glob under the contacts directory (read from the "
                    "working directory, then from the contacts directory)"
                )
            selected.update(display_path(file, cwd) for file in matched)
            label = target
        if label not in shown:
            shown.append(label)
    return Targets(tuple(shown), frozenset(phones), frozenset(selected))


@dataclass(frozen=True, slots=True)
class AccountTargets:
    """``--target`` values read in one account of several: ``targets`` is what they select
    there (possibly nothing); ``labels`` maps each value that reads there to its label in
    ``targets.shown``; ``problems`` says why each other value selects nothing there."""

    targets: Targets
    labels: Mapping[str, str]
    problems: Mapping[str, str]


def read_account_targets(
    written: Sequence[str],
    *,
    contacts_dir: Path,
    cwd: Path,
    files: Sequence[Path],
    default_region: str | None,
) -> AccountTargets:
    """The ``--target`` values read in one account of several, each on its own: a value
    that selects nothing in this account (a file of another account's directory, a national
    spelling this account's ``phones.default_region`` cannot read) is left out, with why.
    Whether every value selects something in some account is the caller's question."""
    shown: list[str] = []
    phones: set[str] = set()
    selected: set[str] = set()
    labels: dict[str, str] = {}
    problems: dict[str, str] = {}
    for target in written:
        try:
            read = read_targets(
                [target],
                contacts_dir=contacts_dir,
                cwd=cwd,
                files=files,
                default_region=default_region,
            )
        except TargetError as error:
            problems[target] = str(error)
            continue
        assert read is not None  # one value was given
        labels[target] = read.shown[0]
        if read.shown[0] not in shown:
            shown.append(read.shown[0])
        phones.update(read.phones)
        selected.update(read.files)
    return AccountTargets(
        Targets(tuple(shown), frozenset(phones), frozenset(selected)), labels, problems
    )
