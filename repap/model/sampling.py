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

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch

from repap import _C
from repap._checks import check_min_dist, check_positive_int
from repap.data.ensemble import Ensemble
from repap.errors import InputError
from repap.model.metadata import ModelMeta
from repap.runtime import resolve_device, resolve_precision


class SamplerModel(Protocol):
    """What the sampler needs of a model (:class:`~repap.model.recurrent.RePAP` has it): its
    configuration (bins, head), training metadata, atoms, and its recurrence as a stepper.
    The sampler names no model class, so the model can import the sampler (``model.sample``)
    without a circle."""

    config: Any
    meta: dict[str, Any]
    n_atoms: int

    def stepper(self, device: Any = "cpu", precision: str = "float32") -> Any: ...


SOFTMAX, SIGMOID = _C.sampler_softmax, _C.sampler_sigmoid  # csrc/sampler/sampler_math.h
MIN_TEMPERATURE = 1e-30  # 1/T stays finite in float32 (it overflows near 3e-39)


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
    """One draw for the batch: the kernel's contract is in csrc/sampler/sampler.h. The tensors
    are checked here (float32 logits (B, G) and coordinates (B, 3N), int64 k, structure,
    attempt and bins (B,), contiguous, on one device); sizes and options in C++."""
    batch, n_bins = logits.shape
    for name, t, dtype, shape in (
        ("logits", logits, torch.float32, (batch, n_bins)),
        ("coords", coords, torch.float32, (batch, coords.shape[-1])),
        ("k", k, torch.int64, (batch,)), ("structure", structure, torch.int64, (batch,)),
        ("attempt", attempt, torch.int64, (batch,)), ("bins", bins, torch.int64, (batch,)),
    ):  # fmt: skip
        if (t.dtype != dtype or tuple(t.shape) != shape or not t.is_contiguous()
                or t.device != logits.device):  # fmt: skip
            raise InputError(f"sampler: {name} must be a contiguous {dtype} tensor of shape "
                             f"{shape} on {logits.device}, got {t.dtype} {tuple(t.shape)} on "
                             f"{t.device}")  # fmt: skip
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


@dataclass(frozen=True)
class SamplingOptions:
    """How structures are drawn (the rules of the module doc), one object carried from the
    command line to the kernels and checked once, against the model and device, by
    :meth:`check`. ``min_dist=None`` turns clash rejection off; ``precision`` is that of the
    LSTM's products (``None``/``"auto"``, ``"float32"`` or ``"bfloat16"``: see
    :data:`repap.runtime.PRECISIONS`)."""

    seed: int = 0
    min_dist: float | None = 2.0
    temperature: float = 1.0
    max_retries: int = 10
    max_restarts: int = 10
    precision: str | None = None

    @property
    def kernel_min_dist(self) -> float:
        """min_dist as the kernels take it: 0 turns the check off."""
        return self.min_dist or 0.0

    def check(
        self, model: Any, device: str | torch.device | None = None
    ) -> tuple[SamplingOptions, torch.device]:
        """Every option checked, before anything is generated or written (``repap generate``
        checks before it creates OUT.parts); returns the options resolved (numbers as the
        kernels take them, the precision for the device) and the device."""
        counts = (("max_retries", self.max_retries), ("max_restarts", self.max_restarts))
        for name, value in counts:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise InputError(f"{name}: expected an integer >= 0, got {value!r}")
        seed = self.seed
        if not (isinstance(seed, (int, np.integer)) and 0 <= seed < 2**64):
            raise InputError(f"seed: expected an integer in [0, 2**64), got {seed!r}")
        t = self.temperature
        if not (np.isfinite(t) and t >= MIN_TEMPERATURE):
            raise InputError(
                f"temperature: expected a number >= {MIN_TEMPERATURE:g} (the kernel takes 1/T "
                f"in float32), got {t!r}"
            )
        if "first_coordinate" not in model.meta:
            raise InputError("model: has no training metadata (train it or load a checkpoint)")
        dist = check_min_dist(self.min_dist, np.asarray(model.meta["cell"]), optional=True)
        auto = device is None or str(device) == "auto"
        cuda = torch.cuda.is_available() if auto else str(device).startswith("cuda")
        if cuda and model.config.n_bins > _C.sampler_max_cuda_bins:  # before checking for CUDA
            if not auto:  # the CPU sampler has no such limit
                raise InputError(
                    f"model: {model.config.n_bins} bins, but the CUDA sampler handles at most "
                    f"{_C.sampler_max_cuda_bins}; generate with device='cpu'"
                )
            resolved = torch.device("cpu")
        else:
            resolved = resolve_device(device)
        checked = replace(self, seed=int(seed), min_dist=dist or None, temperature=float(t),
                          max_retries=int(self.max_retries),
                          max_restarts=int(self.max_restarts),
                          precision=resolve_precision(self.precision, resolved))  # fmt: skip
        return checked, resolved


