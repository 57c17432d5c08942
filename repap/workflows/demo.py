"""The main job, ``repap demo``: the whole pipeline on the built-in a-Si data, no other input.

1. Train a small model briefly on the shipped reference (progress bar, loss curve).
2. New networks: the pretrained model trained across the shipped 64-atom network set makes
   structures; each is relaxed and grouped into networks, compared with the set's training
   networks (novelty) and, beside random + relax, with its held-out networks (quality), and
   the seconds per new network are set beside a melt-quench's; beside them, new networks
   rebuilt from the training ones (``repap rebuild``, holes put back at random and by the
   learnt site model), also as 300 K frames.
3. Generate 2,000 structures with the shipped 30-atom pretrained model and clash rejection at
   2 A; evaluate them against frames of a second melt-quench (the training network again: a
   check of soundness, not of novelty) and both random baselines.
4. Print the side-by-side tables; write the reports, the plots and the structures to ``out``.

``quick=True`` shrinks every step (for the test suite): a tiny model, 100 structures of 30
atoms and 10 of 64, no energies.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repap.data.references import reference, reference_set
from repap.data.sequences import prepare
from repap.errors import InputError
from repap.evaluation.snapshots import assess, markdown, write_report
from repap.generation.chunked import write_extxyz
from repap.jobs import discard, output_job, refuse_foreign_folder
from repap.model.checkpoint import pretrained
from repap.training.loop import TrainConfig, train

# Sampling below temperature 1 keeps free-running samples on the learned network (docs/results.md,
# "Model options, measured": Err_RDF 0.30 at 1.0, 0.057 at 0.5 for the recommended setup).
TEMPERATURE = 0.5


def run_demo(
    out: str | Path = "repap-demo",
    quick: bool = False,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """The demo into the folder ``out``, written whole at the end (:mod:`repap.jobs`); an
    existing one is refused unless ``overwrite`` (``make demo`` passes it)."""
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: exists and is not a folder; pass another --out")
    with output_job(target, overwrite) as job:
        if overwrite:  # only an earlier demo's folder is replaced
            refuse_foreign_folder(target, DEMO_FILES)
        discard(job.tmp)
        job.tmp.mkdir()
        report = _run(job.tmp, quick, progress)
        job.publish()
    print(
        f"wrote {target}/: generated.extxyz, report.md, report.json, rdf.png, "
        "coordination.png, angles.png, networks.png, closeness.png, density.png, "
        f"small-model.pt, small-model.loss.png, and new-networks/ ({report['seconds']:.0f} s)"
    )
    return report["evaluation"]


DEMO_FILES = {"generated.extxyz", "report.md", "report.json", "rdf.png", "coordination.png",
              "angles.png", "networks.png", "closeness.png", "density.png", "small-model.pt",
              "small-model.last.pt", "small-model.loss.png", "new-networks"}  # fmt: skip


def _run(out: Path, quick: bool, progress: bool) -> dict[str, Any]:
    t_start = time.perf_counter()
    ref = reference()
    heldout = reference(heldout=True)
    print(
        f"reference: {len(ref)} frames of {ref.n_atoms} Si atoms (a-Si, 2.33 g/cm3, 300 K); "
        f"second run: {len(heldout)} frames of another melt-quench (the same network)"
    )

    print("\n1. training a small model briefly (the shipped one trained for hours)")
    config = TrainConfig.preset("recommended", frames=4000, epochs=2, patience=0)
    if quick:
        config = TrainConfig.preset("recommended", frames=200, epochs=1, hidden=32, patience=0)
    small = train(ref, config, out=out / "small-model.pt", progress=progress)
    h = small.meta["history"][-1]
    print(f"   validation NLL {h['val_nll']:.3f} nats/coordinate; loss curve: small-model.loss.png")

    new_networks(out / "new-networks", 10 if quick else 200, 5 if quick else 100, progress)

    n = 100 if quick else 2000
    print(
        f"\n3. generating {n} structures with the 30-atom pretrained model (temperature "
        f"{TEMPERATURE}), "
        "no pair closer than 2 A"
    )
    model = pretrained("recommended")
    t0 = time.perf_counter()
    ens = model.sample(n, seed=0, min_dist=2.0, temperature=TEMPERATURE, progress=progress)
    seconds = time.perf_counter() - t0
    s = ens.summary()
    print(
        f"   {s['structures']} structures in {seconds:.1f} s ({n / seconds:,.0f}/s), "
        f"{100 * s['atoms_redrawn_fraction']:.1f} % of atoms redrawn, {s['restarts']} restarts, "
        f"{s['failed']} failed"
    )
    write_extxyz(out / "generated.extxyz", [ens])
    plot_model_density(model, ref, out / "density.png", frame=len(ref) - 1)

    print("\n   evaluating: relaxed and compared as networks with the training network, and as")
    print("   300 K snapshots against the second run and the random baselines")
    ens.info.update(model="recommended", temperature=TEMPERATURE, seed=0, min_dist=2.0)
    t0 = time.time()
    report, curves, net_curves = assess(
        ens, heldout, ref, energy=not quick, baseline_size=20 if quick else 200,
        names={"ensemble": "repap demo, step 3", "reference": "a-si-30:heldout",
               "training": "a-si-30"},
    )  # fmt: skip
    report["context"]["seconds"] = round(time.time() - t0, 1)
    write_report(out, report, curves, net_curves)
    print()
    print(markdown(report))
    print()
    return {"evaluation": report, "seconds": time.perf_counter() - t_start}


def new_networks(out: Path, n: int, baseline: int, progress: bool) -> dict[str, Any]:
    """Step 2: ``n`` structures of the pretrained ``networks-64`` model (temperature 1, no pair
    closer than 2 A) relaxed and judged as networks against the shipped 64-atom set: novelty
    against its training networks, quality beside its held-out networks (never trained on)
    and ``baseline`` random structures relaxed, then ``rebuilt_networks`` (their rows join
    the report's table). Writes out/report.{md,json} (titled, with what was compared),
    networks.png, closeness.png, generated.extxyz, rebuilt-site.extxyz and
    rebuilt-site-300K.extxyz."""
    from repap.evaluation.network_report import evaluate_networks, markdown, plot
    from repap.evaluation.snapshots import context, title

    out.mkdir(parents=True, exist_ok=True)
    nset = reference_set()
    model = pretrained("networks-64")
    fit = model.meta["data"]
    print(
        f"\n2. new networks: the pretrained model trained on {len(fit['networks_fit'])} of the "
        f"{nset.n_networks} melt-quench networks of {nset.n_atoms} atoms (24 extra orderings "
        f"each; {int(nset.heldout.sum())} held-out networks never seen) makes {n} structures, "
        "each relaxed (Stillinger-Weber) and compared as networks"
    )
    t0 = time.perf_counter()
    ens = model.sample(n, seed=0, min_dist=2.0, temperature=1.0, progress=progress)
    made = time.perf_counter() - t0
    ens.info.update(seconds_per_structure=made / n, model="networks-64", temperature=1.0, seed=0,
                    min_dist=2.0)  # fmt: skip
    names = {"ensemble": "repap demo, step 2", "reference": "a-si-64 (its held-out networks)",
             "training": "a-si-64:train"}  # fmt: skip
    ctx = context(ens, nset, nset.subset("train"), names)
    t_report = time.perf_counter()
    report, curves = evaluate_networks(
        ens, nset, nset.subset("train"), baseline_size=baseline, progress=progress
    )
    g = report["networks"]["generated"]
    held = report["networks"]["held-out networks"]
    cost = report["cost"]
    print(markdown(report))
    if g.get("novel_networks"):
        print(
            f"   {g['novel_networks']} new networks of {g['structures']} relaxed structures; "
            f"{cost['model_s_per_new_network']:.3f} s per new network (made and relaxed, "
            f"{made:.1f} s to make them) against {cost['melt_quench_s_per_network']:.0f} s per "
            "network for a melt-quench (the set's build)"
        )
    rand = next(v for k, v in report["networks"].items() if k.startswith("random"))
    nearer = (
        "random + relax"
        if abs(g["energy_mean_eV"] - rand["energy_mean_eV"])
        < abs(g["energy_mean_eV"] - held["energy_mean_eV"])
        else "the held-out networks"
    )
    print(
        f"   quality: four-fold {g['fourfold_fraction']:.3f}, E_IS {g['energy_mean_eV']:.3f} "
        f"eV/atom; held-out networks {held['fourfold_fraction']:.3f}, "
        f"{held['energy_mean_eV']:.3f}; random + relax {rand['fourfold_fraction']:.3f}, "
        f"{rand['energy_mean_eV']:.3f}: nearer {nearer} (docs/results.md, 'Across networks')"
    )
    bar = next((v for k, v in report["networks"].items() if k.startswith("training +")), None)
    if bar is not None:
        sigma = report["settings"]["perturbed_A"]
        print(
            f"   the bar with nothing learnt, training networks + {sigma:g} A noise, relaxed:"
            f" novelty {bar['novelty']:.3f}, four-fold "
            f"{bar['fourfold_fraction']:.3f}, E_IS {bar['energy_mean_eV']:.3f} eV/atom (a model "
            "should beat it; docs/results.md, 'The bar short of learning')"
        )
    report["networks"].update(rebuilt_networks(out, nset, held, max(2, n // 4), progress))
    ctx["seconds"] = time.perf_counter() - t_report
    report = {"context": ctx, **report}
    (out / "report.md").write_text(title(ctx, "repap demo, new networks") + "\n\n"
                                   + markdown(report) + "\n")  # fmt: skip
    (out / "report.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    plot(curves, out, title="New 64-atom networks: the networks-64 model, relaxed, beside the "
         "held-out networks and baselines")  # fmt: skip
    write_extxyz(out / "generated.extxyz", [ens])
    return report


def rebuilt_networks(
    out: Path, nset, held: dict[str, Any], n: int, progress: bool
) -> dict[str, dict[str, Any]]:
    """Step 2, search: ``n`` new networks by ``repap rebuild`` from the set's training
    networks, holes put back at random and by the learnt site model, their quality beside the
    held-out networks' row (``held``), and the site-filled ones as 300 K frames against the
    held-out networks' frames; writes the site-filled ones to out/rebuilt-site.extxyz and their
    frames to rebuilt-site-300K.extxyz (the uniform fill's are only reported). Returns a
    report row per fill."""
    from repap.analysis.closeness import closeness
    from repap.analysis.metrics import err_rdf
    from repap.analysis.radial import rdf
    from repap.evaluation.network_report import quality
    from repap.generation.rebuild import rebuild
    from repap.sim.md import thermalize

    how = {"uniform": "put back at random", "site": "put back by the learnt site model"}
    train = nset.inherent_structures("train")
    rows = {}
    for fill, text in how.items():
        rebuilt, s = rebuild(train, n, seed=0, fill=fill, progress=progress)
        row, _ = quality(rebuilt, None, 4.2, 100)
        near = closeness(rebuilt, train)
        row.update(structures=n, networks=n, closeness_networks=n,
                   closeness_atoms_median=float(np.median(near.atoms)),
                   closeness_close_share=float(np.mean(near.atoms >= 0.9)),
                   closeness_bonds_median=float(np.median(near.bonds)),
                   seconds_per_network=s["seconds_per_network"])  # fmt: skip
        del row["err_rdf_relaxed"]  # not computed here (no reference RDF given)
        rows[f"repap rebuild --fill {fill}"] = row
        print(
            f"   repap rebuild --fill {fill} (8 atoms around a defect of a training network "
            f"{text}, relaxed, kept if new and no higher than the training networks' mean + 1 "
            f"std): {n} new networks from {s['tried']} tries in {s['seconds']:.1f} s, "
            f"{s['seconds_per_network']:.3f} s per network; four-fold "
            f"{row['fourfold_fraction']:.3f}, angle spread {row['bond_angle_std_deg']:.2f} deg, "
            f"E_IS {row['energy_mean_eV']:.3f} eV/atom; NOT independent networks: a median "
            f"{np.median(near.atoms):.2f} of atoms on a training network, "
            f"{np.mean(near.atoms >= 0.9):.0%} near-copies (>= 0.9)"
        )
    print(
        f"   (held-out networks: {held['fourfold_fraction']:.3f}, "
        f"{held['bond_angle_std_deg']:.2f}, {held['energy_mean_eV']:.3f}; a median "
        f"{held.get('closeness_atoms_median', float('nan')):.2f} of atoms on a training network,"
        f" {held.get('closeness_close_share', float('nan')):.0%} near-copies: rebuilt networks "
        "are neighbours of their sources, docs/results.md, 'Rebuilding one region')"
    )
    rebuilt.write(out / "rebuilt-site.extxyz")
    t0 = time.perf_counter()
    frames = thermalize(rebuilt, 300.0, 0.5, progress=progress)
    md = time.perf_counter() - t0
    _, g_ref = rdf(nset.subset("heldout"), rmax=4.2, nbins=100)  # their 300 K frames
    warm, cold = (err_rdf(rdf(t, rmax=4.2, nbins=100)[1], g_ref) for t in (frames, rebuilt))
    print(
        f"   as 300 K frames (0.5 ps of MD each, {md / n:.3f} s per network; "
        f"rebuilt-site-300K.extxyz): Err_RDF {warm:.3f} against the held-out networks' "
        f"melt-quench frames ({cold:.3f} for the 0 K structures)"
    )
    frames.write(out / "rebuilt-site-300K.extxyz")
    return rows


def plot_model_density(model, traj, path: Path, frame: int = 0) -> None:
    """Target axis projections of one frame beside the model's predicted distributions for
    each next coordinate (teacher-forced on that frame). The demo shows the last frame of the
    training run, which lies in the validation split: the model learned that network."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend stays as it is

    from repap.model.projection import bin_index, project

    g = model.config.n_bins
    frame = frame % len(traj)
    seqs = prepare(traj[frame : frame + 1], order=np.asarray(model.meta["order"]))
    target = project(seqs.frac, g, model.meta["sigma_frac"])[0]
    bins = torch.from_numpy(bin_index(seqs.frac, g))
    with torch.no_grad():
        predicted = model.log_probs(model(bins[:, :-1])).exp()[0].numpy()
    length = float(np.linalg.norm(np.asarray(traj.frame_cells()[frame])[0]))  # cubic: one edge
    fig = Figure(figsize=(11, 7.5), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    vmax = max(float(target[1:].max()), float(predicted.max()))
    for ax, image, title in (
        (axes[0], target[1:], "target: Gaussian of coordinate t+1"),
        (axes[1], predicted, "model: distribution of coordinate t+1"),
    ):
        shown = ax.imshow(image, aspect="auto", interpolation="nearest", cmap="viridis",
                          vmin=0.0, vmax=vmax)  # fmt: skip
        ax.set(title=title, xlabel=f"bin (of {g})")
        top = ax.secondary_xaxis(
            "top", functions=(lambda b: (b + 0.5) * length / g, lambda x: x * g / length - 0.5)
        )
        top.set_xlabel("position along the axis (A)")
    axes[0].set_ylabel("step t (coordinates y0, z0, x1, ...)")
    fig.colorbar(shown, ax=axes, label="probability per bin", shrink=0.9)
    fig.suptitle(f"Axis projections of frame {frame} (validation split)")
    fig.savefig(path, dpi=110)
