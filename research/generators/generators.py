"""One table of generators of a-Si networks, one run each, in one cell: closeness to the
training networks beside quality and cost.

    .venv/bin/python research/generators/generators.py OUT_DIR ATOMS [SCALE]

Each generator's relaxed networks go to OUT_DIR/ATOMS/<key>.npz with their wall seconds (a
rerun skips those written, so an interrupted run resumes); then every ensemble is judged the
same way against the shipped set's training networks (the clean split): closeness
(repap.analysis.closeness: median share of atoms on the nearest training network, share of
near-copies at >= 0.9, bonds kept; near-copy pairs among the ensemble's own networks), and
four-fold, bond-angle spread, E_IS (Vink SW), CHGNet's energy above diamond Si (on up to 16
networks per ensemble), rings per atom. Cost: wall seconds per network
of one process on this machine (LAMMPS one thread), every try and relaxation counted; the
held-out melt-quench row's cost is the set's build record (core-seconds per distinct network).
SCALE (default 1) multiplies the network counts. Writes OUT_DIR/generators-ATOMS.{json,md}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

import repap
from repap.analysis.closeness import CLOSE, closeness, near_copies
from repap.analysis.metrics import CUTOFF, coordination_and_angles
from repap.analysis.rings import rings_per_atom
from repap.data.trajectory import Trajectory
from repap.sim.relaxation import relax

CHGNET_SAMPLE = 16  # networks per ensemble judged by CHGNet (energy above diamond Si)


def relaxed(traj: Trajectory) -> Trajectory:
    r = relax(traj, fmax=1e-3, progress=False)
    return r.structures[np.flatnonzero(r.status == "converged")]


def melt_quench(atoms: int, n: int, quench_ps: float) -> Trajectory:
    frames = []
    for k in range(n):
        t = repap.simulate(
            atoms=atoms,
            frames=1,
            stride=1,
            quench_time=quench_ps,
            equilibrate_time=0.0,
            seed=9000 + k,
            progress=False,
        )
        frames.append(t.positions[-1])
    return relaxed(Trajectory(np.array(frames), t.cell, t.numbers))


def generators(atoms: int, scale: float) -> dict:
    """key -> (label, function making the relaxed networks)."""
    from repap.evaluation.baselines import random_min_distance
    from repap.generation.rebuild import rebuild
    from repap.generation.search import SearchOptions, search

    nset = repap.reference_set(atoms=atoms)
    train = nset.inherent_structures("train")
    big = atoms > 64

    def k(n64: int, n216: int) -> int:
        return max(2, round((n216 if big else n64) * scale))

    def model_starts(n: int) -> Trajectory:
        return repap.pretrained(f"networks-{atoms}").sample(
            n, seed=5, min_dist=2.0, temperature=0.5, progress=False
        )

    def lstm() -> Trajectory:
        return relaxed(model_starts(k(200, 50)))

    def searched(**options) -> Trajectory:
        n = k(32, 8)
        starts = model_starts(n) if options.get("start") == "model" else None
        return search(train, n, SearchOptions(**options), seed=11, starts=starts)[0]

    table = {
        "mq-100ps": ("melt-quench, 100 ps quench", lambda: melt_quench(atoms, k(8, 4), 100.0)),
        "mq-10ps": ("melt-quench, 10 ps quench", lambda: melt_quench(atoms, k(16, 6), 10.0)),
        "random": (
            "random (min 2 A) + relax",
            lambda: relaxed(
                random_min_distance(k(100, 30), train.cell, train.numbers, min_dist=2.0, seed=3)
            ),
        ),
        "search": ("repap search (random start, bond switches)", lambda: searched()),
        "search-model": (
            "repap search --start model (learnt start)",
            lambda: searched(start="model"),
        ),
        "lstm": (f"networks-{atoms} model, T 0.5, relaxed", lstm),
        "rebuild": ("repap rebuild (uniform fill)", lambda: rebuild(train, k(100, 20), seed=0)[0]),
    }
    # moves: the same number of refills, drawn uniformly or by the learnt site model
    table["search-refill"] = (
        "repap search --refill 1 --moves-per-atom 3 (uniform refills)",
        lambda: searched(refill=1.0, moves_per_atom=3),
    )
    table["search-site"] = (
        "repap search --refill 1 --fill site --moves-per-atom 3 (learnt refills)",
        lambda: searched(refill=1.0, fill="site", moves_per_atom=3),
    )
    table["search-site-half"] = (  # do learnt moves reach the switches' quality at half cost?
        "repap search --refill 1 --fill site --moves-per-atom 1.5 (learnt refills, half)",
        lambda: searched(refill=1.0, fill="site", moves_per_atom=1.5),
    )
    return table


def judge(traj: Trajectory, train: Trajectory) -> dict:
    from repap.evaluation.judge import energy_above_diamond

    counts, angles = coordination_and_angles(traj, cutoff=CUTOFF)
    every = max(1, len(traj) // CHGNET_SAMPLE)
    c = closeness(traj, train)
    rings = rings_per_atom(traj)
    return {
        "networks": len(traj),
        "closeness_median": float(np.median(c.atoms)),
        "near_copy_share": float(np.mean(c.atoms >= CLOSE)),
        "bonds_kept_median": float(np.median(c.bonds)),
        "near_copy_pairs_within": len(near_copies(traj[:100])),
        "fourfold": float(np.mean(counts == 4)),
        "angle_spread_deg": float(np.std(angles)),
        "energy_eV_per_atom": float(np.mean(traj.energy) / traj.n_atoms),
        "chgnet_above_diamond_eV": float(
            np.mean(energy_above_diamond(traj[::every][:CHGNET_SAMPLE]))
        ),
        "rings_5_6_7": [round(rings.get(s, 0.0), 4) for s in (5, 6, 7)],
    }


def main(out_dir: str, atoms: int, scale: float = 1.0) -> None:
    folder = Path(out_dir) / str(atoms)
    folder.mkdir(parents=True, exist_ok=True)
    nset = repap.reference_set(atoms=atoms)
    train = nset.inherent_structures("train")
    rows = {
        "heldout": {
            "label": "held-out melt-quench, 1 ns (the bar)",
            **judge(nset.inherent_structures("heldout"), train),
            "seconds_per_network": nset.info["networks"]["core_seconds_per_network"],
        }
    }
    for key, (label, make) in generators(atoms, scale).items():
        path = folder / f"{key}.npz"
        if not path.exists():
            t0 = time.perf_counter()
            traj = make()
            traj.info = {"seconds": time.perf_counter() - t0, "label": label}
            traj.write(path)
            print(f"{key}: {len(traj)} networks in {traj.info['seconds']:.0f} s", flush=True)
        traj = repap.read(path)
        rows[key] = {
            "label": label,
            **judge(traj, train),
            "seconds_per_network": traj.info["seconds"] / len(traj),
        }
    bar = rows["heldout"]["seconds_per_network"]
    lines = [
        f"| {atoms}-atom networks | n | atoms on nearest training network, median | "
        "near-copies (>= 0.9) | bonds kept, median | near-copy pairs within | four-fold | "
        "angle spread (deg) | E_IS (eV/atom) | CHGNet E - E_diamond (eV/atom) | "
        "5/6/7-rings per atom | s per network | "
        "x cheaper than 1 ns melt-quench |",
        "|---|" + "---:|" * 12,
    ]
    for r in rows.values():
        lines.append(
            f"| {r['label']} | {r['networks']} | {r['closeness_median']:.2f} | "
            f"{r['near_copy_share']:.0%} | {r['bonds_kept_median']:.2f} | "
            f"{r['near_copy_pairs_within']} | {r['fourfold']:.3f} | "
            f"{r['angle_spread_deg']:.2f} | {r['energy_eV_per_atom']:.3f} | "
            f"{r['chgnet_above_diamond_eV']:.3f} | "
            f"{'/'.join(f'{x:.2f}' for x in r['rings_5_6_7'])} | "
            f"{r['seconds_per_network']:.2f} | {bar / r['seconds_per_network']:,.0f} |"
        )
    Path(out_dir, f"generators-{atoms}.json").write_text(json.dumps(rows, indent=1) + "\n")
    Path(out_dir, f"generators-{atoms}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 1.0)
