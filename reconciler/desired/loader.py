"""The desired state: every ``*.yaml``/``*.yml`` file under the contacts directory, loaded
into frozen ``DesiredContact`` values, or one ``DesiredStateError`` carrying every problem.

``parse_file`` is a pure function of a file's bytes, its display path and the default region
of phones written without a country code, so its result can be cached by content;
``load_desired_state`` adds what needs all files (duplicate phones, which are compared in
their canonical form, so two spellings of one number are a duplicate)."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from yaml.nodes import Node

from reconciler.core.errors import DesiredStateError, InputNotFoundError, Problem
from reconciler.core.model import STANDARD_FIELDS, DesiredContact, SourceLocation
from reconciler.core.normalize import CustomValue
from reconciler.core.proof import desired_state_digest
from reconciler.desired.emails import email_problem
from reconciler.desired.fast_parse import ContactRow, valid_contact_rows
from reconciler.desired.parse_cache import ParseCache
from reconciler.desired.phone_spellings import PhoneProblem, read_phone
from reconciler.desired.schemas import CONTACTS_SCHEMA, schema_problems
from reconciler.desired.tags import TagProblem, read_tags
from reconciler.desired.unicode_form import composed_custom, composed_fields
from reconciler.desired.yaml_safety import LoadedYaml, load_yaml, locate, position, read_capped
from reconciler.files.collector import collector_paused
from reconciler.files.paths import display_path

YAML_SUFFIXES = frozenset({".yaml", ".yml"})
# Parsing in worker processes pays off only past this much uncached YAML (workers cost
# tens of milliseconds to start and to send their results back).
PARALLEL_MIN_BYTES = 4 * 1024 * 1024
PARALLEL_MIN_FILES = 4
_TOP_LEVEL = 'a mapping with one key, "contacts"'


class PhoneWarning(NamedTuple):
    """A phone that was read, but may not be in service (``phone_spellings``)."""

    phone: str
    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: warning: phone {self.phone}: {self.message}"


@dataclass(frozen=True, slots=True)
class DesiredState:
    contacts: tuple[DesiredContact, ...]
    files: tuple[Path, ...]
    warnings: tuple[PhoneWarning, ...] = ()

    @property
    def digest(self) -> str:
        """What is declared, whatever the file layout: see ``core.proof``."""
        return desired_state_digest(self.contacts)


class PhoneDeclaration(NamedTuple):
    """A valid phone key, even in a contact with other problems, for the duplicate check."""

    phone: str
    path: str
    line: int
    column: int


class ParsedFile(NamedTuple):
    contacts: list[DesiredContact]
    phones: list[PhoneDeclaration]
    problems: list[Problem]
    warnings: list[PhoneWarning]


def parse_file(data: bytes, shown_as: str, default_region: str | None = None) -> ParsedFile:
    """The contacts declared in one file's bytes and every problem in it; phones written
    without a country code are read in ``default_region``."""
    loaded = load_yaml(data, shown_as)
    if isinstance(loaded, Problem):
        return ParsedFile([], [], [loaded], [])
    if loaded is None:
        empty = Problem(
            shown_as,
            1,
            1,
            'empty file; a contacts file holds one key, "contacts" '
            '(write "contacts: []" to declare none)',
        )
        return ParsedFile([], [], [empty], [])
    problems, bad_paths = schema_problems(CONTACTS_SCHEMA, loaded, shown_as, _TOP_LEVEL)
    if () in bad_paths or ("contacts",) in bad_paths:
        return ParsedFile([], [], sorted(problems, key=_problem_order), [])
    parsed = _contacts(loaded, shown_as, bad_paths, default_region)
    problems.extend(parsed.problems)
    return parsed._replace(problems=sorted(problems, key=_problem_order))


def parse_file_fast(
    data: bytes, shown_as: str, default_region: str | None = None
) -> ParsedFile | list[ContactRow]:
    """``parse_file``'s answer, or the contact rows of a plainly valid file (the common case,
    found without building a node graph or running jsonschema)."""
    rows = valid_contact_rows(data, default_region)
    return rows if rows is not None else parse_file(data, shown_as, default_region)


def _from_rows(rows: Sequence[ContactRow], shown_as: str) -> ParsedFile:
    contacts: list[DesiredContact] = []
    phones: list[PhoneDeclaration] = []
    warnings: list[PhoneWarning] = []
    for phone, fields, custom, line, phone_line, phone_column, warning, tags in rows:
        contacts.append(
            DesiredContact(
                phone,
                fields,
                custom,
                SourceLocation(shown_as, line),
                None if tags is None else tuple(tags),
            )
        )
        phones.append(PhoneDeclaration(phone, shown_as, phone_line, phone_column))
        if warning is not None:
            warnings.append(PhoneWarning(phone, shown_as, phone_line, phone_column, warning))
    return ParsedFile(contacts, phones, [], warnings)


def _parse_files(
    files: Sequence[tuple[bytes, str]], cache: ParseCache | None, default_region: str | None
) -> list[ParsedFile]:
    """Each file parsed, in order: from the cache when its bytes were seen before, else on
    the fast path, across processes when there is enough uncached YAML to pay for them."""
    results: list[ParsedFile | None] = [None] * len(files)
    keys: list[str] = []
    missing: list[int] = []
    for index, (data, shown_as) in enumerate(files):
        key = cache.key(data) if cache is not None else ""
        keys.append(key)
        rows = cache.get(key) if cache is not None else None
        if rows is None:
            missing.append(index)
        else:
            results[index] = _from_rows(rows, shown_as)
    outcomes = _parse_missing([files[i] for i in missing], default_region)
    for index, outcome in zip(missing, outcomes, strict=True):
        if isinstance(outcome, ParsedFile):
            results[index] = outcome
            continue
        if cache is not None:
            cache.put(keys[index], outcome)
        results[index] = _from_rows(outcome, files[index][1])
    return [result for result in results if result is not None]


def _parse_missing(
    files: Sequence[tuple[bytes, str]], default_region: str | None
) -> list[ParsedFile | list[ContactRow]]:
    workers = min(os.cpu_count() or 1, len(files))
    total_bytes = sum(len(data) for data, _ in files)
    # Forked workers start in milliseconds and never re-run the caller's main module (spawn
    # and forkserver do); forking is safe only while this process runs a single thread.
    fork_safe = "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
    if (
        not fork_safe
        or workers < 2
        or len(files) < PARALLEL_MIN_FILES
        or total_bytes < PARALLEL_MIN_BYTES
    ):
        return [parse_file_fast(data, shown_as, default_region) for data, shown_as in files]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(
            pool.map(
                parse_file_fast,
                [data for data, _ in files],
                [shown_as for _, shown_as in files],
                [default_region] * len(files),
                chunksize=max(1, len(files) // (workers * 4)),
            )
        )


def _problem_order(problem: Problem) -> tuple[int, int]:
    return problem.line, problem.column


def _contacts(
    loaded: LoadedYaml,
    shown_as: str,
    bad_paths: set[tuple[str | int, ...]],
    default_region: str | None,
) -> ParsedFile:
    """The contacts the schema accepted whose phone can be read, and the problems and
    warnings of the phones read."""
    # Only the values the schema accepted become contacts, so the asserts below hold.
    bad_items = {path[1] for path in bad_paths if len(path) > 1}
    assert isinstance(loaded.value, dict)
    items = loaded.value["contacts"]
    assert isinstance(items, list)
    _, items_node = locate(loaded.root, ("contacts",))
    parsed = ParsedFile([], [], [], [])
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "phone" not in item:
            continue
        item_node = items_node.value[index]
        if ("contacts", index, "phone") in bad_paths:
            continue
        phone_key, _ = locate(item_node, ("phone",))
        line, column = position(phone_key or item_node)
        phone = read_phone(str(item["phone"]), default_region)
        if isinstance(phone, PhoneProblem):
            parsed.problems.append(Problem(shown_as, line, column, phone.message))
            continue
        parsed.phones.append(PhoneDeclaration(phone.phone, shown_as, line, column))
        if phone.warning is not None:
            parsed.warnings.append(PhoneWarning(phone.phone, shown_as, line, column, phone.warning))
        if index in bad_items:
            continue
        email = item.get("email")
        problem = email_problem(email) if isinstance(email, str) else None
        if problem is not None:
            _, email_node = locate(item_node, ("email",))
            line, column = position(email_node)
            message = f'email "{email}" is not a valid email address: {problem}'
            parsed.problems.append(Problem(shown_as, line, column, message))
            continue
        tags: tuple[str, ...] | None = None
        if "tags" in item:
            read = read_tags(item["tags"])  # type: ignore[arg-type]
            if isinstance(read, list):
                parsed.problems.extend(_tag_problems(read, item_node, shown_as))
                continue
            tags = read
        custom = item.get("custom", {})
        assert isinstance(custom, dict)
        parsed.contacts.append(
            DesiredContact(
                phone=phone.phone,
                fields=composed_fields(
                    {name: item[name] for name in STANDARD_FIELDS if name in item}  # type: ignore[misc]
                ),
                custom=composed_custom(_custom_values(custom)),
                source=SourceLocation(shown_as, item_node.start_mark.line + 1),
                tags=tags,
            )
        )
    return parsed


def _tag_problems(problems: Sequence[TagProblem], item_node: Node, shown_as: str) -> list[Problem]:
    """Each problem of a ``tags:`` list where it is written: at its tag, or at the key."""
    key_node, _ = locate(item_node, ("tags",))
    located: list[Problem] = []
    for problem in problems:
        if problem.item is None:
            _, node = locate(item_node, ("tags",))
            line, column = position(key_node or node)
        else:
            _, node = locate(item_node, ("tags", problem.item))
            line, column = position(node)
        located.append(Problem(shown_as, line, column, problem.message))
    return located


def _custom_values(custom: Mapping[str, object]) -> dict[str, CustomValue]:
    values: dict[str, CustomValue] = {}
    for title, value in custom.items():
        assert value is None or isinstance(value, str | int | float | bool)
        values[title] = value
    return values


def contact_files(contacts_dir: Path) -> list[Path]:
    """Every YAML file under ``contacts_dir``, recursively, in a stable order; hidden files
    and directories (``.git``, editor backups) are skipped."""
    found = [
        path
        for path in contacts_dir.rglob("*")
        if path.suffix in YAML_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(contacts_dir).parts)
    ]
    return sorted(found, key=lambda path: path.relative_to(contacts_dir).as_posix())


def _unread_file_problems(contacts_dir: Path, base: Path) -> list[Problem]:
    """What looks like contacts that ``contact_files`` cannot see: a contacts file whose link
    target is gone, a linked directory (never followed, so ``export --force`` cannot delete
    through it), a ``.YAML``/``.Yml`` file. Skipped silently, their contacts would look
    undeclared and be pruned."""
    problems: list[Problem] = []
    for path in sorted(contacts_dir.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(contacts_dir).parts):
            continue
        shown_as = display_path(path, base)
        if path.suffix not in YAML_SUFFIXES and path.suffix.lower() in YAML_SUFFIXES:
            problems.append(
                Problem(
                    shown_as,
                    1,
                    1,
                    f"is not read: only *.yaml and *.yml files are; rename it to "
                    f"{path.stem}{path.suffix.lower()}",
                )
            )
        elif not path.is_symlink():
            continue
        elif path.is_dir():
            problems.append(
                Problem(
                    shown_as,
                    1,
                    1,
                    "is a symbolic link to a directory, which is not read; move its files "
                    "into the contacts directory, or link each file",
                )
            )
        elif path.suffix in YAML_SUFFIXES and not path.exists():
            problems.append(
                Problem(
                    shown_as,
                    1,
                    1,
                    "is a symbolic link to a file that does not exist; restore the file or "
                    "remove the link",
                )
            )
    return problems


def _duplicate_problems(phones: Sequence[PhoneDeclaration]) -> list[Problem]:
    # Places as tuples, worded only for a duplicate: 100k f-strings cost a warm plan 40 ms.
    first_place: dict[str, tuple[str, int, int]] = {}
    problems: list[Problem] = []
    for phone, path, line, column in phones:
        place = (path, line, column)
        earlier = first_place.setdefault(phone, place)
        if earlier != place:
            problems.append(
                Problem(
                    path,
                    line,
                    column,
                    f"phone {phone} is declared twice: here and at {':'.join(map(str, earlier))}",
                )
            )
    return problems


def load_desired_state(
    contacts_dir: Path,
    cwd: Path | None = None,
    *,
    cache_dir: Path | None = None,
    default_region: str | None = None,
) -> DesiredState:
    """Load and validate every contacts file under ``contacts_dir``; with ``cache_dir``,
    files parsed before (same bytes) are read from the parse cache there; phones written
    without a country code are read in ``default_region`` (``phones.default_region``).

    Raises ``DesiredStateError`` with every problem found, in file and line order, and the
    warnings beside them."""
    base = Path.cwd() if cwd is None else cwd
    shown_dir = display_path(contacts_dir, base)
    if not contacts_dir.is_dir():
        raise InputNotFoundError(
            f'contacts directory "{shown_dir}" does not exist; create it or pass --contacts DIR'
        )
    files = contact_files(contacts_dir)
    unread_problems = _unread_file_problems(contacts_dir, base)
    if not files and not unread_problems:
        raise InputNotFoundError(
            f'no *.yaml or *.yml files under "{shown_dir}"; add one '
            '(a file with "contacts: []" declares no contacts)'
        )
    contacts: list[DesiredContact] = []
    phones: list[PhoneDeclaration] = []
    warnings: list[PhoneWarning] = []
    problems: list[Problem] = unread_problems
    readable: list[tuple[bytes, str]] = []
    for path in files:
        shown_as = display_path(path, base)
        data = read_capped(path, shown_as)
        if isinstance(data, Problem):
            problems.append(data)
            continue
        readable.append((data, shown_as))
    cache = ParseCache(cache_dir, default_region) if cache_dir is not None else None
    with collector_paused():
        for parsed in _parse_files(readable, cache, default_region):
            contacts.extend(parsed.contacts)
            phones.extend(parsed.phones)
            problems.extend(parsed.problems)
            warnings.extend(parsed.warnings)
    problems.extend(_duplicate_problems(phones))
    file_order = {display_path(path, base): index for index, path in enumerate(files)}
    warnings.sort(key=lambda w: (file_order.get(w.path, -1), w.line, w.column))
    if problems:
        problems.sort(key=lambda p: (file_order.get(p.path, -1), p.line, p.column))
        raise DesiredStateError(problems, warnings=tuple(map(str, warnings)))
    return DesiredState(tuple(contacts), tuple(files), tuple(warnings))
