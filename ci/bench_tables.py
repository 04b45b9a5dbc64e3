#!/usr/bin/env python3
"""Write the performance tables of README.md and benches/README.md from the JSON that
`ci/bench.sh --save FILE` keeps, between their `<!-- bench-table:begin -->` and
`<!-- bench-table:end -->` markers, so no figure there is typed by hand.

Usage: ci/bench_tables.py FILE.json
"""
import json
import pathlib
import sys

BEGIN, END = "<!-- bench-table:begin -->", "<!-- bench-table:end -->"
# The README keeps the figures a user asks about first.
README_ROWS = (
    "parse python3.11",
    "attach 50000 sites, first in process (ms)",
    "attach 50000 sites, first in process, ÷ raw uprobe_multi",
    "per hit",
    "trace 500000 hits",
)


def fmt(v):
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def caption(doc):
    return (f"`ci/bench.sh {doc['base']}`, {doc['rounds']} alternating rounds of "
            f"{doc.get('repeat', 1)} runs per build, {doc['date']}; {doc['machine']}. Medians over "
            f"the rounds; new ÷ old with its range over the rounds.")


def full_table(doc):
    lines = [caption(doc), "",
             f"| benchmark | {doc['base']} (old) | this tree (new) | new ÷ old | range | changed |",
             "|---|---|---|---|---|---|"]
    for r in doc["results"]:
        if "error" in r:
            lines.append(f"| {r['benchmark']} | | | {r['error']} | | |")
            continue
        lines.append(
            f"| {r['benchmark']} | {fmt(r['old_median'])} | {fmt(r['new_median'])} | "
            f"{r['ratio_median']:.3f} | {r['ratio_min']:.3f}–{r['ratio_max']:.3f} | "
            f"{'**yes**' if r['flagged'] else 'no'} |")
    return lines


def short_table(doc):
    lines = ["| benchmark (this tree) | median |", "|---|---|"]
    for r in doc["results"]:
        if "error" in r or not any(r["benchmark"].startswith(p) for p in README_ROWS):
            continue
        lines.append(f"| {r['benchmark']} | {fmt(r['new_median'])} |")
    lines += ["", f"{doc['machine']}; {doc['date']}, `ci/bench.sh`."]
    return lines


def splice(path, lines):
    text = path.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        sys.exit(f"bench_tables: {path} has no {BEGIN} ... {END} markers")
    text = text[:start + len(BEGIN)] + "\n" + "\n".join(lines) + "\n" + text[end:]
    path.write_text(text)
    print(f"bench_tables: wrote {len(lines)} lines into {path}", file=sys.stderr)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: ci/bench_tables.py FILE.json")
    doc = json.loads(pathlib.Path(sys.argv[1]).read_text())
    root = pathlib.Path(__file__).resolve().parent.parent
    splice(root / "README.md", short_table(doc))
    splice(root / "benches" / "README.md", full_table(doc))


main()
