"""Batched generation: the LSTM stepped once per coordinate, the sampler kernel drawing for
the whole batch, clash rejection on the device.

Each structure of a batch carries its own position in the sequence, so a structure that must
redraw an atom steps back (to the LSTM state saved before that atom's first coordinate)
while the others go on; the prefix is never re-run. Random numbers are keyed by (seed,
structure index, coordinate, attempt): a structure's result depends on the seed and its
index, not on the batch it is in, the thread count or the sharding across processes, up to
the float32 rounding of the LSTM's matmuls, which can differ between batch sizes and moves a
draw across a bin boundary about once in a million draws.

Placement rule: a coordinate drawn in bin k sits at (k + u) / G with u uniform in [0, 1)
(uniform within the bin). At an atom's third coordinate u is drawn first, every bin whose
position would put the atom closer than ``min_dist`` to an earlier atom (minimum image, any
cell shape) is masked, and the bin is drawn from the renormalised rest: exact conditional
sampling. When no bin is left the atom is redrawn from its first coordinate, up to
``max_retries`` times, then the structure restarts, up to ``max_restarts`` times, then it is
reported as failed: it is never dropped silently, and never kept with a clash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from repap import _C
from repap._checks import check_positive_int
from repap._periodic import cell_heights
from repap.ensemble import Ensemble
from repap.runtime import resolve_device

if TYPE_CHECKING:
    from repap.model import RePAP

SOFTMAX, SIGMOID = _C.sampler_softmax, _C.sampler_sigmoid  # csrc/sampler/sampler_math.h
MIN_TEMPERATURE = 1e-30  # 1/T stays finite in float32 (it overflows near 3e-39)


class Stepper:
    """One LSTM step for a batch of structures at their own positions in the sequence, with
    the weights rearranged once: layer 0's input gates are a table lookup (bin row + step
    row); on the CPU the element-wise cell math is the fused C++ kernel of training."""

    def __init__(self, model: RePAP, device: torch.device):
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

    def zero_state(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (self.layers, batch, self.hidden)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def _cell(self, gx: torch.Tensor, rec: torch.Tensor, c: torch.Tensor, h: torch.Tensor):
        """c, h of one layer in place from input gates gx and recurrent part rec."""
        if gx.device.type == "cpu":
            b = gx.shape[0]
            _C.lstm_step_forward_cpu(
                gx.data_ptr(),
                rec.data_ptr(),
                False,
                rec.data_ptr(),
                c.data_ptr(),
                c.data_ptr(),
                h.data_ptr(),
                0,
                b,
                self.hidden,
            )  # fmt: skip  (activations written over rec; c updated in place)
            return
        i, f, g, o = (gx + rec).chunk(4, 1)
        c.mul_(torch.sigmoid(f)).add_(torch.sigmoid(i) * torch.tanh(g))
        h.copy_(torch.sigmoid(o) * torch.tanh(c))

    def __call__(
        self, bins: torch.Tensor, steps: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> torch.Tensor:
        """Consume coordinate ``steps[b]`` (its bin ``bins[b]``) of every structure, updating
        the state (h, c: (L, B, H), contiguous per layer) in place; returns the logits (B, G)
        of the next coordinates."""
        gx = self.bin_rows.index_select(0, bins).add_(self.step_rows.index_select(0, steps))
        self._cell(gx, h[0] @ self.w_hh0, c[0], h[0])
        for layer, (w_ih, w_hh, b) in enumerate(self.deeper, start=1):
            self._cell(torch.addmm(b, h[layer - 1], w_ih), h[layer] @ w_hh, c[layer], h[layer])
        return torch.addmm(self.head_b, torch.relu(h[-1]), self.head_w)


def _sample_step(
    logits: torch.Tensor,
    mode: int,
    temperature: float,
    coords: torch.Tensor,
    k: torch.Tensor,
    structure: torch.Tensor,
    attempt: torch.Tensor,
    seed: int,
    cell: list[float],
    min_dist: float,
    bins: torch.Tensor,
) -> None:
    batch, n_bins = logits.shape
    args = (
        logits.data_ptr(), batch, n_bins, mode, temperature, coords.data_ptr(), coords.shape[1],
        k.data_ptr(), structure.data_ptr(), attempt.data_ptr(), seed, cell, min_dist,
        bins.data_ptr(),
    )  # fmt: skip
    if logits.device.type == "cuda":
        stream = torch.cuda.current_stream(logits.device).cuda_stream
        _C.sample_step_cuda(*args, logits.device.index, stream)
    else:
        _C.sample_step_cpu(*args)


def check_min_dist(min_dist: float | None, cell: np.ndarray) -> float:
    """min_dist as the kernel takes it (0: off); must stay below half the smallest distance
    between opposite cell faces, where the minimum image is the nearest image."""
    if min_dist is None:
        return 0.0
    if not (np.isfinite(min_dist) and min_dist > 0):
        raise ValueError(
            f"min_dist: expected a positive distance in Angstrom or None, got {min_dist}"
        )
    heights = cell_heights(np.asarray(cell, dtype=np.float64))
    if min_dist >= min(heights) / 2:
        raise ValueError(
            f"min_dist: {min_dist} A must be below half the cell's smallest height "
            f"({min(heights) / 2:.3f} A)"
        )
    return float(min_dist)


def source_frame(meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cell, inverse permutation, atomic numbers, pbc) of a model's structures in the source's
    atom order: sequence position ``inverse[a]`` holds source atom a."""
    inverse = np.argsort(np.asarray(meta["order"]))
    numbers = np.asarray(meta["numbers"])[inverse]
    cell = np.asarray(meta["cell"], dtype=np.float64)
    return cell, inverse, numbers, np.asarray(meta["pbc"], bool)


