"""Data-reduction-factor maths: monotone learning curves, their inversion, and bootstrap intervals.

Everything here is pure numpy on small arrays (a learning curve has a handful of sizes and seeds) and
vectorised over bootstrap replicates.  The definitions are written once, in
:mod:`fast2full.definitions` (from which ``docs/results.md``, the README and ``summary.md`` are made).
In short:

* A learning curve is the seed mean of a metric at each target training size ``n``; its last point
  should be the **full target train split** (size ``all``, ``n_full`` events).  For the factor maths it
  is made monotone by weighted isotonic regression and read as piecewise linear in ``log n``.
* **Paper factor**: ``n_99`` is where the monotone transfer curve reaches the level ``L``:
  higher-is-better metrics ``L = 0.99 * S_full`` (``S_full`` = scratch on the full split);
  lower-is-better metrics ``L = B - 0.99 * (B - S_full)`` (99 % of scratch-on-full's gain over the
  rule-based baseline ``B``), so the untrained baseline never meets it.  ``reduction = n_full / n_99``.
* **Matched-size factor** ``n*/n``: ``n*`` is where the monotone scratch curve reaches the transfer
  point's metric.
* **Uncertainty**: one bootstrap resamples seeds and test events together (:class:`Resample`; the
  per-point replicates of the test-event resampling come from ``aggregate``).  Replicates beyond a
  curve's range are censored at its edge; a bound is quoted at the edge of the interval, and never
  from a bootstrap without spread.
* **Saturated**: the transfer and scratch points agree, and scratch at ``n`` agrees with scratch on
  the full split, within the combined interval, and still do when any one seed is left out.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Fraction of scratch-on-full's performance (or, lower-is-better, of its gain over the baseline)
#: that defines the paper's factor.
PAPER_PERFORMANCE_FRACTION = 0.99
#: Default central coverage of the bootstrap interval (one standard deviation of a Gaussian).
DEFAULT_CONFIDENCE = 0.6827


class Bound(enum.StrEnum):
    """How a crossing size (or factor) is known."""

    EXACT = "exact"  # interpolated inside the curve's range
    LOWER = "lower"  # the true value is larger than the number quoted (beyond the range)
    UPPER = "upper"  # the true value is smaller than the number quoted (before the range)
    NEVER = "never"  # the curve never reaches the level in range (crossing beyond the range)
    NONE = "n/a"  # no number: missing input, saturated, or not applicable


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
    num = cwy[..., None, 1:] - cwy[..., :-1, None]
    den = cw[..., None, 1:] - cw[..., :-1, None]
    j_idx, k_idx = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    valid = k_idx >= j_idx
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(valid, num / np.where(valid, den, 1.0), np.inf)
    inner = np.flip(np.minimum.accumulate(np.flip(means, axis=-1), axis=-1), axis=-1)
    inner = np.where(valid, inner, -np.inf)
    return np.max(inner, axis=-2)


def first_crossing(
    log_n: np.ndarray, curve: np.ndarray, level: np.ndarray, higher_is_better: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The first size at which a monotone curve reaches ``level``, linear in ``log n``.

    ``curve`` has shape (..., K) (monotone in the better direction), ``level`` shape (...); the
    leading axes broadcast.  Returns ``(n, bound)``: ``bound`` 0 exact, 1 the level is better than
    the whole curve (``n`` = the largest size; the crossing lies beyond it), -1 the level is already
    reached at the smallest size (``n`` = the smallest size; the crossing lies at or before it).
    """
    sign = 1.0 if higher_is_better else -1.0
    c = sign * np.asarray(curve, dtype=float)
    lv = sign * np.asarray(level, dtype=float)[..., None]
    shape = np.broadcast_shapes(c.shape[:-1], lv.shape[:-1])
    c = np.broadcast_to(c, shape + c.shape[-1:])
    lv = np.broadcast_to(lv, shape + (1,))
    reached = c >= lv
    any_reached = reached.any(axis=-1)
    idx = np.argmax(reached, axis=-1)
    lo = np.clip(idx - 1, 0, None)
    c_hi = np.take_along_axis(c, idx[..., None], axis=-1)[..., 0]
    c_lo = np.take_along_axis(c, lo[..., None], axis=-1)[..., 0]
    x_hi, x_lo = log_n[idx], log_n[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(c_hi > c_lo, (lv[..., 0] - c_lo) / (c_hi - c_lo), 1.0)
    x = np.where(idx > 0, x_lo + np.clip(t, 0.0, 1.0) * (x_hi - x_lo), log_n[0])
    x = np.where(any_reached, x, log_n[-1])
    bound = np.where(~any_reached, 1, np.where(idx == 0, -1, 0))
    bound = np.where((bound == -1) & np.isclose(c[..., 0], lv[..., 0]), 0, bound)
    return np.exp(x), bound


# --------------------------------------------------------------------------------------------------
# resampling
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resample:
    """One bootstrap shared by every curve of a comparison.

    ``seed_weights`` (B, S): multinomial counts over the S seed positions (the same draw for every
    point, so a seed's nested training sets stay paired across sizes and modes).  The test-event part
    lives in each :class:`Curve`'s ``reps`` (the metric of every seed on test-event replicate ``b``,
    drawn once per (task, target) so that all curves see the same resampled test set);
    ``test_events`` says whether the curves carry them.
    """

    seed_weights: np.ndarray
    test_events: bool = False

    @classmethod
    def draw(cls, rng: np.random.Generator, n_boot: int, n_seeds: int, test_events: bool = False) -> Resample:
        w = (
            rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_boot)
            if n_boot > 0
            else np.zeros((0, n_seeds))
        )
        return cls(np.asarray(w, dtype=float), test_events)

    @property
    def n_boot(self) -> int:
        return int(self.seed_weights.shape[0])


