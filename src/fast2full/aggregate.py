"""Aggregation of training results: metrics table, learning curves, data-reduction factors, figures.

Input: the ``metrics.json`` written by ``fast2full train`` for every
``results/train/{task}/{arch}/{target}/{mode}/n{size}/seed{seed}/``.
Output (``aggregate``): ``metrics.parquet``/``metrics.csv`` (one row per metrics.json),
``curves.csv`` (one row per learning-curve point, with its matched-size factor),
``reduction_factors.csv`` (one row per configured task x arch x target x mode), ``summary.md`` and
figures (PDF + PNG).  The factor maths lives in :mod:`fast2full.reduction`; the definitions are in
``docs/results.md`` and reproduced in ``summary.md`` (:data:`DEFINITIONS`).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Iterable, Sequence
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fast2full.common import Fast2FullError, InputError, Progress, atomic_output, read_json
from fast2full.plotting import DOMAIN_LABELS as DOMAIN_LABEL
from fast2full.reduction import (
    DEFAULT_CONFIDENCE,
    PAPER_PERFORMANCE_FRACTION,
    Bound,
    Curve,
    Estimate,
    baseline_crossing,
    is_saturated,
    matched_size_factor,
    paper_factor,
)

log = logging.getLogger("fast2full.aggregate")

#: metric name -> whether higher is better
HIGHER_IS_BETTER = {"auc": True, "met_resolution": False, "test_loss": False}
#: metric name -> metrics.json key holding its value
METRIC_KEY = {"auc": "test_auc", "met_resolution": "met_resolution", "test_loss": "test_loss"}
#: metric name -> baseline dict key
BASELINE_KEY = {"auc": "test_auc", "met_resolution": "met_resolution"}
METRIC_LABEL = {
    "auc": "Test ROC AUC",
    "met_resolution": r"$E_{\mathrm{T}}^{\mathrm{miss}}$ resolution [GeV]",
    "test_loss": "Test loss",
}
TASK_LABEL = {"sigbkg": r"$t\bar{t}$ vs. background", "qg": "quark vs. gluon jets",
              "met": r"$E_{\mathrm{T}}^{\mathrm{miss}}$ regression"}
MODES_ALL = ("pretrain", "zeroshot", "scratch", "finetune", "freeze", "dann")
#: modes that start from the pretrained source model and get a reduction factor
TRANSFER_MODES = ("finetune", "freeze", "dann")
MODE_STYLE = {
    "scratch": {"color": "black", "marker": "o", "label": "from scratch", "short": "scratch"},
    "finetune": {"color": "tab:blue", "marker": "s", "label": "fine-tune (all layers)", "short": "fine-tune"},
    "freeze": {"color": "tab:orange", "marker": "^", "label": "fine-tune (frozen backbone)",
               "short": "frozen backbone"},
    "dann": {"color": "tab:green", "marker": "D", "label": "domain-adversarial (DANN)", "short": "DANN"},
    "zeroshot": {"color": "tab:purple", "marker": "x", "label": "zero-shot (source model)", "short": "zero-shot"},
}
REQUIRED_KEYS = ("task", "arch", "target", "mode", "size", "seed", "metric")
TABLE_COLUMNS = (
    "task", "arch", "target", "mode", "size", "size_value", "n_train", "capped", "seed", "metric",
    "value", "test_auc", "test_loss", "val_loss", "met_resolution", "baseline_name",
    "baseline_test_auc", "baseline_met_resolution", "lr", "epochs", "steps", "steps_total", "steps_incl_pretrain",
    "n_params", "wall_time_s", "device", "pretrained_from", "model_size", "path",
)

DEFINITIONS = f"""\
**Learning curve.** For each (task, architecture, target, mode) the metric (test ROC AUC for `sigbkg`
and `qg`, higher is better; the MET resolution in GeV for `met`, lower is better) at each target
training size *n* (the events actually used, `n_train`), as the mean over seeds with the seed standard
deviation as band.  For the factor maths each curve is made monotone (better with more data) by
seed-weighted isotonic regression and read as piecewise linear in log *n*.

**Matched-size data-reduction factor** (columns `factor_n<size>`).  For a transfer-learning point at
size *n* with seed-mean metric *m*, *n\\** is the first size at which the monotone from-scratch curve
reaches *m*; factor = *n\\** / *n*.  Interval: central {{confidence:.0%}} of a bootstrap
({{bootstrap}} replicates) that resamples the seeds of every point.  If *m* is better than every
scratch point, *n\\** lies beyond the largest scratch size and only a lower bound `> X` is quoted; if
it is worse than the smallest scratch point, an upper bound `< X`.  No curve is extrapolated.
**`saturated`**: the fine-tuned and scratch means at *n* differ by at most {{sigma:g}} × the seed spread
(spread = sqrt(s_ft^2 + s_scratch^2), seed standard deviations) *and* the scratch mean at *n* is within
{{sigma:g}} × the spread of its value at the largest size: both curves are on their plateau and no
factor is quoted.

