"""The aggregation's figures (PDF + PNG), all drawn with the style module :mod:`fast2full.plotting`.

A panel without data is drawn empty with its reason and the reason is returned (it goes to
``summary.md``): aggregation never dies on thin data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fast2full.aggregate.curves import Tables, baseline_value, metric_of, task_targets
from fast2full.aggregate.metrics import FULL, AggregateSettings, compare_size
from fast2full.common import Progress
from fast2full.plotting import DOMAIN_LABELS, MODE_STYLE, PALETTE, TEX, label, savefig, skip_panel, style

log = logging.getLogger("fast2full.aggregate")

METRIC_LABEL = {
    "auc": "Test ROC AUC",
    "met_resolution": f"{TEX['MET']} resolution [GeV]",
    "met_relative": f"{TEX['MET']} resolution / reco. {TEX['MET']} resolution",
}
TASK_LABEL = {"sigbkg": r"$t\bar{t}$ vs. background", "qg": "quark vs. gluon jets", "met": f"{TEX['MET']} regression"}
#: figure kinds (file-name prefixes); the report caption has one paragraph per kind
KINDS = ("curve", "curves", "compute", "roc", "modes", "loss")


def short_name(name: str, max_len: int = 32) -> str:
    """A legend-sized baseline name: the part before any ':' or ' (' explanation, truncated."""
    short = (name or "baseline").split(":")[0].split(" (")[0].strip() or "baseline"
    return short if len(short) <= max_len else short[: max_len - 1] + "…"


class Skips:
    """Collects (figure/panel, reason) of every panel drawn without data."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def __call__(self, ax: Any, where: str, reason: str) -> None:
        skip_panel(ax, reason)
        self.items.append((where, reason))


def _points(tables: Tables, task: str, arch: str, target: str, mode: str) -> pd.DataFrame:
    p = tables.points
    if p.empty:
        return p
    return p[(p["task"] == task) & (p["arch"] == arch) & (p["target"] == target) & (p["mode"] == mode)]


def _factor_row(tables: Tables, task: str, arch: str, target: str, mode: str) -> pd.Series | None:
    f = tables.factors
    if f.empty:
        return None
    sel = f[(f["task"] == task) & (f["arch"] == arch) & (f["target"] == target) & (f["mode"] == mode)]
    return sel.iloc[0] if len(sel) else None


def _band_text(tables: Tables, task: str, target: str, n_seeds: int, confidence: float) -> str:
    how = tables.boots[(task, target)].how if (task, target) in tables.boots else "none"
    if how.startswith("none"):
        return "no bands (bootstrap off)"
    what = "seeds + test events" if how.startswith("seeds + test") else "seeds only"
    return f"bands: {confidence:.0%} bootstrap interval of the mean ({what}, {n_seeds} seeds)"


def draw_curves(
    ax: Any, tables: Tables, task: str, arch: str, target: str, modes: Sequence[str], relative_to: float | None = None
) -> tuple[bool, list[float]]:
    """Seed mean and bootstrap band per mode vs events used; the full-split point is marked with a
    larger open marker.  Returns (anything drawn, x values)."""
    drawn, xs = False, []
    scale = 1.0 / relative_to if relative_to else 1.0
    for mode in modes:
        pts = _points(tables, task, arch, target, mode)
        pts = pts[np.isfinite(pts["mean"]) & (pts["n_train"] > 0)] if len(pts) else pts
        if pts.empty:
            continue
        st = MODE_STYLE[mode]
        x, m = pts["n_train"].to_numpy(), pts["mean"].to_numpy() * scale
        ax.plot(x, m, marker=st["marker"], color=st["color"], ls=st["ls"], label=st["label"], ms=5)
        lo, hi = pts["band_low"].to_numpy() * scale, pts["band_high"].to_numpy() * scale
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            ax.fill_between(x[ok], lo[ok], hi[ok], color=st["color"], alpha=0.18, lw=0)
        full = pts["full"].to_numpy(bool)
        if full.any():
            ax.plot(x[full], m[full], marker="o", ms=11, mfc="none", mec=st["color"], ls="none")
        capped = pts["capped"].to_numpy(bool) & ~full
        if capped.any():  # capped to the pool but no full-split point to collapse into: a white square
            ax.plot(x[capped], m[capped], marker="s", ms=9, mfc="white", mec=st["color"], ls="none")
        xs += x.tolist()
        drawn = True
    return drawn, xs