@dataclass(frozen=True)
class Curve:
    """A learning curve: per size, the metric of every seed (NaNs dropped).

    ``seeds[k]`` are the seed positions (columns of :attr:`Resample.seed_weights`) of the values at
    point ``k``; ``reps[k]`` (n_seeds_k, B) the same seeds' metric on each test-event replicate, or
    None (seed-only bootstrap).  ``full``: the last point is the full target train split.
    """

    sizes: np.ndarray
    values: tuple[np.ndarray, ...]
    seeds: tuple[np.ndarray, ...] = ()
    reps: tuple[np.ndarray | None, ...] = ()
    full: bool = False

    @classmethod
    def from_lists(
        cls,
        sizes: Sequence[float],
        values: Sequence[Sequence[float]],
        seeds: Sequence[Sequence[int]] | None = None,
        reps: Sequence[np.ndarray | None] | None = None,
        full: bool = False,
    ) -> Curve:
        sizes_a = np.asarray(sizes, dtype=float)
        vals_in = [np.asarray(v, dtype=float) for v in values]
        seeds_in = (
            [np.asarray(s, dtype=int) for s in seeds] if seeds is not None else [np.arange(len(v)) for v in vals_in]
        )
        reps_in = list(reps) if reps is not None else [None] * len(vals_in)
        vals, sds, rps = [], [], []
        for v, s, r in zip(vals_in, seeds_in, reps_in):
            ok = np.isfinite(v)
            if r is not None:
                r = np.asarray(r, dtype=float)[ok]
            vals.append(v[ok])
            sds.append(s[ok])
            rps.append(r)
        keep = np.array([len(v) > 0 for v in vals], dtype=bool)
        if full and len(keep) and not keep[-1]:
            full = False
        idx = np.flatnonzero(keep)
        order = idx[np.argsort(sizes_a[idx], kind="stable")]
        if full and len(order) and order[-1] != len(vals) - 1:
            raise ValueError("the full-split point must be the largest size of its curve")
        sizes_a = sizes_a[order]
        if np.any(np.diff(sizes_a) <= 0):
            raise ValueError(f"learning-curve sizes must be distinct, got {sizes_a.tolist()}")
        return cls(
            sizes_a, tuple(vals[i] for i in order), tuple(sds[i] for i in order), tuple(rps[i] for i in order), full
        )

    @property
    def mean(self) -> np.ndarray:
        return np.array([v.mean() for v in self.values])

    @property
    def std(self) -> np.ndarray:
        return np.array([v.std(ddof=1) if len(v) > 1 else 0.0 for v in self.values])

    @property
    def n_seeds(self) -> np.ndarray:
        return np.array([len(v) for v in self.values])

    @property
    def n_full(self) -> float:
        return float(self.sizes[-1]) if self.full and len(self) else float("nan")

    @property
    def has_test_reps(self) -> bool:
        return len(self) > 0 and all(r is not None for r in self.reps)

    def __len__(self) -> int:
        return len(self.sizes)

    def boot_means(self, boot: Resample) -> np.ndarray:
        """(B, K) seed means on each replicate: seeds weighted by the replicate's seed counts and,
        where the curve has them, each seed's metric on the replicate's resampled test events."""
        out = np.empty((boot.n_boot, len(self)))
        for k, (v, s, r) in enumerate(zip(self.values, self.seeds, self.reps)):
            vals = np.broadcast_to(v, (boot.n_boot, len(v))) if r is None or not boot.test_events else r.T
            w = (
                boot.seed_weights[:, s]
                if s.size and s.max() < boot.seed_weights.shape[1]
                else np.ones((boot.n_boot, len(v)))
            )
            ws = w.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                m = (w * vals).sum(axis=1) / ws
            # a replicate that drew none of this point's seeds: its seeds unweighted
            out[:, k] = np.where(ws > 0, m, vals.mean(axis=1))
        return out

    def monotone(self, means: np.ndarray | None = None, higher_is_better: bool = True) -> np.ndarray:
        m = self.mean if means is None else means
        return isotonic_fit(m, weights=self.n_seeds, increasing=higher_is_better)

    def without_seed(self, seed: int) -> Curve:
        """The curve with seed position ``seed`` left out (points left with no seed are dropped)."""
        vals, sds, rps, szs = [], [], [], []
        for n, v, s, r in zip(self.sizes, self.values, self.seeds, self.reps):
            keep = s != seed
            if keep.any():
                szs.append(n)
                vals.append(v[keep])
                sds.append(s[keep])
                rps.append(None if r is None else r[keep])
        full = self.full and len(szs) > 0 and szs[-1] == self.sizes[-1]
        return Curve(np.asarray(szs, dtype=float), tuple(vals), tuple(sds), tuple(rps), full)

    def index_of(self, n: float) -> int | None:
        where = np.flatnonzero(np.isclose(self.sizes, n))
        return int(where[0]) if where.size else None


