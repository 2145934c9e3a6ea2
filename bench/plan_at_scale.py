"""plan and apply on a large account, end to end, against a local sandbox:

    make bench            # = .venv/bin/python bench/plan_at_scale.py --contacts 100000 --million

It generates N contacts in 100 files and a sandbox account holding the same contacts, owned
by this repository, with 1% of them different live (so the plan has N/100 updates), then
prints side by side:

- the local part of plan (load + validate + diff + render, live state already fetched):
  cold (empty parse cache) and warm (nothing changed on disk), in this process;
- the naive baseline in the same run (ruamel.yaml round-trip load + jsonschema per file),
  measured on --baseline-contacts of the files and scaled linearly to N unless they are all
  of them, and the floor: json.load of the same data; our ratio to each;
- `reconciler plan` as a user runs it: cold (no parse cache, no snapshot: a full listing),
  then warm --repeat times (the snapshot read incrementally): wall time, peak RSS of the
  process (and of its parse workers), API requests beside the minimum (ceil(N / page cap)
  + 1 for a full listing); beside them, in the same run, the bare start of an interpreter
  that imports the CLI, since the machine's load moves every figure;
- `reconciler apply --auto-approve`: API requests, writes beside ceil(changes / batch cap);
- with --million: the same account at 1,000,000 contacts (its own sandbox): `validate`,
  then `plan` cold and warm, each with its wall time, peak RSS and requests.

Not a test: figures for the README, to compare between changes on the same machine."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx
from ruamel.yaml import YAML

from reconciler.commands.context import (
    cache_directory,
    connect,
    fetch_live_state,
    load_desired,
    make_plan,
    resolve_settings,
)
from reconciler.desired.schemas import CONTACTS_SCHEMA, validator
from reconciler.render import RenderOptions, render_plan
from reconciler.sandbox.launch import running_sandbox

PAGE_CAP = 100
BATCH_CAP = 100
OWNER = "bench"
TIERS = ("gold", "silver", "bronze")
REGIONS = ("EMEA", "AMER", "APAC")
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
WRITE_ROUTE = "POST /v2/contacts"


def declared(number: int) -> dict[str, Any]:
    return {
        # Exchanges 200 and up: numbers the numbering plan knows as assignable (an exchange
        # starting 0 or 1 would make every phone a "not known to be assigned" warning).
        "phone": f"1510{2_000_000 + number:07d}",
        "first": f"First{number}",
        "last": f"Last{number}",
        "display_name": f"First{number} Last{number}",
        "email": f"user{number}@example.com",
        "is_opted_out": number % 97 == 0,
        "custom": {"Account tier": TIERS[number % 3], "Region": REGIONS[number % 3]},
    }


def yaml_item(contact: dict[str, Any], number: int) -> str:
    custom = contact["custom"]
    return (
        f'  - phone: "{contact["phone"]}"  # contact {number}\n'
        f"    first: {contact['first']}\n"
        f"    last: {contact['last']}\n"
        f"    display_name: {contact['display_name']}\n"
        f"    email: {contact['email']}\n"
        f"    is_opted_out: {'true' if contact['is_opted_out'] else 'false'}\n"
        f"    custom:\n"
        f"      Account tier: {custom['Account tier']}\n"
        f"      Region: {custom['Region']}\n"
    )


def write_files(root: Path, total: int, files: int, *, with_json: bool = True) -> None:
    """The contacts as YAML under root/contacts and as JSON (the floor) under root/json."""
    (root / "contacts").mkdir(parents=True)
    (root / "json").mkdir()
    per_file = math.ceil(total / files)
    for file_index in range(files):
        numbers = range(file_index * per_file, min(total, (file_index + 1) * per_file))
        contacts = [declared(number) for number in numbers]
        text = "".join(yaml_item(c, n) for c, n in zip(contacts, numbers, strict=True))
        name = f"team-{file_index:03d}"
        (root / "contacts" / f"{name}.yaml").write_text(
            f"# generated team {file_index}\ncontacts:\n{text}", encoding="utf-8"
        )
        if with_json:
            (root / "json" / f"{name}.json").write_text(
                json.dumps({"contacts": contacts}), encoding="utf-8"
            )


def seed_account(control: httpx.Client, total: int) -> int:
    """The declared contacts, live and owned, every 100th with another first name."""
    ids: dict[str, str] = control.post(
        "/_sandbox/fields", json={"titles": ["Account tier", "Region", "Managed by"]}
    ).json()
    changed = 0
    batch: list[dict[str, Any]] = []
    for number in range(total):
        contact = declared(number)
        if number % 100 == 0:
            contact["first"] = f"Old{number}"
            changed += 1
        contact["custom"] = {ids[title]: value for title, value in contact["custom"].items()}
        contact["custom"][ids["Managed by"]] = OWNER
        # An account built up over time: one write a minute, oldest first.
        contact["updated"] = (EPOCH + timedelta(minutes=number)).strftime("%Y-%m-%dT%H:%M:%SZ")
        batch.append(contact)
        if len(batch) == 5000 or number == total - 1:
            control.post("/_sandbox/seed", json=batch, timeout=300).raise_for_status()
            batch = []
    return changed


def requests_of(control: httpx.Client, run: Callable[[], Any]) -> tuple[Any, dict[str, int]]:
    before: dict[str, int] = control.get("/_sandbox/stats").json()["by_route"]
    result = run()
    after: dict[str, int] = control.get("/_sandbox/stats").json()["by_route"]
    used = {route: count - before.get(route, 0) for route, count in after.items()}
    return result, {route: count for route, count in used.items() if count}


class Run(NamedTuple):
    code: int
    seconds: float
    rss_mb: int
    requests: dict[str, int]


# Started between this process and the command: a child of this (large) process inherits its
# peak RSS as a floor (Linux keeps it across exec), which would hide the command's own. The
# launcher is small, so a child it forks starts from its few MB; it reports the command's
# peak RSS (the largest of it and its parse workers, in KB) on stdout.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.execv(sys.executable, [sys.executable, "-m", "reconciler", *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss, flush=True)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_cli(args: list[str], root: Path, env: dict[str, str]) -> tuple[int, float, int]:
    """Exit code, wall seconds and peak RSS in MB (the process or its largest worker)."""
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *args],
        cwd=root,
        env=env,
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if process.returncode not in (0, 2):
        errors = process.stderr.decode(errors="replace")
        raise SystemExit(f"reconciler {' '.join(args)} failed:\n{errors}")
    return process.returncode, elapsed, int(process.stdout.split()[-1]) // 1024


def counted_run(control: httpx.Client, args: list[str], root: Path, env: dict[str, str]) -> Run:
    (code, seconds, rss), used = requests_of(control, lambda: run_cli(args, root, env))
    return Run(code, seconds, rss, used)


def interpreter_start() -> float:
    """Seconds to start Python and import the CLI: the floor under every command's figure."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import reconciler.cli, reconciler.commands.plan"], check=True
    )
    return time.perf_counter() - started


