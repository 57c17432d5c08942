"""How many holes per try `repap rebuild` should make in a cell: new networks from a set's
training networks with REGIONS holes of HOLE atoms each (each around its own defect), judged
by the network-level report against the set's held-out networks (novelty against its
training networks; quality beside random + relax and training + 0.45 A noise, BASELINE of
each). A hole of 8 atoms is 12 % of a 64-atom cell but 4 % of a 216-atom one: the networks
it makes sit nearer their sources the larger the cell. Cost: every try's making and
relaxation per kept network, against the set's melt-quench core-seconds per network. Run:

    .venv/bin/python research/rebuild/rebuild_regions.py SET.npz OUT.json N HOLE REGIONS... \
        [--baseline B]

(resumable: settings already in OUT.json are kept)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import repap
from repap.evaluation.network_report import evaluate_networks, markdown
from repap.generation.rebuild import rebuild

if __name__ == "__main__":
    args = sys.argv[1:]
    baseline = 200
    if "--baseline" in args:
        i = args.index("--baseline")
        baseline = int(args[i + 1])
        del args[i : i + 2]
    source, path, n, hole, regions = (
        Path(args[0]),
        Path(args[1]),
        int(args[2]),
        int(args[3]),
        [int(r) for r in args[4:]],
    )
    nset = repap.read(source)
    train_set, held = nset.subset("train"), nset.inherent_structures("heldout")
    train = train_set.inherent_structures()
    out = json.loads(path.read_text()) if path.is_file() else {}
    for r in regions:
        key = f"{nset.n_atoms} atoms, {r} x {hole}, n={n}"
        if key in out:
            continue
        ens, summary = rebuild(train, n, hole=hole, regions=r, seed=0, progress=True)
        report, _ = evaluate_networks(ens, held, train_set, baseline_size=baseline)
        report["rebuild"] = summary
        mq = report["cost"]["melt_quench_s_per_network"]
        report["rebuild"]["times_below_melt_quench"] = mq / summary["seconds_per_network"]
        out[key] = report
        path.write_text(json.dumps(out, indent=1, default=float) + "\n")
        print(f"== {key}: {summary}\n{markdown(report)}\n", flush=True)