# --------------------------------------------------------------------------------------------------
# estimates
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A factor (or size) with its bootstrap interval and how it is bounded.

    ``low_open``/``high_open``: more than ``(1 - confidence) / 2`` of the replicates were censored
    at that end of the range, so that end of the interval is itself only a bound.
    """

    value: float
    low: float
    high: float
    bound: Bound
    note: str = ""
    is_size: bool = False
    low_open: bool = False
    high_open: bool = False
    extra: dict = field(default_factory=dict, compare=False)

    def display(self) -> str:
        """The table cell: ``2.04 [1.61, 2.50]``, ``> 3.33``, ``< 0.33``, ``2.0 [1.2, > 6.7]``, or the note."""
        if self.note:
            return self.note
        if self.bound in (Bound.NEVER, Bound.NONE):
            return "never in range" if self.bound is Bound.NEVER else "n/a"
        fmt = (lambda x: f"{x:.0f}") if self.is_size else fmt_number
        has_interval = np.isfinite(self.low) and np.isfinite(self.high) and self.high > self.low
        # a bound whose other end is censored too: the replicates span the whole range, no bound holds
        if (self.bound is Bound.LOWER and self.low_open) or (self.bound is Bound.UPPER and self.high_open):
            rel = ">" if self.bound is Bound.LOWER else "<"
            frac = self.extra.get("open_frac")
            other = f" in {frac:.0%} of replicates" if frac is not None else ""
            return f"inconclusive: {rel} {fmt(self.value)} at the mean, beyond the other end of the range{other}"
        if self.bound is Bound.LOWER:
            edge = self.low if has_interval and self.low < self.value else self.value
            return f"> {fmt(edge)}"
        if self.bound is Bound.UPPER:
            edge = self.high if has_interval and self.high > self.value else self.value
            return f"<= {fmt(edge)}" if self.is_size else f"< {fmt(edge)}"
        if not np.isfinite(self.value):
            return "n/a"
        v = fmt(self.value)
        if has_interval:
            lo = ("< " if self.low_open else "") + fmt(self.low)
            hi = ("> " if self.high_open else "") + fmt(self.high)
            return f"{v} [{lo}, {hi}]"
        return f"{v} (no interval)"


def fmt_number(x: float) -> str:
    """Three significant figures for factors, whole numbers for values >= 100."""
    if not np.isfinite(x):
        return "n/a"
    a = abs(x)
    return f"{x:.0f}" if a >= 100 else f"{x:.1f}" if a >= 10 else f"{x:.2f}"


_BOUND_OF = {0: Bound.EXACT, 1: Bound.LOWER, -1: Bound.UPPER}
NAN = float("nan")


def none(note: str, is_size: bool = False) -> Estimate:
    return Estimate(NAN, NAN, NAN, Bound.NONE, note, is_size=is_size)


def _quantiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return NAN, NAN
    q = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(samples, [q, 1.0 - q])
    return float(lo), float(hi)


def interval(
    samples: np.ndarray, censor: np.ndarray, confidence: float, censor_sign_low: int
) -> tuple[float, float, bool, bool]:
    """Central interval of ``samples`` with censored replicates kept at the range's edge.

    ``censor`` holds first_crossing's bound codes per replicate; ``censor_sign_low`` is the code
    (1 or -1) whose replicates sit at the *low* end of ``samples`` (for a factor n_ref/n_cross,
    crossings beyond the range (+1) give the smallest factors).  Returns (low, high, low_open, high_open).
    """
    lo, hi = _quantiles(samples, confidence)
    q = (1.0 - confidence) / 2.0
    n = max(int(np.isfinite(samples).sum()), 1)
    frac_low = float(np.sum(censor == censor_sign_low)) / n
    frac_high = float(np.sum(censor == -censor_sign_low)) / n
    return lo, hi, frac_low > q, frac_high > q


def _no_spread(samples: np.ndarray) -> bool:
    s = samples[np.isfinite(samples)]
    return s.size == 0 or float(np.ptp(s)) <= 1e-12 * max(1.0, float(np.abs(s).max()))


NO_SPREAD_NOTE = "bound not quoted: no uncertainty estimate (bootstrap without spread)"


def _finish(
    value: float,
    code: int,
    samples: np.ndarray,
    codes: np.ndarray,
    confidence: float,
    n_boot: int,
    is_size: bool = False,
    censor_sign_low: int = 1,
    single_point: bool = False,
    extra: dict | None = None,
    spread: bool = True,
) -> Estimate:
    bound = _BOUND_OF[code]
    if bound is Bound.EXACT and single_point:
        bound = Bound.UPPER
    if n_boot == 0:
        if bound is not Bound.EXACT:
            return Estimate(
                NAN,
                NAN,
                NAN,
                Bound.NONE,
                "bound not quoted: bootstrap off (aggregate.bootstrap = 0)",
                is_size=is_size,
                extra=extra or {},
            )
        return Estimate(value, NAN, NAN, bound, is_size=is_size, extra=extra or {})
    lo, hi, lo_open, hi_open = interval(samples, codes, confidence, censor_sign_low)
    if not spread and bound is not Bound.EXACT:
        return Estimate(NAN, NAN, NAN, Bound.NONE, NO_SPREAD_NOTE, is_size=is_size, extra=extra or {})
    extra = dict(extra or {})
    if len(codes):  # share of replicates censored at the end opposite to the central bound
        low_code = censor_sign_low
        opposite = low_code if bound is Bound.LOWER else -low_code if bound is Bound.UPPER else None
        if opposite is not None:
            extra["open_frac"] = float(np.mean(codes == opposite))
    return Estimate(value, lo, hi, bound, is_size=is_size, low_open=lo_open, high_open=hi_open, extra=extra)


# --------------------------------------------------------------------------------------------------
# the factors
# --------------------------------------------------------------------------------------------------


def matched_size_factor(
    scratch: Curve,
    transfer: Curve,
    k: int,
    higher_is_better: bool,
    boot: Resample | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Estimate:
    """Factor ``n*/n`` of the transfer point ``k`` (size ``n``) against the monotone scratch curve.

    The bootstrap (``boot``) resamples seeds and, where the curves carry them, test events; in each
    replicate the scratch curve is refitted and inverted.  Replicates beyond the scratch range are
    censored at its edge (then that end of the interval is open).
    """
    if len(scratch) == 0 or len(transfer) == 0:
        return none("missing")
    n = float(transfer.sizes[k])
    log_n = np.log(scratch.sizes)
    fit = scratch.monotone(higher_is_better=higher_is_better)
    n_star, b = first_crossing(log_n, fit, np.asarray(transfer.mean[k]), higher_is_better)
    samples, codes, n_boot = np.array([]), np.array([]), 0
    if boot is not None and boot.n_boot > 0:
        n_boot = boot.n_boot
        fits = isotonic_fit(scratch.boot_means(boot), weights=scratch.n_seeds, increasing=higher_is_better)
        ft_b = transfer.boot_means(boot)[:, k]
        n_b, codes = first_crossing(log_n, fits, ft_b, higher_is_better)
        samples = n_b / n
        spread = not (_no_spread(ft_b) and _no_spread(fits.reshape(n_boot, -1).sum(axis=1)))
    else:
        spread = False
    # crossing before the scratch range (-1) gives the smallest factors
    return _finish(
        float(n_star) / n,
        int(b),
        samples,
        codes,
        confidence,
        n_boot,
        censor_sign_low=-1,
        single_point=len(scratch) == 1,
        spread=spread,
    )


def paper_level(
    s_full: np.ndarray | float,
    baseline: np.ndarray | float | None,
    higher_is_better: bool,
    fraction: float = PAPER_PERFORMANCE_FRACTION,
) -> np.ndarray:
    """The level ``L`` the transfer curve must reach (see the module docstring)."""
    s_full = np.asarray(s_full, dtype=float)
    if higher_is_better:
        return fraction * s_full
    b = np.asarray(np.nan if baseline is None else baseline, dtype=float)
    return b - fraction * (b - s_full)


def paper_factor(
    scratch: Curve,
    transfer: Curve,
    higher_is_better: bool,
    baseline: float | None = None,
    boot: Resample | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    fraction: float = PAPER_PERFORMANCE_FRACTION,
    baseline_reps: np.ndarray | None = None,
) -> tuple[Estimate, Estimate]:
    """The paper's factor ``n_full / n_99`` and the size ``n_99`` itself (see the module docstring).

    ``baseline`` is the rule-based baseline's metric (needed for lower-is-better metrics);
    ``baseline_reps`` (B,) its value on each test-event replicate.  Returns ``(factor, n_99)``.
    """
    if len(scratch) == 0 or len(transfer) == 0:
        return none("missing"), none("missing", is_size=True)
    if not scratch.full:
        note = "no scratch point on the full target train split (add `all` to training.sizes)"
        return none(note), none(note, is_size=True)
    sign = 1.0 if higher_is_better else -1.0
    s_full = float(scratch.mean[-1])
    n_full = scratch.n_full
    if not higher_is_better:
        if baseline is None or not np.isfinite(baseline):
            return none("no rule-based baseline: threshold undefined"), none("no baseline", is_size=True)
        if sign * (s_full - baseline) <= 0:
            note = (
                f"no factor: scratch on the full split ({s_full:.4g}) does not improve on the baseline ({baseline:.4g})"
            )
            return none(note), none("n/a", is_size=True)
    level = paper_level(s_full, baseline, higher_is_better, fraction)
    log_n = np.log(transfer.sizes)
    n99, b = first_crossing(log_n, transfer.monotone(higher_is_better=higher_is_better), level, higher_is_better)
    b = int(b)
    samples = n_samples = codes = np.array([])
    n_boot = 0
    extra = {"level": float(level), "s_full": s_full, "n_full": n_full}
    if boot is not None and boot.n_boot > 0:
        n_boot = boot.n_boot
        s_full_b = scratch.boot_means(boot)[:, -1]
        base_b = baseline_reps if (baseline_reps is not None and boot.test_events) else baseline
        level_b = paper_level(s_full_b, base_b, higher_is_better, fraction)
        fits = isotonic_fit(transfer.boot_means(boot), weights=transfer.n_seeds, increasing=higher_is_better)
        n_b, codes = first_crossing(log_n, fits, level_b, higher_is_better)
        n_b = np.where(codes == 1, np.inf, n_b)  # never reached in range
        n_samples = n_b
        samples = n_full / n_b
        spread = not (_no_spread(level_b) and _no_spread(fits.sum(axis=1)))
    else:
        spread = False
    if b == 1:
        note = (
            "not reached: the transfer curve stays below 99 % of scratch-on-full"
            if higher_is_better
            else "not reached: the transfer curve stays short of 99 % of scratch-on-full's gain over the baseline"
        )
        if not transfer.full:
            note += f" up to n = {transfer.sizes[-1]:.0f} (this mode has no full-split point)"
        lo, hi = _quantiles(samples, confidence) if n_boot else (NAN, NAN)
        return (
            Estimate(NAN, lo, hi, Bound.NEVER, note, extra=extra),
            Estimate(NAN, NAN, NAN, Bound.NEVER, "never in range", is_size=True),
        )
    single = len(transfer) == 1
    n99_est = _finish(
        float(n99),
        b,
        np.where(np.isinf(n_samples), np.nan, n_samples),
        codes,
        confidence,
        n_boot,
        is_size=True,
        censor_sign_low=-1,
        single_point=single,
        spread=spread,
    )
    # n_99 at or before the smallest size -> the factor is a lower bound
    f_code = {0: 0, -1: 1}[b] if not single else 1
    factor = _finish(
        float(n_full / n99), f_code, samples, codes, confidence, n_boot, censor_sign_low=1, extra=extra, spread=spread
    )
    return factor, n99_est


def baseline_crossing(curve: Curve, baseline: float | None, higher_is_better: bool) -> Estimate:
    """The first size at which the monotone curve matches a rule-based baseline's metric."""
    if baseline is None or not np.isfinite(baseline):
        return none("no baseline", is_size=True)
    if len(curve) == 0:
        return Estimate(NAN, NAN, NAN, Bound.NEVER, "missing", is_size=True)
    n, b = first_crossing(
        np.log(curve.sizes),
        curve.monotone(higher_is_better=higher_is_better),
        np.asarray(float(baseline)),
        higher_is_better,
    )
    b = int(b)
    if b == 1:
        return Estimate(NAN, NAN, NAN, Bound.NEVER, "never in range", is_size=True)
    bound = _BOUND_OF[b]
    if bound is Bound.EXACT and len(curve) == 1:
        bound = Bound.UPPER
    return Estimate(float(n), NAN, NAN, bound, is_size=True)


