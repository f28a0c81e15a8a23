"""Data-reduction-factor maths: monotone learning curves, their inversion, and bootstrap intervals.

Everything here is pure numpy on small arrays (a learning curve has a handful of sizes and seeds) and
vectorised over bootstrap replicates.  The definitions are written out in ``docs/results.md``; the
short version:

* A learning curve is the seed-mean of a metric at each target training size ``n``.  Noisy curves are
  made monotone by weighted isotonic regression (better with more data), then read as piecewise linear
  in ``log n``.
* **Matched-size factor** of a fine-tuned point at size ``n`` with seed-mean metric ``m``:
  ``n*`` is the first size at which the monotone *scratch* curve reaches ``m``; ``factor = n* / n``.
  If ``m`` is better than the best scratch point, ``n*`` is only known to exceed the largest scratch
  size: the factor is a lower bound (``Bound.LOWER``); if it is worse than the smallest scratch point,
  an upper bound (``Bound.UPPER``).  Nothing is extrapolated.
* **Paper factor** (Flek & Schott): ``n_99`` is the first size at which the monotone fine-tune curve
  reaches 99 % of the scratch metric at the largest size (lower-is-better: comes within 1 %);
  ``reduction = n_max / n_99``.
* **Saturated**: both curves on their plateau, i.e. the fine-tuned and scratch means at ``n`` differ
  by less than ``k`` seed spreads *and* the scratch mean at ``n`` is within ``k`` spreads of its value
  at the largest size; then no factor is quoted.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Fraction of the scratch model's largest-size performance that defines the paper's factor.
PAPER_PERFORMANCE_FRACTION = 0.99
#: Default central coverage of the bootstrap interval (one standard deviation of a Gaussian).
DEFAULT_CONFIDENCE = 0.6827


class Bound(enum.StrEnum):
    """How a crossing size (or factor) is known."""

    EXACT = "exact"        # interpolated inside the curve's range
    LOWER = "lower"        # the true value is larger than the number quoted (beyond the range)
    UPPER = "upper"        # the true value is smaller than the number quoted (before the range)
    NEVER = "never"        # the curve never reaches the level in range (crossing beyond the range)
    NONE = "n/a"           # no number: missing input, saturated, or not applicable


def isotonic_fit(y: np.ndarray, weights: np.ndarray | None = None, increasing: bool = True) -> np.ndarray:
    """Weighted isotonic (monotone) least-squares fit along the last axis, vectorised over the rest.

    Uses the min-max formula ``f_i = max_{j<=i} min_{k>=i} mean_w(y[j..k])``, exact for the
    pool-adjacent-violators solution and cheap for the few points of a learning curve (O(K^3) per
    curve, any number of leading batch axes, e.g. bootstrap replicates).
    """
    y = np.asarray(y, dtype=float)
    if not increasing:
        return -isotonic_fit(-y, weights, increasing=True)
    k = y.shape[-1]
    w = np.ones(k) if weights is None else np.asarray(weights, dtype=float)
    w = np.broadcast_to(w, y.shape)
    cw = np.concatenate([np.zeros(y.shape[:-1] + (1,)), np.cumsum(w, axis=-1)], axis=-1)
    cwy = np.concatenate([np.zeros(y.shape[:-1] + (1,)), np.cumsum(w * y, axis=-1)], axis=-1)
    # interval means M[..., j, k] = mean of y[j..k] (inclusive); +inf where k < j (ignored by min)
    num = cwy[..., None, 1:] - cwy[..., :-1, None]
    den = cw[..., None, 1:] - cw[..., :-1, None]
    j_idx, k_idx = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    valid = k_idx >= j_idx
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(valid, num / np.where(valid, den, 1.0), np.inf)
    # inner[..., j, i] = min over k >= i of means[..., j, k]  (a reverse running minimum over k)
    inner = np.flip(np.minimum.accumulate(np.flip(means, axis=-1), axis=-1), axis=-1)
    # f[..., i] = max over j <= i of inner[..., j, i]
    inner = np.where(valid, inner, -np.inf)
    return np.max(inner, axis=-2)


def first_crossing(log_n: np.ndarray, curve: np.ndarray, level: np.ndarray,
                   higher_is_better: bool) -> tuple[np.ndarray, np.ndarray]:
    """The first size at which a monotone curve reaches ``level``, linear in ``log n``.

    ``curve`` has shape (..., K) (monotone in the better direction), ``level`` shape (...); the
    leading axes broadcast.
    Returns ``(n, bound)``: ``n`` the crossing size, and ``bound`` an int array: 0 exact, 1 the level
    is better than the whole curve (``n`` = the largest size, the true crossing lies beyond it),
    -1 the level is already reached at the smallest size (``n`` = the smallest size, the true crossing
    lies at or before it).
    """
    sign = 1.0 if higher_is_better else -1.0
    c = sign * np.asarray(curve, dtype=float)
    lv = sign * np.asarray(level, dtype=float)[..., None]
    shape = np.broadcast_shapes(c.shape[:-1], lv.shape[:-1])
    c = np.broadcast_to(c, shape + c.shape[-1:])
    lv = np.broadcast_to(lv, shape + (1,))
    reached = c >= lv
    any_reached = reached.any(axis=-1)
    idx = np.argmax(reached, axis=-1)              # first index reaching the level (0 if none)
    lo = np.clip(idx - 1, 0, None)
    c_hi = np.take_along_axis(c, idx[..., None], axis=-1)[..., 0]
    c_lo = np.take_along_axis(c, lo[..., None], axis=-1)[..., 0]
    x_hi, x_lo = log_n[idx], log_n[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(c_hi > c_lo, (lv[..., 0] - c_lo) / (c_hi - c_lo), 1.0)
    x = np.where(idx > 0, x_lo + np.clip(t, 0.0, 1.0) * (x_hi - x_lo), log_n[0])
    x = np.where(any_reached, x, log_n[-1])
    bound = np.where(~any_reached, 1, np.where(idx == 0, -1, 0))
    # reaching the level exactly at the first point is an exact crossing, not a bound
    bound = np.where((bound == -1) & np.isclose(c[..., 0], lv[..., 0]), 0, bound)
    return np.exp(x), bound


@dataclass(frozen=True)
class Curve:
    """A learning curve: per size, the metric of every seed (NaNs dropped)."""

    sizes: np.ndarray                 # (K,) increasing training sizes
    values: tuple[np.ndarray, ...]    # K arrays of per-seed values

    @classmethod
    def from_lists(cls, sizes: Sequence[float], values: Sequence[Sequence[float]]) -> Curve:
        sizes_a = np.asarray(sizes, dtype=float)
        vals = tuple(np.asarray(v, dtype=float)[np.isfinite(np.asarray(v, dtype=float))] for v in values)
        keep = np.array([len(v) > 0 for v in vals], dtype=bool)
        order = np.argsort(sizes_a[keep])
        sizes_a = sizes_a[keep][order]
        vals = tuple(v for v, k in zip(vals, keep) if k)
        vals = tuple(vals[i] for i in order)
        if np.any(np.diff(sizes_a) <= 0):
            raise ValueError(f"learning-curve sizes must be distinct, got {sizes_a.tolist()}")
        return cls(sizes_a, vals)

    @property
    def mean(self) -> np.ndarray:
        return np.array([v.mean() for v in self.values])

    @property
    def std(self) -> np.ndarray:
        return np.array([v.std(ddof=1) if len(v) > 1 else 0.0 for v in self.values])

    @property
    def n_seeds(self) -> np.ndarray:
        return np.array([len(v) for v in self.values])

    def __len__(self) -> int:
        return len(self.sizes)

    def bootstrap_means(self, rng: np.random.Generator, n_boot: int) -> np.ndarray:
        """(n_boot, K) seed means, seeds resampled with replacement independently per size."""
        out = np.empty((n_boot, len(self)))
        for k, v in enumerate(self.values):  # K is a handful of sizes; the replicates are vectorised
            out[:, k] = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
        return out

    def monotone(self, means: np.ndarray | None = None, higher_is_better: bool = True) -> np.ndarray:
        m = self.mean if means is None else means
        return isotonic_fit(m, weights=self.n_seeds, increasing=higher_is_better)


@dataclass(frozen=True)
class Estimate:
    """A factor (or size) with its bootstrap interval and how it is bounded."""

    value: float
    low: float
    high: float
    bound: Bound
    note: str = ""
    is_size: bool = False     # a training size (shown as a whole number), not a factor

    def display(self) -> str:
        """The table cell: ``2.04 [1.61, 2.50]``, ``> 3.33``, ``< 0.33``, or the note."""
        if self.note:
            return self.note
        if self.bound in (Bound.NEVER, Bound.NONE):
            return "never in range" if self.bound is Bound.NEVER else "n/a"
        if not np.isfinite(self.value):
            return "n/a"
        fmt = (lambda x: f"{x:.0f}") if self.is_size else fmt_number
        v = fmt(self.value)
        if self.bound is Bound.LOWER:
            return f"> {v}"
        if self.bound is Bound.UPPER:
            return f"<= {v}" if self.is_size else f"< {v}"
        if np.isfinite(self.low) and np.isfinite(self.high) and self.high > self.low:
            return f"{v} [{fmt(self.low)}, {fmt(self.high)}]"
        return v


def fmt_number(x: float) -> str:
    """Three significant figures for factors, whole numbers for sizes >= 100."""
    if not np.isfinite(x):
        return "n/a"
    a = abs(x)
    return f"{x:.0f}" if a >= 100 else f"{x:.1f}" if a >= 10 else f"{x:.2f}"


_BOUND_OF = {0: Bound.EXACT, 1: Bound.LOWER, -1: Bound.UPPER}


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    q = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(samples, [q, 1.0 - q])
    return float(lo), float(hi)


def matched_size_factor(scratch: Curve, ft_values: np.ndarray, n: float, higher_is_better: bool,
                        n_boot: int = 200, confidence: float = DEFAULT_CONFIDENCE,
                        rng: np.random.Generator | None = None) -> Estimate:
    """Factor ``n*/n`` for a fine-tuned point at size ``n`` against the monotone scratch curve.

    The bootstrap resamples the seeds of the fine-tuned point and of every scratch size.  Replicates
    beyond the scratch range are censored at the range's edge, so the interval is then itself a bound.
    """
    ft_values = np.asarray(ft_values, dtype=float)
    ft_values = ft_values[np.isfinite(ft_values)]
    if len(scratch) == 0 or ft_values.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), Bound.NONE, "missing")
    log_n = np.log(scratch.sizes)
    fit = scratch.monotone(higher_is_better=higher_is_better)
    n_star, b = first_crossing(log_n, fit, np.asarray(ft_values.mean()), higher_is_better)
    bound = _BOUND_OF[int(b)]
    if bound is Bound.EXACT and len(scratch) == 1:  # a one-point curve is reached only "at or before"
        bound = Bound.UPPER
    lo = hi = float("nan")
    if n_boot > 0:
        rng = rng or np.random.default_rng(0)
        means = scratch.bootstrap_means(rng, n_boot)
        fits = isotonic_fit(means, weights=scratch.n_seeds, increasing=higher_is_better)
        ft_b = ft_values[rng.integers(0, ft_values.size, size=(n_boot, ft_values.size))].mean(axis=1)
        n_b, _ = first_crossing(log_n, fits, ft_b, higher_is_better)
        lo, hi = _interval(n_b / n, confidence)
    return Estimate(float(n_star) / n, lo, hi, bound)


def is_saturated(scratch: Curve, ft_values: np.ndarray, n: float, sigma: float) -> bool:
    """Both curves on their plateau at size ``n`` (see the module docstring)."""
    ft_values = np.asarray(ft_values, dtype=float)
    ft_values = ft_values[np.isfinite(ft_values)]
    where = np.flatnonzero(np.isclose(scratch.sizes, n))
    if where.size == 0 or ft_values.size == 0:
        return False
    k = int(where[0])
    s_scr = scratch.std[k]
    s_ft = ft_values.std(ddof=1) if ft_values.size > 1 else 0.0
    spread = np.hypot(s_scr, s_ft)
    mean_scr = scratch.mean
    close_to_scratch = abs(ft_values.mean() - mean_scr[k]) <= sigma * spread
    on_plateau = abs(mean_scr[-1] - mean_scr[k]) <= sigma * np.hypot(s_scr, scratch.std[-1])
    return bool(close_to_scratch and on_plateau)


def paper_factor(scratch: Curve, finetune: Curve, higher_is_better: bool, n_boot: int = 200,
                 confidence: float = DEFAULT_CONFIDENCE, rng: np.random.Generator | None = None,
                 fraction: float = PAPER_PERFORMANCE_FRACTION) -> tuple[Estimate, Estimate]:
    """The paper's factor: ``n_max / n_99`` and the size ``n_99`` itself.

    ``n_99`` is the first size at which the monotone fine-tune curve reaches ``fraction`` of the
    scratch metric at the largest scratch size (lower-is-better: ``(2 - fraction)`` times it, i.e.
    within 1 %).  Returns ``(factor, n_99)``.
    """
    if len(scratch) == 0 or len(finetune) == 0:
        nan = float("nan")
        return (Estimate(nan, nan, nan, Bound.NONE, "missing"),) * 2
    scale = fraction if higher_is_better else 2.0 - fraction
    n_max = scratch.sizes[-1]
    log_n = np.log(finetune.sizes)
    level = scale * scratch.mean[-1]
    n99, b = first_crossing(log_n, finetune.monotone(higher_is_better=higher_is_better),
                            np.asarray(level), higher_is_better)
    b = int(b)
    lo = hi = n_lo = n_hi = float("nan")
    if n_boot > 0:
        rng = rng or np.random.default_rng(0)
        level_b = scale * scratch.bootstrap_means(rng, n_boot)[:, -1]
        fits = isotonic_fit(finetune.bootstrap_means(rng, n_boot), weights=finetune.n_seeds,
                            increasing=higher_is_better)
        n_b, b_b = first_crossing(log_n, fits, level_b, higher_is_better)
        n_b = np.where(b_b == 1, np.inf, n_b)
        n_lo, n_hi = _interval(np.where(np.isinf(n_b), np.nan, n_b), confidence)
        lo, hi = _interval(n_max / n_b, confidence)
    if b == 1:
        never = f"never in range (< {n_max / finetune.sizes[-1]:.2g})"
        return (Estimate(float("nan"), lo, hi, Bound.NEVER, never),
                Estimate(float("nan"), n_lo, n_hi, Bound.NEVER, "never in range", is_size=True))
    bound = _BOUND_OF[b]
    if bound is Bound.EXACT and len(finetune) == 1:
        bound = Bound.UPPER
    # n_99 at or before the smallest size -> factor is a lower bound
    f_bound = {Bound.EXACT: Bound.EXACT, Bound.UPPER: Bound.LOWER}[bound]
    return (Estimate(float(n_max / n99), lo, hi, f_bound),
            Estimate(float(n99), n_lo, n_hi, bound, is_size=True))


def baseline_crossing(curve: Curve, baseline: float | None, higher_is_better: bool) -> Estimate:
    """The first size at which the monotone curve matches a rule-based baseline's metric."""
    if baseline is None or not np.isfinite(baseline):
        return Estimate(float("nan"), float("nan"), float("nan"), Bound.NONE, "no baseline")
    if len(curve) == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), Bound.NEVER, "missing")
    n, b = first_crossing(np.log(curve.sizes), curve.monotone(higher_is_better=higher_is_better),
                          np.asarray(float(baseline)), higher_is_better)
    b = int(b)
    if b == 1:
        return Estimate(float("nan"), float("nan"), float("nan"), Bound.NEVER, "never in range")
    bound = _BOUND_OF[b]
    if bound is Bound.EXACT and len(curve) == 1:
        bound = Bound.UPPER
    # UPPER: reached at or before the smallest size
    return Estimate(float(n), float("nan"), float("nan"), bound, is_size=True)
