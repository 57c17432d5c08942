"""The CPU LSTM of training: torch's fused LSTM kernel (oneDNN) one layer at a time, with
repap's dropout between the layers, keyed by (seed, sample, step, unit) so that a sample's masks
do not depend on its batch or on how batches are sharded across processes; and the bfloat16
policy (native where the CPU has it, float32 otherwise). The parameters are those of a
``torch.nn.LSTM``, which runs whole on GPUs (cuDNN). A second CPU path (the first layer as a
table lookup, repap's own recurrence and backward kernel) was measured slower on both CPU
kinds (Zen 3 float32: 512 vs 447 ms per batch; Zen 4: 390 vs 350 float32, 249 vs 214
bfloat16) and removed.
"""

from __future__ import annotations

import functools
import warnings

import torch

from repap import _C
from repap.errors import InputError

_MASK64 = (1 << 64) - 1


@functools.cache
def cpu_bfloat16_native() -> bool:
    """Whether this CPU runs bfloat16 LSTMs natively: oneDNN builds its bfloat16 LSTM only on
    CPUs with AVX512-BF16 or AMX. Probed once per process with a tiny LSTM. Where it fails
    (AVX2-only CPUs such as AMD Zen 3) bfloat16 matmuls are emulated: measured 10x slower
    than float32 for the recommended model there, so float32 is the fast path."""
    lstm = torch.nn.LSTM(4, 4)
    x, zeros = torch.zeros(2, 1, 4), torch.zeros(1, 1, 4)
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            torch._VF.lstm(x, (zeros, zeros), list(lstm.parameters()), True, 1, 0.0, False,
                           False, False)  # fmt: skip
    except RuntimeError:
        return False
    return True


_fallback_warned = False


def cpu_matmul_dtype(requested: torch.dtype) -> torch.dtype:
    """The LSTM matmul dtype the CPU runs for ``requested``: bfloat16 where the CPU has it
    natively, float32 otherwise (with one warning per process)."""
    global _fallback_warned
    if requested != torch.bfloat16 or cpu_bfloat16_native():
        return requested
    if not _fallback_warned:
        _fallback_warned = True
        warnings.warn(
            "bfloat16 LSTM: this CPU has no native bfloat16 (AVX512-BF16 or AMX); "
            "running the LSTM in float32 instead (same model, about 10x faster here than "
            "emulated bfloat16)",
            RuntimeWarning,
            stacklevel=3,
        )
    return torch.float32


class _Dropout(torch.autograd.Function):
    """Inverted dropout of a (T, B, H) tensor with a mask keyed by (seed, sample, t, unit)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float, seed: int, row_offset: int) -> torch.Tensor:
        steps, batch, hidden = x.shape
        mask = torch.empty_like(x)
        _C.dropout_mask_cpu(seed, p, steps, batch, hidden, row_offset, mask.data_ptr())
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (mask,) = ctx.saved_tensors
        return grad * mask, None, None, None


def _dropout_key(seed: int, layer: int) -> int:
    return (seed * 0x9E3779B97F4A7C15 + layer) & _MASK64


def layered_lstm(
    lstm: torch.nn.LSTM,
    x: torch.Tensor,
    dropout_seed: int | None = None,
    row_offset: int = 0,
    matmul_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Output (B, T, H) of ``lstm`` (batch_first, zero initial state) for dense inputs x
    (B, T, F) on the CPU: torch's fused LSTM kernel (oneDNN) one layer at a time, with the
    between-layer dropout keyed by (seed, sample, step, unit), so that it does not depend on
    sharding. ``matmul_dtype=torch.bfloat16`` runs it under bfloat16 autocast."""
    if x.device.type != "cpu":
        raise InputError(f"x: the layered LSTM runs on the CPU, got {x.device}")
    steps, batch = x.shape[1], x.shape[0]
    hidden = lstm.hidden_size
    zeros = x.new_zeros(1, batch, hidden)
    h = x.transpose(0, 1)  # time-major: the dropout masks are laid out (T, B, H)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=matmul_dtype == torch.bfloat16):
        for layer in range(lstm.num_layers):
            if layer and dropout_seed is not None and lstm.dropout > 0:
                key = _dropout_key(dropout_seed, layer)
                h = _Dropout.apply(h.float().contiguous(), float(lstm.dropout), key, row_offset)
            weights = [getattr(lstm, f"{name}_l{layer}") for name in
                       ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]  # fmt: skip
            # what nn.LSTM.forward calls, here for one layer
            h = torch._VF.lstm(h, (zeros, zeros), weights, True, 1, 0.0, False, False, False)[0]
    assert h.shape[:2] == (steps, batch)
    return h.float().transpose(0, 1)
