"""Data-reduction-factor maths on synthetic learning curves with known answers."""

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from fast2full.reduction import (
    Bound,
    Curve,
    Estimate,
    baseline_crossing,
    first_crossing,
    is_saturated,
    isotonic_fit,
    matched_size_factor,
    paper_factor,
)

SIZES = np.array([10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0])
SEED_OFFSETS = np.array([-0.002, 0.0, 0.002])


def auc(n):
    """A curve linear in log n (so interpolation in log n is exact)."""
    return 0.55 + 0.03 * np.log(n)


def resolution(n):
    """A lower-is-better curve (MET resolution in GeV), linear in log n."""
    return 40.0 - 2.0 * np.log(n)


def curve(fn, sizes=SIZES, offsets=SEED_OFFSETS, shift=1.0):
    return Curve.from_lists(sizes, [fn(shift * n) + offsets for n in sizes])


@pytest.mark.parametrize("increasing", [True, False])
def test_isotonic_fit_matches_sklearn(increasing):
    rng = np.random.default_rng(7)
    y = rng.normal(size=(50, 7))
    w = rng.uniform(1.0, 4.0, size=7)
    ours = isotonic_fit(y, w, increasing=increasing)
    x = np.arange(7)
    ref = np.array([IsotonicRegression(increasing=increasing).fit(x, r, sample_weight=w).predict(x) for r in y])
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_first_crossing_bounds():
    log_n = np.log(SIZES)
    fit = auc(SIZES)
    n, b = first_crossing(log_n, fit, np.array([auc(50.0), auc(5.0), auc(1e5)]), higher_is_better=True)
    np.testing.assert_allclose(n[0], 50.0)
    assert b.tolist() == [0, -1, 1]
    np.testing.assert_allclose(n[1:], [SIZES[0], SIZES[-1]])


@pytest.mark.parametrize("fn,hib", [(auc, True), (resolution, False)])
@pytest.mark.parametrize("shift", [2.0, 3.0])
@pytest.mark.parametrize("n", [30.0, 100.0, 300.0])
def test_known_shift_gives_factor(fn, hib, shift, n):
    scratch = curve(fn)
    ft = fn(shift * n) + SEED_OFFSETS
    est = matched_size_factor(scratch, ft, n, hib, n_boot=100, rng=np.random.default_rng(1))
    assert est.bound is Bound.EXACT
    assert est.value == pytest.approx(shift, rel=1e-9)
    assert est.low <= shift <= est.high


def test_non_monotone_noise_is_made_monotone():
    sizes = np.geomspace(10, 10000, 10)
    zigzag = 0.012 * (-1.0) ** np.arange(len(sizes))  # seed-mean noise that breaks monotonicity
    noisy = Curve.from_lists(sizes, [auc(n) + z + SEED_OFFSETS for n, z in zip(sizes, zigzag)])
    assert np.any(np.diff(noisy.mean) < 0), "the test curve must be non-monotone"
    fit = noisy.monotone(higher_is_better=True)
    assert np.all(np.diff(fit) >= 0)
    est = matched_size_factor(noisy, auc(200.0) + SEED_OFFSETS, 100.0, True, n_boot=200,
                              rng=np.random.default_rng(4))
    assert est.bound is Bound.EXACT
    assert est.value == pytest.approx(2.0, rel=0.35)
    assert est.low < est.value < est.high


@pytest.mark.parametrize("fn,hib", [(auc, True), (resolution, False)])
def test_beyond_scratch_range_is_lower_bound(fn, hib):
    scratch = curve(fn, sizes=SIZES[:4])  # up to n = 300
    ft = fn(30.0 * 100.0) + SEED_OFFSETS  # as good as scratch at 3000: beyond the range
    est = matched_size_factor(scratch, ft, 100.0, hib, n_boot=50)
    assert est.bound is Bound.LOWER
    assert est.value == pytest.approx(3.0)  # n_max / n
    assert est.display().startswith("> ")


