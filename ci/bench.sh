#!/usr/bin/env bash
# Compare this working tree with another revision, benchmark by benchmark, in one run: both
# are built (separate target directories, one build at a time), then each benchmark runs
# alternately on the two builds, round after round (the order swapped every round), and
# new ÷ old is reported per benchmark as the median over the rounds with its spread.
# On a noisy 2-core machine only builds measured side by side like this compare; a saved
# baseline from another day does not.
# Needs root (attach and per-hit benchmarks).
# Usage: ci/bench.sh [BASE_REV] [--rounds N] [--repeat K] [--json] [--only SUBSTRING]
#                   [--save FILE] [--write]      (BASE_REV default: HEAD; N: 8; K: 3)
# Each round runs each build K times, interleaved, and takes each build's median: most of
# the noise here is from process to process, and one run per round hides a 10 ms change.
#        ci/bench.sh --tables FILE               (no run: tables from a saved --save FILE)
# --save keeps the results as JSON; --write (or --tables) puts the tables made from them
# into README.md and benches/README.md between their bench-table markers, so the figures
# there are never typed by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

base=HEAD
rounds=8
repeat=3
json=0
only=""
save=""
write=0
tables=""
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --json) json=1; shift ;;
    --only) only=$2; shift 2 ;;
    --save) save=$2; shift 2 ;;
    --write) write=1; shift ;;
    --tables) tables=$2; shift 2 ;;
    -*) echo "bench: unknown option $1" >&2; exit 2 ;;
    *) base=$1; shift ;;
  esac
done

if [ -n "$tables" ]; then
  exec python3 ci/bench_tables.py "$tables"
fi

rev=$(git rev-parse --short "$base")
old_src=target/bench-base/src-$rev
old_target=target/bench-base/target
if [ ! -d "$old_src" ]; then
  mkdir -p "$old_src"
  git archive "$rev" | tar -x -C "$old_src"
fi
echo "bench: building $rev (old) and the working tree (new)" >&2
(cd "$old_src" && CARGO_TARGET_DIR="$PWD/../target" cargo build --release --quiet)
cargo build --release --quiet
old=$old_target/release/usdtkit
new=target/release/usdtkit

machine="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores, $(( $(grep MemTotal /proc/meminfo | awk '{print $2}') / 1048576 )) GiB, Linux $(uname -r)"
python3 - "$old" "$new" "$rounds" "$json" "$rev" "$only" "$save" "$machine" "$repeat" <<'EOF'
import datetime, json, statistics, subprocess, sys
old, new, rounds, as_json, rev = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
only, save, machine, repeat = sys.argv[6], sys.argv[7], sys.argv[8], int(sys.argv[9])

def run(binary, args):
    out = subprocess.run([binary, *args], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)

def pick(rows, **want):
    for r in rows:
        if all(r.get(k) == v for k, v in want.items()):
            return r
    return None

# name, command, how to get the figure (smaller is better) from its JSON
BENCHES = [
    ("parse generated-10000 (us)", ["bench", "parse", "--only", "generated-10000", "--rounds", "5", "--json"],
     lambda j: j[0]["usdtkit_us"]),
    ("parse python3.11 (us)", ["bench", "parse", "--only", "python3.11", "--rounds", "5", "--json"],
     lambda j: j[0]["usdtkit_us"]),
    ("attach 1000 sites, first in process (ms)", ["bench", "attach", "--sites", "1000", "--probes", "100", "--impl", "usdtkit", "--json"],
     lambda j: pick(j, implementation="usdtkit")["attach_ms"]),
    ("detach 1000 sites (ms)", ["bench", "attach", "--sites", "1000", "--probes", "100", "--impl", "usdtkit", "--json"],
     lambda j: pick(j, implementation="usdtkit")["detach_ms"]),
    ("attach 50000 sites, first in process (ms)", ["bench", "attach", "--sites", "50000", "--probes", "1000", "--impl", "usdtkit", "--json"],
     lambda j: pick(j, implementation="usdtkit")["attach_ms"]),
    # Each timed first in a process of its own: a link made second in a process is timed
    # while the first one's detach still frees its uprobes.
    ("attach 50000 sites, first in process, ÷ raw uprobe_multi (own process)",
     (["bench", "attach", "--sites", "50000", "--probes", "1000", "--impl", "usdtkit", "--json"],
      ["bench", "attach", "--sites", "50000", "--probes", "1000", "--impl", "kernel", "--json"]),
     lambda u, k: pick(u, implementation="usdtkit")["attach_ms"] / pick(k, implementation="kernel")["attach_ms"]),
    ("attach 1000 sites, 16 processes (ms)", ["bench", "attach", "--sites", "1000", "--probes", "100", "--procs", "16", "--impl", "usdtkit", "--json"],
     lambda j: pick(j, implementation="usdtkit")["attach_ms"]),
    ("per hit, int3 site (ns)", ["bench", "hits", "--iterations", "200000", "--json"],
     lambda j: pick(j, implementation="usdtkit", site="nop")["ns_per_hit"]),
    ("trace 500000 hits, JSON to a file (s)", ["bench", "trace", "--iterations", "500000", "--json"],
     lambda j: pick(j, tool="usdtkit", mode="JSON to a file")["seconds"]),
]

