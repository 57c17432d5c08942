"""How training and generation time grow with the number of atoms (issue: generate new
networks, larger cells), measured in one run on this machine: for each trained network model
given, one training step of the recommended preset (batch 128, bfloat16 where the CPU has it;
forward, cross-entropy against the Gaussian targets, backward; random coordinates, since the
cost does not depend on them) and the generation of N structures with clash rejection at
2 A, T = 1. Run:

    .venv/bin/python research/model-options/cell_scaling.py OUT.json MODEL.pt [MODEL.pt ...] [--n N]
"""

import argparse
import json
import time

import numpy as np
import torch

import repap
from repap.model.lstm import cpu_matmul_dtype
from repap.model.projection import bin_index, project


def step_seconds(model: repap.RePAP, batch: int = 128, repeats: int = 3) -> float:
    """Best of ``repeats`` training steps (forward + backward), seconds."""
    model.train()
    model.matmul_dtype = cpu_matmul_dtype(torch.bfloat16)
    rng = np.random.default_rng(0)
    frac = rng.random((batch, model.n_atoms, 3))
    bins = torch.from_numpy(bin_index(frac, model.config.n_bins))
    target = torch.from_numpy(project(frac, model.config.n_bins, model.meta["sigma_frac"]))
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        loss = model.loss(model(bins[:, :-1]), target[:, 1:]).mean()
        loss.backward()
        best = min(best, time.perf_counter() - t)
        model.zero_grad()
    model.eval()
    model.matmul_dtype = torch.float32
    return best


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    rows = {}
    for path in args.models:
        model = repap.load_model(path)
        train = step_seconds(model)
        t = time.perf_counter()
        ens = model.sample(args.n, seed=0, min_dist=2.0, temperature=1.0)
        gen = (time.perf_counter() - t) / args.n
        rows[path] = {"atoms": model.n_atoms, "train_step_s": train,
                      "train_s_per_sequence": train / 128, "generation_s_per_structure": gen,
                      "generation": ens.summary()}  # fmt: skip
        print(path, rows[path], flush=True)
    with open(args.out, "w") as f:
        json.dump({"threads": torch.get_num_threads(), "rows": rows}, f, indent=1)
