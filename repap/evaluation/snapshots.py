"""``repap evaluate``: an ensemble side by side with the reference and two random baselines."""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from repap.analysis import metrics
from repap.analysis.radial import rdf
from repap.data.trajectory import Trajectory
from repap.errors import InputError
from repap.evaluation import baselines
from repap.jobs import discard, inside, output_job, refuse_foreign_folder

SI = 14
ENERGY_FRAMES = 5000  # at most this many structures per ensemble get a LAMMPS energy


def describe(
    traj: Trajectory,
    g_ref: np.ndarray | None,
    *,
    rmax: float,
    nbins: int,
    cutoff: float,
    min_dist: float,
    energy: bool,
    training: Trajectory | None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every metric of one ensemble, plus the curves the plots need."""
    r, g = rdf(traj, rmax=rmax, nbins=nbins)
    counts, angles = metrics.coordination_and_angles(traj, cutoff=cutoff)
    coord = metrics.coordination_summary(counts)
    close = metrics.close_pairs(traj, threshold=min_dist)
    first = r <= cutoff
    row: dict[str, Any] = {
        "structures": len(traj),
        "err_rdf": metrics.err_rdf(g, g_ref) if g_ref is not None else 0.0,
        "first_peak_A": float(r[first][np.argmax(g[first])]) if first.any() else None,
        "coordination_mean": coord["mean"],
        "fourfold_fraction": coord["fourfold"],
        "coordination_histogram": coord["histogram"],
        "bond_angle_mean_deg": float(angles.mean()) if angles.size else None,
        "bond_angle_std_deg": float(angles.std()) if angles.size else None,
        "min_distance_A": float(close["min_distance"].min()),
        "pairs_below_min_dist": close["fraction_pairs"],
        "structures_below_min_dist": close["fraction_structures"],
        "energy_mean_eV": None,
        "energy_std_eV": None,
        "novelty_rmsd_mean_A": None,
        "novelty_rmsd_min_A": None,
    }
    if energy and not (traj.numbers == SI).all():
        found = sorted({int(z) for z in np.unique(traj.numbers)})
        warnings.warn(
            f"energy row left empty for a structure set with atomic numbers {found}: the SW "
            "potential is for silicon only (a LAMMPS dump read without species= gives "
            "hydrogen for type 1)",
            stacklevel=2,
        )
    elif energy:
        from repap.sim.md import energy as sw_energy

        every = max(1, len(traj) // ENERGY_FRAMES)  # evenly spaced: LAMMPS costs ~0.2 ms each
        e = sw_energy(traj[::every])
        row["energy_mean_eV"], row["energy_std_eV"] = float(e.mean()), float(e.std())
    if training is not None:
        nov = metrics.novelty(traj, training, stride=max(1, len(training) // 4000))
        row["novelty_rmsd_mean_A"], row["novelty_rmsd_min_A"] = float(nov.mean()), float(nov.min())
    return row, {"r": r, "g": g, "counts": counts.ravel(), "angles": angles}


def _as_trajectory(data: Any, name: str) -> Trajectory:
    """A Trajectory, or Sequences (repap.prepare / sequences.split) turned back into one."""
    from repap.data.sequences import Sequences

    if isinstance(data, Sequences):
        return data.to_trajectory()
    if not isinstance(data, Trajectory):
        raise TypeError(
            f"{name}: expected a repap.Trajectory or Sequences, got {type(data).__name__}"
        )
    return data


def check_comparable(ensemble: Trajectory, other: Trajectory, name: str) -> None:
    """One-line InputError unless ``other`` (a reference or training set, called ``name`` in
    the message) has the ensemble's atom count, species and cell: a comparison across cells
    or compositions would give numbers that mean nothing."""

    def what(t: Trajectory) -> str:
        lengths = "x".join(f"{x:.3f}" for x in np.linalg.norm(t.frame_cells()[0], axis=1))
        return f"{t.n_atoms} atoms in a {lengths} A cell"

    if other.n_atoms != ensemble.n_atoms or not np.allclose(
        other.frame_cells()[0], ensemble.frame_cells()[0], atol=1e-3
    ):
        raise InputError(f"{name}: {what(other)}, the ensemble {what(ensemble)}; compare like "
                         "with like (repap info lists the shipped sets)")  # fmt: skip
    if not np.array_equal(np.sort(other.numbers), np.sort(ensemble.numbers)):
        raise InputError(f"{name}: species {sorted(set(other.numbers.tolist()))} differ from "
                         f"the ensemble's {sorted(set(ensemble.numbers.tolist()))}")  # fmt: skip


def evaluate(
    ensemble: Trajectory,
    reference: Trajectory,
    *,
    training: Trajectory | None = None,
    out: str | os.PathLike | None = None,
    rmax: float = 4.2,
    nbins: int = 100,
    cutoff: float = 2.85,
    min_dist: float = 2.0,
    energy: bool = True,
    seed: int = 0,
    networks: bool = True,
    judge: bool = False,
    baseline_size: int = 200,
    progress: bool = False,
    names: dict[str, str | None] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Compare ``ensemble`` with ``reference`` and the two random baselines (same cell, atom
    count and number of structures as the ensemble). Energies are per atom with Vink's
    Stillinger-Weber (Si only, unrelaxed; at most 5,000 evenly spaced structures each). With
    ``training``, novelty: each structure's smallest RMSD to a training frame. With ``out``,
    writes report.json, report.md and PNG plots (rdf.png, coordination.png, angles.png)
    there. Returns the report as a dict.

    ``networks=True`` (the default) also judges at the network level
    (:func:`.network_report.evaluate_networks`): relaxed, grouped, novelty against the
    networks of ``training``, uniqueness, relaxed quality and rings, S(Q), beside the held-out
    networks of ``reference`` and ``baseline_size`` random structures relaxed; ``judge=True``
    adds CHGNet energies above diamond (``repap[judge]``). Written as ``networks.png`` and a
    second table.

    ``names``: what to call the ensemble, reference and training in the report's context
    (file paths or shipped names); the report records them with the ensemble's generation
    settings (model, temperature, seed, where its file holds them), the machine and the time.
    ``out`` is a folder written whole at the end and locked from the start
    (:mod:`repap.jobs`); an existing one is refused unless ``overwrite``.
    """
    started = time.time()
    ensemble = _as_trajectory(ensemble, "ensemble")
    reference = _as_trajectory(reference, "reference")
    training = None if training is None else _as_trajectory(training, "training")
    check_options(ensemble, reference, training, rmax=rmax, seed=seed, networks=networks,
                  judge=judge)  # fmt: skip
    with contextlib.ExitStack() as stack:
        job = None
        if out is not None:
            inputs = [t.info.get("source") for t in (ensemble, reference, training) if t]
            if any(inside(s, out) for s in inputs if s):
                raise InputError(f"{out}: holds an input of this evaluation; choose another "
                                 "--out")  # fmt: skip
            if Path(out).exists() and not Path(out).is_dir():  # a folder, never over a file
                raise InputError(f"{out}: exists and is not a folder; choose another --out")
            job = stack.enter_context(output_job(out, overwrite))
            if overwrite:
                refuse_foreign_folder(Path(out), REPORT_FILES)
            discard(job.tmp)  # one left by an earlier process of the same id
            job.tmp.mkdir()
        report, curves, net_curves = assess(
            ensemble, reference, training, rmax=rmax, nbins=nbins, cutoff=cutoff,
            min_dist=min_dist, energy=energy, seed=seed, networks=networks, judge=judge,
            baseline_size=baseline_size, progress=progress, names=names or {},
        )  # fmt: skip
        report["context"]["seconds"] = round(time.time() - started, 1)
        if job is not None:
            write_report(job.tmp, report, curves, net_curves)
            job.publish()
    return report


REPORT_FILES = {"report.json", "report.md", "rdf.png", "coordination.png", "angles.png",
                "networks.png", "closeness.png"}  # fmt: skip


def write_report(folder: Path, report: dict[str, Any], curves: dict, net_curves: dict | None
                 ) -> None:  # fmt: skip
    """report.json, report.md and the plots of :func:`assess`'s results into ``folder``."""
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (folder / "report.md").write_text(markdown(report) + "\n")
    plot(curves, folder, report["settings"])
    if net_curves is not None:
        from repap.evaluation.network_report import plot as plot_networks

        ctx = report["context"]
        plot_networks(net_curves, folder, title=f"{ctx['ensemble']} relaxed, as networks "
                      f"(reference {ctx['reference']})")  # fmt: skip


def check_options(ensemble: Trajectory, reference: Trajectory, training: Trajectory | None,
                  *, rmax: float, seed: int, networks: bool, judge: bool) -> None:  # fmt: skip
    """Every option of :func:`evaluate` checked before any work."""
    check_comparable(ensemble, reference, "reference")
    if training is not None:
        check_comparable(ensemble, training, "training")
    if networks and np.any(ensemble.numbers != SI):  # relaxed with Vink's SW: silicon only
        found = sorted(set(ensemble.numbers.tolist()) - {SI})
        raise InputError(f"ensemble: holds Z={found[0]}; evaluation as networks relaxes with "
                         "Vink's Si potential (--snapshots-only for other elements)")  # fmt: skip
    if ensemble.n_atoms < 2:
        raise InputError(f"ensemble: structures of {ensemble.n_atoms} atom; evaluation needs "
                         "pairs of atoms")  # fmt: skip
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed: expected an integer >= 0, got {seed!r}")
    if judge and not networks:
        raise InputError("judge: judges the relaxed networks, which snapshots-only skips")
    if judge:
        from importlib.util import find_spec

        from repap.evaluation.judge import INSTALL

        if find_spec("chgnet") is None:
            raise InputError(f"judge: {INSTALL}")
    # the RDF visits every pair within rmax (images included): its cost grows as rmax^3
    volume = abs(np.linalg.det(ensemble.frame_cells()[0]))
    frames = max(len(ensemble), len(reference))
    per_cube = frames * ensemble.n_atoms**2 / volume * 4.19  # pair visits per A^3 of rmax^3
    top = min(100.0, (MAX_PAIR_VISITS / per_cube) ** (1 / 3))
    if not 0 < rmax <= top:
        raise InputError(f"rmax: expected above 0 and at most {top:.1f} A for these structures "
                         f"(the RDF's cost grows as rmax^3), got {rmax}")  # fmt: skip


MAX_PAIR_VISITS = 2e10  # ~100 s of RDF at ~2e8 pair visits a second (2 threads, Zen 4)


def assess(ensemble, reference, training, *, rmax=4.2, nbins=100, cutoff=2.85, min_dist=2.0,
           energy=True, seed=0, networks=True, judge=False, baseline_size=200, progress=False,
           names=None):  # fmt: skip
    """The work of :func:`evaluate`, options checked by the caller: (report, snapshot curves,
    network curves or None), for :func:`write_report`."""
    names = names or {}
    settings = {
        "rmax_A": rmax,
        "nbins": nbins,
        "cutoff_A": cutoff,
        "min_dist_A": min_dist,
        "seed": seed,
    }
    cell = ensemble.frame_cells()[0]
    n = len(ensemble)
    held = reference.subset("heldout") if getattr(reference, "heldout", np.zeros(0)).any() else None
    ensembles = {
        "generated": ensemble,
        "reference": reference if held is None else held,  # a set's held-out frames only
        "uniform random": baselines.uniform(n, cell, ensemble.numbers, seed=seed),
        f"random, min {min_dist:g} A": baselines.random_min_distance(
            n, cell, ensemble.numbers, min_dist=min_dist, seed=seed
        ),
    }
    _, g_ref = rdf(ensembles["reference"], rmax=rmax, nbins=nbins)
    rows, curves = {}, {}
    for name, traj in ensembles.items():
        rows[name], curves[name] = describe(
            traj,
            g_ref,
            rmax=rmax,
            nbins=nbins,
            cutoff=cutoff,
            min_dist=min_dist,
            energy=energy,
            training=training if name == "generated" else None,
        )
    report: dict[str, Any] = {
        "context": context(ensemble, reference, training, names),
        "settings": settings,
        "ensembles": rows,
    }
    net_curves = None
    if networks:
        from repap.evaluation.network_report import evaluate_networks

        report["networks"], net_curves = evaluate_networks(
            ensemble, reference, training, min_dist=min_dist, judge=judge, rmax=rmax,
            nbins=nbins, seed=seed, baseline_size=baseline_size, progress=progress,
        )  # fmt: skip
    return report, curves, net_curves


GENERATION_KEYS = ("generator", "model", "temperature", "seed", "min_dist", "precision")


def context(ensemble: Trajectory, reference: Trajectory, training: Trajectory | None,
            names: dict[str, str | None]) -> dict[str, Any]:  # fmt: skip
    """What a report compares, with what, where and when: enough to read it on its own."""
    from repap._version import __version__
    from repap.runtime import machine

    def name(key: str, traj: Trajectory | None) -> str | None:
        if traj is None:
            return None
        return names.get(key) or traj.info.get("shipped") or key

    return {
        "ensemble": name("ensemble", ensemble),
        "structures": len(ensemble),
        "atoms": ensemble.n_atoms,
        "cell_A": [round(float(x), 4) for x in np.linalg.norm(ensemble.frame_cells()[0], axis=1)],
        "generation": {k: ensemble.info[k] for k in GENERATION_KEYS if k in ensemble.info},
        "reference": name("reference", reference),
        "training": name("training", training),
        "machine": machine(),
        "repap": __version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def title(ctx: dict[str, Any], what: str = "repap evaluate") -> str:
    """A Markdown title and the context lines a report opens with."""
    gen = ", ".join(f"{k} {v}" for k, v in ctx.get("generation", {}).items()) or "not recorded"
    lines = [
        f"# {what}: {ctx['ensemble']}",
        "",
        f"- ensemble: {ctx['structures']} structures of {ctx['atoms']} atoms, cell "
        f"{' x '.join(f'{x:g}' for x in ctx['cell_A'])} A; generation: {gen}",
        f"- reference: {ctx['reference']}; training: {ctx['training'] or 'none (no novelty)'}",
        f"- machine: {ctx['machine']}; repap {ctx['repap']}; {ctx['date']}"
        + (f"; {ctx['seconds']:.0f} s" if "seconds" in ctx else ""),
    ]
    return "\n".join(lines)


ROWS = [  # (key, label, format)
    ("structures", "structures", "{:d}"),
    ("err_rdf", "Err_RDF vs reference", "{:.4f}"),
    ("first_peak_A", "first RDF peak (A)", "{:.3f}"),
    ("coordination_mean", "mean coordination", "{:.3f}"),
    ("fourfold_fraction", "four-fold fraction", "{:.3f}"),
    ("bond_angle_mean_deg", "mean bond angle (deg)", "{:.2f}"),
    ("bond_angle_std_deg", "bond angle std (deg)", "{:.2f}"),
    ("min_distance_A", "closest pair (A)", "{:.3f}"),
    ("pairs_below_min_dist", "pairs below min_dist", "{:.3%}"),
    ("structures_below_min_dist", "structures with such a pair", "{:.1%}"),
    ("energy_mean_eV", "energy (eV/atom)", "{:.4f}"),
    ("energy_std_eV", "energy std (eV/atom)", "{:.4f}"),
    ("novelty_rmsd_mean_A", "novelty: mean min RMSD to training (A)", "{:.3f}"),
    ("novelty_rmsd_min_A", "novelty: smallest min RMSD (A)", "{:.3f}"),
]


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: its title and context, the network-level table first (when
    judged), then the 300 K snapshot metrics; metrics down, ensembles across."""
    head = title(report["context"]) + "\n\n" if "context" in report else ""
    if "networks" in report:
        from repap.evaluation.network_report import markdown as network_markdown

        return (head + "## As networks (relaxed)\n\n" + network_markdown(report["networks"])
                + "\n\n## As 300 K snapshots\n\n" + _snapshot_markdown(report))  # fmt: skip
    return head + _snapshot_markdown(report)


def _snapshot_markdown(report: dict[str, Any]) -> str:
    names = list(report["ensembles"])
    s = report["settings"]
    lines = [
        f"RDF: rmax {s['rmax_A']} A, {s['nbins']} bins; coordination and angles: cutoff "
        f"{s['cutoff_A']} A; close pairs: below {s['min_dist_A']} A.",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for key, label, fmt in ROWS:
        cells = []
        for name in names:
            value = report["ensembles"][name][key]
            cells.append("-" if value is None else fmt.format(value))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(curves: dict[str, dict[str, np.ndarray]], out: Path, settings: dict[str, Any]) -> None:
    from matplotlib.figure import Figure  # no pyplot: the caller's backend stays as it is

    styles = {"generated": "C0", "reference": "k"}
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for i, (name, c) in enumerate(curves.items()):
        ax.plot(
            c["r"],
            c["g"],
            color=styles.get(name, f"C{i + 1}"),
            label=name,
            lw=2.0 if name in styles else 1.2,
            ls="-" if name in styles else "--",
        )
    ax.set(xlabel="r (Angstrom)", ylabel="g(r)", title="Radial distribution function")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "rdf.png", dpi=120)

    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    width = 0.8 / len(curves)
    for i, (name, c) in enumerate(curves.items()):
        values, freq = np.unique(c["counts"], return_counts=True)
        ax.bar(
            values + (i - (len(curves) - 1) / 2) * width,
            freq / freq.sum(),
            width,
            label=name,
            color=styles.get(name, f"C{i + 1}"),
        )
    ax.set(
        xlabel=f"neighbours within {settings['cutoff_A']} A",
        ylabel="fraction of atoms",
        title="Coordination",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "coordination.png", dpi=120)

    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    edges = np.linspace(0, 180, 91)
    for i, (name, c) in enumerate(curves.items()):
        if not c["angles"].size:
            continue
        if name == "reference":  # filled underneath, so the generated line stays visible
            ax.hist(c["angles"], edges, density=True, histtype="stepfilled", color="0.75",
                    label=name, zorder=1)  # fmt: skip
        else:
            mine = name in styles
            ax.hist(c["angles"], edges, density=True, histtype="step", label=name,
                    color=styles.get(name, f"C{i + 1}"), lw=2.2 if mine else 1.2,
                    ls="-" if mine else "--", zorder=3 if mine else 2)  # fmt: skip
    ax.set(xlabel="bond angle (degrees)", ylabel="density", title="Bond-angle distribution")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "angles.png", dpi=120)
