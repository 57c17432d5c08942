"""The GPU benchmarks' JSON (pytest-benchmark) as one markdown table per group."""

import json
import sys
from itertools import groupby

bench = json.load(open(sys.argv[1]))["benchmarks"]
bench.sort(key=lambda b: (b["group"] or "", b["stats"]["min"]))
for group, rows in groupby(bench, key=lambda b: b["group"] or ""):
    print(f"\n### {group}\n\n| peer | min (ms) | derived |\n|---|---:|---|")
    for b in rows:
        extra = ", ".join(f"{k} {v}" for k, v in b["extra_info"].items())
        name = b["name"].split("[")[-1].rstrip("]")
        print(f"| {name} | {b['stats']['min'] * 1e3:.3f} | {extra} |")