def _hlines(ax: Any, row: pd.Series | None, baseline: tuple[str, float | None], relative_to: float | None) -> None:
    scale = 1.0 / relative_to if relative_to else 1.0
    if row is not None and np.isfinite(row["zeroshot"]):
        st = MODE_STYLE["zeroshot"]
        ax.axhline(row["zeroshot"] * scale, color=st["color"], ls=st["ls"], lw=1.5, label=st["label"])
        if np.isfinite(row["zeroshot_low"]) and row["zeroshot_high"] > row["zeroshot_low"]:
            ax.axhspan(row["zeroshot_low"] * scale, row["zeroshot_high"] * scale, color=st["color"], alpha=0.1, lw=0)
    name, val = baseline
    if val is not None:
        st = MODE_STYLE["baseline"]
        ax.axhline(val * scale, color=st["color"], ls=st["ls"], lw=2, label=f"rule-based: {short_name(name)}")


def _size_axis(ax: Any, xs: Sequence[float], n_full: float | None) -> None:
    """Log x over the data range, ticks at the trained sizes, the full split labelled."""
    import matplotlib.ticker as mt

    xs = sorted(set(round(float(x)) for x in xs if x > 0))
    if not xs:
        return
    ax.set_xscale("log")
    ax.set_xlim(xs[0] / 1.3, xs[-1] * 1.3)
    ax.xaxis.set_major_locator(mt.FixedLocator(xs))
    ax.xaxis.set_minor_locator(mt.NullLocator())
    labels = [f"{x}\nfull" if n_full is not None and np.isclose(x, n_full) else f"{x}" for x in xs]
    ax.xaxis.set_major_formatter(mt.FixedFormatter(labels))
    ax.tick_params(axis="x", labelsize=9)


def _legend_with_band(ax: Any, band_text: str, **kw: Any) -> None:
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    handles.append(Patch(color="#999999", alpha=0.3, lw=0))
    labels.append(band_text)
    ax.legend(handles, labels, **kw)


def _n_full(tables: Tables, task: str, arch: str, target: str) -> float | None:
    row = _factor_row(tables, task, arch, target, "scratch")
    return float(row["n_full"]) if row is not None and np.isfinite(row["n_full"]) else None


def _panel_reason(table: pd.DataFrame, task: str, arch: str, target: str) -> str:
    sel = table[(table["task"] == task) & (table["arch"] == arch) & (table["target"] == target)]
    if sel.empty:
        pre = table[(table["task"] == task) & (table["arch"] == arch) & (table["mode"] == "pretrain")]
        return "only pretraining results" if len(pre) else "no results"
    if sel["value"].notna().sum() == 0:
        return "no usable metric (all null)"
    return "no learning-curve point with a usable metric"


def curve_figure(
    tables: Tables,
    table: pd.DataFrame,
    config: dict,
    settings: AggregateSettings,
    task: str,
    arch: str,
    target: str,
    modes: Sequence[str],
    skips: Skips,
) -> Any:
    import matplotlib.pyplot as plt

    metric = metric_of(table, task)
    base = baseline_value(table, task, target, metric)
    relative = metric == "met_resolution"
    fig, axes = plt.subplots(1, 2 if relative else 1, figsize=(8 * (2 if relative else 1), 6.5), squeeze=False)
    n_full = _n_full(tables, task, arch, target)
    zrow = _factor_row(tables, task, arch, target, modes[0])
    n_seeds = len(config["training"]["seeds"])
    where = f"curve_{task}_{arch}_{target}"
    for ax, rel in zip(axes[0], [False, True] if relative else [False]):
        ref = base[1] if rel else None
        if rel and ref is None:
            skips(ax, where + " (relative)", "no reconstructed-MET baseline")
            continue
        drawn, xs = draw_curves(ax, tables, task, arch, target, modes, relative_to=ref)
        if not drawn:
            skips(ax, where, _panel_reason(table, task, arch, target))
            continue
        _hlines(ax, zrow, base, ref)
        _size_axis(ax, xs, n_full)
        ax.set_xlabel("Target training events (circled: full train split)", fontsize=14)
        ax.set_ylabel(METRIC_LABEL["met_relative" if rel else metric], fontsize=14)
        label(ax, f"{TASK_LABEL.get(task, task)}, {arch.upper()}, {DOMAIN_LABELS.get(target, target)}", fontsize=11)
        _legend_with_band(
            ax,
            _band_text(tables, task, target, n_seeds, settings.confidence),
            fontsize=9,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.16),
            ncol=2,
        )
    return fig