**Paper factor** (Flek & Schott; column `paper_factor`).  *n*₉₉ is the first size at which the
monotone transfer curve reaches {PAPER_PERFORMANCE_FRACTION:.0%} of the from-scratch metric at the
largest size (lower-is-better metrics: comes within {1 - PAPER_PERFORMANCE_FRACTION:.0%} of it);
reduction = *n*_max / *n*₉₉.  If it is reached already at the smallest size the reduction is a lower
bound `> X`; if never, `never in range`.

**Baseline match** (column `baseline_match`).  The first size at which a mode's monotone curve matches
its rule-based baseline's metric (`<= n` if already at the smallest size, `never in range` if not
within the sizes trained).

**Compute-matched curves** plot the same points against the optimiser steps of the selected run on
the target (`steps`) and against all steps the point cost (`steps_incl_pretrain`: every run of the
learning-rate grid on the target, `steps_total`, plus, for modes that start from the source model, the
mean `steps_total` of the pretraining runs of the same task and architecture).
"""


@dataclass(frozen=True)
class AggregateSettings:
    """The ``aggregate:`` config section, with defaults."""

    bootstrap: int = 200
    saturation_sigma: float = 1.0
    confidence: float = DEFAULT_CONFIDENCE
    compare_size: int | None = None
    seed: int = 0

    @classmethod
    def from_config(cls, config: dict) -> AggregateSettings:
        agg = config.get("aggregate", {}) or {}
        return cls(
            bootstrap=int(agg.get("bootstrap", cls.bootstrap)),
            saturation_sigma=float(agg.get("saturation_sigma", cls.saturation_sigma)),
            confidence=float(agg.get("confidence", cls.confidence)),
            compare_size=agg.get("compare_size"),
            seed=int(config.get("seed", 0)),
        )


def compare_size(config: dict, settings: AggregateSettings) -> int:
    """The size of the mode-comparison figure: ``aggregate.compare_size`` if it is one of
    ``training.sizes``, else (with a warning) the smallest configured size."""
    sizes = sorted(int(s) for s in config["training"]["sizes"])
    if settings.compare_size is None:
        return sizes[0]
    if int(settings.compare_size) not in sizes:
        log.warning("config aggregate.compare_size %s is not one of training.sizes %s: using %d",
                    settings.compare_size, sizes, sizes[0])
        return sizes[0]
    return int(settings.compare_size)


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------

def _num(x: Any) -> float:
    if x is None:
        return float("nan")
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def read_metrics_file(path: str | os.PathLike) -> dict:
    """Read and check one metrics.json; raises InputError naming the file and the cause."""
    path = Path(path)
    rec = read_json(path, "metrics file")
    if not isinstance(rec, dict):
        raise InputError(path, "metrics file must hold a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in rec]
    if missing:
        raise InputError(path, f"missing key(s) {', '.join(missing)}")
    if rec["mode"] not in MODES_ALL:
        raise InputError(path, f"unknown mode {rec['mode']!r} (expected one of {', '.join(MODES_ALL)})")
    if rec["metric"] not in BASELINE_KEY:
        raise InputError(path, f"unknown metric {rec['metric']!r} (expected auc or met_resolution)")
    size = rec["size"]
    if not (size == "all" or (isinstance(size, int) and not isinstance(size, bool) and size >= 0)):
        raise InputError(path, f"size must be a non-negative integer or 'all', got {size!r}")
    roc = rec.get("roc")
    if roc is not None and (not isinstance(roc, dict) or len(roc.get("fpr", [])) != len(roc.get("tpr", []))):
        raise InputError(path, "roc must be {'fpr': [...], 'tpr': [...]} of equal lengths")
    return rec


def _row(rec: dict, path: Path) -> dict:
    base = rec.get("baseline") or {}
    size = rec["size"]
    n_train = rec.get("n_train")
    row = {
        "task": str(rec["task"]), "arch": str(rec["arch"]), "target": str(rec["target"]),
        "mode": str(rec["mode"]), "size": str(size),
        "size_value": float(size) if size != "all" else float("nan"),
        "n_train": _num(n_train) if n_train is not None else (float(size) if size != "all" else float("nan")),
        "capped": bool(rec.get("capped", False)), "seed": int(rec["seed"]), "metric": str(rec["metric"]),
        "value": _num(rec.get(METRIC_KEY[rec["metric"]])),
        "baseline_name": str(base.get("name") or ""),
        "baseline_test_auc": _num(base.get("test_auc")),
        "baseline_met_resolution": _num(base.get("met_resolution")),
        "device": str(rec.get("device") or ""), "pretrained_from": str(rec.get("pretrained_from") or ""),
        "model_size": str(rec.get("model_size") or ""), "path": str(path),
    }
    for k in ("test_auc", "test_loss", "val_loss", "met_resolution", "lr", "epochs", "steps",
              "steps_total", "n_params", "wall_time_s"):
        row[k] = _num(rec.get(k))
    return row


def add_compute_columns(table: pd.DataFrame) -> pd.DataFrame:
    """``steps_incl_pretrain``: all optimiser steps a result cost (``steps_total``, the whole
    learning-rate grid on the target) plus, for modes that start from the source model, the mean
    ``steps_total`` of the pretraining runs of the same task and architecture."""
    pre = (table[table["mode"] == "pretrain"].groupby(["task", "arch"])["steps_total"].mean()
           .rename("_pretrain_steps").reset_index())
    out = table.drop(columns=["steps_incl_pretrain"], errors="ignore").merge(pre, on=["task", "arch"], how="left")
    uses_source = ~out["mode"].isin(["scratch", "pretrain"])
    out["steps_incl_pretrain"] = out["steps_total"] + np.where(uses_source, out["_pretrain_steps"].fillna(0.0), 0.0)
    return out.drop(columns=["_pretrain_steps"])[list(TABLE_COLUMNS)]


def load_metrics(paths: Iterable[str | os.PathLike]) -> tuple[pd.DataFrame, dict[str, dict]]:
    """All metrics.json files as a table (one row each) and their ROC curves keyed by path."""
    paths = [Path(p) for p in paths]
    rows, rocs = [], {}
    prog = Progress(total=len(paths), what="metrics files", logger=log)
    for p in paths:
        rec = read_metrics_file(p)
        rows.append(_row(rec, p))
        if rec.get("roc"):
            rocs[str(p)] = rec["roc"]
        prog.update()
    table = add_compute_columns(pd.DataFrame(rows, columns=list(TABLE_COLUMNS)))
    if len(table):
        dup = table.duplicated(["task", "arch", "target", "mode", "size", "seed"], keep=False)
        if dup.any():
            first = table[dup].iloc[0]
            raise Fast2FullError(f"{first['path']}: duplicate result for {first['task']}/{first['arch']}/"
                                 f"{first['target']}/{first['mode']}/n{first['size']}/seed{first['seed']}")
        bad = table["value"].isna()
        for p in table.loc[bad, "path"]:
            log.warning("%s: the primary metric is null; the point is left out of the curves", p)
    return table, rocs


# --------------------------------------------------------------------------------------------------
# curves and factors
# --------------------------------------------------------------------------------------------------

def task_targets(config: dict, task: str) -> list[str]:
    """Targets a task is trained on (config training.targets minus training.skip), as in common.smk."""
    tr = config["training"]
    targets = tr.get("targets", {}).get(task, config["domains"]["targets"])
    return [t for t in targets if f"{task}/{t}" not in tr.get("skip", {})]


def expected_combinations(config: dict) -> list[tuple[str, str, str, str]]:
    """Every configured (task, arch, target, mode) that gets a row in the factor table."""
    tr = config["training"]
    return [(task, arch, target, mode) for task in tr["tasks"] for arch in tr["archs"]
            for target in task_targets(config, task) for mode in tr["modes"]]


#: per-seed columns a learning curve carries
CURVE_COLUMNS = ("value", "test_loss", "steps", "steps_total", "steps_incl_pretrain", "n_train", "capped")


@dataclass(frozen=True)
class CurvePoints:
    """One learning curve: per configured size kept, the per-seed values of :data:`CURVE_COLUMNS`."""

    sizes: np.ndarray                          # configured sizes kept
    x: np.ndarray                              # events actually used (median n_train over seeds)
    columns: dict[str, list[np.ndarray]]       # column -> per size, per seed
    collapsed: dict[int, float] = dataclasses.field(default_factory=dict)  # size dropped -> its n_train

    def curve(self, column: str = "value") -> Curve:
        return Curve.from_lists(self.x, self.columns[column]) if len(self.sizes) else \
            Curve(np.array([]), ())

    def mean(self, column: str) -> np.ndarray:
        return np.array([np.nanmean(v) if np.isfinite(v).any() else np.nan for v in self.columns[column]])

    def std(self, column: str) -> np.ndarray:
        return np.array([np.nanstd(v, ddof=1) if np.isfinite(v).sum() > 1 else np.nan
                         for v in self.columns[column]])

    @property
    def n_runs(self) -> int:
        return int(sum(len(v) for v in self.columns["value"])) if len(self.sizes) else 0


GROUP_KEYS = ["task", "arch", "target", "mode"]


def group_rows(table: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """The table split once by (task, arch, target, mode), for fast repeated look-ups."""
    return {tuple(k): g for k, g in table.groupby(GROUP_KEYS, sort=False)}


def rows_of(table: pd.DataFrame, task: str, arch: str, target: str, mode: str,
            groups: dict[tuple, pd.DataFrame] | None = None) -> pd.DataFrame:
    if groups is not None:
        return groups.get((task, arch, target, mode), table.iloc[:0])
    return table[(table["task"] == task) & (table["arch"] == arch) & (table["target"] == target)
                 & (table["mode"] == mode)]


def curve_points(table: pd.DataFrame, task: str, arch: str, target: str, mode: str,
                 groups: dict[tuple, pd.DataFrame] | None = None) -> CurvePoints:
    """The rows of one learning curve, x = events actually used.

    Sizes capped to the same number of events (a pool smaller than the requested size) collapse to
    one point: the smallest configured size that reached the cap is kept.
    """
    sel = rows_of(table, task, arch, target, mode, groups)
    sel = sel[sel["size_value"].notna() & sel["value"].notna()]
    if sel.empty:
        return CurvePoints(np.array([]), np.array([]), {c: [] for c in CURVE_COLUMNS})
    sv = sel["size_value"].to_numpy(float)
    order = np.argsort(sv, kind="stable")
    sizes, start = np.unique(sv[order], return_index=True)
    cols = {c: np.split(sel[c].to_numpy(float)[order], start[1:]) for c in CURVE_COLUMNS}
    x = np.array([np.nanmedian(v) if np.isfinite(v).any() else s for v, s in zip(cols["n_train"], sizes)])
    keep = np.concatenate([[True], np.diff(x) > 0])  # drop later sizes capped to the same n
    idx = np.flatnonzero(keep)
    collapsed = {int(sz): float(xx) for sz, xx, k in zip(sizes, x, keep) if not k}
    return CurvePoints(sizes[keep], x[keep], {c: [v[i] for i in idx] for c, v in cols.items()}, collapsed)


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
    return {(t, g): baseline_value(table, t, g, _metric_of(table, t))
            for t in tr["tasks"] for g in task_targets(config, t)}


def _est_columns(prefix: str, est: Estimate) -> dict:
    return {prefix: est.value, f"{prefix}_low": est.low, f"{prefix}_high": est.high,
            f"{prefix}_bound": est.bound.value, f"{prefix}_display": est.display()}


def _metric_of(table: pd.DataFrame, task: str) -> str:
    m = table.loc[table["task"] == task, "metric"]
    if m.empty:
        return "met_resolution" if task == "met" else "auc"
    return str(m.iloc[0])


def _fmt(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return "—"
    digits = 3 if abs(mean) < 10 else 1
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if np.isfinite(std) and std > 0 else f"{mean:.{digits}f}"


def reduction_tables(table: pd.DataFrame, config: dict,
                     settings: AggregateSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(factors, points): one row per configured combination, and one per learning-curve point."""
    rng = np.random.default_rng(settings.seed)
    sizes_cfg = [int(s) for s in config["training"]["sizes"]]
    factors, points = [], []
    combos = expected_combinations(config)
    groups = group_rows(table)
    metrics = {t: _metric_of(table, t) for t in config["training"]["tasks"]}
    base = baselines(table, config)
    prog = Progress(total=len(combos), what="curves", logger=log)
    for task, arch, target, mode in combos:
        metric = metrics[task]
        hib = HIGHER_IS_BETTER[metric]
        scratch_pts = curve_points(table, task, arch, target, "scratch", groups)
        mode_pts = curve_points(table, task, arch, target, mode, groups)
        scratch, curve = scratch_pts.curve(), mode_pts.curve()
        zs = rows_of(table, task, arch, target, "zeroshot", groups)["value"].dropna()
        bname, bval = base[(task, target)]
        row: dict[str, Any] = {
            "task": task, "arch": arch, "target": target, "mode": mode, "metric": metric,
            "higher_is_better": hib, "n_points": len(curve), "n_runs": mode_pts.n_runs,
            "status": "ok" if len(curve) else "missing",
            "zeroshot": zs.mean() if len(zs) else float("nan"),
            "zeroshot_std": zs.std(ddof=1) if len(zs) > 1 else float("nan"),
            "baseline_name": bname, "baseline_value": bval if bval is not None else float("nan"),
        }
        transfer = mode in TRANSFER_MODES
        by_size = dict(zip(mode_pts.sizes.astype(int).tolist(), range(len(mode_pts.sizes))))
        for s in sizes_cfg:
            key = f"factor_n{s}"
            if not transfer:
                row.update(_est_columns(key, Estimate(math.nan, math.nan, math.nan, Bound.NONE,
                                                      "reference" if mode == "scratch" else "n/a")))
                continue
            if s in mode_pts.collapsed:
                note = f"capped: same {mode_pts.collapsed[s]:.0f} events as a smaller size"
                row.update(_est_columns(key, Estimate(math.nan, math.nan, math.nan, Bound.NONE, note)))
                continue
            if s not in by_size or len(scratch) == 0:
                row.update(_est_columns(key, Estimate(math.nan, math.nan, math.nan, Bound.NONE, "missing")))
                continue
            k = by_size[s]
            ft_vals = curve.values[k]
            n = float(curve.sizes[k])
            if is_saturated(scratch, ft_vals, n, settings.saturation_sigma):
                est = Estimate(math.nan, math.nan, math.nan, Bound.NONE, "saturated")
            else:
                est = matched_size_factor(scratch, ft_vals, n, hib, n_boot=settings.bootstrap,
                                          confidence=settings.confidence, rng=rng)
            row.update(_est_columns(key, est))
        if transfer:
            pf, n99 = paper_factor(scratch, curve, hib, n_boot=settings.bootstrap,
                                   confidence=settings.confidence, rng=rng)
        else:
            pf = n99 = Estimate(math.nan, math.nan, math.nan, Bound.NONE, "n/a")
        row.update(_est_columns("paper_factor", pf))
        row.update(_est_columns("paper_n99", n99))
        row.update(_est_columns("baseline_match", baseline_crossing(curve, bval, hib)))
        factors.append(row)
        # per-point rows (each point once: scratch rows come with the scratch combination)
        loss_mean, loss_std = mode_pts.mean("test_loss"), mode_pts.std("test_loss")
        steps = {c: mode_pts.mean(c) for c in ("steps", "steps_total", "steps_incl_pretrain")}
        for k, s in enumerate(mode_pts.sizes.astype(int)):
            points.append({
                "task": task, "arch": arch, "target": target, "mode": mode, "size": int(s),
                "n_train": float(mode_pts.x[k]), "capped": bool(np.nanmax(mode_pts.columns["capped"][k]) > 0),
                "metric": metric, "mean": curve.mean[k], "std": curve.std[k], "n_seeds": int(curve.n_seeds[k]),
                "test_loss_mean": loss_mean[k], "test_loss_std": loss_std[k],
                "steps_mean": steps["steps"][k], "steps_total_mean": steps["steps_total"][k],
                "steps_incl_pretrain_mean": steps["steps_incl_pretrain"][k],
                "factor": row.get(f"factor_n{s}", math.nan) if transfer else math.nan,
                "factor_display": row.get(f"factor_n{s}_display", "") if transfer else "",
            })
        prog.update()
    return pd.DataFrame(factors), pd.DataFrame(points)


