"""How many write requests and how long ``apply`` takes for 10k creates, against a local
sandbox over real HTTP.

    .venv/bin/python bench/bench_apply.py [--contacts 10000]

It starts ``reconciler sandbox --port 0``, writes a contacts directory in a temporary
repository, runs ``apply --auto-approve`` and reads the sandbox's request counts. The write
requests must be ceil(N / 100) bulk writes plus one custom-field creation (the ownership
marker); the script exits 1 when they are not."""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx

from reconciler.commands.apply import ApplyRequest
from reconciler.commands.apply import run as run_apply
from reconciler.commands.environment import Environment
from reconciler.report.console import Console
from reconciler.sandbox.launch import running_sandbox

BATCH_LIMIT = 100
WRITE_ROUTES = ("POST /v2/contacts", "DELETE /v2/contacts", "POST /v1/contacts/fields")


def write_repository(root: Path, count: int) -> None:
    (root / "contacts").mkdir()
    (root / "reconciler.yaml").write_text("ownership:\n  owner: bench\n", encoding="utf-8")
    contacts = [
        {"phone": f"1{number:010d}", "first": f"First{number}", "last": "Bench"}
        for number in range(count)
    ]
    (root / "contacts" / "bench.yaml").write_text(
        json.dumps({"contacts": contacts}, indent=1), encoding="utf-8"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    arguments = parser.parse_args()
    api_key = "bench-" + secrets.token_hex(8)
    with running_sandbox({"HEYMARKET_API_KEY": api_key}) as url:
        with tempfile.TemporaryDirectory() as directory:
            root = Path(directory)
            write_repository(root, arguments.contacts)
            # Relative paths in the configuration are read from the working directory.
            os.chdir(root)
            environ = {"HEYMARKET_API_URL": url, "HEYMARKET_API_KEY": api_key}
            quiet = Console(out=lambda _: None, err=lambda _: None, ask=lambda _: "")
            started = time.perf_counter()
            code = run_apply(
                ApplyRequest(auto_approve=True),
                Environment(environ=environ, cwd=root, console=quiet),
            )
            elapsed = time.perf_counter() - started
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}) as control:
            stats = control.get("/_sandbox/stats").json()
            stored = len(control.get("/_sandbox/contacts").json())
    by_route: dict[str, int] = stats["by_route"]
    write_requests = sum(by_route.get(route, 0) for route in WRITE_ROUTES)
    expected = math.ceil(arguments.contacts / BATCH_LIMIT) + 1
    print(f"contacts created:   {stored} (apply exit code {code})")
    print(
        f"write requests:     {write_requests} "
        f"(expected ceil({arguments.contacts}/100) + 1 = {expected})"
    )
    for route in WRITE_ROUTES:
        print(f"  {route}: {by_route.get(route, 0)}")
    print(f"all requests:       {stats['requests']}")
    print(f"wall time:          {elapsed:.2f} s ({arguments.contacts / elapsed:,.0f} contacts/s)")
    return 0 if code == 0 and write_requests == expected and stored == arguments.contacts else 1


if __name__ == "__main__":
    sys.exit(main())
