"""Every repap CUDA kernel once, small, for ``compute-sanitizer --tool memcheck`` (run by
``make gpu-check``): projection and bin index (periodic or not, float32 and float64, odd
sizes), and the sampler with and without clash rejection (the rewind kernel), softmax and
sigmoid heads, float32 and bfloat16 products."""

import torch

import repap

gen = torch.Generator().manual_seed(0)
for dtype in (torch.float32, torch.float64):
    for periodic in (True, False):
        for frames, atoms, g in ((1, 1, 2), (7, 5, 50), (33, 30, 200), (3, 64, 1024)):
            frac = torch.rand(frames, atoms, 3, generator=gen, dtype=dtype).cuda()
            out = repap.project(frac, g, 0.02, periodic=periodic)
            repap.bin_index(frac, g, periodic=periodic)
            assert torch.isfinite(out).all()
for name in ("paper", "recommended"):
    model = repap.pretrained(name)
    for min_dist in (None, 2.0):
        for precision in ("float32", "bfloat16"):  # the second: bias in the cell kernel
            ens = model.sample(37, seed=1, min_dist=min_dist, temperature=0.5, device="cuda",
                               precision=precision)  # fmt: skip
            assert len(ens) + ens.summary()["failed"] == 37
torch.cuda.synchronize()
print("memcheck script: done")
