"""Per-task evaluation in bins: the quark/gluon AUC in jet-pT bins and the MET resolution per component
in bins of true MET, each with its rule-based baseline in the same bins.

Train and aggregate call these on a test split (``fast2full.tensorio.TensorSet``): the bin variable
comes from the tensors' ``aux`` columns (qg: ``jet_pt``) or from the target itself (met: ``|y|``), the
weights are the tensors' ``weight`` column (for qg already reweighted to a common quark/gluon
(pT, |eta|) spectrum by ``fast2full.tensorize``).  Bins are ``lo <= v < hi``; the last edge may be
``inf`` (stored as None, the open end).  AUCs are :func:`fast2full.weights.auc` (event weights,
negative ones allowed).  A bin with fewer than :data:`MIN_ROWS_PER_BIN` rows, or with one class only,
gives ``None``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fast2full import weights as W

#: jet-pT bins of the quark/gluon evaluation in GeV (issue 14): 25-40, 40-60, 60-100, 100-200, > 200
QG_PT_BINS_GEV = (25.0, 40.0, 60.0, 100.0, 200.0, math.inf)
#: true-MET bins of the MET evaluation in GeV
MET_TRUE_BINS_GEV = (0.0, 20.0, 40.0, 70.0, 120.0, math.inf)
#: fewer rows than this in a bin: no number for that bin
MIN_ROWS_PER_BIN = 5


def _bin_label(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g}" if math.isfinite(hi) else f">{lo:g}"


def _edge(v: float) -> float | None:
    """A bin edge as stored (JSON has no infinity): the open upper end is None."""
    return float(v) if math.isfinite(v) else None


def auc_in_bins(
    score: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    var: np.ndarray,
    edges=QG_PT_BINS_GEV,
    baseline: np.ndarray | None = None,
) -> dict[str, Any]:
    """Weighted AUC inclusive and per bin of ``var`` (qg: the jet pT in GeV), with the baseline's.

    Returns ``{"edges", "inclusive": {n, auc, baseline_auc}, "bins": [{bin, lo, hi, n, auc,
    baseline_auc}]}``; the baseline is a score (larger = more positive) like ``score``.
    """
    var = np.asarray(var, dtype=np.float64)

    def one(sel):
        n = int(sel.sum())
        ok = n >= MIN_ROWS_PER_BIN
        return {
            "n": n,
            "auc": W.auc(score[sel], y[sel], weight[sel]) if ok else None,
            "baseline_auc": W.auc(baseline[sel], y[sel], weight[sel]) if ok and baseline is not None else None,
        }

    score, y, weight = np.asarray(score), np.asarray(y), np.asarray(weight, dtype=np.float64)
    bins = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (var >= lo) & (var < hi)
        bins.append({"bin": _bin_label(lo, hi), "lo": float(lo), "hi": _edge(hi), **one(sel)})
    return {"edges": [_edge(e) for e in edges], "inclusive": one(np.ones(len(y), dtype=bool)), "bins": bins}


def met_resolution_components(
    pred: np.ndarray, true: np.ndarray, weight: np.ndarray | None = None
) -> dict[str, float | None]:
    """Weighted RMS of ``pred - true`` per component (x, y) in GeV, and their mean."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if len(pred) == 0:
        return {"x": None, "y": None, "mean": None}
    w = np.ones(len(pred)) if weight is None else np.asarray(weight, dtype=np.float64)
    if w.sum() <= 0:
        return {"x": None, "y": None, "mean": None}
    rms = np.sqrt(np.clip((w[:, None] * (pred - true) ** 2).sum(axis=0) / w.sum(), 0.0, None))
    return {"x": float(rms[0]), "y": float(rms[1]), "mean": float(rms.mean())}


def met_resolution_in_bins(
    pred: np.ndarray, true: np.ndarray, reco: np.ndarray, weight: np.ndarray | None = None, edges=MET_TRUE_BINS_GEV
) -> dict[str, Any]:
    """MET resolution of ``pred`` and of the reconstructed MET ``reco`` (both (n, 2) x/y in GeV)
    against ``true``, inclusive and in bins of the true MET magnitude, with the relative improvement
    ``1 - res(pred) / res(reco)`` per component (positive = better than the reconstructed MET)."""
    true = np.asarray(true, dtype=np.float64)
    w = np.ones(len(true)) if weight is None else np.asarray(weight, dtype=np.float64)
    mag = np.hypot(true[:, 0], true[:, 1])

    def one(sel):
        n = int(sel.sum())
        if n < MIN_ROWS_PER_BIN:
            return {"n": n, "model": None, "reco": None, "improvement": None}
        m = met_resolution_components(pred[sel], true[sel], w[sel])
        r = met_resolution_components(reco[sel], true[sel], w[sel])
        imp = {k: (1.0 - m[k] / r[k]) if m[k] is not None and r[k] else None for k in ("x", "y", "mean")}
        return {"n": n, "model": m, "reco": r, "improvement": imp}

    bins = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (mag >= lo) & (mag < hi)
        bins.append({"bin": _bin_label(lo, hi), "lo": float(lo), "hi": _edge(hi), **one(sel)})
    return {"edges": [_edge(e) for e in edges], "inclusive": one(np.ones(len(true), dtype=bool)), "bins": bins}


def evaluate_binned(task: str, ts, prediction: np.ndarray, baseline: np.ndarray | None = None) -> dict[str, Any] | None:
    """The binned evaluation of ``task`` on the tensor split ``ts`` for the model output ``prediction``
    (qg: a score per row, larger = more quark-like; met: (n, 2) predicted true MET x, y in GeV).

    ``baseline``: the baseline as evaluated (qg: the tensors' ``-ntrk``, times -1 where the validation
    split reverses it, see ``fast2full.train.baseline_sign``); default ``ts.baseline``.  qg needs the
    ``jet_pt`` aux column (tensors written by this version of tensorize); ``None`` for sigbkg and for
    qg tensors without it.
    """
    base = ts.baseline if baseline is None else baseline
    if task == "qg":
        if "jet_pt" not in ts.aux:
            return None
        return auc_in_bins(prediction, ts.y, ts.weight, ts.aux["jet_pt"], QG_PT_BINS_GEV, baseline=base)
    if task == "met":
        return met_resolution_in_bins(prediction, ts.y, base, ts.weight, MET_TRUE_BINS_GEV)
    return None


__all__ = [
    "QG_PT_BINS_GEV",
    "MET_TRUE_BINS_GEV",
    "auc_in_bins",
    "met_resolution_components",
    "met_resolution_in_bins",
    "evaluate_binned",
]
