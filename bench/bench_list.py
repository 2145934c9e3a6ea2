"""How many requests and how long ``list_contacts()`` takes for 10k and 100k contacts.

Starts ``reconciler sandbox`` on a free loopback port, seeds it (every contact its own
``updated`` second, except 500 that share one, starting mid-page), lists the account and
prints the requests used beside the minimum, ceil(N / 100) + 1.

    .venv/bin/python -m bench.bench_list [--sizes 10000,100000]   # from the repository root
"""

from __future__ import annotations

import argparse
import math
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from reconciler.heymarket import ApiKeyCredentials, HeymarketClient
from reconciler.sandbox.launch import running_sandbox

SEED_CHUNK = 10_000
SHARED_SECOND_RUN = 500
# The limiter would otherwise stretch a 100k listing over minutes by design (500 a minute is
# Heymarket's limit); the wall time measured here is the client's and the sandbox's own.
BENCH_REQUESTS_PER_MINUTE = 1_000_000
HEYMARKET_REQUESTS_PER_MINUTE = 500


def contacts_to_seed(count: int) -> list[dict[str, Any]]:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    run_start = count // 2 + 37
    contacts = []
    for number in range(count):
        second = run_start if run_start <= number < run_start + SHARED_SECOND_RUN else number
        updated = (base + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")
        contacts.append({"phone": f"1{number:010d}", "updated": updated})
    return contacts


def seed(control: httpx.Client, count: int) -> None:
    control.post("/_sandbox/reset").raise_for_status()
    contacts = contacts_to_seed(count)
    for start in range(0, count, SEED_CHUNK):
        control.post("/_sandbox/seed", json=contacts[start : start + SEED_CHUNK]).raise_for_status()


def measure(url: str, api_key: str, count: int) -> tuple[int, float]:
    with HeymarketClient(
        url, ApiKeyCredentials(api_key), requests_per_minute=BENCH_REQUESTS_PER_MINUTE
    ) as client:
        started = time.perf_counter()
        contacts = client.list_contacts()
        elapsed = time.perf_counter() - started
        requests = client.request_count
    if len(contacts) != count or len({contact.id for contact in contacts}) != count:
        raise SystemExit(f"listed {len(contacts)} contacts, expected {count} distinct")
    return requests, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated account sizes")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    api_key = "bench-" + secrets.token_hex(12)
    with running_sandbox({"HEYMARKET_API_KEY": api_key}) as url:
        control = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=300
        )
        print(f"list_contacts() against reconciler sandbox at {url} (page cap 100)")
        print(
            f"client limiter at {BENCH_REQUESTS_PER_MINUTE:,} requests/minute for the wall time; "
            f"at Heymarket's {HEYMARKET_REQUESTS_PER_MINUTE}/minute it would wait out the limit"
        )
        print(
            f"{'contacts':>9} {'requests':>9} {'minimum':>8} {'wall time':>10} {'at 500/min':>11}"
        )
        for count in sizes:
            seed(control, count)
            requests, elapsed = measure(url, api_key, count)
            minimum = math.ceil(count / 100) + 1
            paced = max(elapsed, (math.ceil(requests / HEYMARKET_REQUESTS_PER_MINUTE) - 1) * 60)
            print(f"{count:>9,} {requests:>9,} {minimum:>8,} {elapsed:>9.2f}s {paced:>10.0f}s")
        control.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
