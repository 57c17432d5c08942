"""The two-sample test that judges bfloat16 generation on CUDA (tests/two_sample.py), here on
the CPU with float32: it passes two independent ensembles of one model and fails a planted
bias (a sampling temperature 20 % higher), at the sample size where it is cheap."""

import numpy as np
from two_sample import chi2_two_sample, compare, welch_p_values

import repap


def test_same_distribution_passes_and_a_planted_bias_fails():
    model = repap.pretrained("paper")
    cell = np.asarray(model.meta["cell"])
    n = 1500
    a = model.sample(n, seed=3, temperature=0.5).positions
    b = model.sample(n, seed=3, start=n, temperature=0.5).positions  # other structures
    biased = model.sample(n, seed=3, start=n, temperature=0.6).positions
    same = compare(a, b, cell, model.config.n_bins, rmax=4.2)
    assert min(same.values()) > 1e-3, same
    planted = compare(a, biased, cell, model.config.n_bins, rmax=4.2)
    assert min(planted.values()) < 1e-6, planted


def test_chi2_and_welch_against_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 400), rng.integers(0, 5, 600)
    table = np.stack([np.bincount(a, minlength=5), np.bincount(b, minlength=5)])
    expected = __import__("scipy").stats.chi2_contingency(table, correction=False).pvalue
    assert np.isclose(chi2_two_sample(a, b, 5), expected)
    x, y = rng.normal(0, 1, (5000, 2)), rng.normal([0, 0.06], 1, (4000, 2))
    p = welch_p_values(x, y)
    ref = __import__("scipy").stats.ttest_ind(x, y, equal_var=False).pvalue
    np.testing.assert_allclose(p, ref, rtol=1e-2)
