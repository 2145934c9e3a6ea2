"""Time to load and validate generated desired states of 10k and 100k contacts (100 files),
beside the naive baseline (ruamel.yaml round-trip load + jsonschema per file).

    .venv/bin/python bench/bench_load.py [--baseline-100k]

Not a test: it prints figures to compare between changes on the same machine."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

from reconciler.desired.loader import contact_files, load_desired_state
from reconciler.desired.schemas import CONTACTS_SCHEMA, validator

FILES = 100
TIERS = ("gold", "silver", "bronze")
REGIONS = ("EMEA", "AMER", "APAC")


def generate(directory: Path, total: int) -> None:
    per_file = total // FILES
    for file_index in range(FILES):
        lines = [f"# generated team {file_index}\n", "contacts:\n"]
        for offset in range(per_file):
            number = file_index * per_file + offset
            lines.append(
                f'  - phone: "1510{number:07d}"  # contact {number}\n'
                f"    first: First{number}\n"
                f"    last: Last{number}\n"
                f"    display_name: First{number} Last{number}\n"
                f"    email: user{number}@example.com\n"
                f"    is_opted_out: {'true' if number % 97 == 0 else 'false'}\n"
                f"    custom:\n"
                f"      Account tier: {TIERS[number % 3]}\n"
                f"      Region: {REGIONS[number % 3]}\n"
            )
        (directory / f"team-{file_index:03d}.yaml").write_text("".join(lines), encoding="utf-8")


def time_reconciler(directory: Path) -> tuple[float, int]:
    start = time.perf_counter()
    state = load_desired_state(directory, cwd=directory)
    return time.perf_counter() - start, len(state.contacts)


def time_baseline(directory: Path) -> float:
    start = time.perf_counter()
    round_trip = YAML(typ="rt")
    schema = validator(CONTACTS_SCHEMA)
    for path in contact_files(directory):
        document = round_trip.load(path.read_text(encoding="utf-8"))
        errors = list(schema.iter_errors(_plain(document)))
        assert not errors
    return time.perf_counter() - start


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline-100k", action="store_true", help="also time the slow path")
    arguments = parser.parse_args()
    for total in (10_000, 100_000):
        with tempfile.TemporaryDirectory() as name:
            directory = Path(name)
            generate(directory, total)
            seconds, count = time_reconciler(directory)
            print(f"{total:>7} contacts, {FILES} files: reconciler load+validate {seconds:6.2f} s")
            assert count == total
            if total == 10_000 or arguments.baseline_100k:
                baseline = time_baseline(directory)
                print(f"{'':>7} baseline (round-trip + jsonschema per file) {baseline:6.2f} s")


if __name__ == "__main__":
    main()
