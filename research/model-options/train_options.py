"""Measure the model options of issue 4 against the paper configuration, on equal budgets.

Each configuration trains on the first FRAMES frames of the shipped a-Si reference (the last
10 % of them for validation) for EPOCHS epochs, and is judged by the validation NLL: the
negative log-likelihood of the true next coordinate under the model's categorical
distribution, taken as a density (nats per coordinate, so grids of different G compare); and
by what it generates: 2,000 structures with clash rejection at 2 A, Err_RDF against the
shipped held-out run, the fraction of atoms redrawn, coordination and bond angle.
Run:

    python research/model-options/train_options.py [--frames 8000 --epochs 6 \
        --out bench-results/options]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import repap
from repap.model.recurrent import ModelConfig
from repap.training.loop import TrainConfig

SOFT = {"output": "softmax", "optimizer": "adam"}
COSINE = {**SOFT, "schedule": "cosine"}
OPTIONS = {
    "paper (sigmoid+MSE, G=50, RMSprop)": {},
    "sigmoid+MSE, Adam": {"optimizer": "adam"},
    "softmax+CE, G=50, RMSprop": {"output": "softmax"},
    "softmax+CE, G=50, Adam": SOFT,
    "softmax+CE, G=50, Adam, cosine": COSINE,
    "softmax+CE, G=100, Adam, cosine": {**COSINE, "n_bins": 100},
    "softmax+CE, G=200, Adam, cosine": {**COSINE, "n_bins": 200},
    "softmax+CE, G=100, sigma 0.1, Adam, cosine": {**COSINE, "n_bins": 100, "sigma": 0.1},
    "softmax+CE, G=100, Adam, cosine, dropout 0.1": {**COSINE, "n_bins": 100, "dropout": 0.1},
    "paper, bfloat16 matmuls": {"precision": "bfloat16"},
    "softmax+CE, G=100, Adam, cosine, bfloat16": {**COSINE, "n_bins": 100, "precision": "bfloat16"},
    "softmax+CE, G=100, Adam": {**SOFT, "n_bins": 100},
    "softmax+CE, G=100, Adam, dropout 0.1": {**SOFT, "n_bins": 100, "dropout": 0.1},
    "softmax+CE, G=100, Adam, dropout 0.1, bfloat16": {
        **SOFT,
        "n_bins": 100,
        "dropout": 0.1,
        "precision": "bfloat16",
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", default="bench-results/options")
    parser.add_argument("--only", nargs="*", help="names (substrings) of options to run")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    traj = repap.reference()
    model_fields = set(ModelConfig.__dataclass_fields__)
    for k, (name, opts) in enumerate(OPTIONS.items()):
        if args.only and not any(s in name for s in args.only):
            continue
        if name in results:  # finished earlier: resume
            continue
        config = TrainConfig.preset(
            "paper", epochs=args.epochs, frames=args.frames, patience=0, **opts
        )
        assert set(opts) <= model_fields | set(TrainConfig.__dataclass_fields__)
        t0 = time.perf_counter()
        model = repap.train(traj, config, out=out / f"option{k}.pt", progress=False)
        seconds = time.perf_counter() - t0
        best = min(model.meta["history"], key=lambda h: h["val_nll"])
        results[name] = {
            "val_nll": best["val_nll"],
            "val_nll_last": model.meta["history"][-1]["val_nll"],
            "epoch": best["epoch"],
            "seconds": seconds,
            "history": model.meta["history"],
        }
        results_path.write_text(json.dumps(results, indent=1))
        print(f"{name}: val NLL {best['val_nll']:.4f} (epoch {best['epoch']}), {seconds:.0f} s")
    heldout = repap.reference(heldout=True)
    for k, name in enumerate(OPTIONS):
        if name in results and "err_rdf" not in results[name]:
            model = repap.load_model(out / f"option{k}.pt")
            ens = model.sample(2000, seed=0, min_dist=2.0)
            gen = repap.evaluate(ens, heldout, energy=False)["ensembles"]["generated"]
            results[name].update(
                err_rdf=gen["err_rdf"],
                redrawn=ens.summary()["atoms_redrawn_fraction"],
                coordination=gen["coordination_mean"],
                angle=gen["bond_angle_mean_deg"],
            )
            results_path.write_text(json.dumps(results, indent=1))
    print("| option | val NLL (nats/coord) | Err_RDF | atoms redrawn | coordination | angle |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        nan = float("nan")
        row = [
            f"{r['val_nll']:.3f}",
            f"{r.get('err_rdf', nan):.3f}",
            f"{100 * r.get('redrawn', nan):.1f} %",
            f"{r.get('coordination', nan):.2f}",
            f"{r.get('angle', nan):.1f}",
        ]
        print(f"| {name} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("REPAP_THREADS", "1")))
    main()
