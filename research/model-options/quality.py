"""Generation quality of the shipped models: ``repap evaluate`` on 2,000 structures each, clash
rejection at 2.0 A, against the held-out run (rmax 4.2 A, 100 bins, the poster's Err_RDF),
beside the reference and the random baselines; plus each model without rejection (fraction
of pair distances below 2 A, the authors' figure being 0.316 %).

Run: ``python research/model-options/quality.py [--out bench-results/quality]``; it writes
quality.md, quality.json and one evaluation folder (report + plots) per row.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import repap
from repap.evaluation.snapshots import markdown

RUNS = [  # (label, model, temperature)
    ("paper, T = 1", "paper", 1.0),
    ("paper, T = 0.5", "paper", 0.5),
    ("recommended, T = 1", "recommended", 1.0),
    ("recommended, T = 0.5", "recommended", 0.5),
]
N = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench-results/quality")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    heldout = repap.reference(heldout=True)
    rows = {}
    for k, (label, name, temperature) in enumerate(RUNS):
        model = repap.pretrained(name)
        ens = model.sample(N, seed=0, min_dist=2.0, temperature=temperature)
        report = repap.evaluate(ens, heldout, out=out / f"run{k}")
        raw = model.sample(N, seed=0, min_dist=None, temperature=temperature)
        raw_report = repap.evaluate(raw, heldout, energy=False)
        row = dict(report["ensembles"]["generated"])
        row.update(ens.summary())
        row["raw_pairs_below_2A"] = raw_report["ensembles"]["generated"]["pairs_below_min_dist"]
        row["raw_err_rdf"] = raw_report["ensembles"]["generated"]["err_rdf"]
        rows[label] = row
        if k == 0:
            rows.update({n: r for n, r in report["ensembles"].items() if n != "generated"})
        print(f"{label}:\n{markdown(report)}\n", flush=True)
    (out / "quality.json").write_text(json.dumps(rows, indent=1, default=float) + "\n")
    keys = [
        ("err_rdf", "Err_RDF", "{:.4f}"),
        ("coordination_mean", "coordination", "{:.3f}"),
        ("fourfold_fraction", "four-fold", "{:.3f}"),
        ("bond_angle_mean_deg", "angle (deg)", "{:.2f}"),
        ("energy_mean_eV", "energy (eV/atom)", "{:.4f}"),
        ("min_distance_A", "closest pair (A)", "{:.3f}"),
        ("atoms_redrawn_fraction", "atoms redrawn", "{:.2%}"),
        ("failed", "failed", "{}"),
        ("raw_pairs_below_2A", "no rejection: pairs < 2 A", "{:.3%}"),
        ("raw_err_rdf", "no rejection: Err_RDF", "{:.4f}"),
    ]
    lines = ["| | " + " | ".join(label for _, label, _ in keys) + " |"]
    lines.append("|---|" + "---:|" * len(keys))
    for name, row in rows.items():
        cells = [fmt.format(row[key]) if row.get(key) is not None else "-" for key, _, fmt in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    (out / "quality.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