def overview_figure(
    tables: Tables,
    table: pd.DataFrame,
    config: dict,
    settings: AggregateSettings,
    task: str,
    targets: Sequence[str],
    modes: Sequence[str],
    skips: Skips,
) -> Any:
    import matplotlib.pyplot as plt

    archs = list(config["training"]["archs"])
    metric = metric_of(table, task)
    fig, axes = plt.subplots(
        len(archs), len(targets), figsize=(7 * len(targets), 5 * len(archs)), squeeze=False, sharey="col"
    )
    legend_ax = None
    for i, arch in enumerate(archs):
        for j, target in enumerate(targets):
            ax = axes[i, j]
            drawn, xs = draw_curves(ax, tables, task, arch, target, modes)
            ax.set_title(f"{arch.upper()}, {DOMAIN_LABELS.get(target, target)}", loc="right", fontsize=11)
            if not drawn:
                skips(ax, f"curves_{task} {arch}/{target}", _panel_reason(table, task, arch, target))
                continue
            legend_ax = legend_ax or ax
            _hlines(
                ax, _factor_row(tables, task, arch, target, modes[0]), baseline_value(table, task, target, metric), None
            )
            _size_axis(ax, xs, _n_full(tables, task, arch, target))
            if i == len(archs) - 1:
                ax.set_xlabel("Target training events", fontsize=14)
            if j == 0:
                ax.set_ylabel(METRIC_LABEL[metric], fontsize=14)
    for ax in axes[0]:
        label(ax)
    if legend_ax is not None:
        from matplotlib.patches import Patch

        handles, labels = legend_ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        bt = _band_text(tables, task, targets[0], len(config["training"]["seeds"]), settings.confidence)
        uniq[bt] = Patch(color="#999999", alpha=0.3, lw=0)
        uniq["full train split"] = plt.Line2D([], [], marker="o", ms=11, mfc="none", mec="k", ls="none")
        if len(tables.points) and (tables.points["capped"] & ~tables.points["full"]).any():
            uniq["capped at the pool size"] = plt.Line2D([], [], marker="s", ms=9, mfc="white", mec="k", ls="none")
        fig.legend(
            list(uniq.values()),
            list(uniq.keys()),
            loc="lower center",
            ncol=min(len(uniq), 3),
            fontsize=10,
            bbox_to_anchor=(0.5, 1.0),
            title=TASK_LABEL.get(task, task),
            title_fontsize=13,
        )
    return fig


def compute_figure(
    tables: Tables, table: pd.DataFrame, task: str, arch: str, target: str, modes: Sequence[str], skips: Skips
) -> Any:
    import matplotlib.pyplot as plt

    metric = metric_of(table, task)
    fig, axes = plt.subplots(1, 2, figsize=(16, 6.5), squeeze=False)
    pts_all = tables.points
    for ax, col, xl in zip(
        axes[0],
        ("steps_mean", "steps_incl_pretrain_mean"),
        ("Optimiser steps on the target (selected run)", "Optimiser steps incl. LR grid and pretraining"),
    ):
        drawn = False
        for mode in modes:
            pts = _points(tables, task, arch, target, mode) if len(pts_all) else pts_all
            pts = pts[np.isfinite(pts["mean"]) & (pts[col] > 0)] if len(pts) else pts
            if pts.empty:
                continue
            st = MODE_STYLE[mode]
            ax.plot(pts[col], pts["mean"], marker=st["marker"], color=st["color"], ls=st["ls"], label=st["label"])
            drawn = True
        if not drawn:
            skips(ax, f"compute_{task}_{arch}_{target}", _panel_reason(table, task, arch, target))
            continue
        ax.set_xscale("log")
        ax.set_xlabel(xl, fontsize=14)
        ax.set_ylabel(METRIC_LABEL[metric], fontsize=14)
        label(ax, f"{TASK_LABEL.get(task, task)}, {arch.upper()}, {DOMAIN_LABELS.get(target, target)}", fontsize=11)
        ax.legend(fontsize=9, loc="best")
    return fig