# --------------------------------------------------------------------------------------------------
# summary markdown
# --------------------------------------------------------------------------------------------------

def _md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def summary_markdown(factors: pd.DataFrame, points: pd.DataFrame, table: pd.DataFrame, config: dict,
                     settings: AggregateSettings) -> str:
    sizes = [int(s) for s in config["training"]["sizes"]]
    out = ["# fast2full results summary", "",
           f"{len(table)} training results (metrics.json) aggregated; "
           f"{len(factors)} configured task × arch × target × mode combinations.", "",
           "## Data-reduction factors", ""]
    header = ["task", "arch", "target", "mode", "metric", "zero-shot"] + [f"factor @ n={s}" for s in sizes] \
        + ["paper factor", "n₉₉", "baseline match"]
    rows = []
    for _, r in factors.iterrows():
        rows.append([r["task"], r["arch"], r["target"], r["mode"], r["metric"],
                     _fmt(r["zeroshot"], r["zeroshot_std"])]
                    + [r[f"factor_n{s}_display"] for s in sizes]
                    + [r["paper_factor_display"], r["paper_n99_display"], r["baseline_match_display"]])
    out += [_md_table(header, rows), ""]
    baselines = factors.drop_duplicates(["task", "target"])[["task", "target", "baseline_name", "baseline_value"]]
    out += ["Rule-based baselines: " + "; ".join(
        f"{b.task}/{b.target}: {b.baseline_name or 'none'}"
        + (f" = {b.baseline_value:.4g}" if np.isfinite(b.baseline_value) else "")
        for b in baselines.itertuples()) + ".", ""]
    out += ["## Definitions", "", DEFINITIONS.format(confidence=settings.confidence,
                                                     bootstrap=settings.bootstrap,
                                                     sigma=settings.saturation_sigma), ""]
    if len(points):
        out += ["## Learning-curve points (mean ± seed std)", ""]
        prow = [[p.task, p.arch, p.target, p.mode, p.size, f"{p.n_train:.0f}" + (" (capped)" if p.capped else ""),
                 p.n_seeds, _fmt(p.mean, p.std)] for p in points.itertuples()]
        out += [_md_table(["task", "arch", "target", "mode", "size", "n_train", "seeds", "metric"], prow), ""]
    skip = config["training"].get("skip", {}) or {}
    out += ["## Skipped combinations", ""]
    out += [f"- `{k}`: {v}" for k, v in skip.items()] if skip else ["None."]
    missing = factors[factors["status"] == "missing"]
    out += ["", "## Missing results", ""]
    out += [f"- `{r.task}/{r.arch}/{r.target}/{r.mode}`: no metrics.json with a usable metric"
            for r in missing.itertuples()] if len(missing) else ["None."]
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------------

