#!/usr/bin/env bash
# The main job end to end, with no Heymarket account: start a local sandbox seeded with a
# small live account (demo/seed.yaml), run `reconciler plan --prune` of the example contacts/
# against it, and stop the sandbox however the plan ends. Extra arguments go to the plan
# (e.g. `demo/run.sh --format markdown`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"

workdir="$(mktemp -d)"
sandbox_pid=""
cleanup() {
  if [ -n "$sandbox_pid" ]; then
    kill "$sandbox_pid" 2>/dev/null || true
    wait "$sandbox_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Made-up credentials for this run only: the sandbox accepts them, the plan sends them.
unset HEYMARKET_SECRET_ID HEYMARKET_SECRET_KEY
HEYMARKET_API_KEY="demo-$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')"
export HEYMARKET_API_KEY

# Created first: the background job may not have opened it when the loop below reads it.
: >"$workdir/sandbox.log"
PYTHONUNBUFFERED=1 "$PYTHON" -m reconciler sandbox --port 0 --seed demo/seed.yaml \
  >"$workdir/sandbox.log" 2>&1 &
sandbox_pid=$!

url=""
for _ in $(seq 300); do
  url="$(sed -n 's/^Sandbox listening on //p' "$workdir/sandbox.log")"
  if [ -n "$url" ]; then break; fi
  if ! kill -0 "$sandbox_pid" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "demo: the sandbox did not start:" >&2
  cat "$workdir/sandbox.log" >&2
  exit 1
fi
export HEYMARKET_API_URL="$url"

echo "Live account: a sandbox at $url seeded from demo/seed.yaml"
echo "\$ reconciler plan --prune --config demo/reconciler.yaml --contacts contacts $*"
echo
"$PYTHON" -m reconciler plan --prune --config demo/reconciler.yaml --contacts contacts "$@"