def roc_on_grid(fpr: Sequence[float], tpr: Sequence[float], grid: np.ndarray) -> np.ndarray:
    """A ROC curve's TPR on an FPR grid (upper envelope where FPR repeats)."""
    fpr_a, tpr_a = np.asarray(fpr, float), np.asarray(tpr, float)
    order = np.lexsort((-tpr_a, fpr_a))
    uniq, first = np.unique(fpr_a[order], return_index=True)
    return np.interp(grid, uniq, np.maximum.accumulate(tpr_a[order][first]))


def fpr_at_tpr(fpr: Sequence[float], tpr: Sequence[float], grid: np.ndarray) -> np.ndarray:
    """The smallest background efficiency (FPR) that reaches each signal efficiency (TPR) of ``grid``."""
    fpr_a, tpr_a = np.asarray(fpr, float), np.asarray(tpr, float)
    order = np.lexsort((fpr_a, tpr_a))
    t, f = tpr_a[order], np.minimum.accumulate(fpr_a[order][::-1])[::-1]
    uniq, first = np.unique(t, return_index=True)
    return np.interp(grid, uniq, f[first])


def roc_figure(
    table: pd.DataFrame, rocs: dict[str, dict], task: str, arch: str, target: str, modes: Sequence[str], skips: Skips
) -> Any:
    """Background rejection 1/eps_B (log) against signal efficiency eps_S, at the full split (or the
    largest size) per mode and for the zero-shot model; seeds averaged in eps_B at fixed eps_S."""
    import matplotlib.pyplot as plt

    grid = np.linspace(0.05, 1.0, 96)
    fig, ax = plt.subplots(figsize=(8, 7))
    drawn = False
    for mode in ["zeroshot", *modes]:
        sel = table[
            (table["task"] == task)
            & (table["arch"] == arch)
            & (table["target"] == target)
            & (table["mode"] == mode)
            & table["path"].isin(list(rocs))
        ]
        if sel.empty:
            continue
        if mode != "zeroshot":
            sel = sel[sel["n_train"] == sel["n_train"].max()]
        f = np.mean([fpr_at_tpr(rocs[p]["fpr"], rocs[p]["tpr"], grid) for p in sel["path"]], axis=0)
        with np.errstate(divide="ignore"):
            rej = np.where(f > 0, 1.0 / f, np.nan)
        st = MODE_STYLE[mode]
        size = (
            ""
            if mode == "zeroshot"
            else (", full split" if sel["full"].any() else f", n={int(sel['n_train'].iloc[0])}")
        )
        ax.plot(
            grid,
            rej,
            color=st["color"],
            ls=st["ls"],
            label=f"{st['label']}{size} (AUC {sel['test_auc'].mean():.3f}, {len(sel)} seeds)",
        )
        drawn = True
    if not drawn:
        skips(ax, f"roc_{task}_{arch}_{target}", "no ROC curve in metrics.json")
        return fig
    ax.plot(grid, 1.0 / grid, color="#7f7f7f", ls=(0, (1, 1)), lw=1, label="random")
    ax.set_yscale("log")
    ax.set_xlabel(r"Signal efficiency $\varepsilon_{\mathrm{S}}$", fontsize=14)
    ax.set_ylabel(r"Background rejection $1/\varepsilon_{\mathrm{B}}$", fontsize=14)
    ax.set_xlim(grid[0], 1.0)
    label(ax, f"{TASK_LABEL.get(task, task)}, {arch.upper()}, {DOMAIN_LABELS.get(target, target)}", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    return fig


def modes_figure(
    tables: Tables, table: pd.DataFrame, config: dict, task: str, target: str, n_cmp: int, skips: Skips
) -> Any:
    import matplotlib.pyplot as plt

    tr = config["training"]
    modes = ["zeroshot", "scratch"] + [m for m in tr["modes"] if m != "scratch"]
    metric = metric_of(table, task)
    fig, ax = plt.subplots(figsize=(9, 6.5))
    archs = list(tr["archs"])
    width = 0.8 / max(len(archs), 1)
    drawn = False
    for i, arch in enumerate(archs):
        means, lo, hi = [], [], []
        for mode in modes:
            if mode == "zeroshot":
                row = _factor_row(tables, task, arch, target, "scratch")
                vals = (
                    (row["zeroshot"], row["zeroshot_low"], row["zeroshot_high"]) if row is not None else (np.nan,) * 3
                )
            else:
                pts = _points(tables, task, arch, target, mode)
                pts = pts[pts["size"] == str(n_cmp)] if len(pts) else pts
                vals = (
                    (pts["mean"].iloc[0], pts["band_low"].iloc[0], pts["band_high"].iloc[0])
                    if len(pts)
                    else (np.nan,) * 3
                )
            means.append(vals[0])
            lo.append(vals[0] - vals[1] if np.isfinite(vals[1]) else 0.0)
            hi.append(vals[2] - vals[0] if np.isfinite(vals[2]) else 0.0)
        xs = np.arange(len(modes)) + (i - (len(archs) - 1) / 2) * width
        ok = np.isfinite(means)
        if ok.any():
            ax.errorbar(
                xs[ok],
                np.asarray(means)[ok],
                yerr=[np.asarray(lo)[ok], np.asarray(hi)[ok]],
                fmt="os^"[i % 3],
                capsize=3,
                color=PALETTE[(i + 1) % len(PALETTE)],
                label=arch.upper(),
            )
            drawn = True
    if not drawn:
        skips(ax, f"modes_{task}_{target}_n{n_cmp}", f"no result at n = {n_cmp}")
        return fig
    name, val = baseline_value(table, task, target, metric)
    if val is not None:
        st = MODE_STYLE["baseline"]
        ax.axhline(val, color=st["color"], ls=st["ls"], lw=2, label=f"rule-based: {short_name(name)}")
    ax.set_xticks(np.arange(len(modes)), [MODE_STYLE[m]["short"] for m in modes], rotation=20, fontsize=11)
    ax.set_ylabel(METRIC_LABEL[metric], fontsize=14)
    label(ax, f"{TASK_LABEL.get(task, task)}, {n_cmp} events of {DOMAIN_LABELS.get(target, target)}", fontsize=10)
    ax.legend(fontsize=10, loc="best", title="error bars: bootstrap interval", title_fontsize=9)
    return fig


# ------------------------------------------------------------------------------- training losses


def read_loss_log(metrics_path: str, lr: float) -> pd.DataFrame | None:
    """The train and validation losses per check of the selected learning rate's run, from the loss
    history that ``train`` writes in its declared ``seed*/logs`` directory (``logs/lr<lr>/metrics.csv``,
    an input of the aggregate rule): columns step, train_loss, val_loss (NaN where not logged); None if
    absent or unreadable."""
    if not np.isfinite(lr):
        return None
    f = Path(metrics_path).parent / "logs" / f"lr{lr:g}" / "metrics.csv"
    if not f.is_file():
        return None
    try:
        df = pd.read_csv(f)
    except (OSError, ValueError, pd.errors.ParserError):
        log.warning("%s: unreadable training log; its loss curve is left out", f)
        return None
    if "step" not in df or not {"train_loss", "val_loss"} & set(df.columns):
        return None
    cols = [c for c in ("train_loss", "val_loss") if c in df]
    return df.groupby("step", as_index=False)[cols].mean()


def loss_figure(table: pd.DataFrame, task: str, arch: str, target: str, modes: Sequence[str], skips: Skips) -> Any:
    """Train (solid) and validation (dashed) loss vs optimiser step of the selected learning rate,
    one panel per mode, one colour per size, first seed."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 4.8), squeeze=False, sharey=True)
    for ax, mode in zip(axes[0], modes):
        sel = table[
            (table["task"] == task) & (table["arch"] == arch) & (table["target"] == target) & (table["mode"] == mode)
        ]
        where = f"loss_{task}_{arch}_{target} {mode}"
        if sel.empty:
            skips(ax, where, "no results")
            continue
        seed = sel["seed"].min()
        sel = sel[sel["seed"] == seed].sort_values("n_train")
        drawn = False
        for k, r in enumerate(sel.itertuples()):
            df = read_loss_log(r.path, r.lr)
            if df is None or df.empty:
                continue
            c = PALETTE[k % len(PALETTE)]
            size = "full split" if r.size == FULL else f"n={r.size}"
            for col, ls in (("train_loss", "-"), ("val_loss", "--")):
                if col in df:
                    d = df[["step", col]].dropna()
                    ax.plot(
                        d["step"],
                        d[col],
                        color=c,
                        ls=ls,
                        lw=1.3,
                        label=f"{size} ({int(r.n_train)} ev.)" if col == "train_loss" else None,
                    )
            drawn = True
        if not drawn:
            skips(ax, where, "no training log (seed*/logs/lr*/metrics.csv)")
            continue
        ax.set_xlabel("Optimiser step", fontsize=13)
        ax.set_yscale("log")
        ax.text(
            0.03,
            0.97,
            f"{MODE_STYLE[mode]['label']}, seed {seed}",
            transform=ax.transAxes,
            ha="left",
            va="top",
            fontsize=10,
        )
        ax.legend(fontsize=8, loc="upper right", title="solid: train, dashed: validation", title_fontsize=8)
    axes[0, 0].set_ylabel("Loss", fontsize=13)
    label(axes[0, 0], fontsize=10)
    axes[0, -1].text(
        1.0,
        1.01,
        f"{TASK_LABEL.get(task, task)}, {arch.upper()}, {DOMAIN_LABELS.get(target, target)}",
        transform=axes[0, -1].transAxes,
        ha="right",
        va="bottom",
        fontsize=10,
    )
    return fig


# ------------------------------------------------------------------------------- all figures


def make_figures(
    tables: Tables, table: pd.DataFrame, rocs: dict[str, dict], config: dict, settings: AggregateSettings, outdir: Path
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Every figure; returns (files written, skipped panels with their reasons)."""
    tr = config["training"]
    modes = ["scratch"] + [m for m in tr["modes"] if m != "scratch"]
    written: list[Path] = []
    skips = Skips()
    combos = [(t, a, g) for t in tr["tasks"] for a in tr["archs"] for g in task_targets(config, t)]
    source = config["domains"]["source"]
    prog = Progress(total=len(combos), what="figure sets", logger=log)
    with style():
        for task, arch, target in combos:
            written += savefig(
                curve_figure(tables, table, config, settings, task, arch, target, modes, skips),
                outdir / f"curve_{task}_{arch}_{target}.pdf",
            )
            written += savefig(
                compute_figure(tables, table, task, arch, target, modes, skips),
                outdir / f"compute_{task}_{arch}_{target}.pdf",
            )
            if metric_of(table, task) == "auc":
                written += savefig(
                    roc_figure(table, rocs, task, arch, target, modes, skips),
                    outdir / f"roc_{task}_{arch}_{target}.pdf",
                )
            written += savefig(
                loss_figure(table, task, arch, target, modes, skips), outdir / f"loss_{task}_{arch}_{target}.pdf"
            )
            prog.update()
        for task in tr["tasks"]:
            for arch in tr["archs"]:
                written += savefig(
                    loss_figure(table, task, arch, source, ["pretrain"], skips),
                    outdir / f"loss_{task}_{arch}_{source}_pretrain.pdf",
                )
            targets = task_targets(config, task)
            if targets:
                written += savefig(
                    overview_figure(tables, table, config, settings, task, targets, modes, skips),
                    outdir / f"curves_{task}.pdf",
                )
        n_cmp = compare_size(config, settings)
        for task in tr["tasks"]:
            for target in task_targets(config, task):
                written += savefig(
                    modes_figure(tables, table, config, task, target, n_cmp, skips),
                    outdir / f"modes_{task}_{target}_n{n_cmp}.pdf",
                )
    return written, skips.items