def cli_environment(environ: dict[str, str]) -> dict[str, str]:
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("HEYMARKET_")}
    cli_env.update(environ)
    return cli_env


def write_config(root: Path, url: str) -> None:
    # The sandbox has no rate limit unless asked; Heymarket's 500 a minute would make a
    # 100k full listing take over 2 minutes of waiting, which is what the snapshot avoids.
    (root / "reconciler.yaml").write_text(
        f"api:\n  url: {url}\n  requests_per_minute: 1000000\nownership:\n  owner: {OWNER}\n",
        encoding="utf-8",
    )


def million(total: int, files: int, warm_runs: int) -> list[tuple[str, Run]]:
    """validate, then plan cold and warm on an account of ``total`` contacts."""
    api_key = "bench-" + secrets.token_hex(8)
    root = Path(tempfile.mkdtemp(prefix="plan-at-scale-1m-"))
    try:
        with running_sandbox({"HEYMARKET_API_KEY": api_key}) as url:
            control = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"})
            with control:
                print(f"Generating {total:,} contacts in {files} files and the sandbox account...")
                write_files(root, total, files, with_json=False)
                write_config(root, url)
                seed_account(control, total)
                env = cli_environment({"HEYMARKET_API_URL": url, "HEYMARKET_API_KEY": api_key})
                runs = [("validate", counted_run(control, ["validate"], root, env))]
                plan_args = ["plan", "--format", "json"]
                runs.append(
                    ("plan, cold (full listing)", counted_run(control, plan_args, root, env))
                )
                for number in range(1, warm_runs + 1):
                    runs.append(
                        (
                            f"plan, warm {number} (incremental)",
                            counted_run(control, plan_args, root, env),
                        )
                    )
                return runs
    finally:
        shutil.rmtree(root, ignore_errors=True)