def _savefig(fig: Any, outdir: Path, stem: str) -> list[Path]:
    """Save a figure as PDF and PNG with the shared helper (the Snakemake report shows the PNGs)."""
    from fast2full.plotting import savefig

    return savefig(fig, outdir / f"{stem}.pdf")


def _label(ax: Any, text: str) -> None:
    """A plain description (no experiment label: these are not official ATLAS or CMS results)."""
    ax.set_title(text, loc="left", fontsize=12)


def short_name(name: str, max_len: int = 32) -> str:
    """A legend-sized baseline name: the part before any ':' or ' (' explanation, truncated."""
    short = (name or "baseline").split(":")[0].split(" (")[0].strip() or "baseline"
    return short if len(short) <= max_len else short[: max_len - 1] + "…"


def _hlines(ax: Any, zs: pd.Series, baseline: tuple[str, float | None]) -> None:
    if len(zs):
        m = zs.mean()
        s = zs.std(ddof=1) if len(zs) > 1 else 0.0
        st = MODE_STYLE["zeroshot"]
        ax.axhline(m, color=st["color"], ls="--", lw=1.5, label=st["label"])
        if s > 0:
            ax.axhspan(m - s, m + s, color=st["color"], alpha=0.12, lw=0)
    name, val = baseline
    if val is not None:
        ax.axhline(val, color="grey", ls=":", lw=2, label=f"rule-based: {short_name(name)}")


