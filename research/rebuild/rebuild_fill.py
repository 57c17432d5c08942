"""Does the learnt fill earn its place in `repap rebuild`? New networks from a set's training
networks with holes of HOLE atoms put back uniformly at random (``--fill uniform``) and by the
site model (``--fill site``), the same seed, one after the other in one process; judged by the
network-level report against the held-out networks (novelty against the training ones,
quality beside random + relax), with tries and seconds per kept network (every try's making
and relaxation) and the fraction of the source's bonds kept
(``research/rebuild/rebuild_lineage.py``'s count: the training network sharing the most bonds,
atoms matched by position). Run:

    .venv/bin/python research/rebuild/rebuild_fill.py OUT.json ATOMS N HOLE...

(resumable: rows already in OUT.json are kept)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rebuild_lineage import root_bonds_kept

import repap
from repap.evaluation.network_report import evaluate_networks, markdown
from repap.generation.rebuild import rebuild

if __name__ == "__main__":
    path, atoms, n = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    sizes = [int(h) for h in sys.argv[4:]]
    nset = repap.reference_set(atoms=atoms)
    train_set, held = nset.subset("train"), nset.inherent_structures("heldout")
    train = train_set.inherent_structures()
    out = json.loads(path.read_text()) if path.is_file() else {}
    for hole in sizes:
        for fill in ("uniform", "site"):
            key = f"{atoms} atoms, hole {hole}, {fill}, n={n}"
            if key in out:
                continue
            ens, summary = rebuild(train, n, hole=hole, seed=0, fill=fill, progress=True)
            report, _ = evaluate_networks(ens, held, train_set, baseline_size=200)
            kept = root_bonds_kept(ens, train)
            summary |= {"tries_per_network": summary["tried"] / n,
                        "times_below_melt_quench": report["cost"]["melt_quench_s_per_network"]
                        / summary["seconds_per_network"],
                        "source_bonds_kept": float(kept.mean())}  # fmt: skip
            report["rebuild"] = summary
            out[key] = report
            path.write_text(json.dumps(out, indent=1, default=float) + "\n")
            print(f"== {key}: {summary}\n{markdown(report)}\n", flush=True)
