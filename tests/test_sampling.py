"""Generation: the sampler kernel against exact distributions, clash-free output checked by an
independent distance computation, and reproducibility by seed."""

import copy

import numpy as np
import pytest
import torch
from scipy import stats

import repap
from repap import _C
from repap.model.recurrent import ModelConfig
from repap.model.sampling import SIGMOID, SOFTMAX, _sample_step
from repap.training.loop import TrainConfig

CUBIC = np.eye(3) * 7.0
TRICLINIC = np.array([[7.0, 0.0, 0.0], [2.5, 6.8, 0.0], [1.5, -2.0, 6.6]])


def tiny_model(cell, n_atoms=8, seed=0):
    """A briefly trained model on random structures: broad distributions, many clashes."""
    rng = np.random.default_rng(seed)
    frac = rng.random((60, n_atoms, 3))
    traj = repap.Trajectory(frac @ cell, cell, np.full(n_atoms, 14), np.ones(3, bool))
    config = TrainConfig(model=ModelConfig(n_bins=24, hidden=16), epochs=1, batch_size=16)
    return repap.train(traj, config, progress=False)


@pytest.fixture(scope="module", params=["cubic", "triclinic"])
def model(request):
    return tiny_model(CUBIC if request.param == "cubic" else TRICLINIC)


def min_pair_distance(ens):
    """Independent check: ASE's minimum-image distances (exact in skewed cells)."""
    out = []
    for atoms in ens:
        d = atoms.get_all_distances(mic=True)
        np.fill_diagonal(d, np.inf)
        out.append(d.min())
    return np.array(out)


def test_no_pair_closer_than_min_dist(model):
    ens = model.sample(300, seed=3, min_dist=2.0, batch_size=128)
    assert len(ens) + len(ens.failed) == 300
    assert len(ens) > 250
    assert min_pair_distance(ens).min() >= 2.0
    assert ens.redrawn.sum() > 0  # the check was exercised
    # without rejection the same model places atoms closer than 2 A
    raw = model.sample(300, seed=3, min_dist=None, batch_size=128)
    assert (min_pair_distance(raw) < 2.0).mean() > 0.2
    assert raw.redrawn.sum() == 0


def test_output_is_in_source_order_and_cell(model):
    ens = model.sample(5, seed=0)
    np.testing.assert_allclose(ens.cell, model.meta["cell"])
    assert ens.numbers.tolist() == [14] * 8
    frac = ens.fractional(wrap=False)
    assert ((frac >= 0) & (frac < 1)).all()


def test_same_seed_same_structures_any_batch_size(model):
    runs = [model.sample(24, seed=11, batch_size=b) for b in (1, 7, 256)]
    for other in runs[1:]:
        np.testing.assert_array_equal(other.index, runs[0].index)
        np.testing.assert_allclose(other.positions, runs[0].positions, atol=1e-9)
        np.testing.assert_array_equal(other.redrawn, runs[0].redrawn)
    different = model.sample(24, seed=12)
    assert not np.allclose(different.positions, runs[0].positions)
    # structure i depends on its index, not on where the run starts
    tail = model.sample(10, seed=11, start=14)
    np.testing.assert_allclose(tail.positions, runs[0].positions[14:], atol=1e-9)


def draw_many(logits, mode, temperature, coords, k, n, min_dist=0.0, cell=None):
    g = logits.shape[0]
    cell = np.eye(3) * 10.0 if cell is None else cell
    bins = torch.empty(n, dtype=torch.int64)
    coords = torch.as_tensor(coords, dtype=torch.float32).expand(n, -1).contiguous()
    _sample_step(
        torch.as_tensor(logits, dtype=torch.float32).expand(n, g).contiguous(),
        mode, temperature, coords, torch.full((n,), k), torch.arange(n),
        torch.zeros(n, dtype=torch.int64), 99, [float(x) for x in cell.reshape(-1)],
        min_dist, bins,
    )  # fmt: skip
    return bins.numpy(), coords[:, k].numpy()


