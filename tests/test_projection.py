"""repap.project and repap.bin_index against a float64 numpy reference, on numpy arrays."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from reference import bin_reference, projection_reference

import repap

SHAPES = [(1, 1), (3, 5), (7, 30), (2, 64)]
N_BINS = [2, 3, 17, 50, 200]
SIGMAS = [0.0005, 0.004, 0.02, 0.1, 0.7]  # from far below a bin to wider than the cell


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("n_bins", N_BINS)
def test_matches_float64_reference(rng, dtype, periodic, n_bins):
    for (frames, atoms), sigma in zip(SHAPES * 2, SIGMAS + SIGMAS[::-1], strict=False):
        frac = rng.random((frames, atoms, 3)).astype(dtype)
        got = repap.project(frac, n_bins, sigma, periodic=periodic)
        assert got.dtype == np.float32
        assert got.shape == (frames, 3 * atoms, n_bins)
        want = projection_reference(frac, n_bins, sigma, periodic)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_sigma_per_axis(rng):
    frac = rng.random((4, 6, 3))
    sigma = (0.01, 0.03, 0.08)
    got = repap.project(frac, 40, sigma)
    np.testing.assert_allclose(got, projection_reference(frac, 40, sigma), rtol=0, atol=1e-6)
    # the rows of each axis really use their own width
    assert not np.allclose(got[:, 0::3], repap.project(frac, 40, 0.03)[:, 0::3], atol=1e-4)


def test_periodic_wraps_coordinates_outside_unit_cell(rng):
    frac = rng.random((3, 4, 3)) * 6 - 3
    got = repap.project(frac, 50, 0.02)
    np.testing.assert_allclose(got, projection_reference(frac, 50, 0.02), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(repap.bin_index(frac, 50), bin_reference(frac, 50))


def test_out_is_written_in_place(rng):
    frac = rng.random((5, 3, 3)).astype(np.float32)
    out = np.full((5, 9, 20), np.nan, dtype=np.float32)
    result = repap.project(frac, 20, 0.05, out=out)
    assert result is out
    np.testing.assert_allclose(out, projection_reference(frac, 20, 0.05), rtol=0, atol=1e-6)


def test_non_contiguous_and_integer_inputs(rng):
    frac = rng.random((4, 5, 6))[..., ::2]  # strided view
    np.testing.assert_allclose(
        repap.project(frac, 30, 0.03), projection_reference(frac, 30, 0.03), atol=1e-6
    )
    zeros = np.zeros((2, 2, 3), dtype=np.int32)
    np.testing.assert_allclose(
        repap.project(zeros, 10, 0.05), projection_reference(zeros, 10, 0.05), atol=1e-6
    )


def test_huge_sigma_gives_uniform_rows(rng):
    rows = repap.project(rng.random((2, 3, 3)), 25, 1e30)
    np.testing.assert_allclose(rows, 1 / 25, rtol=1e-6)


@pytest.mark.parametrize("sigma", [1e-21, 1e-30, 1e-44])
def test_vanishing_sigma_gives_one_hot_rows_not_nan(sigma):
    # c = 1 / (2 (sigma G)^2) overflows float: each row is its own bin, two halves on an edge
    frac = np.array([[[0.3, 0.31, 0.5]], [[0.02, 0.999, 0.75]]])
    for n_bins, axes in ((5, sigma), (50, sigma), (50, (sigma, 0.1, 0.1))):  # fast, general
        rows = repap.project(frac, n_bins, axes)
        assert np.isfinite(rows).all()
        tiny = rows[:, 0::3] if isinstance(axes, tuple) else rows
        x = frac.reshape(-1)[0::3] if isinstance(axes, tuple) else frac.reshape(-1)
        u = x * n_bins
        on_edge = np.isclose(u, np.round(u), atol=1e-9, rtol=0)
        own = np.minimum(np.floor(u), n_bins - 1).astype(int)
        t = tiny.reshape(-1, n_bins)
        for row, k, edge, ui in zip(t, own, on_edge, u, strict=True):
            if edge:  # exactly between two bins: half each
                edge_bin = int(np.round(ui))
                pair = [(edge_bin - 1) % n_bins, edge_bin % n_bins]
                np.testing.assert_allclose(row[pair], 0.5, atol=1e-6)
            else:
                assert row[k] == 1.0 and row.sum() == 1.0


def test_empty_input():
    assert repap.project(np.zeros((0, 4, 3)), 10, 0.1).shape == (0, 12, 10)
    assert repap.bin_index(np.zeros((2, 0, 3)), 10).shape == (2, 0)


@pytest.mark.parametrize("periodic", [True, False])
def test_bin_index_matches_reference(rng, periodic):
    frac = rng.random((6, 11, 3))
    frac[0, 0] = [0.0, 0.5, np.nextafter(1.0, 0.0)]  # edges of the grid
    for n_bins in N_BINS:
        got = repap.bin_index(frac, n_bins, periodic=periodic)
        np.testing.assert_array_equal(got, bin_reference(frac, n_bins, periodic))


# --- properties -----------------------------------------------------------------------------

coordinates = arrays(
    np.float64,
    st.tuples(st.integers(1, 3), st.integers(1, 4), st.just(3)),
    elements=st.floats(0, 1, exclude_max=True),
)


@settings(max_examples=60, deadline=None)
@given(frac=coordinates, n_bins=st.integers(2, 300), sigma=st.floats(1e-4, 2.0),
       periodic=st.booleans())  # fmt: skip
def test_rows_sum_to_one(frac, n_bins, sigma, periodic):
    rows = repap.project(frac, n_bins, sigma, periodic=periodic)
    assert np.all(rows >= 0)
    np.testing.assert_allclose(rows.sum(-1), 1.0, rtol=0, atol=1e-5)


@settings(max_examples=80, deadline=None)
@given(frac=coordinates, n_bins=st.integers(2, 400), sigma_bins=st.floats(0.01, 12.0),
       periodic=st.booleans())  # fmt: skip
def test_narrow_and_wide_windows_match_reference(frac, n_bins, sigma_bins, periodic):
    # sigma of 0.01 to 12 bins: the CPU kernel's table-and-powers path (windows narrower than
    # half the grid) and its general path (one exponential per bin) on either side of the switch
    sigma = sigma_bins / n_bins
    got = repap.project(frac, n_bins, sigma, periodic=periodic)
    want = projection_reference(frac, n_bins, sigma, periodic)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_rows_of_many_blocks_match_reference(rng):
    # more rows than one block of the CPU kernel (192), a count that is not a multiple of it,
    # and both edges of a non-periodic grid
    frac = rng.random((23, 17, 3))
    frac[0, 0] = [0.0, np.nextafter(1.0, 0.0), 0.5]
    for periodic in (True, False):
        got = repap.project(frac, 50, 0.02, periodic=periodic)
        want = projection_reference(frac, 50, 0.02, periodic)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(frac=coordinates, n_bins=st.integers(2, 300), periodic=st.booleans())
def test_argmax_is_own_bin_for_small_sigma(frac, n_bins, periodic):
    # half a bin from the centre is a tie; keep points clearly inside their bin
    u = frac * n_bins
    inside = np.abs(u - np.floor(u) - 0.5) < 0.49
    rows = repap.project(frac, n_bins, 0.3 / n_bins, periodic=periodic)
    own = repap.bin_index(frac, n_bins, periodic=periodic)
    assert np.array_equal(
        rows.argmax(-1)[inside.reshape(own.shape)], own[inside.reshape(own.shape)]
    )


@settings(max_examples=60, deadline=None)
@given(frac=coordinates, n_bins=st.integers(2, 300), sigma=st.floats(1e-3, 1.0),
       shift=st.integers(-3, 3))  # fmt: skip
def test_wrap_symmetry(frac, n_bins, sigma, shift):
    shifted = frac + shift
    frac = shifted - shift  # exactly the point that `shifted` holds after rounding
    a = repap.project(frac, n_bins, sigma)
    np.testing.assert_allclose(a, repap.project(shifted, n_bins, sigma), rtol=0, atol=1e-6)
    same_bins = repap.bin_index(frac, n_bins) == repap.bin_index(shifted, n_bins)
    assert same_bins.all()


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"frac": np.zeros((4, 3))}, r"^frac: expected shape \(F, N, 3\)"),
        ({"frac": np.zeros((2, 4, 2))}, r"^frac: expected shape \(F, N, 3\)"),
        ({"frac": np.array([[[0.1, np.nan, 0.2]]])}, "^frac: contains NaN"),
        ({"frac": np.array([[[0.1, np.inf, 0.2]]])}, "^frac: contains NaN or infinite"),
        ({"frac": np.array([[[0.1, 1.0, 0.2]]]), "periodic": False}, r"^frac: .*outside \[0, 1\)"),
        ({"frac": np.array([[[-0.1, 0.5, 0.2]]]), "periodic": False}, r"^frac: .*outside \[0, 1\)"),
        ({"frac": np.array([[["a", "b", "c"]]])}, "^frac: expected real numbers"),
        ({"sigma": 0.0}, "^sigma: every value must be positive"),
        ({"sigma": -1.0}, "^sigma: every value must be positive"),
        ({"sigma": float("nan")}, "^sigma: every value must be positive"),
        ({"sigma": (0.1, 0.2)}, "^sigma: expected a number or three numbers"),
        ({"sigma": "wide"}, "^sigma: expected a number or three numbers"),
        ({"n_bins": 1}, "^n_bins: expected an integer >= 2"),
        ({"n_bins": 2.5}, "^n_bins: expected an integer >= 2"),
        ({"n_bins": True}, "^n_bins: expected an integer >= 2"),
        ({"periodic": "yes"}, "^periodic: expected True or False"),
        ({"out": np.zeros((1, 3, 9), np.float32)}, r"^out: expected shape \(1, 3, 10\)"),
        ({"out": np.zeros((1, 3, 10), np.float64)}, "^out: must be a writeable, C-contiguous"),
        ({"out": np.zeros((1, 10, 3), np.float32).transpose(0, 2, 1)}, "^out: must be a writeable"),
        ({"out": [0.0] * 30}, "^out: expected a numpy array"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    args = {"frac": np.full((1, 1, 3), 0.25), "n_bins": 10, "sigma": 0.05} | kwargs
    with pytest.raises(ValueError, match=match):
        repap.project(**args)


def test_bin_index_bad_input():
    with pytest.raises(ValueError, match="^frac: contains NaN"):
        repap.bin_index(np.full((1, 1, 3), np.nan), 10)
    with pytest.raises(ValueError, match="^n_bins"):
        repap.bin_index(np.zeros((1, 1, 3)), 0)


def test_build_info_reports_what_was_compiled():
    info = repap.build_info()
    assert info["version"] == repap.__version__
    assert info["openmp"] is True
    assert info["cuda_device_count"] == len(info["cuda_devices"])
    assert repap.cuda_available() == (info["cuda_compiled"] and info["cuda_device_count"] > 0)
    if info["cuda_compiled"]:
        assert info["cuda_architectures"] == "80,90"
        assert info["cuda_runtime_version"] >= 11000


def test_thread_count_does_not_change_results(rng):
    frac = rng.random((50, 30, 3)).astype(np.float32)
    before = repap.get_num_threads()
    try:
        repap.set_num_threads(1)
        one = repap.project(frac, 50, 0.02)
        repap.set_num_threads(2)
        two = repap.project(frac, 50, 0.02)
    finally:
        repap.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
