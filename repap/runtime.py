"""Process-wide settings for the heavy CPU work of training and generation."""

from __future__ import annotations

import os
from typing import Any

from repap.errors import InputError


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed blocks for reuse instead of returning them to the system.

    Every training step allocates and frees the same large CPU tensors (tens of MB each);
    by default glibc maps each one fresh and the first touch of every page faults, which cost
    a quarter of the CPU step time here (386 vs 500 ms per batch of 128). The process keeps
    its peak memory instead. A process-wide setting: the command line makes it for train,
    generate and demo; library functions leave it to the caller. Returns False where the C
    library is not glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 1 << 30) and mallopt(m_trim_threshold, 1 << 31))


def agree(world: int, error: BaseException | None) -> None:
    """Every rank says whether its last step failed; all stop if one did. Call it where one
    rank did something alone (rank 0 locking the output, writing a checkpoint): an error there
    would otherwise leave the other ranks waiting at the next collective for ever. The failed
    rank raises its own error, the others a RuntimeError that points to it."""
    if world > 1:
        import torch
        import torch.distributed as dist

        on = "cuda" if dist.get_backend() == "nccl" else "cpu"
        flag = torch.tensor([0 if error is None else 1], dtype=torch.int32, device=on)
        dist.all_reduce(flag)
        failed = int(flag.item())
    else:
        failed = 0 if error is None else 1
    if error is not None:
        raise error
    if failed:
        raise RuntimeError(f"stopped: {failed} other rank(s) failed (see their messages above)")


def distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); under torchrun (WORLD_SIZE > 1) this also starts the
    process group: NCCL with one GPU per local rank where there are GPUs, gloo otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size(), local


def resolve_device(device: Any, local: int = 0) -> Any:
    """A torch.device from None or "auto" (CUDA device ``local`` when torch sees one, else the
    CPU) or a name; a CUDA device that torch cannot use is refused with the reason."""
    import torch

    if device is None or str(device) == "auto":
        return torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"device: expected cpu, cuda or cuda:N, got {device!r} ({err})") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(
                f"device: {device} asked for, but this torch ({torch.__version__}) sees no CUDA "
                "device; use --device cpu"
            )
        if device.index is not None and device.index >= count:
            raise InputError(f"device: {device} asked for, but torch sees {count} CUDA devices")
    elif device.type != "cpu":
        raise InputError(f"device: expected cpu, cuda or cuda:N, got {device}")
    return device


PRECISIONS = ("float32", "bfloat16")
"""Generation's matrix-product precisions. ``float32``: full float32 products (the CPU's only
one; on CUDA it equals the CPU's structures up to rounding). ``bfloat16``: weights cast once,
the hidden state rounded to bfloat16 as it enters each product, products on tensor cores
accumulated in float32, the gates rounded once to bfloat16 and the logits kept float32; the
cell state, biases, the sampler and everything else stay float32. It moves logits by about
1e-2 and so an occasional draw across a bin edge: the same distribution (tested two-sample
on 65,536 structures), not the same structures."""


def resolve_precision(precision: str | None, device: Any) -> str:
    """``None`` / ``"auto"``: bfloat16 on CUDA devices with bfloat16 tensor cores (compute
    capability 8.0 and up), float32 elsewhere; otherwise checked against :data:`PRECISIONS`."""
    import torch

    if precision is None or precision == "auto":
        if device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0):
            return "bfloat16"
        return "float32"
    if precision not in PRECISIONS:
        raise InputError(
            f"precision: expected one of {', '.join(PRECISIONS)} or auto, got {precision!r}"
        )
    if precision == "bfloat16" and device.type != "cuda":
        raise InputError("precision: bfloat16 generation runs on CUDA only; use float32")
    return precision


def cpu_fields() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ("model name", "cpu family", "model",
    "flags", ...); empty where there is none (not Linux)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    if fields:
                        break  # the first processor tells
                    continue
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def machine() -> str:
    """This machine in words, for reports: CPU model and cores (Linux), else the platform."""
    import platform

    name = cpu_fields().get("model name") or platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores"


def numba_target() -> tuple[str, bool]:
    """The CPU Numba compiles repap's kernels (RDF, fingerprints, closeness) for, and whether
    that is a generic x86-64 one on a CPU with AVX2: Numba's LLVM did not recognise the host
    (set NUMBA_CPU_NAME=x86-64-v3). Measured on Zen 4: the RDF of the 30-atom run takes
    311 ms for a generic target against 128-132 ms for x86-64-v3, haswell, znver3/4/5."""
    name = os.environ.get("NUMBA_CPU_NAME")
    if name:
        return f"{name} (NUMBA_CPU_NAME)", False
    import llvmlite.binding as ll

    host = ll.get_host_cpu_name()
    features = ll.get_host_cpu_features()
    vector = ("AVX-512" if features.get("avx512f") else "AVX2" if features.get("avx2")
              else "no AVX2")  # fmt: skip
    return f"{host} ({vector})", host == "generic" and _cpu_flag("avx2")


def _cpu_flag(flag: str) -> bool:
    return flag in cpu_fields().get("flags", "").split()