@pytest.mark.parametrize(("mode", "temperature"), [(SOFTMAX, 1.0), (SOFTMAX, 0.7), (SIGMOID, 1.3)])
def test_masked_draws_follow_renormalised_distribution(rng, mode, temperature):
    """Atom 1 shares x, y with atom 0 (z = 0.5) in a 10 A cube; min_dist 1.5 A = 3 bins of 20,
    so bins 7..12 clash for any position inside them and the rest must follow p / sum."""
    g, n = 20, 40_000
    logits = rng.normal(0, 1.5, g)
    coords = [0.3, 0.4, 0.5, 0.3, 0.4, 0.0]
    bins, values = draw_many(logits, mode, temperature, coords, 5, n, min_dist=1.5)
    log_w = logits if mode == SOFTMAX else -np.log1p(np.exp(-logits))
    p = np.exp(log_w / temperature)
    masked = np.zeros(g, bool)
    masked[7:13] = True
    p[masked] = 0
    p /= p.sum()
    counts = np.bincount(bins, minlength=g)
    assert counts[masked].sum() == 0
    keep = ~masked
    assert stats.chisquare(counts[keep], p[keep] * n).pvalue > 1e-3
    # the value lies inside its bin, uniformly
    offset = values * g - bins
    assert ((offset >= 0) & (offset < 1)).all()
    assert stats.kstest(offset, "uniform").pvalue > 1e-3


def test_unmasked_draws_and_infeasible_report(rng):
    g, n = 16, 20_000
    logits = rng.normal(0, 1, g)
    bins, _ = draw_many(logits, SOFTMAX, 1.0, [0.1, 0.2, 0.0], 0, n)
    p = np.exp(logits) / np.exp(logits).sum()
    assert stats.chisquare(np.bincount(bins, minlength=g), p * n).pvalue > 1e-3
    # atoms at z = 0.25 and 0.75 above each other in a 10 A cube: every z of a third atom on
    # the same line is within 2.5 A of one of them, so min_dist 2.6 A leaves no bin
    coords = [0.5, 0.5, 0.25, 0.5, 0.5, 0.75, 0.5, 0.5, 0.25]
    bins, values = draw_many(logits, SOFTMAX, 1.0, coords, 8, 50, min_dist=2.6)
    assert (bins == -1).all() and (values == 0.25).all()  # reported, coordinate untouched


def test_clash_check_uses_minimum_image_in_skewed_cells(rng):
    """Masked bins equal those a brute-force search over 125 images finds closer than
    min_dist, in a strongly skewed cell."""
    cell = np.array([[8.0, 0, 0], [5.0, 7.0, 0], [-3.0, 4.0, 6.5]])
    g = 40
    for _ in range(20):
        coords = list(rng.random(3)) + list(rng.random(2)) + [0.0]
        bins, _ = draw_many(np.zeros(g), SOFTMAX, 1.0, coords, 5, 4000, min_dist=2.2, cell=cell)
        seen = set(np.unique(bins[bins >= 0]).tolist())
        images = np.array(np.meshgrid(*[np.arange(-2, 3)] * 3)).reshape(3, -1).T
        for b in range(g):
            zs = (b + np.linspace(0, 1, 101)) / g  # positions across the bin
            d = [np.linalg.norm((np.array([*coords[3:5], z]) - coords[:3] + images) @ cell,
                                axis=1).min() for z in zs]  # fmt: skip
            if min(d) >= 2.2:  # free everywhere: drawn (about 100 times each)
                assert b in seen
            if max(d) < 2.2:  # blocked everywhere: never drawn
                assert b not in seen


@pytest.mark.cuda
@pytest.mark.skipif(not _C.cuda_available(), reason="no CUDA device")
def test_cuda_sampler_equals_cpu(model):
    cpu = model.sample(200, seed=4, device="cpu")
    gpu = model.sample(200, seed=4, device="cuda", precision="float32")
    np.testing.assert_array_equal(gpu.index, cpu.index)
    np.testing.assert_allclose(gpu.positions, cpu.positions, atol=1e-5)


