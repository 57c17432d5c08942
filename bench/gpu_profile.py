"""Where generation's GPU time goes: the shipped models' ``sample`` under torch's profiler,
the top CUDA kernels by total time (run by ``make gpu-check``)."""

import sys

import torch
from torch.profiler import ProfilerActivity, profile

import repap

n = int(sys.argv[1]) if len(sys.argv) > 1 else 65536
for name in ("paper", "recommended"):
    model = repap.pretrained(name)
    model.sample(1024, seed=1, device="cuda", temperature=0.5)  # warm up
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        model.sample(n, seed=0, device="cuda", temperature=0.5, batch_size=n)
        torch.cuda.synchronize()
    print(f"\n== {name}: {n} structures")
    table = prof.key_averages().table(
        sort_by="cuda_time_total", row_limit=14, max_name_column_width=60
    )
    print(table)
