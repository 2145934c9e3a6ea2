"""Time a cold load of 100k contacts in 100 files whose phones are written as people write
them (canonical digits, "+1 (415) 555-0101", "+44 20 …", national with default_region),
beside the same contacts all written as canonical digits, in the same process; and, as the
baseline, the canonical files loaded the way the loader did before phones were parsed (the
identity check alone, no numbering metadata).

    .venv/bin/python bench/bench_phones.py

Not a test: it prints both figures and their ratio (the target: mixed within 1.5x)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import phonenumbers

from reconciler.core.phones import is_canonical_phone
from reconciler.desired import fast_parse, loader, phone_spellings
from reconciler.desired.loader import load_desired_state

TOTAL = 100_000
FILES = 100
REGION = "US"
READER = "read_phone"


def _us(number: int) -> tuple[str, str]:
    exchange, line = 200 + number // 10_000 % 800, number % 10_000
    canonical = f"1415{exchange:03d}{line:04d}"
    if number % 4 == 1:
        return canonical, f"+1 (415) {exchange:03d}-{line:04d}"
    if number % 4 == 3:
        return canonical, f"(415) {exchange:03d}-{line:04d}"  # national: default_region US
    return canonical, canonical


def _gb(number: int) -> tuple[str, str]:
    block, line = number // 10_000, number % 10_000
    return f"44207{block:03d}{line:04d}", f"+44 20 7{block:03d} {line:04d}"


def phones(number: int) -> tuple[str, str]:
    """The canonical phone of contact ``number`` and how the mixed directory writes it."""
    return _gb(number) if number % 8 == 6 else _us(number)


def generate(directory: Path, spelled: Callable[[int], str]) -> None:
    per_file = TOTAL // FILES
    for file_index in range(FILES):
        lines = ["contacts:\n"]
        for number in range(file_index * per_file, (file_index + 1) * per_file):
            lines.append(
                f'  - phone: "{spelled(number)}"\n'
                f"    first: First{number}\n"
                f"    last: Last{number}\n"
                f"    email: user{number}@example.com\n"
            )
        (directory / f"team-{file_index:03d}.yaml").write_text("".join(lines), encoding="utf-8")


def cold_load(directory: Path) -> tuple[float, frozenset[str]]:
    # Cold: no parse cache on disk, and no spelling read before in this process.
    phone_spellings.read_phone.cache_clear()
    start = time.perf_counter()
    state = load_desired_state(directory, directory, default_region=REGION)
    seconds = time.perf_counter() - start
    return seconds, frozenset(contact.phone for contact in state.contacts)


def identity_check_only(
    written: str, default_region: str | None = None
) -> phone_spellings.ReadPhone | phone_spellings.PhoneProblem:
    """What the loader checked before phones were parsed: the canonical identity alone."""
    if is_canonical_phone(written):
        return phone_spellings.ReadPhone(written, None)
    return phone_spellings.PhoneProblem(f"phone {written!r} is not canonical", None)


def before_phone_parsing(directory: Path) -> float:
    # Both loading paths read phones through their own reference to read_phone.
    readers = [(module, module.__dict__[READER]) for module in (loader, fast_parse)]
    for module, _ in readers:
        setattr(module, READER, identity_check_only)
    try:
        return cold_load(directory)[0]
    finally:
        for module, reader in readers:
            setattr(module, READER, reader)


def main() -> None:
    assert len({phones(number)[0] for number in range(TOTAL)}) == TOTAL
    with tempfile.TemporaryDirectory() as canonical_name, tempfile.TemporaryDirectory() as mixed:
        canonical_dir, mixed_dir = Path(canonical_name), Path(mixed)
        generate(canonical_dir, lambda number: phones(number)[0])
        generate(mixed_dir, lambda number: phones(number)[1])
        # The numbering metadata loads on first use; loaded once here, before either run,
        # the forked workers of both inherit it and neither run pays it alone.
        phone_spellings.read_phone(phones(0)[1], REGION)
        phone_spellings.read_phone(phones(6)[1], REGION)
        before = before_phone_parsing(canonical_dir)
        baseline, baseline_phones = cold_load(canonical_dir)
        spelled, spelled_phones = cold_load(mixed_dir)
    assert spelled_phones == baseline_phones
    print(f"phonenumbers {phonenumbers.__version__}, {TOTAL} contacts in {FILES} files, cold")
    print(f"  before phone parsing (identity check only, canonical files) {before:6.2f} s")
    print(f"  canonical digits                                            {baseline:6.2f} s")
    print(f"  mixed spellings                                             {spelled:6.2f} s")
    print(f"  mixed / before: {spelled / before:.2f}x (target: within 1.5x)")
    print(f"  mixed / canonical: {spelled / baseline:.2f}x")


if __name__ == "__main__":
    main()
