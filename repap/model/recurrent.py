"""The RePAP model: an LSTM that predicts the axis projection of the next coordinate.

Input at step t (t = 0 .. 3N-2): one-hot of the bin of coordinate t (G values) and one-hot of
t (3N-1 values). Output: G values over the bins of coordinate t+1. The "paper" configuration
is the poster's and the authors' code's: LSTM 2 x 256, dropout 0.5 between the layers, ReLU,
linear 256 -> G, sigmoid, mean squared error against the normalised Gaussian of coordinate
t+1, G = 50, sigma 0.2 Angstrom. ``output="softmax"`` trains a categorical distribution with
cross-entropy against the same Gaussian instead.

The model also carries the metadata needed to generate from it (``meta``: cell, atomic numbers,
atom order, the distribution of the first coordinate, ...); see :mod:`repap.model.checkpoint`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from repap import _C
from repap._checks import check_positive_int
from repap.errors import InputError
from repap.model.config import ModelConfig
from repap.model.lstm import cpu_matmul_dtype, layered_lstm
from repap.runtime import resolve_precision


class RePAP(nn.Module):
    """LSTM over the coordinate sequence of ``n_atoms`` atoms (3N coordinates, 3N-1 steps)."""

    def __init__(self, config: ModelConfig, n_atoms: int, meta: dict[str, Any] | None = None):
        super().__init__()
        check_positive_int(n_atoms, "n_atoms")
        self.config = config
        self.n_atoms = n_atoms
        self.n_steps = 3 * n_atoms - 1
        dropout = config.dropout if config.layers > 1 else 0.0
        self.lstm = nn.LSTM(
            config.n_bins + self.n_steps, config.hidden, config.layers,
            batch_first=True, dropout=dropout,
        )  # fmt: skip
        self.head = nn.Linear(config.hidden, config.n_bins)
        self.meta: dict[str, Any] = dict(meta or {})
        # bfloat16 speeds the LSTM's matmuls up (training option ``precision``); not saved.
        # On a CPU without native bfloat16 the LSTM runs in float32 (lstm.cpu_matmul_dtype)
        self.matmul_dtype = torch.float32

    def one_hot(self, bins: torch.Tensor) -> torch.Tensor:
        """Dense input (B, T, G + 3N - 1): one-hot bin of coordinate t ++ one-hot step t."""
        batch, steps = bins.shape
        g = self.config.n_bins
        x = bins.new_zeros((batch, steps, g + self.n_steps), dtype=torch.float32)
        x.scatter_(2, bins.unsqueeze(-1), 1.0)
        t = torch.arange(steps, device=bins.device)
        x[:, t, g + t] = 1.0
        return x

    def features(
        self, bins: torch.Tensor, dropout_seed: int | None = None, row_offset: int = 0
    ) -> torch.Tensor:
        """Top LSTM layer's output (B, T, H) for bins (B, T) of coordinates 0 .. T-1."""
        if bins.ndim != 2 or bins.shape[1] > self.n_steps:
            raise InputError(
                f"bins: expected shape (B, T) with T <= {self.n_steps}, got {tuple(bins.shape)}"
            )
        low = self.matmul_dtype == torch.bfloat16
        if bins.device.type == "cpu":
            seed = dropout_seed if self.training else None
            if self.training and seed is None:  # plain module use: draw from torch's generator
                seed = int(torch.randint(0, 2**62, ()))
            dtype = cpu_matmul_dtype(self.matmul_dtype)  # float32 where bf16 is not native
            return layered_lstm(self.lstm, self.one_hot(bins), seed, row_offset, dtype)
        with torch.autocast(bins.device.type, dtype=torch.bfloat16, enabled=low):
            out, _ = self.lstm(self.one_hot(bins))  # cuDNN, with torch's dropout
        return out.float()

    def forward(
        self, bins: torch.Tensor, dropout_seed: int | None = None, row_offset: int = 0
    ) -> torch.Tensor:
        """Logits (B, T, G) over the bins of coordinates 1 .. T: before the sigmoid or the
        softmax of ``config.output``."""
        return self.head(torch.relu(self.features(bins, dropout_seed, row_offset)))

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-sample training loss (B,): MSE of sigmoid outputs (paper) or cross-entropy of
        the softmax against the Gaussian target (B, T, G)."""
        if self.config.output == "sigmoid":
            return (torch.sigmoid(logits) - target).square().mean(dim=(1, 2))
        return -(target * torch.log_softmax(logits, dim=-1)).sum(-1).mean(-1)

    def sample(self, n: int, seed: int = 0, min_dist: float | None = 2.0, **kwargs: Any):
        """Generate ``n`` structures: an :class:`repap.model.sampling.Ensemble` in the training
        data's atom order and cell. Keyword arguments: temperature, max_retries,
        max_restarts, batch_size, device, start, progress (see :func:`.sampling.sample`)."""
        from repap.model.sampling import sample

        return sample(self, n, seed=seed, min_dist=min_dist, **kwargs)

    def stepper(self, device: str | torch.device = "cpu", precision: str = "float32") -> Step:
        """This model's recurrence as a step function on ``device`` (a copy of the weights:
        the model keeps its device and mode): ``h, c = step.zero_state(B, device)``, then
        ``logits = step(bins, steps, h, c)`` per coordinate. Generation runs on it.
        ``precision="bfloat16"`` (CUDA only) runs the matrix products on bfloat16 operands
        with float32 accumulation and results (tensor cores): ``repap.runtime.PRECISIONS``."""
        return Step(self, torch.device(device), precision)

    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Log of the categorical distribution over bins that generation draws from: the
        softmax, or the sigmoid outputs normalised to sum 1."""
        if self.config.output == "softmax":
            return torch.log_softmax(logits, dim=-1)
        s = torch.sigmoid(logits).clamp_min(1e-30)
        return s.log() - s.sum(-1, keepdim=True).log()