def _draw_curves(ax: Any, table: pd.DataFrame, task: str, arch: str, target: str, modes: Sequence[str],
                 column: str, xcol: str = "n_train", groups: dict[tuple, pd.DataFrame] | None = None) -> bool:
    """Mean +- seed std per mode versus x; returns whether anything was drawn."""
    drawn = False
    for mode in modes:
        pts = curve_points(table, task, arch, target, mode, groups)
        if len(pts.sizes) == 0:
            continue
        mean, std = pts.mean(column), pts.std(column)
        x = pts.x if xcol == "n_train" else pts.mean(xcol)
        ok = np.isfinite(mean) & np.isfinite(x) & (x > 0)
        if not ok.any():
            continue
        st = MODE_STYLE.get(mode, {"color": None, "marker": "o", "label": mode})
        ax.plot(x[ok], mean[ok], marker=st["marker"], color=st["color"], label=st["label"])
        band = ok & np.isfinite(std)
        if band.any():
            ax.fill_between(x[band], (mean - std)[band], (mean + std)[band], color=st["color"], alpha=0.2, lw=0)
        drawn = True
    if drawn:
        ax.set_xscale("log")
    return drawn


def _panel_columns(metric: str) -> list[str]:
    return ["value", "test_loss"] if metric == "met_resolution" else ["value"]


