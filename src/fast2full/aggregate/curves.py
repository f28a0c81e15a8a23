"""Learning curves and data-reduction factors from the metrics table (the maths: :mod:`fast2full.reduction`).

One bootstrap per (task, target) resamples the seeds and, where every result of that (task, target)
has its ``predictions.parquet``, the test events too (the same resampled test set for every model);
otherwise it falls back to seeds only and says why (column ``bootstrap`` and ``summary.md``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fast2full import plan
from fast2full.aggregate import testboot
from fast2full.aggregate.metrics import (
    BASELINE_KEY,
    FULL,
    HIGHER_IS_BETTER,
    TRANSFER_MODES,
    AggregateSettings,
    size_tokens,
)
from fast2full.common import Progress
from fast2full.predictions import Predictions
from fast2full.reduction import (
    Bound,
    Curve,
    Estimate,
    Resample,
    baseline_crossing,
    matched_size_factor,
    none,
    paper_factor,
    saturation,
)

log = logging.getLogger("fast2full.aggregate")

#: per-seed columns a learning curve carries
CURVE_COLUMNS = (
    "value",
    "test_loss",
    "steps",
    "steps_total",
    "steps_incl_pretrain",
    "n_train",
    "n_unlabelled",
    "capped",
    "seed",
    "ess_train",
    "ess_test",
)
GROUP_KEYS = ["task", "arch", "target", "mode"]


# the plan of the study, declared once (fast2full.plan; the Snakefile uses the same functions)
task_targets = plan.task_targets
expected_combinations = plan.expected_combinations


def metric_of(table: pd.DataFrame, task: str) -> str:
    m = table.loc[table["task"] == task, "metric"]
    if m.empty:
        return "met_resolution" if task == "met" else "auc"
    return str(m.iloc[0])


@dataclass(frozen=True)
class CurvePoints:
    """One learning curve: per size kept, the per-seed values of :data:`CURVE_COLUMNS` and the paths.

    ``tokens`` are the configured sizes as strings (``"all"`` for the full split); ``x`` the events
    actually used (median ``n_train`` over seeds); ``full``: the last point is the full split;
    ``collapsed``: sizes dropped because their training set was capped to the same events as a
    point kept (token -> events).
    """

    tokens: list[str]
    x: np.ndarray
    columns: dict[str, list[np.ndarray]]
    paths: list[np.ndarray]
    full: bool = False
    collapsed: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def sizes(self) -> np.ndarray:
        """Numeric configured sizes of the points (NaN for the full split)."""
        return np.array([float(t) if t != FULL else np.nan for t in self.tokens])

    def mean(self, column: str) -> np.ndarray:
        return np.array([np.nanmean(v) if np.isfinite(v).any() else np.nan for v in self.columns[column]])

    def std(self, column: str) -> np.ndarray:
        return np.array([np.nanstd(v, ddof=1) if np.isfinite(v).sum() > 1 else np.nan for v in self.columns[column]])

    @property
    def n_runs(self) -> int:
        return int(sum(len(v) for v in self.columns["value"])) if self.tokens else 0

    def __len__(self) -> int:
        return len(self.tokens)

    def curve(
        self, column: str = "value", seed_pos: dict[int, int] | None = None, reps: dict[str, np.ndarray] | None = None
    ) -> Curve:
        if not self.tokens:
            return Curve(np.array([]), ())
        seeds = [np.array([(seed_pos or {}).get(int(s), int(s)) for s in v], dtype=int) for v in self.columns["seed"]]
        rp = None
        if reps is not None and column == "value":
            rp = [np.stack([reps[p] for p in ps]) if all(p in reps for p in ps) else None for ps in self.paths]
        return Curve.from_lists(self.x, self.columns[column], seeds=seeds, reps=rp, full=self.full)


def group_rows(table: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """The table split once by (task, arch, target, mode), for fast repeated look-ups."""
    return {tuple(k): g for k, g in table.groupby(GROUP_KEYS, sort=False)}


def rows_of(
    table: pd.DataFrame, task: str, arch: str, target: str, mode: str, groups: dict[tuple, pd.DataFrame] | None = None
) -> pd.DataFrame:
    if groups is not None:
        return groups.get((task, arch, target, mode), table.iloc[:0])
    return table[
        (table["task"] == task) & (table["arch"] == arch) & (table["target"] == target) & (table["mode"] == mode)
    ]


def curve_points(
    table: pd.DataFrame, task: str, arch: str, target: str, mode: str, groups: dict[tuple, pd.DataFrame] | None = None
) -> CurvePoints:
    """The rows of one learning curve, x = events actually used.

    Sizes capped to the same number of events (a pool smaller than the requested size) collapse to
    one point: the full-split point if it is among them, else the smallest configured size.
    """
    sel = rows_of(table, task, arch, target, mode, groups)
    sel = sel[sel["value"].notna() & (sel["full"] | sel["size_value"].notna()) & (sel["mode"] != "pretrain")]
    empty = {c: [] for c in CURVE_COLUMNS}
    if sel.empty:
        return CurvePoints([], np.array([]), empty, [])
    groups_by_size = []
    for token, g in sel.groupby("size", sort=False):
        x = float(np.nanmedian(g["n_train"])) if g["n_train"].notna().any() else float(token)
        g = g.sort_values("seed", kind="stable")
        groups_by_size.append((x, token == FULL, float(token) if token != FULL else math.inf, token, g))
    # by events used, then: the full split first among equal x (it is kept), then the smaller size
    groups_by_size.sort(key=lambda t: (t[0], not t[1], t[2]))
    kept, collapsed = [], {}
    for x, is_full, _, token, g in groups_by_size:
        if kept and np.isclose(kept[-1][0], x):
            collapsed[token] = x
            continue
        kept.append((x, is_full, token, g))
    full = kept[-1][1]
    if any(k[1] for k in kept[:-1]):  # a full point smaller than a numeric size: a data inconsistency
        log.warning(
            "%s/%s/%s/%s: the full-split point is not the largest; not used as the full split", task, arch, target, mode
        )
        full = False
    cols = {c: [k[3][c].to_numpy(float) for k in kept] for c in CURVE_COLUMNS}
    return CurvePoints(
        [k[2] for k in kept],
        np.array([k[0] for k in kept]),
        cols,
        [k[3]["path"].to_numpy(str) for k in kept],
        full,
        collapsed,
    )


def baseline_value(table: pd.DataFrame, task: str, target: str, metric: str) -> tuple[str, float | None]:
    """The rule-based baseline of a (task, target): its name and metric (median over files)."""
    sel = table[(table["task"] == task) & (table["target"] == target)]
    col = f"baseline_{BASELINE_KEY[metric]}"
    vals = sel[col].dropna()
    if vals.empty:
        return "", None
    names = sel.loc[sel[col].notna(), "baseline_name"]
    return (str(names.iloc[0]) if len(names) else ""), float(vals.median())


def baselines(table: pd.DataFrame, config: dict) -> dict[tuple[str, str], tuple[str, float | None]]:
    """:func:`baseline_value` for every configured (task, target)."""
    tr = config["training"]
    return {
        (t, g): baseline_value(table, t, g, metric_of(table, t)) for t in tr["tasks"] for g in task_targets(config, t)
    }


# --------------------------------------------------------------------------------------------------
# the bootstrap of one (task, target)
# --------------------------------------------------------------------------------------------------


@dataclass
class TestBoot:
    """The bootstrap of one (task, target): seed weights, and test-event replicates where possible."""

    resample: Resample
    reps: dict[str, np.ndarray]  # metrics path -> (B,) metric on each test-event replicate
    baseline_reps: np.ndarray | None  # (B,) the rule-based baseline on each replicate
    how: str  # "seeds + test events (N events)" or "seeds only: <reason>"
    weighted: bool | None = None  # whether the metric in metrics.json is event-weighted


def test_bootstrap(
    table: pd.DataFrame,
    preds: dict[str, Predictions],
    task: str,
    target: str,
    seed_weights: np.ndarray,
    rng: np.random.Generator,
    settings: AggregateSettings,
) -> TestBoot:
    """Draw the test-event replicates of every result of (task, target), or say why not."""
    n_boot = seed_weights.shape[0]
    sel = table[
        (table["task"] == task) & (table["target"] == target) & (table["mode"] != "pretrain") & table["value"].notna()
    ]

    def seeds_only(reason: str) -> TestBoot:
        return TestBoot(Resample(seed_weights, False), {}, None, f"seeds only: {reason}")

    if n_boot == 0:
        return TestBoot(Resample(seed_weights, False), {}, None, "none (aggregate.bootstrap = 0)")
    if not settings.test_bootstrap:
        return seeds_only("aggregate.test_bootstrap is off")
    have = [p for p in sel["path"] if p in preds]
    if not have:
        return seeds_only("no predictions.parquet from train")
    if len(have) < len(sel):
        return seeds_only(f"{len(sel) - len(have)} of {len(sel)} results lack predictions.parquet")
    ref_ids = np.sort(preds[have[0]].event_id)
    aligned = {}
    for p in have:
        a = testboot.align(preds[p], ref_ids)
        if a is None:
            return seeds_only(f"{p}: its test events differ from {have[0]}'s")
        aligned[p] = a
    counts = testboot.draw_counts(rng, n_boot, len(ref_ids))
    # which definition train used (event-weighted or not): the one that reproduces metrics.json
    first = aligned[have[0]]
    value = float(sel.loc[sel["path"] == have[0], "value"].iloc[0])
    weighted = None
    for w in (False, True):
        if np.isclose(testboot.central(first, w), value, rtol=2e-3, atol=2e-4):
            weighted = w
            break
    if weighted is None:
        return seeds_only(
            f"{have[0]}: the metric recomputed from predictions.parquet "
            f"({testboot.central(first):.4g}) does not reproduce metrics.json ({value:.4g})"
        )
    reps = {p: testboot.replicates(a, counts, weighted) for p, a in aligned.items()}
    base = testboot.replicates(first, counts, weighted, which="baseline")
    how = f"seeds + test events ({len(ref_ids)} events{', weighted' if weighted else ''})"
    return TestBoot(Resample(seed_weights, True), reps, base, how, weighted)


# --------------------------------------------------------------------------------------------------
# the tables
# --------------------------------------------------------------------------------------------------


def _est_columns(prefix: str, est: Estimate) -> dict:
    return {
        prefix: est.value,
        f"{prefix}_low": est.low,
        f"{prefix}_high": est.high,
        f"{prefix}_bound": est.bound.value,
        f"{prefix}_display": est.display(),
    }


def _fmt(mean: float, lo: float = math.nan, hi: float = math.nan) -> str:
    if not np.isfinite(mean):
        return "—"
    digits = 3 if abs(mean) < 10 else 1
    if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
        return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
    return f"{mean:.{digits}f}"


def band(curve: Curve, boot: Resample, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Per point, the central interval of the bootstrap seed mean (NaN without bootstrap)."""
    if len(curve) == 0 or boot.n_boot == 0:
        return np.full(len(curve), np.nan), np.full(len(curve), np.nan)
    m = curve.boot_means(boot)
    q = (1.0 - confidence) / 2.0
    return np.quantile(m, q, axis=0), np.quantile(m, 1.0 - q, axis=0)