def generate_batch(
    model: RePAP,
    stepper: Stepper,
    start: int,
    count: int,
    seed: int,
    min_dist: float,
    temperature: float,
    max_retries: int,
    max_restarts: int,
    device: torch.device,
) -> Ensemble:
    """Structures ``start .. start + count - 1`` (their indices key the random numbers)."""
    meta = model.meta
    n_atoms = model.n_atoms
    n_coords = 3 * n_atoms
    g = model.config.n_bins
    mode = SOFTMAX if model.config.output == "softmax" else SIGMOID
    cell, inverse, numbers, pbc = source_frame(meta)
    cell_flat = [float(x) for x in cell.reshape(-1)]
    counts = np.asarray(meta["first_coordinate"]["counts"], dtype=np.float64)
    first = torch.from_numpy(np.where(counts > 0, np.log(np.maximum(counts, 1)), -1e30))
    first = first.float().to(device).expand(count, g).contiguous()

    i64 = {"dtype": torch.int64, "device": device}
    structure = torch.arange(start, start + count, **i64)
    coords = torch.zeros(count, n_coords, device=device)
    k = torch.zeros(count, **i64)  # next coordinate to draw
    attempt = torch.zeros(count, **i64)
    tries = torch.zeros(count, **i64)  # redraws of the current atom
    redrawn = torch.zeros(count, **i64)
    restarts = torch.zeros(count, **i64)
    done = torch.zeros(count, dtype=torch.bool, device=device)
    failed = torch.zeros(count, dtype=torch.bool, device=device)
    h, c = stepper.zero_state(count, device)
    logits = torch.zeros(count, g, device=device)
    saved_h, saved_c, saved_logits = h.clone(), c.clone(), logits.clone()
    bins = torch.empty(count, **i64)
    none = torch.full((count,), -1, **i64)

    while True:
        live = ~(done | failed)
        if not bool(live.any()):
            break
        at_start = live & (k == 0)
        bins.fill_(-1)
        if bool(at_start.any()):  # first coordinates, from the training distribution
            _sample_step(first, SOFTMAX, 1.0, coords, torch.where(at_start, k, none), structure,
                         attempt, seed, cell_flat, 0.0, bins)  # fmt: skip
        _sample_step(logits, mode, temperature, coords, torch.where(live & ~at_start, k, none),
                     structure, attempt, seed, cell_flat, min_dist, bins)  # fmt: skip
        clash = live & (bins < 0)
        if bool(clash.any()):
            _raise_for_bad_logits(bins, structure, k)
            _redraw(clash, k, attempt, tries, redrawn, restarts, failed, h, c, logits,
                    saved_h, saved_c, saved_logits, max_retries, max_restarts)  # fmt: skip
        drawn = live & (bins >= 0)
        last = drawn & (k == n_coords - 1)
        done |= last
        go = (drawn & ~last).nonzero().flatten()
        if len(go) == 0:
            continue
        if len(go) == count:
            logits = stepper(bins, k, h, c)
        else:
            hs, cs = h.index_select(1, go), c.index_select(1, go)
            logits.index_copy_(0, go, stepper(bins[go], k[go], hs, cs))
            h.index_copy_(1, go, hs)
            c.index_copy_(1, go, cs)
        k[go] += 1
        atom_start = go[(k[go] % 3) == 0]  # logits now belong to an atom's first coordinate
        if len(atom_start):
            saved_h[:, atom_start] = h[:, atom_start]
            saved_c[:, atom_start] = c[:, atom_start]
            saved_logits[atom_start] = logits[atom_start]
            tries[atom_start] = 0

    ok = done.nonzero().flatten()
    frac = coords[ok].double().cpu().numpy().reshape(-1, n_atoms, 3)
    positions = frac[:, inverse] @ cell
    info = {
        "generator": "repap",
        "seed": seed,
        "min_dist": min_dist or None,
        "temperature": temperature,
    }
    return Ensemble(
        positions, cell, numbers, pbc, None, info,
        index=structure[ok].cpu().numpy(), redrawn=redrawn[ok].cpu().numpy(),
        restarts=restarts[ok].cpu().numpy(), failed=structure[failed].cpu().numpy(),
        failed_redrawn=redrawn[failed].cpu().numpy(),
        failed_restarts=restarts[failed].cpu().numpy(),
    )  # fmt: skip


