"""Models trained across the shipped 64-atom network set (issue: generate new networks), one
variant per option; run where training is fast (a GPU: ``python
research/network-models/network_models.py OUT``) and judged where LAMMPS is
(``research/network-models/network_judge.py``). Each variant is ``repap.train`` on
``repap.reference_set()``: its training networks only (10 % of them kept whole for validation),
the held-out networks never seen. Writes OUT/NAME.pt (the best-validation model) and
OUT/train.json (validation NLL per epoch, seconds)."""

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import repap
from repap.model.config import TrainConfig

# name -> TrainConfig.preset("recommended", **overrides); GPU-sized batches
VARIANTS = {
    "base": {},
    "aug8": {"augment": 8},
    "aug8-deep": {"augment": 8, "layers": 3},
    "aug8-wide": {"augment": 8, "hidden": 384},
    "aug24": {"augment": 24},
}
COMMON = {"batch_size": 1024, "epochs": 20, "patience": 4, "schedule": "cosine", "lr": 2e-3}


def main(out: Path, names: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    nset = repap.reference_set()
    log = {}
    for name in names:
        config = TrainConfig.preset("recommended", **{**COMMON, **VARIANTS[name]})
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            model = repap.train(nset, config, out=Path(tmp) / f"{name}.pt", progress=False)
            shutil.copy(Path(tmp) / f"{name}.pt", out / f"{name}.pt")
        seconds = time.perf_counter() - t0
        history = model.meta["history"]
        log[name] = {
            "overrides": VARIANTS[name], "seconds": round(seconds, 1),
            "best": model.meta["best"], "val_nll": [round(h["val_nll"], 4) for h in history],
            "train_frames": model.meta["data"]["train_frames"],
        }  # fmt: skip
        print(name, log[name], flush=True)
        (out / "train.json").write_text(json.dumps(log, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:] or list(VARIANTS))