def test_impossible_packing_is_reported_as_failed(model):
    """8 atoms 3.1 A apart in these cells (~340 A^3) are out of reach of this model within 2
    retries and 1 restart: every structure fails, none is dropped silently or kept."""
    ens = model.sample(6, seed=0, min_dist=3.1, max_retries=2, max_restarts=1)
    assert len(ens) == 0
    assert ens.failed.tolist() == list(range(6))
    assert ens.summary()["failed"] == 6


def test_bad_arguments_are_refused(model):
    with pytest.raises(ValueError, match="min_dist: .* below half the cell's smallest height"):
        model.sample(1, min_dist=4.0)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(1, temperature=0)
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        model.sample(0)


@pytest.mark.parametrize("name", ["paper", "recommended"])
def test_shipped_models_load_and_generate_clash_free(name):
    model = repap.pretrained(name)
    assert model.meta["data"]["frames"] == 40_000
    ens = model.sample(20, seed=1, min_dist=2.0)
    assert len(ens) + len(ens.failed) == 20
    assert min_pair_distance(ens).min() >= 2.0
    np.testing.assert_allclose(ens.cell, repap.reference().cell)


# --- CUDA readiness: the shared per-structure math, checked through the CPU kernel ---


@pytest.mark.parametrize("bad", [np.nan, np.inf, "all -inf"], ids=["nan", "+inf", "all-neg-inf"])
@pytest.mark.parametrize("mode", [SOFTMAX, SIGMOID])
def test_unusable_logits_are_their_own_status_not_a_clash(rng, bad, mode):
    logits = rng.normal(0, 1, 12)
    if bad == "all -inf":
        logits[:] = -np.inf
    else:
        logits[5] = bad
    bins, values = draw_many(logits, mode, 1.0, [0.1, 0.2, 0.7], 2, 20, min_dist=1.0)
    assert (bins == _C.sampler_bad_logits).all() and (values == 0.7).all()
    assert _C.sampler_bad_logits != _C.sampler_clash


def test_minus_infinity_is_a_zero_probability(rng):
    logits = rng.normal(0, 1, 12)
    logits[[0, 3, 11]] = -np.inf
    bins, _ = draw_many(logits, SOFTMAX, 1.0, [0.5], 0, 5000)
    counts = np.bincount(bins, minlength=12)
    assert counts[[0, 3, 11]].sum() == 0 and (counts[[1, 2, 4, 10]] > 0).all()


def test_diverged_model_is_reported_not_counted_as_clashes(model):
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken.head.bias[3] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite .* diverged"):
        broken.sample(4, seed=0)


def test_last_bin_position_stays_below_one():
    """(G - 1 + u) / G rounds to 1.0 in float32 for u just below 1 (numpy shows it); the
    sampler's position keeps it in [0, 1)."""
    u = np.nextafter(np.float32(1), np.float32(0))
    for g in (3, 50, 1000, 2**20):
        assert (np.float32(g - 1) + u) / np.float32(g) == 1.0  # the float32 rounding
        x = _C.sampler_bin_position(g - 1, float(u), g)
        assert (g - 1) / g <= x < 1.0
    assert _C.sampler_bin_position(7, 0.25, 20) == np.float32(7.25) / np.float32(20)


def test_tiny_temperature_is_greedy_and_an_overflowing_one_refused(rng, model):
    logits = rng.normal(0, 3, 30)
    bins, _ = draw_many(logits, SOFTMAX, 1e-30, [0.5], 0, 500)
    assert (bins == np.argmax(logits)).all()
    with pytest.raises(ValueError, match="temperature: expected a positive number whose inverse"):
        draw_many(logits, SOFTMAX, 1e-45, [0.5], 0, 5)
    with pytest.raises(ValueError, match="temperature: expected a number >= 1e-30"):
        model.sample(2, temperature=1e-40)