class Step:
    """The model's recurrence one coordinate at a time (``RePAP.stepper``): one LSTM step for
    a batch of structures at their own positions in the sequence, with a copy of the weights
    on ``device`` rearranged once: layer 0's input gates are a table lookup (bin row + step
    row); the element-wise cell math is one fused kernel (C++ on the CPU, CUDA on GPUs). It
    computes what :meth:`RePAP.forward` computes, step by step (tested)."""

    def __init__(self, model: RePAP, device: torch.device, precision: str = "float32"):
        self.precision = resolve_precision(precision, device)
        lstm = model.lstm
        g = model.config.n_bins

        def weight(name: str) -> torch.Tensor:  # a copy on `device`; the model stays as is
            return getattr(lstm, name).detach().to(device, torch.float32)

        w0 = weight("weight_ih_l0").t()
        self.bin_rows = w0[:g].contiguous()
        self.step_rows = (w0[g:] + weight("bias_ih_l0") + weight("bias_hh_l0")).contiguous()
        self.w_hh0 = weight("weight_hh_l0").t().contiguous()
        self.deeper = []
        for layer in range(1, lstm.num_layers):
            w_ih = weight(f"weight_ih_l{layer}").t().contiguous()
            w_hh = weight(f"weight_hh_l{layer}").t().contiguous()
            b = weight(f"bias_ih_l{layer}") + weight(f"bias_hh_l{layer}")
            self.deeper.append((w_ih, w_hh, b.contiguous()))
        self.head_w = model.head.weight.detach().to(device, torch.float32).t().contiguous()
        self.head_b = model.head.bias.detach().to(device, torch.float32)
        self.hidden = lstm.hidden_size
        self.layers = lstm.num_layers
        if self.precision == "bfloat16":  # the products' weights, cast once
            bf = torch.bfloat16
            self.w_hh0_lo = self.w_hh0.to(bf)
            # layer l's two products as one: [h_(l-1) | h_l] @ [w_ih; w_hh], bias in the cell
            self.deeper_lo = [(torch.cat([w_ih, w_hh]).to(bf), b) for w_ih, w_hh, b in self.deeper]
            self.head_w_lo = self.head_w.to(bf)

    def zero_state(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (self.layers, batch, self.hidden)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def _cell(self, gx: torch.Tensor, rec: torch.Tensor, c: torch.Tensor, h: torch.Tensor):
        """c, h of one layer in place from input gates gx and recurrent part rec (CPU)."""
        b = gx.shape[0]
        _C.lstm_step_forward_cpu(
            gx.data_ptr(),
            rec.data_ptr(),
            rec.data_ptr(),
            c.data_ptr(),
            c.data_ptr(),
            h.data_ptr(),
            b,
            self.hidden,
        )  # fmt: skip  (activations written over rec; c updated in place)

    def __call__(
        self,
        bins: torch.Tensor,
        steps: torch.Tensor,
        h: torch.Tensor,
        c: torch.Tensor,
        go: torch.Tensor | None = None,
        saved: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Consume coordinate ``steps[b]`` (its bin ``bins[b]``) of every structure, updating
        the state (h, c: (L, B, H), contiguous per layer) in place; returns the logits (B, G)
        of the next coordinates. On CUDA, ``go`` (B,) bool leaves the state of the rows
        without it unchanged (their logits are then meaningless), and ``saved`` (h, c) takes
        the new state of rows whose coordinate ended an atom."""
        if bins.device.type == "cuda":
            if self.precision == "bfloat16":
                return self._cuda_bf16(bins, steps, h, c, go, saved)
            return self._cuda(bins, steps, h, c, go, saved)
        if go is not None or saved is not None:
            raise InputError("go, saved: the masked step runs on CUDA only")
        gx = self.bin_rows.index_select(0, bins).add_(self.step_rows.index_select(0, steps))
        self._cell(gx, h[0] @ self.w_hh0, c[0], h[0])
        for layer, (w_ih, w_hh, b) in enumerate(self.deeper, start=1):
            self._cell(torch.addmm(b, h[layer - 1], w_ih), h[layer] @ w_hh, c[layer], h[layer])
        return torch.addmm(self.head_b, torch.relu(h[-1]), self.head_w)

    def _cell_cuda(self, layer, gates, bins, steps, h, c, go, saved, **outputs) -> None:
        """The fused cell kernel of one layer (layer 0 adds its input tables), in place."""
        a = _C.CellStep()
        a.batch, a.hidden = bins.shape[0], self.hidden
        a.gates, a.gates_bf16 = gates.data_ptr(), gates.dtype == torch.bfloat16
        if layer == 0:
            a.bin_rows, a.step_rows = self.bin_rows.data_ptr(), self.step_rows.data_ptr()
            a.bins, a.steps = bins.data_ptr(), steps.data_ptr()
        if go is not None:
            a.go = go.data_ptr()
        if saved is not None:
            a.steps = steps.data_ptr()
            a.saved_h, a.saved_c = saved[0][layer].data_ptr(), saved[1][layer].data_ptr()
        a.c, a.h = c[layer].data_ptr(), h[layer].data_ptr()
        for name, t in outputs.items():
            setattr(a, name, t.data_ptr())
        if "h_lo" in outputs:
            a.h_lo_stride = outputs["h_lo"].stride(0)
        dev = bins.device
        _C.lstm_cell_step_cuda(a, dev.index, torch.cuda.current_stream(dev).cuda_stream)

    def _cuda(self, bins, steps, h, c, go, saved) -> torch.Tensor:
        """The CUDA step: per layer the matrix products in cuBLAS, then one fused cell kernel
        (layer 0's input gates gathered from the tables inside it); no host sync."""
        relu = torch.empty_like(h[-1])
        for layer in range(self.layers):
            if layer == 0:
                gates = h[0] @ self.w_hh0
            else:
                w_ih, w_hh, b = self.deeper[layer - 1]
                gates = torch.addmm(b, h[layer - 1], w_ih).addmm_(h[layer], w_hh)
            top = {"h_relu": relu} if layer == self.layers - 1 else {}
            self._cell_cuda(layer, gates, bins, steps, h, c, go, saved, **top)
        return torch.addmm(self.head_b, relu, self.head_w)

    def _cuda_bf16(self, bins, steps, h, c, go, saved) -> torch.Tensor:
        """:meth:`_cuda` on tensor cores: bfloat16 operands, float32 accumulation, the gates
        rounded once to bfloat16 (half the bytes the cell kernel reads; biases and the input
        tables are added in float32 there). Layer l >= 1 makes its two products one, over
        [h_(l-1) | h_l]: the cell kernel of layer l-1 writes h_(l-1) into the first half as it
        steps, and the top layer writes the head's bfloat16 input; the head's logits are
        float32 (``out_dtype``)."""
        batch, hid, bf = bins.shape[0], self.hidden, torch.bfloat16
        relu = torch.empty(batch, hid, dtype=bf, device=bins.device)
        pairs = [torch.empty(batch, 2 * hid, dtype=bf, device=bins.device)
                 for _ in range(self.layers - 1)]  # fmt: skip
        for layer in range(self.layers):
            if layer == 0:
                gates = h[0].to(bf) @ self.w_hh0_lo
                bias = {}
            else:
                w, b = self.deeper_lo[layer - 1]
                pair = pairs[layer - 1]
                pair[:, hid:].copy_(h[layer])  # its first half: written by the layer below
                gates = pair @ w
                bias = {"bias": b}
            if layer == self.layers - 1:
                out = {"relu_lo": relu}
            else:
                out = {"h_lo": pairs[layer][:, :hid]}
            self._cell_cuda(layer, gates, bins, steps, h, c, go, saved, **bias, **out)
        # float32 logits from bfloat16 operands (cuBLAS accumulates in float32)
        return torch.mm(relu, self.head_w_lo, out_dtype=torch.float32).add_(self.head_b)
