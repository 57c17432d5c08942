"""Models trained across the 64-atom network set (``research/network-models/network_models.py``)
judged as networks: N structures each (clash rejection at 2 A), relaxed and grouped, novelty against
the set's training networks, quality beside its held-out networks (never trained on), and the
random + relax baseline. Run: ``.venv/bin/python research/network-models/network_judge.py
MODELS_DIR [N] [T ...]``; writes MODELS_DIR/judge.json (resumable: models already judged are
skipped)."""

import json
import sys
import time
from pathlib import Path

import repap
from repap.evaluation.network_report import evaluate_networks, markdown

if __name__ == "__main__":
    folder = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    temperatures = [float(t) for t in sys.argv[3:]] or [1.0]
    nset = repap.reference_set()
    held, train = nset.inherent_structures("heldout"), nset.subset("train")
    path = folder / "judge.json"
    out = json.loads(path.read_text()) if path.is_file() else {}
    for ckpt in sorted(folder.glob("*.pt")):
        model = repap.load_model(ckpt)
        for temperature in temperatures:
            key = f"{ckpt.stem}, T={temperature}"
            if key in out:
                continue
            t = time.perf_counter()
            ens = model.sample(n, seed=0, min_dist=2.0, temperature=temperature)
            seconds = time.perf_counter() - t
            report, _ = evaluate_networks(ens, held, train, baseline_size=200)
            report["generation_seconds"] = seconds
            report["generation_summary"] = ens.summary()
            out[key] = report
            print(f"== {key}\n{markdown(report)}\n", flush=True)
            path.write_text(json.dumps(out, indent=1, default=float) + "\n")