def test_worse_than_smallest_scratch_is_upper_bound():
    est = matched_size_factor(curve(auc), auc(5.0) + SEED_OFFSETS, 100.0, True, n_boot=0)
    assert est.bound is Bound.UPPER
    assert est.value == pytest.approx(0.1)
    assert est.display() == "< 0.10"


def test_saturation():
    plateau = Curve.from_lists(SIZES, [np.full(3, 0.9) + SEED_OFFSETS for _ in SIZES])
    assert is_saturated(plateau, 0.9 + SEED_OFFSETS, 300.0, sigma=1.0)
    # clearly better than the plateau: not saturated
    assert not is_saturated(plateau, 0.95 + SEED_OFFSETS, 300.0, sigma=1.0)
    # a rising scratch curve is not on its plateau at small n
    assert not is_saturated(curve(auc), auc(30.0) + SEED_OFFSETS, 30.0, sigma=1.0)
    # sigma = 0 only calls exactly equal curves saturated
    assert not is_saturated(plateau, 0.9005 + SEED_OFFSETS, 300.0, sigma=0.0)


@pytest.mark.parametrize("fn,hib", [(auc, True), (resolution, False)])
def test_paper_definition(fn, hib):
    scratch = curve(fn)
    ft = curve(fn, shift=4.0)
    factor, n99 = paper_factor(scratch, ft, hib, n_boot=100, rng=np.random.default_rng(2))
    level = fn(SIZES[-1]) * (0.99 if hib else 1.01)
    # invert the fine-tune curve (linear in log n) analytically
    slope = (fn(np.e) - fn(1.0))
    n_expected = np.exp((level - fn(4.0)) / slope)
    assert n99.bound is Bound.EXACT
    assert n99.value == pytest.approx(n_expected, rel=1e-9)
    assert factor.value == pytest.approx(SIZES[-1] / n_expected, rel=1e-9)
    assert factor.low <= factor.value <= factor.high


def test_paper_definition_bounds():
    scratch = curve(auc)
    # fine-tune already above 99% at the smallest size -> lower bound n_max / n_min
    good = Curve.from_lists(SIZES, [np.full(3, 0.99) + SEED_OFFSETS for _ in SIZES])
    factor, _ = paper_factor(scratch, good, True, n_boot=0)
    assert factor.bound is Bound.LOWER and factor.value == pytest.approx(SIZES[-1] / SIZES[0])
    # fine-tune never gets there
    bad = curve(auc, shift=0.01)
    factor, n99 = paper_factor(scratch, bad, True, n_boot=0)
    assert factor.bound is Bound.NEVER and n99.display() == "never in range"


@pytest.mark.parametrize("fn,hib", [(auc, True), (resolution, False)])
def test_baseline_crossing(fn, hib):
    c = curve(fn)
    est = baseline_crossing(c, float(fn(200.0)), hib)
    assert est.bound is Bound.EXACT and est.value == pytest.approx(200.0)
    assert baseline_crossing(c, float(fn(1.0)), hib).display() == "<= 10"
    assert baseline_crossing(c, float(fn(200.0)), hib).display() == "200"
    assert baseline_crossing(c, float(fn(1e6)), hib).display() == "never in range"
    assert baseline_crossing(c, None, hib).display() == "no baseline"


def test_estimate_display():
    assert Estimate(2.0, 1.5, 2.5, Bound.EXACT).display() == "2.00 [1.50, 2.50]"
    assert Estimate(3.0, np.nan, np.nan, Bound.LOWER).display() == "> 3.00"
    assert Estimate(2.0, 2.0, 2.0, Bound.EXACT).display() == "2.00"  # one seed: no interval
    assert Estimate(np.nan, np.nan, np.nan, Bound.NONE, "saturated").display() == "saturated"


def test_curve_rejects_duplicate_sizes():
    with pytest.raises(ValueError, match="distinct"):
        Curve.from_lists([10, 10], [[0.5], [0.6]])