@pytest.mark.skipif(not _C.build_info()["cuda_compiled"], reason="this build has no CUDA kernels")
def test_cuda_sampler_refuses_more_bins_than_its_scratch_row():
    """Checked on the host before any CUDA call, so it runs without a GPU."""
    g = _C.sampler_max_cuda_bins + 1
    with pytest.raises(ValueError, match=f"at most {g - 1} bins, got {g}"):
        _C.sample_step_cuda(0, 1, g, SOFTMAX, 1.0, 0, 3, 0, 0, 0, 0, [0.0] * 9, 0.0, 0, 0, 0)


def test_model_with_many_bins_generates_on_cpu_and_is_refused_for_cuda():
    cell = np.eye(3) * 9.0
    rng = np.random.default_rng(5)
    traj = repap.Trajectory(rng.random((40, 4, 3)) @ cell, cell, np.full(4, 14), np.ones(3, bool))
    config = TrainConfig(model=ModelConfig(n_bins=1100, hidden=8), epochs=1, batch_size=16)
    big = repap.train(traj, config, progress=False)
    ens = big.sample(8, seed=0, min_dist=1.5)
    assert len(ens) == 8 and min_pair_distance(ens).min() >= 1.5
    with pytest.raises(ValueError, match="1100 bins, but the CUDA sampler handles at most 1024"):
        big.sample(1, device="cuda")


# --- no process-wide side effects ---


def test_sample_leaves_the_models_device_dtype_and_mode_as_they_were(model):
    twin = copy.deepcopy(model).double().train()  # float64 and training mode on purpose
    params = {name: (p.data_ptr(), p.dtype, p.device) for name, p in twin.named_parameters()}
    state = torch.random.get_rng_state()
    ens = twin.sample(6, seed=2)
    assert twin.training
    assert {n: (p.data_ptr(), p.dtype, p.device) for n, p in twin.named_parameters()} == params
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_allclose(ens.positions, model.sample(6, seed=2).positions, atol=1e-5)


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_generation_steps_the_function_training_fits(output):
    # random weights (and biases, so that a gate-order or bias slip shows), several layers: the
    # sampler's one-step recurrence gives, coordinate by coordinate, the logits of the full
    # teacher-forced forward pass for the same bins
    from repap.model.recurrent import RePAP

    torch.manual_seed(3)
    config = ModelConfig(n_bins=12, hidden=16, layers=3, dropout=0.0, output=output)
    net = RePAP(config, n_atoms=4).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(-0.6, 0.6)
    bins = torch.randint(0, 12, (5, net.n_steps))
    with torch.no_grad():
        full = net(bins)  # (B, T, G): logits of coordinates 1 .. T
        stepper = net.stepper("cpu")
        h, c = stepper.zero_state(5, torch.device("cpu"))
        stepped = torch.stack(
            [stepper(bins[:, t], torch.full((5,), t), h, c) for t in range(net.n_steps)], 1
        )
    torch.testing.assert_close(stepped, full, rtol=1e-5, atol=1e-5)


def test_a_slice_of_an_ensemble_keeps_its_statistics(model):
    ens = model.sample(6, seed=4, min_dist=2.0)
    part = ens[1:4]
    assert isinstance(part, repap.Ensemble)
    np.testing.assert_array_equal(part.index, ens.index[1:4])
    np.testing.assert_array_equal(part.redrawn, ens.redrawn[1:4])
    np.testing.assert_array_equal(part.restarts, ens.restarts[1:4])
    np.testing.assert_array_equal(part.positions, ens.positions[1:4])
    picked = ens[np.array([5, 0])]
    np.testing.assert_array_equal(picked.index, ens.index[[5, 0]])
    assert ens[:].summary() == ens.summary()


