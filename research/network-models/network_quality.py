"""The shipped models judged as networks: 2,000 structures each (seed 0, clash rejection at
2 A, temperatures 1 and 0.5), relaxed, grouped, novelty against the training run's network,
CHGNet on 50 structures per ensemble. Writes network_quality.json beside this file; the
README's "Judged as networks" table comes from it.
Run: ``.venv/bin/python research/network-models/network_quality.py`` (about 10 minutes on 2 cores;
needs ``repap[judge]``)."""

import json
import time
from pathlib import Path

import repap
from repap.evaluation.network_report import evaluate_networks, markdown

if __name__ == "__main__":
    ref, held = repap.reference(), repap.reference(heldout=True)
    out = {}
    for name in ("recommended", "paper"):
        model = repap.pretrained(name)
        for temperature in (1.0, 0.5):
            t = time.perf_counter()
            ens = model.sample(2000, seed=0, min_dist=2.0, temperature=temperature)
            seconds = time.perf_counter() - t
            report, _ = evaluate_networks(ens, held, ref, judge=True, judge_sample=50)
            report["generation_seconds"] = seconds
            out[f"{name}, T={temperature}"] = report
            print(f"== {name}, T = {temperature}\n{markdown(report)}\n", flush=True)
    path = Path(__file__).with_name("network_quality.json")
    path.write_text(json.dumps(out, indent=1, default=float) + "\n")
