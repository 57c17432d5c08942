"""Where generation's GPU time goes (run by ``make gpu-check``): for the shipped 30-atom
models, the wall time of one 65,536-structure batch split into the stepping loop and the
hand-over of the finished structures, the number of steps, then the top CUDA kernels by
total time under torch's profiler."""

import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

import repap
from repap.model import sampling

n = int(sys.argv[1]) if len(sys.argv) > 1 else 65536
counts = {"steps": 0, "captures": 0, "ensemble_s": 0.0}
run_step, ensemble = sampling._CudaBatch.run_step, sampling._ensemble


def counted_step(self, args):
    counts["steps"] += 1
    counts["captures"] += self.graph is None
    return run_step(self, args)


def timed_ensemble(*args, **kwargs):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = ensemble(*args, **kwargs)
    counts["ensemble_s"] += time.perf_counter() - t0
    return out


sampling._CudaBatch.run_step = counted_step
sampling._ensemble = timed_ensemble
for name in ("paper", "recommended"):
    model = repap.pretrained(name)
    model.sample(1024, seed=1, device="cuda", temperature=0.5)  # warm up
    counts.update(steps=0, captures=0, ensemble_s=0.0)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.sample(n, seed=0, device="cuda", temperature=0.5, batch_size=n)
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    print(f"\n== {name}: {n} structures, {wall * 1e3:.1f} ms: {counts['steps']} steps "
          f"({counts['captures']} graph captures), hand-over {counts['ensemble_s'] * 1e3:.1f} "
          f"ms, the rest {(wall - counts['ensemble_s']) * 1e3:.1f} ms")  # fmt: skip
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        model.sample(n, seed=0, device="cuda", temperature=0.5, batch_size=n)
        torch.cuda.synchronize()
    table = prof.key_averages().table(
        sort_by="cuda_time_total", row_limit=14, max_name_column_width=60
    )
    print(table)