def test_cpu_loop_runs_a_model_that_reads_positions():
    """repap.model.sampling.cpu_loop with a hand-written model (research/local-head/local_head.py's
    extension point): the next bin is the current one + 5 or + 11 (mod G), read from the row's own
    coordinates, and its state counts the coordinates consumed. Every finished structure
    follows that rule exactly, through redraws and restarts (rows then step apart, so the hook
    sees subsets of rows, and states are saved and restored), and stays clash-free."""
    from repap.model.sampling import SamplingOptions, cpu_loop, source_frame

    model = tiny_model(CUBIC)
    g, seen = model.config.n_bins, []

    def next_logits(rows, bins, steps, h, c, coords):
        own = (coords[rows, steps] * g).floor().long()
        seen.append(bool(torch.equal(own, bins)) and bool(torch.equal(h[0, :, 0], steps.float())))
        h[0, :, 0] = steps + 1.0  # the state this row has after consuming coordinate `steps`
        out = torch.full((len(rows), g), -1e4)
        out[torch.arange(len(rows)), (own + 5) % g] = 0.0
        out[torch.arange(len(rows)), (own + 11) % g] = 0.0
        return out

    state = (torch.zeros(1, 64, 4), torch.zeros(1, 64, 4))
    options, _ = SamplingOptions(0, 1.5, 1.0, 3, 3).check(model, "cpu")
    ens = cpu_loop(model.meta, model.n_atoms, g, SOFTMAX, state, next_logits, 0, 64, options)
    assert all(seen) and len(ens) > 32 and ens.redrawn.sum() > 0 and ens.restarts.sum() > 0
    assert min_pair_distance(ens).min() >= 1.5
    inverse = source_frame(model.meta)[1]
    frac = ens.fractional(wrap=False)[:, np.argsort(inverse)].reshape(len(ens), -1)
    step = np.mod(np.diff(np.floor(frac * g).astype(int), axis=1), g)
    assert np.isin(step, [5, 11]).all() and (step == 5).any() and (step == 11).any()


def test_precision_is_checked_and_float32_on_the_cpu(model):
    """bfloat16 products are a CUDA path: asked for on the CPU it is refused in one line;
    auto is float32 there, and float32 files carry no precision field (as before)."""
    from repap.errors import InputError

    with pytest.raises(InputError, match="bfloat16 generation runs on CUDA only"):
        model.sample(2, device="cpu", precision="bfloat16")
    with pytest.raises(InputError, match="precision: expected one of float32, bfloat16"):
        model.sample(2, device="cpu", precision="half")
    auto = model.sample(3, seed=1, device="cpu", precision="auto")
    full = model.sample(3, seed=1, device="cpu", precision="float32")
    np.testing.assert_array_equal(auto.positions, full.positions)
    assert "precision" not in auto.info


def test_the_sampler_checks_its_tensors_in_one_line():
    """dtype, shape, contiguity and device of every tensor the sampler kernel reads, checked
    before its pointers go to C++."""
    logits, coords = torch.zeros(2, 4), torch.zeros(2, 3)
    k = torch.zeros(2, dtype=torch.int64)
    with pytest.raises(repap.InputError, match="sampler: attempt must be a contiguous"):
        _sample_step(logits, SOFTMAX, 1.0, coords, k, k, k.int(), 0, [1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                     0.0, k.clone())  # fmt: skip
    with pytest.raises(repap.InputError, match="sampler: logits must be a contiguous"):
        _sample_step(logits.t(), SOFTMAX, 1.0, torch.zeros(4, 3), torch.zeros(4, dtype=torch.int64),
                     k, k, 0, [1.0, 0, 0, 0, 1, 0, 0, 0, 1], 0.0, k.clone())  # fmt: skip


@pytest.mark.parametrize("bad", [-1.0, 0.0, float("nan"), "2"])
def test_no_pair_closer_than_d_is_checked_in_one_place_with_one_message(model, bad):
    """The sampler, the rebuilding search and the random baseline refuse a bad min_dist with
    the same line (repap._checks.check_min_dist)."""
    from repap.evaluation.baselines import random_min_distance
    from repap.generation.rebuild import rebuild

    cell = np.eye(3) * 9.0
    want = r"^min_dist: expected a positive distance in Angstrom"
    calls = [
        lambda: model.sample(2, min_dist=bad),
        lambda: random_min_distance(2, cell, np.full(4, 14), min_dist=bad),
        lambda: rebuild(repap.reference_set().inherent_structures("train")[:2], 1, min_dist=bad),
    ]
    for call in calls:
        with pytest.raises(repap.InputError, match=want):
            call()
