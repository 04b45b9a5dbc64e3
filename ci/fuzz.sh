#!/usr/bin/env bash
# Fuzz every target of proptests/fuzz for MINUTES minutes in all (default 10), two at a time
# (one per core), under AddressSanitizer, from seeds built here: the quick corpus's binaries
# and manifest, the argument strings of every probe of the real binaries setup installs, and
# the kept regression inputs. Prints executions, coverage and crashes per target; exits 1 on
# any crash, leaving the input in proptests/fuzz/artifacts/TARGET/ (add it to
# proptests/fuzz/regressions/TARGET/ once fixed).
# Usage: ci/fuzz.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || {
  echo "fuzz: a nightly toolchain is needed (rustup toolchain install nightly)" >&2
  exit 1
}

targets=(parse decode roundtrip spec manifest ext_line)
seeds=target/fuzz-corpus
cargo build --release --locked
bin=target/release/usdtkit

echo "== seeds"
quick=target/usdtkit-fixtures/quick-1
[ -f "$quick/manifest.json" ] || "$bin" gen --profile quick --out "$quick" >/dev/null
for t in "${targets[@]}"; do
  mkdir -p "$seeds/$t"
  cp proptests/fuzz/regressions/"$t"/* "$seeds/$t/"
done
# ELF files of the quick corpus (under 64 KiB: libFuzzer mutates small inputs best).
find "$quick" -type f -size -64k -exec sh -c 'head -c4 "$1" | grep -q ELF' _ {} \; \
  -exec cp {} "$seeds/parse/" \;
cp "$quick/manifest.json" "$seeds/manifest/quick"
# Every distinct argument string of the real binaries and the corpus, x86-64 (first byte 0).
python3 - "$seeds" "$bin" "$quick" <<'EOF'
import hashlib, json, os, subprocess, sys
seeds, binary, quick = sys.argv[1:4]
files = [f for f in ["/usr/bin/python3.11", "/usr/lib/postgresql/15/bin/postgres",
                     "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so"] if os.path.exists(f)]
for root, _, names in os.walk(quick):
    files += [os.path.join(root, n) for n in names if n in ("prog", "libusdtfix.so")]
out = subprocess.run([binary, "list", "--json", *files], capture_output=True, text=True).stdout
arch_byte = {"x86_64": 0, "i386": 1}
texts = set()
for line in out.splitlines():
    d = json.loads(line)
    b = arch_byte.get(d.get("arch"), 0)
    for p in d.get("probes", []):
        for s in p["sites"]:
            texts.add((b, " ".join(a["text"] for a in s["args"])))
for b, t in texts:
    data = bytes([b]) + t.encode()
    name = hashlib.sha1(data).hexdigest()[:16]
    for target in ("decode", "roundtrip"):
        open(os.path.join(seeds, target, name), "wb").write(data)
    open(os.path.join(seeds, "spec", name), "wb").write(bytes([b]) + (0x401000).to_bytes(8, "little") + t.encode())
print(f"fuzz: {len(texts)} distinct argument strings as seeds")
EOF

echo "== build"
cargo +nightly fuzz build --fuzz-dir proptests/fuzz -O

secs=$(( minutes * 60 * 2 / ${#targets[@]} ))
[ "$secs" -ge 10 ] || secs=10
logs=target/fuzz-logs
mkdir -p "$logs"
run() {
  local t=$1 max_len=4096
  case $t in parse) max_len=65536 ;; manifest) max_len=1048576 ;; esac
  cargo +nightly fuzz run --fuzz-dir proptests/fuzz -O "$t" "$seeds/$t" -- \
    -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 > "$logs/$t.log" 2>&1
}
echo "== fuzzing: ${#targets[@]} targets, $secs s each, two at a time"
status=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  pids=()
  for t in "${targets[@]:i:2}"; do
    run "$t" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || status=1; done
done

printf '%-10s %14s %10s %8s %8s\n' target executions exec/s edges crashes
total=0
for t in "${targets[@]}"; do
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$logs/$t.log" | tail -1 | awk '{print $2}')
  rate=$(( ${execs:-0} / secs ))
  cov=$(grep -o 'cov: [0-9]*' "$logs/$t.log" | tail -1 | awk '{print $2}')
  crashes=$(find proptests/fuzz/artifacts/"$t" -type f 2>/dev/null | wc -l)
  printf '%-10s %14s %10s %8s %8s\n' "$t" "${execs:-0}" "${rate:-0}" "${cov:-0}" "$crashes"
  total=$(( total + ${execs:-0} ))
  [ "$crashes" -eq 0 ] || status=1
done
echo "fuzz: $total executions in all"
if [ "$status" -ne 0 ]; then
  echo "fuzz: a target crashed or failed; logs in $logs, inputs in proptests/fuzz/artifacts" >&2
fi
exit $status