def time_it(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def naive_baseline(root: Path, files: int) -> float:
    """ruamel.yaml round-trip + jsonschema, file by file, over the first ``files`` files."""
    round_trip = YAML(typ="rt")
    schema = validator(CONTACTS_SCHEMA)
    paths = sorted((root / "contacts").glob("*.yaml"))[:files]
    started = time.perf_counter()
    for path in paths:
        document = json.loads(json.dumps(round_trip.load(path.read_text(encoding="utf-8"))))
        assert not list(schema.iter_errors(document))
    return time.perf_counter() - started


def json_floor(root: Path) -> float:
    started = time.perf_counter()
    for path in sorted((root / "json").glob("*.json")):
        with path.open("rb") as stream:
            json.load(stream)
    return time.perf_counter() - started


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument(
        "--baseline-contacts",
        type=int,
        default=10_000,
        help="contacts the naive baseline loads (scaled linearly to --contacts); 0: all",
    )
    parser.add_argument("--repeat", type=int, default=3, help="warm runs (median reported)")
    parser.add_argument(
        "--million",
        type=int,
        nargs="?",
        const=1_000_000,
        default=0,
        metavar="N",
        help="also validate and plan an account of N contacts (default 1,000,000)",
    )
    arguments = parser.parse_args()
    total, files = arguments.contacts, arguments.files
    api_key = "bench-" + secrets.token_hex(8)
    sandbox = contextlib.ExitStack()
    url = sandbox.enter_context(running_sandbox({"HEYMARKET_API_KEY": api_key}))
    root = Path(tempfile.mkdtemp(prefix="plan-at-scale-"))
    control = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"})
    try:
        print(f"Generating {total:,} contacts in {files} files and the sandbox account...")
        write_files(root, total, files)
        write_config(root, url)
        changes = seed_account(control, total)
        environ = {"HEYMARKET_API_URL": url, "HEYMARKET_API_KEY": api_key}
        yaml_bytes = sum(p.stat().st_size for p in (root / "contacts").glob("*.yaml"))

        # -- local plan, in this process, live state already fetched -----------------------
        settings = resolve_settings(
            config_file=None, contacts_dir=None, api_url=None, environ=environ, cwd=root
        )
        with connect(settings, environ) as client:
            live = fetch_live_state(client, refresh="full", cache_dir=root / "bench-live")

        def local_plan() -> None:
            desired = load_desired(settings)
            run = make_plan(desired, live, settings.config, prune=False)
            assert len(run.plan.updates) == changes, len(run.plan.updates)
            render_plan(run.plan, "text", RenderOptions())

        shutil.rmtree(cache_directory(settings), ignore_errors=True)
        cold = time_it(local_plan)
        warm = statistics.median(time_it(local_plan) for _ in range(arguments.repeat))
        shutil.rmtree(cache_directory(settings), ignore_errors=True)

        baseline_files = files
        if arguments.baseline_contacts:
            baseline_files = max(1, min(files, round(files * arguments.baseline_contacts / total)))
        measured = naive_baseline(root, baseline_files)
        baseline = measured * files / baseline_files
        floor = json_floor(root)

        # -- plan and apply as a user runs them -------------------------------------------
        cli_env = cli_environment(environ)
        plan_args = ["plan", "--format", "json"]
        start = interpreter_start()
        plan_cold = counted_run(control, plan_args, root, cli_env)
        plan_warm = [
            counted_run(control, plan_args, root, cli_env) for _ in range(arguments.repeat)
        ]
        applied = counted_run(control, ["apply", "--auto-approve"], root, cli_env)
        after_apply = counted_run(control, plan_args, root, cli_env)
    finally:
        control.close()
        sandbox.close()
        shutil.rmtree(root, ignore_errors=True)

    million_runs = million(arguments.million, files, warm_runs=2) if arguments.million else []
    listing_minimum = math.ceil(total / PAGE_CAP) + 1
    write_minimum = math.ceil(changes / BATCH_CAP)
    scaled = "" if baseline_files == files else f" (x{files / baseline_files:g})"

    def requests(used: dict[str, int]) -> str:
        return ", ".join(f"{route} {count}" for route, count in sorted(used.items()))

    print()
    print(f"Machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}")
    print(f"Data: {total:,} contacts, {files} files, {yaml_bytes / 1e6:.1f} MB of YAML; "
          f"{changes:,} changed live")  # fmt: skip
    print()
    print(f"{'local plan (load+validate+diff+render)':<46}{'seconds':>9}")
    rows = [
        ("ours, cold (empty cache)", cold),
        (f"ours, warm (median of {arguments.repeat})", warm),
        (f"naive: ruamel round-trip + jsonschema{scaled}", baseline),
        ("floor: json.load of the same data", floor),
    ]
    for label, seconds in rows:
        print(f"  {label:<44}{seconds:>9.2f}")
    if scaled:
        print(f"  naive measured on {baseline_files} of {files} files, scaled linearly")
    print(
        f"  naive / ours cold: {baseline / cold:.1f}x   naive / ours warm: {baseline / warm:.1f}x"
    )
    print(f"  ours cold / floor: {cold / floor:.1f}x   ours warm / floor: {warm / floor:.1f}x")
    print()
    print(f"{'reconciler command':<38}{'seconds':>8}{'peak RSS':>10}  API requests")

    def row(label: str, run: Run, note: str = "") -> None:
        total_requests = sum(run.requests.values())
        print(f"  {label:<36}{run.seconds:>8.2f}{run.rss_mb:>7} MB  {total_requests}{note}")

    row("plan, cold (full listing)", plan_cold,
        f" (minimum {listing_minimum} + 1 field list)")  # fmt: skip
    for number, run in enumerate(plan_warm, 1):
        row(f"plan, warm {number} (incremental)", run)
    warm_seconds = [run.seconds for run in plan_warm]
    print(f"  {'plan, warm: median (min-max)':<36}{statistics.median(warm_seconds):>8.2f}"
          f"  ({min(warm_seconds):.2f}-{max(warm_seconds):.2f}; "
          f"interpreter start + CLI imports alone: {start:.2f})")  # fmt: skip
    writes = applied.requests.get(WRITE_ROUTE, 0)
    row("apply --auto-approve", applied, f": {writes} writes (minimum {write_minimum})")
    row("plan after apply", after_apply)
    print()
    print(f"  plan, cold:        {requests(plan_cold.requests)}")
    print(f"  plan, warm:        {requests(plan_warm[-1].requests)}")
    print(f"  apply:             {requests(applied.requests)}")
    print(f"  plan after apply:  {requests(after_apply.requests)}")
    if arguments.million:
        print()
        print(f"{arguments.million:,} contacts ({files} files), each command once:")
        for label, run in million_runs:
            row(label, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
