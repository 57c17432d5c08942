"""Judge ensembles as networks: relax, group, then novelty, uniqueness and relaxed quality.

A generated structure is worth something when it relaxes into a sound network that is not
already in the training data. So every ensemble (generated, held-out networks, and the
AIRSS-style baseline: random with a minimum distance, then relaxed) is relaxed to its
inherent structures (:func:`repap.relax`), grouped into networks
(:mod:`repap.analysis.networks`), and
described by:

- novelty: the fraction of relaxed structures whose network matches no training network;
  and how far new they are: the median distance to the nearest training network (the
  fingerprint distance of :mod:`repap.analysis.networks`), and the fraction at least as
  far from every training network as the closest held-out network is (a one-bond-switch
  neighbour of a training network is new by the first, not by the second);
- closeness (:mod:`repap.analysis.closeness`): how much of each distinct network lies on its
  nearest training network, aligned over the cell's symmetries and translations: the median
  share of atoms matched within 0.6 A, the share of networks matching one on 90 % of atoms or
  more (near-copies), the training network's bonds kept; the held-out networks' figures are
  the bar (a melt-quench's distance from training), and near-copy pairs within the ensemble;
- uniqueness: distinct networks among them, as a fraction;
- beside them, with training data, the "training set plus noise" bar: the training networks
  perturbed by ``perturbed`` A (0.45 by default) and relaxed, which with nothing learnt
  scores novelty ~0.7 at near held-out quality, by networks a few bond switches from their
  sources (docs/results.md, "The bar short of learning"); a model should beat it;
- inherent-structure energy per atom (mean, spread, histogram), coordination, four-fold
  fraction, bond-angle mean and spread (standard deviation, as experiments report it), rings
  per atom by size (:mod:`repap.analysis.rings`), Err_RDF of the relaxed structures against the
  held-out networks', and S(Q) (:mod:`repap.analysis.structure_factor`);
- optionally an independent energy judge (CHGNet, ``repap[judge]``): energy per atom above
  diamond Si under the same model, so a quality claim does not rest on the potential the
  data came from.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from repap.analysis import metrics
from repap.analysis.metrics import CUTOFF
from repap.analysis.radial import rdf
from repap.data.trajectory import Trajectory
from repap.errors import InputError
from repap.evaluation import baselines

MAX_TRAINING_FRAMES = 50  # frames of the training data relaxed to find its networks
# Distinct networks aligned to every training network (about 2 ms a pair at 64 atoms, 18 ms
# at 216, on one core): all of the generated ensemble's up to MAX_CLOSENESS, the first
# MAX_CLOSENESS_BAR of each baseline's (context rows); near-copy pairs among the first
# MAX_WITHIN of each. The held-out networks are judged in full.
MAX_CLOSENESS = 200
MAX_CLOSENESS_BAR = 50
MAX_WITHIN = 50


def _relaxed(traj: Trajectory, fmax: float, progress: bool) -> tuple[Trajectory, dict[str, Any]]:
    from repap.sim.relaxation import relax

    r = relax(traj, fmax=fmax, progress=progress)
    ok = r.status == "converged"
    if not ok.any():  # nothing to judge: say so, not "no frames" from an empty selection
        raise RuntimeError(f"relaxation: none of {len(traj)} structures converged "
                           f"(statuses {sorted(set(r.status.tolist()))})")  # fmt: skip
    stats = {"relaxed": int(ok.sum()), "not_converged": int((~ok).sum())}
    return r.structures[np.flatnonzero(ok)], stats


def networks_of(traj: Trajectory, fmax: float = 1e-3, limit: int = MAX_TRAINING_FRAMES):
    """The distinct networks of training data: a NetworkSet's training networks (its own
    inherent structures), else up to ``limit`` evenly spaced frames relaxed and grouped (one
    MD run is one network at 300 K, so a few frames find it). Many networks' structures in a
    plain Trajectory would be thinned to ``limit``: pass the NetworkSet
    (``set.subset("train")``) instead."""
    return _training_networks(traj, fmax, limit)[0]


def _training_networks(traj: Trajectory, fmax: float, limit: int = MAX_TRAINING_FRAMES):
    """(networks_of's Networks, one inherent structure per network)."""
    from repap.analysis.networks import group

    if hasattr(traj, "inherent_structures"):
        relaxed = traj.inherent_structures("train")
    else:
        every = max(1, len(traj) // limit)
        relaxed, _ = _relaxed(traj[::every][:limit], fmax, progress=False)
    nets = group(relaxed)
    return nets, relaxed[nets.representatives]


def quality(
    relaxed: Trajectory, g_ref: np.ndarray | None, rmax: float, nbins: int
) -> tuple[dict, np.ndarray]:
    """Relaxed quality of an ensemble of inherent structures (see the module doc), and its
    bond angles (degrees) for the plots."""
    from repap.analysis.rings import rings_per_atom

    counts, angles = metrics.coordination_and_angles(relaxed, cutoff=CUTOFF)
    e = relaxed.energy / relaxed.n_atoms
    _, g = rdf(relaxed, rmax=rmax, nbins=nbins)
    return {
        "energy_mean_eV": float(e.mean()),
        "energy_std_eV": float(e.std()),
        "coordination_mean": float(counts.mean()),
        "fourfold_fraction": float((counts == 4).mean()),
        "bond_angle_mean_deg": float(angles.mean()) if angles.size else None,
        "bond_angle_std_deg": float(angles.std()) if angles.size else None,
        "rings_per_atom": rings_per_atom(relaxed, cutoff=CUTOFF),
        "err_rdf_relaxed": metrics.err_rdf(g, g_ref) if g_ref is not None else 0.0,
    }, angles


def evaluate_networks(
    ensemble: Trajectory,
    heldout: Trajectory,
    training: Trajectory | None = None,
    *,
    fmax: float = 1e-3,
    min_dist: float = 2.0,
    baseline_size: int = 200,
    perturbed: float | None = 0.45,
    judge: bool = False,
    judge_sample: int = 50,
    rmax: float = 4.2,
    nbins: int = 100,
    seed: int = 0,
    progress: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Network-level report of ``ensemble`` against the ``heldout`` networks (frames or
    inherent structures of melt-quench runs never trained on) and the networks of
    ``training``, beside ``baseline_size`` random structures relaxed and, with ``training``,
    as many of its networks perturbed by ``perturbed`` A and relaxed (None: not). Returns
    (report, curves for the plots)."""
    from repap.analysis.networks import group
    from repap.analysis.structure_factor import structure_factor

    timings: dict[str, float] = {}
    t = time.perf_counter()
    generated, stats = _relaxed(ensemble, fmax, progress)
    timings["relax"] = time.perf_counter() - t
    if not len(generated):
        raise InputError("ensemble: no structure converged in relaxation")
    t = time.perf_counter()
    nets = group(generated)
    train_nets, train_structures = (
        (None, None) if training is None else _training_networks(training, fmax)
    )
    held_structures = _heldout_structures(heldout, fmax)
    ref_name = reference_label(heldout, held_structures, train_nets)
    timings["identity"] = time.perf_counter() - t
    cell = ensemble.frame_cells()[0]
    t = time.perf_counter()
    random_start = baselines.random_min_distance(
        baseline_size, cell, ensemble.numbers, min_dist=min_dist, seed=seed
    )
    random_relaxed, random_stats = _relaxed(random_start, fmax, progress)  # the bars: slow too
    near = None  # the training + noise bar
    if perturbed is not None and train_structures is not None:
        start = baselines.perturbed(train_structures, baseline_size, perturbed, seed=seed)
        near = _relaxed(start, fmax, progress)
    timings["baseline"] = time.perf_counter() - t

    _, g_ref = rdf(held_structures, rmax=rmax, nbins=nbins)
    ensembles = {
        "generated": (generated, stats),
        ref_name: (held_structures, {}),
        f"random, min {min_dist:g} A, relaxed": (random_relaxed, random_stats),
    }
    if near is not None:
        ensembles[f"training + {perturbed:g} A noise, relaxed"] = near
    rows: dict[str, dict[str, Any]] = {}
    curves: dict[str, dict[str, np.ndarray]] = {}
    far: dict[str, np.ndarray] = {}  # distance of each structure to the nearest training network
    close = _closeness_ready(ensemble, train_structures)
    t = time.perf_counter()
    for name, (traj, extra) in ensembles.items():
        row, angles = quality(traj, g_ref, rmax, nbins)
        own = nets if name == "generated" else group(traj)
        row.update(structures=len(traj), networks=len(own), uniqueness=len(own) / len(traj))
        if train_nets is not None:
            _, far[name] = train_nets.nearest(traj)
            row["novelty"] = float(np.mean(far[name] > train_nets.tolerance))
            row["nearest_training_A"] = float(np.median(far[name]))
        row.update(extra)
        rows[name] = row
        curves[name] = {"energy": traj.energy / traj.n_atoms, "angles": angles,
                        "rings": row["rings_per_atom"]}  # fmt: skip
        if close:
            cap = MAX_CLOSENESS if name in ("generated", ref_name) else MAX_CLOSENESS_BAR
            matched = _closeness(traj[own.representatives[:cap]], train_structures, row,
                                 progress and f"closeness, {name}")  # fmt: skip
            curves[name]["closeness"] = matched
    held_far = far.get(HELDOUT)
    if held_far is not None and held_far.min() > train_nets.tolerance:  # none is a training one
        for name, d in far.items():  # as new as a melt-quench network: no nearer to training
            rows[name]["novel_as_heldout"] = float(np.mean(d >= held_far.min()))
    timings["quality"] = time.perf_counter() - t
    t = time.perf_counter()
    for name, (traj, _) in ensembles.items():
        q, s = structure_factor(traj)
        curves[name]["q"], curves[name]["s"] = q, s
    timings["structure_factor"] = time.perf_counter() - t
    if judge:
        t = time.perf_counter()
        from repap.evaluation.judge import energy_above_diamond

        for name, (traj, _) in ensembles.items():
            every = max(1, len(traj) // judge_sample)
            e = energy_above_diamond(traj[::every][:judge_sample])
            rows[name]["judge_energy_above_diamond_eV"] = float(e.mean())
            rows[name]["judge_energy_std_eV"] = float(e.std())
        timings["judge"] = time.perf_counter() - t
    report = {
        "settings": {"fmax_eV_per_A": fmax, "cutoff_A": CUTOFF, "min_dist_A": min_dist,
                     "baseline_size": baseline_size, "perturbed_A": perturbed, "rmax_A": rmax,
                     "nbins": nbins},
        "networks": rows,
        "training_networks": None if train_nets is None else len(train_nets),
        "seconds": timings,
    }  # fmt: skip
    report["cost"] = cost = _cost(ensemble, heldout)
    if train_nets is not None:  # distinct networks of the ensemble that no training one matches
        novel = int(np.sum(far["generated"][nets.representatives] > train_nets.tolerance))
        rows["generated"]["novel_networks"] = novel
        if cost["generation_s_per_structure"] and novel:  # make and relax, per new network
            total = cost["generation_s_per_structure"] * len(ensemble) + timings["relax"]
            cost["model_s_per_new_network"] = total / novel
            rows["generated"]["seconds_per_network"] = total / novel
    if cost["melt_quench_s_per_network"] and ref_name == HELDOUT:
        rows[ref_name]["seconds_per_network"] = cost["melt_quench_s_per_network"]
    return report, curves


HELDOUT, REFERENCE = "held-out networks", "reference networks"  # the reference row's names


def reference_label(reference: Trajectory, networks: Trajectory, train_nets) -> str:
    """ "held-out networks" only for networks truly held out: a set's held-out part, or, given
    training networks, a reference none of whose networks is a training one; else "reference
    networks" (a plain run, or one that repeats a training network, as the 30-atom runs do)."""
    if getattr(reference, "heldout", np.zeros(0, bool)).any():
        return HELDOUT
    if train_nets is None:
        return REFERENCE
    _, far = train_nets.nearest(networks)
    return HELDOUT if far.min() > train_nets.tolerance else REFERENCE


def _closeness_ready(ensemble: Trajectory, training: Trajectory | None) -> bool:
    """Closeness needs training networks of the ensemble's atoms in one orthorhombic cell."""
    if training is None or training.n_atoms != ensemble.n_atoms:
        return False
    cells = ensemble.frame_cells()
    return bool(ensemble.pbc.all() and np.allclose(cells, training.frame_cells()[0], atol=1e-6)
                and not np.count_nonzero(cells[0] - np.diag(np.diag(cells[0]))))  # fmt: skip


def _closeness(networks: Trajectory, training: Trajectory, row: dict[str, Any],
               progress: str | bool = False) -> np.ndarray:  # fmt: skip
    """Closeness of ``networks`` (distinct, inherent) to the training networks into ``row``;
    returns each network's matched share (for the histogram). ``progress``: a bar's label."""
    from tqdm.auto import tqdm

    from repap.analysis.closeness import CLOSE, Closeness, closeness, near_copies

    step = 16  # networks per call: the bar moves (~2 ms a pair at 64 atoms, 18 ms at 216)
    parts = [closeness(networks[i : i + step], training)
             for i in tqdm(range(0, len(networks), step), desc=progress or "", unit="chunk",
                           disable=not progress)]  # fmt: skip
    keys = ("nearest", "atoms", "bonds", "offset", "symmetry")
    c = Closeness(*(np.concatenate([getattr(p, k) for p in parts]) for k in keys), parts[0].radius)
    row["closeness_networks"] = len(c)
    row["closeness_atoms_median"] = float(np.median(c.atoms))
    row["closeness_close_share"] = float(np.mean(c.atoms >= CLOSE))
    row["closeness_bonds_median"] = float(np.median(c.bonds))
    within = networks[:MAX_WITHIN]
    row["near_copy_pairs_within"] = len(near_copies(within))
    row["near_copy_pairs_searched"] = len(within) * (len(within) - 1) // 2
    return c.atoms


def _heldout_structures(traj: Trajectory, fmax: float, limit: int = 200) -> Trajectory:
    """One inherent structure per held-out network: a NetworkSet's own, else up to ``limit``
    evenly spaced frames relaxed and grouped."""
    from repap.analysis.networks import group

    if hasattr(traj, "inherent_structures"):  # its held-out networks, or all when none is
        return traj.inherent_structures("heldout" if traj.heldout.any() else "all")
    every = max(1, len(traj) // limit)
    relaxed, _ = _relaxed(traj[::every][:limit], fmax, progress=False)
    return relaxed[group(relaxed).representatives]


def _cost(ensemble: Trajectory, heldout: Trajectory) -> dict[str, Any]:
    """Seconds per structure of the ensemble (where its file says) beside a melt-quench's
    cost per network (where the held-out set says)."""
    out: dict[str, Any] = {"generation_s_per_structure": None, "melt_quench_s_per_network": None}
    if ensemble.info.get("seconds_per_structure"):  # repap generate's record (.npz keeps it)
        out["generation_s_per_structure"] = float(ensemble.info["seconds_per_structure"])
    net = heldout.info.get("networks", {})
    if "core_seconds_per_network" in net:
        out["melt_quench_s_per_network"] = float(net["core_seconds_per_network"])
    return out


ROWS = [  # (key, label, format)
    ("structures", "relaxed structures", "{:d}"),
    ("networks", "distinct networks", "{:d}"),
    ("uniqueness", "uniqueness", "{:.3f}"),
    ("novelty", "novelty (not a training network)", "{:.3f}"),
    ("novel_networks", "distinct new networks", "{:d}"),
    ("nearest_training_A", "distance to nearest training network, median (A)", "{:.3f}"),
    ("novel_as_heldout", "as far from training as the nearest held-out network", "{:.3f}"),
    ("closeness_networks", "networks aligned to the training networks", "{:d}"),
    ("closeness_atoms_median", "atoms on the nearest training network, median", "{:.3f}"),
    ("closeness_close_share", "near-copies of a training network (>= 0.9 of atoms)", "{:.3f}"),
    ("closeness_bonds_median", "training network's bonds kept, median", "{:.3f}"),
    ("near_copy_pairs_within", "near-copy pairs among its own networks", "{:d}"),
    ("seconds_per_network", "seconds per new network (made and relaxed)", "{:.3f}"),
    ("energy_mean_eV", "E_IS (eV/atom)", "{:.4f}"),
    ("energy_std_eV", "E_IS spread (eV/atom)", "{:.4f}"),
    ("judge_energy_above_diamond_eV", "judge: E - E_diamond (eV/atom)", "{:.4f}"),
    ("coordination_mean", "coordination", "{:.3f}"),
    ("fourfold_fraction", "four-fold", "{:.3f}"),
    ("bond_angle_mean_deg", "bond angle (deg)", "{:.2f}"),
    ("bond_angle_std_deg", "bond-angle spread (deg)", "{:.2f}"),
    ("err_rdf_relaxed", "Err_RDF relaxed vs the held-out (reference) networks", "{:.4f}"),
]


def markdown(report: dict[str, Any]) -> str:
    names = list(report["networks"])
    lines = ["| relaxed, as networks | " + " | ".join(names) + " |",
             "|---|" + "---:|" * len(names)]  # fmt: skip
    for key, label, fmt in ROWS:
        cells = []
        for name in names:
            value = report["networks"][name].get(key)
            cells.append("-" if value is None else fmt.format(value))
        if any(c != "-" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for size in (4, 5, 6, 7, 8):
        cells = [f"{report['networks'][n]['rings_per_atom'].get(size, 0.0):.3f}" for n in names]
        lines.append(f"| {size}-rings per atom | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(curves: dict[str, dict[str, Any]], out, title: str | None = None) -> None:
    """networks.png: inherent-structure energies, bond angles, rings and S(Q), side by side,
    one legend for the figure. Series may coincide (a model that makes the reference network
    again): the first is drawn wide and solid underneath, the others thinner and dashed on top,
    so every one stays visible."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend stays as it is

    fig = Figure(figsize=(12, 8.6))
    (ax_e, ax_a), (ax_r, ax_s) = fig.subplots(2, 2)
    every_energy = np.concatenate([c["energy"] for c in curves.values()])
    edges = np.histogram_bin_edges(every_energy, 40)  # shared bins; one network is one spike
    width = 0.8 / len(curves)
    dashes = ["-", "--", ":", "-."]
    for i, (name, c) in enumerate(curves.items()):
        style = {"color": f"C{i}", "ls": dashes[i % 4], "lw": 3.5 if i == 0 else 1.6,
                 "zorder": 2 if i == 0 else 3, "alpha": 0.55 if i == 0 else 1.0}  # fmt: skip
        ax_e.hist(c["energy"], edges, weights=np.full(len(c["energy"]), 1 / len(c["energy"])),
                  histtype="step", label=name, **style)  # fmt: skip
        ax_a.hist(c["angles"], np.linspace(50, 180, 66), density=True, histtype="step", **style)
        sizes = np.array(sorted(c["rings"]))
        ax_r.bar(sizes + (i - (len(curves) - 1) / 2) * width, [c["rings"][s] for s in sizes],
                 width, color=f"C{i}")  # fmt: skip
        ax_s.plot(c["q"], c["s"], **style)
    ax_e.set(xlabel="inherent-structure energy (eV/atom)", ylabel="fraction of structures",
             title="Inherent-structure energy")  # fmt: skip
    ax_a.set(xlabel="bond angle (deg), relaxed", ylabel="density", title="Bond angles")
    ax_r.set(xlabel="ring size", ylabel="rings per atom", title="Rings (shortest paths)")
    ax_s.set(xlabel="Q (1/A)", ylabel="S(Q), relaxed", title="Structure factor")
    fig.legend(*ax_e.get_legend_handles_labels(), loc="lower center", ncols=min(4, len(curves)),
               fontsize=9, frameon=False)  # fmt: skip
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(out / "networks.png", dpi=110)
    if any("closeness" in c for c in curves.values()):
        plot_closeness({n: c["closeness"] for n, c in curves.items() if "closeness" in c}, out)


def plot_closeness(shares: dict[str, np.ndarray], out) -> None:
    """closeness.png: per ensemble, the share of each network's atoms on its nearest training
    network (histogram), beside the near-copy line at 0.9."""
    from matplotlib.figure import Figure

    from repap.analysis.closeness import CLOSE

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    edges = np.linspace(0, 1, 33)
    for i, (name, x) in enumerate(shares.items()):
        ax.hist(x, edges, weights=np.full(len(x), 1 / max(len(x), 1)), histtype="step",
                color=f"C{i}", lw=1.5, label=f"{name} (median {np.median(x):.2f})")  # fmt: skip
    ax.axvline(CLOSE, color="k", ls=":", lw=1)
    ax.set(xlabel="share of atoms within 0.6 A of the nearest training network (aligned)",
           ylabel="fraction of networks", title="Closeness to the training networks")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "closeness.png", dpi=110)
