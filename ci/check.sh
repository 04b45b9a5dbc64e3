#!/usr/bin/env bash
# The main job: set up, build, and run usdtkit over its corpus.
#
# Until the fixture generator and the conformance harness land (issues 3-5), the corpus is
# the probe-rich binaries ci/setup.sh installs: every note is listed and every argument
# decoded, and the run fails if any note or argument cannot be read.
# Usage: ci/check.sh [PATH...]
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/setup.sh
cargo build --release --locked
bin=target/release/usdtkit

if [ "$#" -gt 0 ]; then
  corpus=("$@")
else
  corpus=(
    /usr/bin/python3.11
    /usr/lib/postgresql/15/bin/postgres
    /usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so
    /usr/lib/x86_64-linux-gnu/libstdc++.so.6
  )
fi

status=0
for f in "${corpus[@]}"; do
  if ! "$bin" list "$f" > /tmp/usdtkit-check.$$ ; then status=1; fi
  head -1 /tmp/usdtkit-check.$$
done
rm -f /tmp/usdtkit-check.$$
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
print(f"corpus: {sites} sites, {args} arguments, {bad} not decoded")
' || status=1
exit "$status"