@dataclass(frozen=True)
class Saturation:
    """The saturation test at one size, with the numbers behind it (for the summary)."""

    saturated: bool
    reason: str


def saturation(
    scratch: Curve,
    transfer: Curve,
    k: int,
    higher_is_better: bool,
    boot: Resample | None,
    confidence: float = DEFAULT_CONFIDENCE,
    _check_seeds: bool = True,
) -> Saturation:
    """Whether the transfer point ``k`` and scratch are both on their plateau (module docstring).

    Needs a bootstrap with spread: agreement "within the uncertainty" is never claimed from a zero
    spread.  The test is repeated with each seed left out; one deviant seed that widens the interval
    enough to cover a real difference therefore does not make the point saturated.
    """
    if boot is None or boot.n_boot == 0:
        return Saturation(False, "no bootstrap")
    n = float(transfer.sizes[k])
    j = scratch.index_of(n)
    if j is None:
        return Saturation(False, "no scratch point at this size")
    ref = len(scratch) - 1
    diff = transfer.boot_means(boot)[:, k] - scratch.boot_means(boot)[:, j]
    plateau = scratch.boot_means(boot)[:, ref] - scratch.boot_means(boot)[:, j]
    if _no_spread(diff):
        return Saturation(False, "no spread")
    d_lo, d_hi = _quantiles(diff, confidence)
    p_lo, p_hi = _quantiles(plateau, confidence)
    if not (d_lo <= 0.0 <= d_hi):
        return Saturation(False, "curves differ")
    if j != ref and not (p_lo <= 0.0 <= p_hi):
        return Saturation(False, "scratch still improves")
    if _check_seeds:
        seeds = np.unique(np.concatenate([*scratch.seeds, *transfer.seeds])) if len(scratch) else []
        if len(seeds) < 2 and not boot.test_events:
            return Saturation(False, "one seed, no test-event bootstrap")
        for s in seeds:
            sc, tr = scratch.without_seed(int(s)), transfer.without_seed(int(s))
            kk = tr.index_of(n)
            if kk is None or sc.index_of(n) is None:
                continue
            if not saturation(sc, tr, kk, higher_is_better, boot, confidence, _check_seeds=False).saturated:
                return Saturation(False, f"not robust: leaving out seed position {int(s)} separates the curves")
    return Saturation(True, "agree within the interval")