def _ylabel(column: str, metric: str) -> str:
    return METRIC_LABEL[metric] if column == "value" else METRIC_LABEL[column]


def make_figures(table: pd.DataFrame, rocs: dict[str, dict], config: dict, settings: AggregateSettings,
                 outdir: Path) -> list[Path]:
    """Learning curves, compute-matched curves, ROC overlays and mode comparisons (PDF + PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    tr = config["training"]
    modes = ["scratch"] + [m for m in tr["modes"] if m != "scratch"]
    written: list[Path] = []
    combos = [(t, a, g) for t in tr["tasks"] for a in tr["archs"] for g in task_targets(config, t)]
    groups = group_rows(table)
    prog = Progress(total=len(combos), what="figure sets", logger=log)
    with plt.style.context(hep.style.ATLAS):
        for task, arch, target in combos:
            metric = _metric_of(table, task)
            base = baseline_value(table, task, target, metric)
            zs_sel = rows_of(table, task, arch, target, "zeroshot", groups)
            cols = _panel_columns(metric)
            rtext = (f"fast2full: {TASK_LABEL.get(task, task)}, {arch.upper()}, "
                     f"target {DOMAIN_LABEL.get(target, target)}")
            # learning curves (paper figs 4-7)
            fig, axes = plt.subplots(1, len(cols), figsize=(8 * len(cols), 6.5), squeeze=False)
            for ax, col in zip(axes[0], cols):
                _draw_curves(ax, table, task, arch, target, modes, col, groups=groups)
                _hlines(ax, zs_sel[col].dropna(), base if col == "value" else ("", None))
                ax.set_xlabel("Target training events")
                ax.set_ylabel(_ylabel(col, metric))
                _label(ax, rtext)
                ax.legend(fontsize=10, loc="best")
            written += _savefig(fig, outdir, f"curve_{task}_{arch}_{target}")
            # compute-matched curves: against target steps and steps including pretraining
            fig, axes = plt.subplots(1, 2, figsize=(16, 6.5), squeeze=False)
            for ax, xcol, xl in zip(axes[0], ("steps", "steps_incl_pretrain"),
                                    ("Optimiser steps on the target (selected run)",
                                     "Optimiser steps incl. LR grid and pretraining")):
                _draw_curves(ax, table, task, arch, target, modes, "value", xcol=xcol, groups=groups)
                _hlines(ax, zs_sel["value"].dropna(), base)
                ax.set_xlabel(xl)
                ax.set_ylabel(_ylabel("value", metric))
                _label(ax, rtext)
                ax.legend(fontsize=10, loc="best")
            written += _savefig(fig, outdir, f"compute_{task}_{arch}_{target}")
            # ROC overlay at the largest size per mode
            roc_fig = _roc_figure(table, rocs, task, arch, target, modes, rtext)
            if roc_fig is not None:
                written += _savefig(roc_fig, outdir, f"roc_{task}_{arch}_{target}")
            prog.update()
        # one overview per task: architectures (rows) x targets (columns), the paper's figs 4-7
        for task in tr["tasks"]:
            targets = task_targets(config, task)
            if targets:
                written += _savefig(_overview_figure(table, config, task, targets, modes, groups), outdir,
                                    f"curves_{task}")
        # mode comparison at a fixed size (paper fig 8)
        n_cmp = compare_size(config, settings)
        for task in tr["tasks"]:
            for target in task_targets(config, task):
                written += _savefig(_modes_figure(table, config, task, target, n_cmp), outdir,
                                    f"modes_{task}_{target}_n{n_cmp}")
    return written


def _overview_figure(table: pd.DataFrame, config: dict, task: str, targets: Sequence[str],
                     modes: Sequence[str], groups: dict[tuple, pd.DataFrame]) -> Any:
    import matplotlib.pyplot as plt

    archs = list(config["training"]["archs"])
    metric = _metric_of(table, task)
    fig, axes = plt.subplots(len(archs), len(targets), figsize=(7 * len(targets), 5 * len(archs)),
                             squeeze=False, sharex=True)
    for i, arch in enumerate(archs):
        for j, target in enumerate(targets):
            ax = axes[i, j]
            _draw_curves(ax, table, task, arch, target, modes, "value", groups=groups)
            zs = rows_of(table, task, arch, target, "zeroshot", groups)["value"].dropna()
            _hlines(ax, zs, baseline_value(table, task, target, metric))
            ax.set_title(f"{arch.upper()}, target {DOMAIN_LABEL.get(target, target)}", loc="left", fontsize=12)
            if i == len(archs) - 1:
                ax.set_xlabel("Target training events")
            if j == 0:
                ax.set_ylabel(_ylabel("value", metric), fontsize=14)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    fig.legend(list(uniq.values()), list(uniq.keys()), loc="lower center", ncol=min(len(uniq), 3), fontsize=11,
               bbox_to_anchor=(0.5, 1.0), title=f"fast2full: {TASK_LABEL.get(task, task)}", title_fontsize=14)
    return fig


def roc_on_grid(fpr: Sequence[float], tpr: Sequence[float], grid: np.ndarray) -> np.ndarray:
    """A ROC curve's TPR on an FPR grid (for averaging over seeds).

    Step-like ROC curves repeat FPR values (vertical segments); at each FPR the largest TPR is used
    (the upper envelope), so the interpolation is well defined.
    """
    fpr_a, tpr_a = np.asarray(fpr, float), np.asarray(tpr, float)
    order = np.lexsort((-tpr_a, fpr_a))              # by fpr, then tpr descending
    uniq, first = np.unique(fpr_a[order], return_index=True)
    return np.interp(grid, uniq, np.maximum.accumulate(tpr_a[order][first]))


def _roc_figure(table: pd.DataFrame, rocs: dict[str, dict], task: str, arch: str, target: str,
                modes: Sequence[str], rtext: str) -> Any | None:
    import matplotlib.pyplot as plt

    grid = np.linspace(0.0, 1.0, 201)
    fig, ax = plt.subplots(figsize=(8, 7))
    drawn = False
    for mode in ["zeroshot", *modes]:
        sel = table[(table["task"] == task) & (table["arch"] == arch) & (table["target"] == target)
                    & (table["mode"] == mode) & table["path"].isin(list(rocs))]
        if sel.empty:
            continue
        if mode != "zeroshot":
            sel = sel[sel["size_value"] == sel["size_value"].max()]
        tpr_mean = np.mean([roc_on_grid(rocs[p]["fpr"], rocs[p]["tpr"], grid) for p in sel["path"]], axis=0)
        st = MODE_STYLE.get(mode, {"color": None, "label": mode})
        size = "" if mode == "zeroshot" else f", n={int(sel['size_value'].iloc[0])}"
        ax.plot(grid, tpr_mean, color=st["color"],
                label=f"{st['label']}{size} (AUC {sel['test_auc'].mean():.3f})")
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="random")
    ax.set_xlabel("False-positive rate (background efficiency)")
    ax.set_ylabel("True-positive rate (signal efficiency)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    _label(ax, rtext)
    ax.legend(fontsize=9, loc="lower right")
    return fig


def _modes_figure(table: pd.DataFrame, config: dict, task: str, target: str, n_cmp: int) -> Any:
    import matplotlib.pyplot as plt

    tr = config["training"]
    modes = ["zeroshot", "scratch"] + [m for m in tr["modes"] if m != "scratch"]
    metric = _metric_of(table, task)
    fig, ax = plt.subplots(figsize=(9, 6.5))
    archs = list(tr["archs"])
    width = 0.8 / max(len(archs), 1)
    for i, arch in enumerate(archs):
        sel = table[(table["task"] == task) & (table["arch"] == arch) & (table["target"] == target)]
        means, stds = [], []
        for mode in modes:
            v = sel[(sel["mode"] == mode) & ((mode == "zeroshot") | (sel["size_value"] == n_cmp))]["value"].dropna()
            means.append(v.mean() if len(v) else np.nan)
            stds.append(v.std(ddof=1) if len(v) > 1 else 0.0)
        xs = np.arange(len(modes)) + (i - (len(archs) - 1) / 2) * width
        ax.errorbar(xs, means, yerr=stds, fmt="o", capsize=3, label=arch.upper())
    name, val = baseline_value(table, task, target, metric)
    if val is not None:
        ax.axhline(val, color="grey", ls=":", lw=2, label=f"rule-based: {short_name(name)}")
    ax.set_xticks(np.arange(len(modes)), [MODE_STYLE.get(m, {"short": m})["short"] for m in modes],
                  rotation=20, fontsize=11)
    ax.set_ylabel(_ylabel("value", metric))
    _label(ax, f"fast2full: {TASK_LABEL.get(task, task)}, {n_cmp} events of target "
               f"{DOMAIN_LABEL.get(target, target)}")
    ax.legend(fontsize=10, loc="best")
    return fig


# --------------------------------------------------------------------------------------------------
# the stage
# --------------------------------------------------------------------------------------------------

def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_output(path) as tmp:
        df.to_csv(tmp, index=False)


def aggregate(metrics_paths: Sequence[str | os.PathLike], config: dict, summary_dir: str | os.PathLike,
              figure_dir: str | os.PathLike) -> dict[str, Path]:
    """Run the whole aggregation; returns the written summary files by name.

    Every file is written atomically; the figure directory is built beside its final name and
    renamed into place only once all figures are drawn.
    """
    settings = AggregateSettings.from_config(config)
    summary_dir, figure_dir = Path(summary_dir), Path(figure_dir)
    table, rocs = load_metrics(metrics_paths)
    if table.empty:
        raise Fast2FullError("aggregate: no metrics.json files given")
    factors, points = reduction_tables(table, config, settings)
    out = {name: summary_dir / name for name in
           ("metrics.parquet", "metrics.csv", "curves.csv", "reduction_factors.csv", "summary.md")}
    with atomic_output(figure_dir, suffix="") as tmp:
        tmp.mkdir()
        make_figures(table, rocs, config, settings, tmp)
        if figure_dir.exists():  # os.replace cannot overwrite a non-empty directory
            shutil.rmtree(figure_dir)
    with atomic_output(out["metrics.parquet"]) as tmp:
        table.to_parquet(tmp, index=False)
    _write_csv(table, out["metrics.csv"])
    _write_csv(points, out["curves.csv"])
    _write_csv(factors, out["reduction_factors.csv"])
    with atomic_output(out["summary.md"]) as tmp:
        tmp.write_text(summary_markdown(factors, points, table, config, settings))
    log.info("aggregate: %d results, %d combinations -> %s, %s", len(table), len(factors), summary_dir,
             figure_dir)
    return out