results = []
for name, args, figure in BENCHES:
    if only and only not in name:
        continue
    ratios, olds, news, missing = [], [], [], None
    for r in range(rounds):
        order = [old, new] if r % 2 == 0 else [new, old]
        got = {old: [], new: []}
        for _ in range(repeat):
            for binary in order:
                # One command, or several (each its own process) whose JSONs make the figure.
                js = [run(binary, a) for a in args] if isinstance(args, tuple) else [run(binary, args)]
                try:
                    v = figure(*js) if all(j is not None for j in js) else None
                except (KeyError, IndexError, TypeError, ZeroDivisionError):
                    v = None
                if v is None:
                    missing = "old" if binary == old else "new"
                    break
                got[binary].append(v)
            if missing:
                break
        if missing:
            break
        o, n = statistics.median(got[old]), statistics.median(got[new])
        olds.append(o)
        news.append(n)
        ratios.append(n / o)
    if missing:
        results.append({"benchmark": name, "error": f"not measurable on the {missing} build"})
        print(f"bench: {name}: not measurable on the {missing} build", file=sys.stderr)
        continue
    med = statistics.median(ratios)
    mad = statistics.median(abs(x - med) for x in ratios)
    # A change beyond the spread: every round on the same side of 1 (a sign test: by chance
    # 2 in 2^rounds) and the median off 1 by more than 3%.
    flagged = (min(ratios) > 1 or max(ratios) < 1) and abs(med - 1) > 0.03
    results.append({"benchmark": name, "rounds": rounds, "repeat": repeat, "ratios": ratios,
                    "ratio_median": med, "ratio_min": min(ratios),
                    "ratio_max": max(ratios), "ratio_mad": mad, "old_median": statistics.median(olds),
                    "new_median": statistics.median(news), "flagged": flagged})
    print(f"bench: {name}: {med:.3f}", file=sys.stderr)

doc = {"base": rev, "rounds": rounds, "repeat": repeat, "machine": machine,
       "date": datetime.date.today().isoformat(), "results": results}
if save:
    with open(save, "w") as f:
        json.dump(doc, f, indent=1)
if as_json:
    print(json.dumps(doc))
    sys.exit(0)
print(f"new (working tree) ÷ old ({rev}), {rounds} alternating rounds of {repeat} runs each per benchmark")
print(f"{'benchmark':<44} {'old':>10} {'new':>10} {'new÷old':>8} {'min':>6} {'max':>6}  flag")
for r in results:
    if "error" in r:
        print(f"{r['benchmark']:<44} {r['error']}")
        continue
    print(f"{r['benchmark']:<44} {r['old_median']:>10.2f} {r['new_median']:>10.2f} {r['ratio_median']:>8.3f} "
          f"{r['ratio_min']:>6.3f} {r['ratio_max']:>6.3f}  {'CHANGED' if r['flagged'] else ''}")
EOF
if [ "$write" = 1 ]; then
  [ -n "$save" ] || { echo "bench: --write needs --save FILE" >&2; exit 2; }
  python3 ci/bench_tables.py "$save"
fi
