"""The RePAP model: an LSTM that predicts the axis projection of the next coordinate.

Input at step t (t = 0 .. 3N-2): one-hot of the bin of coordinate t (G values) and one-hot of
t (3N-1 values). Output: G values over the bins of coordinate t+1. The "paper" configuration
is the poster's and the authors' code's: LSTM 2 x 256, dropout 0.5 between the layers, ReLU,
linear 256 -> G, sigmoid, mean squared error against the normalised Gaussian of coordinate
t+1, G = 50, sigma 0.2 Angstrom. ``output="softmax"`` trains a categorical distribution with
cross-entropy against the same Gaussian instead.

The model also carries the metadata needed to generate from it (``meta``: cell, atomic numbers,
atom order, the distribution of the first coordinate, ...); see :mod:`repap.checkpoint`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from repap._checks import check_positive_int
from repap.config import ModelConfig
from repap.errors import InputError
from repap.lstm import cpu_matmul_dtype, fused_lstm, layered_lstm


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
        # On a CPU without native bfloat16 the LSTM runs in float32 (repap.lstm.cpu_matmul_dtype)
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
            if self.config.input == "embedding":
                return fused_lstm(self.lstm, bins, self.config.n_bins, seed, row_offset, dtype)
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
        """Generate ``n`` structures: an :class:`repap.sampling.Ensemble` in the training
        data's atom order and cell. Keyword arguments: temperature, max_retries,
        max_restarts, batch_size, device, start, progress (see :func:`repap.sampling.sample`)."""
        from repap.sampling import sample

        return sample(self, n, seed=seed, min_dist=min_dist, **kwargs)

    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Log of the categorical distribution over bins that generation draws from: the
        softmax, or the sigmoid outputs normalised to sum 1."""
        if self.config.output == "softmax":
            return torch.log_softmax(logits, dim=-1)
        s = torch.sigmoid(logits).clamp_min(1e-30)
        return s.log() - s.sum(-1, keepdim=True).log()
