"""A multi-layer LSTM over bin sequences, fused for CPU training.

The input of the first layer at step t is one-hot(bin_t) ++ one-hot(t); its product with
``weight_ih_l0`` is two rows of that matrix, so the first layer's input gates are a table
lookup (an embedding) instead of a dense matmul: the same function, cheaper. Every layer's
recurrence runs as one autograd function: per step one BLAS matmul plus one fused C++
element-wise kernel (forward and backward), and the weight gradients as one large matmul over
all steps, instead of a dozen small element-wise torch ops per step and per direction. The
parameters are those of a ``torch.nn.LSTM`` (same names, layout and gate order i, f, g, o), so
the dense one-hot path through ``nn.LSTM`` (cuDNN on GPUs) computes the same function.
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


class _Recurrence(torch.autograd.Function):
    """h_t (T, B, H) of one layer from its input gates gx (T, B, 4H) and w_hh (4H, H).

    With ``low=True`` the matmuls take bfloat16 operands (float32 accumulation inside BLAS);
    the kernel writes the bfloat16 copies of h and of the gate gradients as it goes, and the
    cell state and all element-wise math stay float32.
    """

    @staticmethod
    def forward(ctx, gx: torch.Tensor, w_hh: torch.Tensor, low: bool) -> torch.Tensor:
        gx = gx.contiguous()
        steps, batch, four_h = gx.shape
        hidden = four_h // 4
        mm_dtype = torch.bfloat16 if low else torch.float32
        act = torch.empty_like(gx)
        c = gx.new_empty(steps, batch, hidden)
        h = gx.new_empty(steps, batch, hidden)
        h_low = gx.new_empty(steps, batch, hidden, dtype=mm_dtype) if low else h
        rec = gx.new_zeros(batch, four_h, dtype=mm_dtype)  # zero state at the first step
        c_zero = gx.new_zeros(batch, hidden)
        w_t = w_hh.detach().to(mm_dtype).t()
        for t in range(steps):
            out = rec if low or t == 0 else act[t]  # float32: in place in act
            if t:
                torch.mm(h_low[t - 1], w_t, out=out)
            _C.lstm_step_forward_cpu(
                gx[t].data_ptr(), out.data_ptr(), low, act[t].data_ptr(),
                (c[t - 1] if t else c_zero).data_ptr(), c[t].data_ptr(), h[t].data_ptr(),
                h_low[t].data_ptr() if low else 0, batch, hidden,
            )  # fmt: skip
        ctx.low = low
        ctx.save_for_backward(act, c, h_low, w_hh)
        return h

    @staticmethod
    def backward(ctx, dh_out: torch.Tensor):
        act, c, h_low, w_hh = ctx.saved_tensors
        low = ctx.low
        dh_out = dh_out.contiguous()
        steps, batch, hidden = c.shape
        mm_dtype = torch.bfloat16 if low else torch.float32
        dgates = torch.empty_like(act)
        dgates_low = torch.empty_like(act, dtype=mm_dtype) if low else dgates
        dc = c.new_zeros(batch, hidden)
        c_zero = c.new_zeros(batch, hidden)
        dh_rec = c.new_zeros(batch, hidden, dtype=mm_dtype)  # nothing comes after the last step
        w = w_hh.detach().to(mm_dtype)
        for t in range(steps - 1, -1, -1):
            _C.lstm_step_backward_cpu(
                act[t].data_ptr(), c[t].data_ptr(), (c[t - 1] if t else c_zero).data_ptr(),
                dh_out[t].data_ptr(), dh_rec.data_ptr(), low, dc.data_ptr(),
                dgates[t].data_ptr(), dgates_low[t].data_ptr() if low else 0, batch, hidden,
            )  # fmt: skip
            if t:
                torch.mm(dgates_low[t], w, out=dh_rec)
        # dW_hh = sum_t dgates_t^T h_{t-1}: one large matmul instead of one per step
        n = (steps - 1) * batch
        dw = dgates_low[1:].view(n, 4 * hidden).t() @ h_low[:-1].reshape(n, hidden)
        return dgates, dw.to(w_hh.dtype), None


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
    between-layer dropout keyed like :func:`fused_lstm`'s, so that it does not depend on
    sharding either. ``matmul_dtype=torch.bfloat16`` runs it under bfloat16 autocast."""
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


def fused_lstm(
    lstm: torch.nn.LSTM,
    bins: torch.Tensor,
    n_bins: int,
    dropout_seed: int | None = None,
    row_offset: int = 0,
    matmul_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Output (B, T, H) of ``lstm`` (batch_first, zero initial state) for the input
    one-hot(bins) ++ one-hot(step), computed with the fused CPU recurrence.

    ``dropout_seed`` turns on the between-layer dropout of ``lstm`` (training); sample b of
    the batch uses the mask of global sample ``row_offset + b``, so the result does not depend
    on how batches are sharded across processes. ``matmul_dtype=torch.bfloat16`` runs the
    matmuls on bfloat16 operands (about 2.5x faster on CPUs with AVX512-BF16 or AMX; float32
    accumulation, state and element-wise math).
    """
    if matmul_dtype not in (torch.float32, torch.bfloat16):
        raise InputError(f"matmul_dtype: expected float32 or bfloat16, got {matmul_dtype}")
    low = matmul_dtype == torch.bfloat16
    if bins.device.type != "cpu":
        raise InputError(f"bins: the fused LSTM runs on the CPU, got {bins.device}")
    batch, steps = bins.shape
    hidden = lstm.hidden_size
    table = lstm.weight_ih_l0.t()  # (G + S, 4H): row k is the input gates of one-hot index k
    step_bias = table[n_bins : n_bins + steps] + lstm.bias_ih_l0 + lstm.bias_hh_l0
    gx = torch.nn.functional.embedding(bins.t(), table[:n_bins]) + step_bias.unsqueeze(1)
    h = _Recurrence.apply(gx, lstm.weight_hh_l0, low)
    for layer in range(1, lstm.num_layers):
        if dropout_seed is not None and lstm.dropout > 0:
            key = _dropout_key(dropout_seed, layer)
            h = _Dropout.apply(h, float(lstm.dropout), key, row_offset)
        w_ih = getattr(lstm, f"weight_ih_l{layer}")
        bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
        x = h.reshape(steps * batch, hidden)
        gx = torch.addmm(bias.to(matmul_dtype), x.to(matmul_dtype), w_ih.to(matmul_dtype).t())
        h = _Recurrence.apply(
            gx.float().view(steps, batch, 4 * hidden), getattr(lstm, f"weight_hh_l{layer}"), low
        )
    return h.transpose(0, 1)
