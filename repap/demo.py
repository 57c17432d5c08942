"""The main job, ``repap demo``: the whole pipeline on the built-in a-Si data, no other input.

1. Train a small model briefly on the shipped reference (progress bar, loss curve).
2. Generate 2,000 structures with the shipped pretrained model and clash rejection at 2 A.
3. Evaluate them against frames of a second melt-quench (the training network again: a check
   of soundness, not of novelty) and both random baselines.
4. Print the side-by-side table; write the report, the plots and the structures to ``out``.

``quick=True`` shrinks every step (for the test suite): a tiny model, 100 structures, no
energies.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repap.checkpoint import pretrained
from repap.evaluation import evaluate, markdown
from repap.generate import write_extxyz
from repap.references import reference
from repap.sequences import prepare
from repap.training import TrainConfig, train

# Sampling below temperature 1 keeps free-running samples on the learned network (README,
# "Model options, measured": Err_RDF 0.30 at 1.0, 0.057 at 0.5 for the recommended setup).
TEMPERATURE = 0.5


def run_demo(
    out: str | Path = "repap-demo", quick: bool = False, progress: bool = True
) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
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

    n = 100 if quick else 2000
    print(
        f"\n2. generating {n} structures with the pretrained model (temperature {TEMPERATURE}), "
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

    print("\n3. evaluating: relaxed and compared as networks with the training network, and as")
    print("   300 K snapshots against the second run and the random baselines")
    report = evaluate(ens, heldout, training=ref, out=out, energy=not quick,
                      baseline_size=20 if quick else 200)  # fmt: skip
    print()
    print(markdown(report))
    print(
        f"\nwrote {out}/: generated.extxyz, report.md, report.json, rdf.png, coordination.png, "
        f"angles.png, networks.png, density.png, small-model.pt, small-model.loss.png "
        f"({time.perf_counter() - t_start:.0f} s)"
    )
    return report


def plot_model_density(model, traj, path: Path, frame: int = 0) -> None:
    """Target axis projections of one frame beside the model's predicted distributions for
    each next coordinate (teacher-forced on that frame). The demo shows the last frame of the
    training run, which lies in the validation split: the model learned that network."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend stays as it is

    from repap.projection import bin_index, project

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