def _raise_for_bad_logits(bins: torch.Tensor, structure: torch.Tensor, k: torch.Tensor) -> None:
    """A diverged model (NaN or infinite outputs) is an error of its own, not a clash."""
    bad = (bins == _C.sampler_bad_logits).nonzero().flatten()
    if len(bad):
        i = bad[0]
        raise ValueError(
            f"model: its output for structure {int(structure[i])} at coordinate {int(k[i])} "
            f"is NaN or infinite ({len(bad)} structures in this batch): the weights have "
            "diverged; nothing can be drawn from it"
        )


def _redraw(clash, k, attempt, tries, redrawn, restarts, failed, h, c, logits,
            saved_h, saved_c, saved_logits, max_retries, max_restarts) -> None:  # fmt: skip
    """Structures whose atom has no feasible bin: back to the atom's first coordinate, or
    restart from scratch after max_retries, or fail after max_restarts."""
    attempt[clash] += 1  # new random numbers for everything drawn from here on
    tries[clash] += 1
    redrawn[clash] += 1
    restart = clash & (tries > max_retries)
    back = clash & ~restart
    idx = back.nonzero().flatten()
    if len(idx):
        k[idx] = (k[idx] // 3) * 3
        h[:, idx], c[:, idx] = saved_h[:, idx], saved_c[:, idx]
        logits[idx] = saved_logits[idx]
    idx = restart.nonzero().flatten()
    if len(idx):
        restarts[idx] += 1
        tries[idx] = 0
        k[idx] = 0
        h[:, idx], c[:, idx] = 0.0, 0.0
        failed |= restart & (restarts > max_restarts)


def check_arguments(
    model: RePAP,
    n: int,
    seed: int,
    min_dist: float | None,
    temperature: float,
    max_retries: int,
    max_restarts: int,
    start: int,
    device: str | torch.device | None,
) -> tuple[float, torch.device]:
    """Every argument of :func:`sample` checked, before anything is generated or written
    (``repap generate`` calls it before it creates OUT.parts). Returns (the kernel's
    min_dist, the device)."""
    for name, value, low in (("n", n, 1), ("max_retries", max_retries, 0),
                             ("max_restarts", max_restarts, 0), ("start", start, 0)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    if not (isinstance(seed, (int, np.integer)) and 0 <= seed < 2**64):
        raise ValueError(f"seed: expected an integer in [0, 2**64), got {seed!r}")
    if not (np.isfinite(temperature) and temperature >= MIN_TEMPERATURE):
        raise ValueError(
            f"temperature: expected a number >= {MIN_TEMPERATURE:g} (the kernel takes 1/T in "
            f"float32), got {temperature!r}"
        )
    if "first_coordinate" not in model.meta:
        raise ValueError("model: has no training metadata (train it or load a checkpoint)")
    dist = check_min_dist(min_dist, np.asarray(model.meta["cell"], dtype=np.float64))
    auto = device is None or str(device) == "auto"
    cuda = torch.cuda.is_available() if auto else str(device).startswith("cuda")
    if cuda and model.config.n_bins > _C.sampler_max_cuda_bins:  # before checking for CUDA
        raise ValueError(
            f"model: {model.config.n_bins} bins, but the CUDA sampler handles at most "
            f"{_C.sampler_max_cuda_bins}; generate with device='cpu'"
        )
    return dist, resolve_device(device)


def sample(
    model: RePAP,
    n: int,
    seed: int = 0,
    min_dist: float | None = 2.0,
    temperature: float = 1.0,
    max_retries: int = 10,
    max_restarts: int = 10,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    start: int = 0,
    progress: bool = False,
) -> Ensemble:
    """Generate structures ``start .. start + n - 1`` from a trained model; see the module
    doc for the rules. ``min_dist=None`` turns clash rejection off (the raw model)."""
    dist, device = check_arguments(model, n, seed, min_dist, temperature, max_retries,
                                   max_restarts, start, device)  # fmt: skip
    if batch_size is None:
        batch_size = 65536 if device.type == "cuda" else 1024
    check_positive_int(batch_size, "batch_size")
    parts = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, unit="structure", desc="generating")
    with torch.no_grad():
        stepper = Stepper(model, device)  # copies: the caller's model keeps its device and mode
        for lo in range(start, start + n, batch_size):
            count = min(batch_size, start + n - lo)
            parts.append(
                generate_batch(model, stepper, lo, count, int(seed), dist, float(temperature),
                               max_retries, max_restarts, device)
            )  # fmt: skip
            if bar is not None:
                bar.update(count)
    if bar is not None:
        bar.close()
    if not parts:
        raise ValueError("n: expected at least 1 structure")
    return Ensemble.concat(parts)
