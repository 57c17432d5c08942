"""A model trained across a network set of any cell size, and judged as networks, on this
machine's CPU: how training and generation time grow with the number of atoms (issue: generate
new networks, larger cells). Run:

    .venv/bin/python research/network-models/network_cells.py SET.npz OUT [FRAMES AUGMENT EPOCHS N]

SET.npz is a ``repap dataset --out`` set; OUT/model.pt the best-validation model
(``repap train SET.npz --preset recommended --frames FRAMES --augment AUGMENT --epochs EPOCHS
--schedule cosine --lr 2e-3``), OUT/cells.json the seconds per epoch and per training sequence,
generation and relaxation seconds per structure and the network-level report of N structures
(T = 1, clash rejection at 2 A) against the set's held-out networks. Resumable: a model.pt
there (the best epoch so far of a stopped run, too) is judged, not trained again."""

import json
import sys
import time
from pathlib import Path

import repap
from repap.evaluation.network_report import evaluate_networks, markdown
from repap.model.config import TrainConfig

if __name__ == "__main__":
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    frames, augment, epochs, n = (int(a) for a in [*sys.argv[3:], "50", "8", "6", "200"][:4])
    out.mkdir(parents=True, exist_ok=True)
    nset = repap.read(source)
    log_path = out / "cells.json"
    log = json.loads(log_path.read_text()) if log_path.is_file() else {}
    config = TrainConfig.preset("recommended", frames=frames, augment=augment, epochs=epochs,
                                schedule="cosine", lr=2e-3, patience=0)  # fmt: skip
    if not (out / "model.pt").is_file():
        repap.train(nset, config, out=out / "model.pt", device="cpu")
    model = repap.load_model(out / "model.pt")
    if "train" not in log:  # from the checkpoint: also when the run was stopped after an epoch
        history = model.meta["history"]
        per_epoch = sum(h["seconds"] for h in history) / len(history)
        log["train"] = {
            "atoms": nset.n_atoms, "networks": int(nset.n_networks),
            "heldout": int(nset.heldout.sum()), "config": model.meta["train"],
            "train_frames": model.meta["data"]["train_frames"], "epochs_run": len(history),
            "seconds_per_epoch": per_epoch,
            "seconds_per_sequence": per_epoch / model.meta["data"]["train_frames"],
            "val_nll": [round(h["val_nll"], 4) for h in history], "best": model.meta["best"],
        }  # fmt: skip
        log_path.write_text(json.dumps(log, indent=1) + "\n")
    t = time.perf_counter()
    ens = model.sample(n, seed=0, min_dist=2.0, temperature=1.0)
    made = time.perf_counter() - t
    ens.info["seconds_per_structure"] = made / n
    report, _ = evaluate_networks(ens, nset, nset.subset("train"), baseline_size=n)
    report["generation_summary"] = ens.summary()
    report["generation_s_per_structure"] = made / n
    report["relax_s_per_structure"] = report["seconds"]["relax"] / len(ens)
    log["judge"] = report
    log_path.write_text(json.dumps(log, indent=1, default=float) + "\n")
    print(json.dumps(log["train"], indent=1), markdown(report), sep="\n")
    print(f"generation {made / n:.4f} s/structure, relaxation "
          f"{report['relax_s_per_structure']:.4f} s/structure")  # fmt: skip