def default_batch_size(device: torch.device) -> int:
    """Structures per batch (and per chunk of ``repap generate``) when none is given."""
    return 65536 if device.type == "cuda" else 1024


def model_meta(meta: dict[str, Any] | ModelMeta) -> ModelMeta:
    """A model's metadata read and checked once (:class:`ModelMeta`): the sampler reads it
    as typed fields, never the dict by key."""
    if isinstance(meta, ModelMeta):
        return meta
    return ModelMeta.from_dict(meta, len(meta["order"]), meta["grid"]["n_bins"])


def source_frame(
    meta: dict[str, Any] | ModelMeta,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cell, inverse permutation, atomic numbers, pbc) of a model's structures in the source's
    atom order: sequence position ``inverse[a]`` holds source atom a."""
    m = model_meta(meta)
    return m.cell, m.inverse, m.numbers[m.inverse], m.pbc


def generate_batch(
    model: SamplerModel,
    stepper: Any,
    start: int,
    count: int,
    options: SamplingOptions,
    device: torch.device,
) -> Ensemble:
    """Structures ``start .. start + count - 1`` (their indices key the random numbers), with
    checked ``options``."""
    g = model.config.n_bins
    mode = SOFTMAX if model.config.output == "softmax" else SIGMOID
    meta = model_meta(model.meta)  # once per batch
    if device.type == "cuda":
        first, cell_flat = _first_and_cell(meta, g, count, device)
        return _generate_batch_cuda(model, meta, stepper, start, count, options, device, first,
                                    cell_flat, mode)  # fmt: skip

    def next_logits(rows, bins, steps, h, c, coords):
        return stepper(bins, steps, h, c)

    state = stepper.zero_state(count, device)
    return cpu_loop(meta, model.n_atoms, g, mode, state, next_logits, start, count, options)


def _first_and_cell(
    meta: ModelMeta, n_bins: int, count: int, device: torch.device
) -> tuple[torch.Tensor, list[float]]:
    """Logits (count, G) of the first coordinate (its training distribution) and the cell
    flattened, as the sampler kernel takes them."""
    cell_flat = [float(x) for x in meta.cell.reshape(-1)]
    counts = np.asarray(meta.first_counts, dtype=np.float64)
    first = torch.from_numpy(np.where(counts > 0, np.log(np.maximum(counts, 1)), -1e30))
    return first.float().to(device).expand(count, n_bins).contiguous(), cell_flat


NextLogits = Callable[..., torch.Tensor]


@torch.no_grad()  # a hook written with autograd modules builds no graph
def cpu_loop(
    meta: dict[str, Any] | ModelMeta,
    n_atoms: int,
    n_bins: int,
    mode: int,
    state: tuple[torch.Tensor, torch.Tensor],
    next_logits: NextLogits,
    start: int,
    count: int,
    options: SamplingOptions,
) -> Ensemble:
    """The CPU generation loop of structures ``start .. start + count - 1``, open to any
    recurrent model: ``state`` is its zero (h, c), each (L, count, H); ``next_logits(rows,
    bins, steps, h, c, coords)`` consumes coordinate ``steps`` (drawn in ``bins``) of the
    batch rows ``rows``, updates their state ``h, c`` (L, len(rows), H) in place and returns
    the logits (len(rows), G) of their next coordinates; ``coords`` (count, 3N) holds every
    row's fractional coordinates drawn so far (a model that looks at positions reads it).
    ``options`` as :meth:`SamplingOptions.check` returns them."""
    meta = model_meta(meta)  # read once
    seed, min_dist, temperature = options.seed, options.kernel_min_dist, options.temperature
    max_retries, max_restarts = options.max_retries, options.max_restarts
    device = state[0].device
    n_coords = 3 * n_atoms
    first, cell_flat = _first_and_cell(meta, n_bins, count, device)
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
    h, c = state
    logits = torch.zeros(count, n_bins, device=device)
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
            _raise_for_bad_logits(torch.where(bins == _C.sampler_bad_logits, k, -1), structure)
            _redraw(clash, k, attempt, tries, redrawn, restarts, failed, h, c, logits,
                    saved_h, saved_c, saved_logits, max_retries, max_restarts)  # fmt: skip
        drawn = live & (bins >= 0)
        last = drawn & (k == n_coords - 1)
        done |= last
        go = (drawn & ~last).nonzero().flatten()
        if len(go) == 0:
            continue
        if len(go) == count:  # the kernel reads the logits as contiguous float32
            logits = next_logits(go, bins, k, h, c, coords).float().contiguous()
        else:
            hs, cs = h.index_select(1, go), c.index_select(1, go)
            logits.index_copy_(0, go, next_logits(go, bins[go], k[go], hs, cs, coords))
            h.index_copy_(1, go, hs)
            c.index_copy_(1, go, cs)
        k[go] += 1
        atom_start = go[(k[go] % 3) == 0]  # logits now belong to an atom's first coordinate
        if len(atom_start):
            saved_h[:, atom_start] = h[:, atom_start]
            saved_c[:, atom_start] = c[:, atom_start]
            saved_logits[atom_start] = logits[atom_start]
            tries[atom_start] = 0

    return _ensemble(meta, n_atoms, options, coords, structure, done, failed, redrawn, restarts)


def _ensemble(meta, n_atoms, options, coords, structure, done, failed, redrawn,
              restarts) -> Ensemble:  # fmt: skip
    """The finished structures of a batch in the source's atom order and cell, with the
    failed ones and the work done reported."""
    cell, inverse, numbers, pbc = source_frame(meta)
    ok = done.nonzero().flatten()
    if coords.is_cuda:  # reorder and to Angstrom on the device, one copy to pinned memory
        dev = coords.device
        frac = coords[ok].view(-1, n_atoms, 3)[:, torch.from_numpy(inverse).to(dev)].double()
        moved = frac @ torch.from_numpy(np.ascontiguousarray(cell)).to(dev)
        host = torch.empty(moved.shape, dtype=torch.float64, pin_memory=True)
        positions = host.copy_(moved).numpy()
    else:
        frac = coords[ok].double().cpu().numpy().reshape(-1, n_atoms, 3)
        positions = frac[:, inverse] @ cell
    info = {
        "generator": "repap",
        "seed": options.seed,
        "min_dist": options.min_dist,
        "temperature": options.temperature,
    }
    return Ensemble(
        positions, cell, numbers, pbc, None, info,
        index=structure[ok].cpu().numpy(), redrawn=redrawn[ok].cpu().numpy(),
        restarts=restarts[ok].cpu().numpy(), failed=structure[failed].cpu().numpy(),
        failed_redrawn=redrawn[failed].cpu().numpy(),
        failed_restarts=restarts[failed].cpu().numpy(),
    )  # fmt: skip


CHECK_EVERY = 8  # steps of the CUDA loop between host syncs (is anything left? a bad logit?)
CUDA_GRAPHS = True  # replay the CUDA step as a graph (launch overhead would dominate otherwise)
# The per-structure rules as three fused CUDA kernels (csrc/sampler/rules_cuda.cu) rather than
# ~50 torch ops per step; the torch-op version stays as the reference a test holds them to.
FUSED_RULES = True
COMPACT_MIN_ROWS = 4096


class _CudaBatch:
    """The working rows of a CUDA batch: every tensor static, updated in place by
    :meth:`step`, so that a step can be captured once as a CUDA graph and replayed."""

    def __init__(self, stepper, n, n_coords, g, first, structure, h, c, device):
        i64 = {"dtype": torch.int64, "device": device}
        self.stepper, self.n_coords = stepper, n_coords
        self.first = first[:n]
        self.structure = structure
        self.coords = torch.zeros(n, n_coords, device=device)
        for name in ("k", "attempt", "tries", "redrawn", "restarts"):
            setattr(self, name, torch.zeros(n, **i64))
        self.done = torch.zeros(n, dtype=torch.bool, device=device)
        self.failed = torch.zeros(n, dtype=torch.bool, device=device)
        self.bad = torch.full((n,), -1, **i64)  # coordinate with NaN/inf logits, or -1
        self.logits = torch.zeros(n, g, device=device)
        self.saved_logits = torch.zeros(n, g, device=device)
        self.h, self.c = h, c
        self.saved_h, self.saved_c = h.clone(), c.clone()
        self.none = torch.full((n,), -1, **i64)
        self.bins = torch.full((n,), -1, **i64)
        self._scratch(n, device)
        self.graph = None

    def _scratch(self, n: int, device: torch.device) -> None:
        """Per-step buffers of the fused rules, and their pointers (tensors are static)."""
        i64 = {"dtype": torch.int64, "device": device}
        self.k_first, self.k_rest = torch.full((n,), -1, **i64), torch.full((n,), -1, **i64)
        self.go = torch.zeros(n, dtype=torch.bool, device=device)
        rows = _C.RuleRows()
        rows.n, rows.n_coords, rows.n_bins = n, self.n_coords, self.logits.shape[1]
        rows.layers, rows.hidden = self.h.shape[0], self.h.shape[2]
        for name in ("k", "k_first", "k_rest", "bins", "attempt", "tries", "redrawn",
                     "restarts", "bad", "done", "failed", "go", "h", "c", "logits",
                     "saved_logits", "saved_h", "saved_c"):  # fmt: skip
            setattr(rows, name, getattr(self, name).data_ptr())
        self.rows = rows

    ROWS = ("structure", "coords", "k", "attempt", "tries", "redrawn", "restarts", "done",
            "failed", "bad", "logits", "saved_logits")  # fmt: skip

    def select(self, keep: torch.Tensor) -> _CudaBatch:
        """The rows ``keep`` of this batch, as a new batch (a new graph)."""
        new = object.__new__(_CudaBatch)
        new.stepper, new.n_coords = self.stepper, self.n_coords
        new.first = self.first[: len(keep)]
        for name in self.ROWS:
            setattr(new, name, getattr(self, name)[keep])
        for name in ("h", "c", "saved_h", "saved_c"):
            setattr(new, name, getattr(self, name)[:, keep].contiguous())
        new.none, new.bins = self.none[: len(keep)], self.bins[: len(keep)].clone()
        new._scratch(len(keep), self.k.device)
        new.graph = None
        return new

    def step_fused(self, args) -> None:
        """:meth:`step` with its per-structure rules in three CUDA kernels."""
        seed, cell_flat, min_dist, temperature, mode, max_retries, max_restarts = args
        dev = self.k.device
        where = {"device": dev.index, "stream": torch.cuda.current_stream(dev).cuda_stream}
        _C.rules_before_draw_cuda(self.rows, **where)
        _sample_step(self.first, SOFTMAX, 1.0, self.coords, self.k_first, self.structure,
                     self.attempt, seed, cell_flat, 0.0, self.bins)  # fmt: skip
        _sample_step(self.logits, mode, temperature, self.coords, self.k_rest, self.structure,
                     self.attempt, seed, cell_flat, min_dist, self.bins)  # fmt: skip
        _C.rules_after_draw_cuda(self.rows, max_retries, max_restarts, **where)
        # the cell kernel also saves the state of rows whose coordinate ended an atom
        logits = self.stepper(self.bins, self.k, self.h, self.c, self.go,
                              (self.saved_h, self.saved_c))  # fmt: skip
        _C.rules_after_step_cuda(self.rows, logits.data_ptr(), **where)

    def step(self, args) -> None:
        """One step of every row, in place; the rules of :func:`generate_batch`."""
        seed, cell_flat, min_dist, temperature, mode, max_retries, max_restarts = args
        k, live = self.k, ~(self.done | self.failed)
        at_start = live & (k == 0)
        bins = self.bins.fill_(-1)
        _sample_step(self.first, SOFTMAX, 1.0, self.coords, torch.where(at_start, k, self.none),
                     self.structure, self.attempt, seed, cell_flat, 0.0, bins)  # fmt: skip
        _sample_step(self.logits, mode, temperature, self.coords,
                     torch.where(live & ~at_start, k, self.none), self.structure, self.attempt,
                     seed, cell_flat, min_dist, bins)  # fmt: skip
        torch.where(bins == _C.sampler_bad_logits, k, self.bad, out=self.bad)
        # no feasible bin: back to the atom's first coordinate, or restart, or fail
        clash = live & (bins < 0)
        self.attempt += clash
        self.tries += clash
        self.redrawn += clash
        restart = clash & (self.tries > max_retries)
        back = clash & ~restart
        torch.where(back, (k // 3) * 3, k, out=k)
        # saved state for rows going back, zeros for restarts: one kernel that touches only
        # those rows (a torch.where over the whole (L, B, H) state read it all, each step)
        layers, n, hidden = self.h.shape
        _C.lstm_rewind_cuda(back.data_ptr(), restart.data_ptr(), self.saved_h.data_ptr(),
                            self.saved_c.data_ptr(), self.h.data_ptr(), self.c.data_ptr(),
                            layers, n, hidden, k.device.index,
                            torch.cuda.current_stream(k.device).cuda_stream)  # fmt: skip
        torch.where(back[:, None], self.saved_logits, self.logits, out=self.logits)
        self.restarts += restart
        self.tries.masked_fill_(restart, 0)
        k.masked_fill_(restart, 0)
        self.failed |= restart & (self.restarts > max_restarts)
        # the drawn coordinates go into the LSTM
        drawn = live & (bins >= 0)
        last = drawn & (k == self.n_coords - 1)
        self.done |= last
        go = drawn & ~last
        # the kernel also saves the state of rows whose coordinate ended an atom
        logits = self.stepper(bins, k, self.h, self.c, go, (self.saved_h, self.saved_c))
        torch.where(go[:, None], logits, self.logits, out=self.logits)
        k += go
        atom_start = go & (k % 3 == 0)  # logits now belong to an atom's first coordinate
        torch.where(atom_start[:, None], self.logits, self.saved_logits, out=self.saved_logits)
        self.tries.masked_fill_(atom_start, 0)

    def run_step(self, args) -> None:
        """:meth:`step`, the first time eagerly, then captured once and replayed."""
        step = self.step_fused if FUSED_RULES else self.step
        if not CUDA_GRAPHS:
            step(args)
        elif self.graph is None:
            # capture on a side stream; capture_begin/end rather than torch.cuda.graph(),
            # whose entry also synchronises and empties the caching allocator (every cached
            # block freed, then allocated again: milliseconds per batch and per compaction)
            current = torch.cuda.current_stream(self.k.device)
            side = torch.cuda.Stream(self.k.device)
            side.wait_stream(current)
            with torch.cuda.stream(side):
                step(args)  # a real step, which also loads every kernel before capture
                self.graph = torch.cuda.CUDAGraph()
                self.graph.capture_begin()
                try:
                    step(args)  # recorded, not run
                finally:
                    self.graph.capture_end()
            current.wait_stream(side)
        else:
            self.graph.replay()


def _generate_batch_cuda(model, meta, stepper, start, count, options, device, first, cell_flat,
                         mode) -> Ensemble:  # fmt: skip
    """The loop of :func:`generate_batch` on CUDA, the same rules and random numbers without
    a host sync per step: every structure steps each time, masked (a structure that redraws
    or has finished keeps its state), as one CUDA graph replayed, and the host looks every
    CHECK_EVERY steps whether any is left. When fewer than half are left, the batch is
    compacted to the live ones (down to COMPACT_MIN_ROWS rows), so a few slow structures do
    not keep the whole batch stepping."""
    n_coords = 3 * model.n_atoms
    i64 = {"dtype": torch.int64, "device": device}
    structure = torch.arange(start, start + count, **i64)
    out = {
        "coords": torch.zeros(count, n_coords, device=device),
        "redrawn": torch.zeros(count, **i64),
        "restarts": torch.zeros(count, **i64),
        "done": torch.zeros(count, dtype=torch.bool, device=device),
        "failed": torch.zeros(count, dtype=torch.bool, device=device),
    }
    rows = torch.arange(count, **i64)  # working row j is row rows[j] of the batch
    h, c = stepper.zero_state(count, device)
    batch = _CudaBatch(stepper, count, n_coords, model.config.n_bins, first, structure.clone(),
                       h, c, device)  # fmt: skip
    o = options
    args = (o.seed, cell_flat, o.kernel_min_dist, o.temperature, mode, o.max_retries,
            o.max_restarts)  # fmt: skip

    def store() -> None:  # the working rows' results into the batch's
        for name, t in out.items():
            t[rows] = getattr(batch, name)

    step = 0
    while True:
        if step % CHECK_EVERY == 0:
            live = ~(batch.done | batch.failed)
            n_live, n_bad = torch.stack([live.sum(), (batch.bad >= 0).sum()]).tolist()
            if n_bad:
                _raise_for_bad_logits(batch.bad, batch.structure)
            if n_live == 0:
                break
            # compact to the live rows: a new graph each time (a capture, milliseconds), so
            # not below COMPACT_MIN_ROWS, where a step costs about the same at any size
            if n_live <= len(rows) // 2 and len(rows) > COMPACT_MIN_ROWS:
                store()
                keep = live.nonzero().flatten()
                rows = rows[keep]
                batch = batch.select(keep)
        step += 1
        batch.run_step(args)
    store()
    return _ensemble(meta, model.n_atoms, options, out["coords"], structure, out["done"],
                     out["failed"], out["redrawn"], out["restarts"])  # fmt: skip


def _raise_for_bad_logits(coordinate: torch.Tensor, structure: torch.Tensor) -> None:
    """A diverged model (NaN or infinite outputs) is an error of its own, not a clash.
    ``coordinate[b]``: where structure b met such an output, or -1."""
    bad = (coordinate >= 0).nonzero().flatten()
    if len(bad):
        i = bad[0]
        raise InputError(
            f"model: its output for structure {int(structure[i])} at coordinate "
            f"{int(coordinate[i])} is NaN or infinite ({len(bad)} structures in this batch): "
            "the weights have diverged; nothing can be drawn from it"
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


def sample(
    model: SamplerModel,
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
    precision: str | None = None,
    options: SamplingOptions | None = None,
) -> Ensemble:
    """Generate structures ``start .. start + n - 1`` from a trained model; see the module
    doc for the rules. ``min_dist=None`` turns clash rejection off (the raw model).
    ``precision``: the LSTM's matrix products, ``"float32"`` or ``"bfloat16"`` (CUDA only);
    ``None`` / ``"auto"`` picks bfloat16 on GPUs with bfloat16 tensor cores, float32
    elsewhere (:data:`repap.runtime.PRECISIONS`). ``options``, when given, replaces the six
    drawing arguments (seed ... precision) with one :class:`SamplingOptions`."""
    if options is None:
        options = SamplingOptions(seed, min_dist, temperature, max_retries, max_restarts,
                                  precision)  # fmt: skip
    for name, value, low in (("n", n, 1), ("start", start, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{name}: expected an integer >= {low}, got {value!r}")
    options, device = options.check(model, device)
    return sample_checked(model, n, options, device, start, batch_size, progress)


def sample_checked(
    model: SamplerModel,
    n: int,
    options: SamplingOptions,
    device: torch.device,
    start: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
) -> Ensemble:
    """:func:`sample` with ``options`` and ``device`` already checked (as
    :meth:`SamplingOptions.check` returns them): ``repap generate`` checks once and calls
    this per chunk."""
    if batch_size is None:
        batch_size = default_batch_size(device)
    check_positive_int(batch_size, "batch_size")
    parts = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, unit="structure", desc="generating")
    with torch.no_grad():
        # copies: the caller's model keeps its device and mode
        stepper = model.stepper(device, options.precision)
        for lo in range(start, start + n, batch_size):
            count = min(batch_size, start + n - lo)
            parts.append(generate_batch(model, stepper, lo, count, options, device))
            if bar is not None:
                bar.update(count)
    if bar is not None:
        bar.close()
    if not parts:
        raise InputError("n: expected at least 1 structure")
    ens = parts[0] if len(parts) == 1 else Ensemble.concat(parts)
    if options.precision != "float32":  # float32 files stay as they were
        ens.info["precision"] = options.precision
    return ens