@dataclass
class Tables:
    factors: pd.DataFrame
    points: pd.DataFrame
    boots: dict[tuple[str, str], TestBoot]


def reduction_tables(
    table: pd.DataFrame, config: dict, settings: AggregateSettings, preds: dict[str, Predictions] | None = None
) -> Tables:
    """One row per configured combination (factors), one per learning-curve point, and the
    bootstrap used per (task, target)."""
    rng = np.random.default_rng(settings.seed)
    tokens = size_tokens(config)
    seeds_cfg = [int(s) for s in config["training"]["seeds"]]
    extra = sorted(set(int(s) for s in table["seed"]) - set(seeds_cfg)) if len(table) else []
    seed_pos = {s: i for i, s in enumerate(seeds_cfg + extra)}
    seed_w = Resample.draw(rng, settings.bootstrap, len(seed_pos)).seed_weights
    combos = expected_combinations(config)
    groups = group_rows(table)
    metrics = {t: metric_of(table, t) for t in config["training"]["tasks"]}
    base = baselines(table, config)
    boots = {
        (t, g): test_bootstrap(table, preds or {}, t, g, seed_w, rng, settings)
        for t in config["training"]["tasks"]
        for g in task_targets(config, t)
    }
    factors, points = [], []
    prog = Progress(total=len(combos), what="curves", logger=log)
    for task, arch, target, mode in combos:
        metric = metrics[task]
        hib = HIGHER_IS_BETTER[metric]
        tb = boots[(task, target)]
        boot = tb.resample
        scratch_pts = curve_points(table, task, arch, target, "scratch", groups)
        mode_pts = curve_points(table, task, arch, target, mode, groups)
        scratch = scratch_pts.curve(seed_pos=seed_pos, reps=tb.reps)
        curve = mode_pts.curve(seed_pos=seed_pos, reps=tb.reps)
        zs_pts = curve_points(table, task, arch, target, "zeroshot", groups)
        zs = zs_pts.curve(seed_pos=seed_pos, reps=tb.reps)
        zs_lo, zs_hi = band(zs, boot, settings.confidence)
        bname, bval = base[(task, target)]
        row: dict[str, Any] = {
            "task": task,
            "arch": arch,
            "target": target,
            "mode": mode,
            # the pretrained model the transfer modes start from (for scratch: the source of the same
            # comparison); a reduced-input copy for a target with reduced inputs (fast2full.plan)
            "source": plan.source_for(config["domains"]["source"], task, target),
            "metric": metric,
            "higher_is_better": hib,
            "n_points": len(curve),
            "n_runs": mode_pts.n_runs,
            "status": "ok" if len(curve) else "missing",
            "full_split": bool(curve.full),
            "n_full": curve.n_full,
            "scratch_full": float(scratch.mean[-1]) if scratch.full else math.nan,
            "zeroshot": float(zs.mean[0]) if len(zs) else math.nan,
            "zeroshot_low": float(zs_lo[0]) if len(zs) else math.nan,
            "zeroshot_high": float(zs_hi[0]) if len(zs) else math.nan,
            "baseline_name": bname,
            "baseline_value": bval if bval is not None else math.nan,
            "bootstrap": tb.how,
        }
        transfer = mode in TRANSFER_MODES
        by_token = {t: i for i, t in enumerate(mode_pts.tokens)}
        sat_notes = {}
        for s in tokens:
            key = f"factor_n{s}"
            if not transfer:
                row.update(_est_columns(key, none("reference" if mode == "scratch" else "n/a")))
                continue
            if s in mode_pts.collapsed:
                into = (
                    "the full split"
                    if mode_pts.full and np.isclose(mode_pts.collapsed[s], mode_pts.x[-1])
                    else "a smaller size"
                )
                note = f"capped: same {mode_pts.collapsed[s]:.0f} events as {into}"
                row.update(_est_columns(key, none(note)))
                continue
            if s not in by_token or len(scratch) == 0:
                row.update(_est_columns(key, none("missing")))
                continue
            k = by_token[s]
            sat = saturation(scratch, curve, k, hib, boot, settings.confidence)
            sat_notes[s] = sat.reason
            if sat.saturated:
                est = none("saturated")
            else:
                est = matched_size_factor(scratch, curve, k, hib, boot, settings.confidence)
            row.update(_est_columns(key, est))
        if transfer:
            pf, n99 = paper_factor(
                scratch,
                curve,
                hib,
                baseline=bval,
                boot=boot,
                confidence=settings.confidence,
                baseline_reps=tb.baseline_reps,
            )
        else:
            pf = n99 = none("n/a")
        row.update(_est_columns("paper_factor", pf))
        row.update(_est_columns("paper_n99", n99))
        row["paper_level"] = pf.extra.get("level", math.nan)
        row.update(_est_columns("baseline_match", baseline_crossing(curve, bval, hib)))
        row["saturation_tests"] = "; ".join(f"n{s}: {r}" for s, r in sat_notes.items())
        factors.append(row)
        # per-point rows
        lo, hi = band(curve, boot, settings.confidence)
        loss_mean, loss_std = mode_pts.mean("test_loss"), mode_pts.std("test_loss")
        steps = {c: mode_pts.mean(c) for c in ("steps", "steps_total", "steps_incl_pretrain")}
        for k, tok in enumerate(mode_pts.tokens):
            points.append(
                {
                    "task": task,
                    "arch": arch,
                    "target": target,
                    "mode": mode,
                    "size": tok,
                    "n_train": float(mode_pts.x[k]),
                    # DANN: unlabelled target events its domain head saw (seed mean; 0 for other modes)
                    "n_unlabelled_mean": mode_pts.mean("n_unlabelled")[k],
                    "full": tok == FULL or (mode_pts.full and k == len(mode_pts) - 1),
                    "capped": bool(np.nanmax(mode_pts.columns["capped"][k]) > 0),
                    "metric": metric,
                    "mean": curve.mean[k],
                    "std": curve.std[k],
                    "n_seeds": int(curve.n_seeds[k]),
                    "band_low": lo[k],
                    "band_high": hi[k],
                    "test_loss_mean": loss_mean[k],
                    "test_loss_std": loss_std[k],
                    "steps_mean": steps["steps"][k],
                    "steps_total_mean": steps["steps_total"][k],
                    "steps_incl_pretrain_mean": steps["steps_incl_pretrain"][k],
                    # effective sample sizes (sum w)^2 / sum w^2 of the training subset and the test split
                    "ess_train_mean": mode_pts.mean("ess_train")[k],
                    "ess_test_mean": mode_pts.mean("ess_test")[k],
                    "factor": row.get(f"factor_n{tok}", math.nan) if transfer else math.nan,
                    "factor_display": row.get(f"factor_n{tok}_display", "") if transfer else "",
                }
            )
        prog.update()
    return Tables(pd.DataFrame(factors), pd.DataFrame(points), boots)


__all__ = [
    "CurvePoints",
    "curve_points",
    "reduction_tables",
    "expected_combinations",
    "task_targets",
    "baseline_value",
    "baselines",
    "metric_of",
    "rows_of",
    "group_rows",
    "Tables",
    "TestBoot",
    "band",
    "Bound",
]
