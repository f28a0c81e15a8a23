"""The test set's own statistical uncertainty: metrics on bootstrap resamples of the test events.

A resample of ``n`` test events with replacement is a vector of multiplicities (counts) ``c_i``; the
metric on the resample is the metric with per-event weights ``c_i * w_i`` (``w_i`` the event weight
when the metric is weighted, else 1).  :func:`draw_counts` makes the (B, n) count matrix once per
(task, target), shared by every model evaluated on that test split, and :func:`auc_replicates` /
:func:`resolution_replicates` evaluate one model on all B replicates at once (one sort per model).
They are the formulas of :func:`fast2full.weights.auc` and :func:`fast2full.weights.resolution`
(the project's metric definitions, used by ``train``) vectorised over replicates; :func:`central`
calls those functions themselves, and the tests check that the two agree replicate by replicate.
"""

from __future__ import annotations

import numpy as np

from fast2full import weights as W
from fast2full.predictions import Predictions


def draw_counts(rng: np.random.Generator, n_boot: int, n_events: int) -> np.ndarray:
    """(n_boot, n_events) multiplicities of a bootstrap of the test events."""
    if n_boot == 0 or n_events == 0:
        return np.zeros((n_boot, n_events))
    return rng.multinomial(n_events, np.full(n_events, 1.0 / n_events), size=n_boot).astype(float)


def auc_replicates(label: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC (Mann-Whitney, ties count 1/2) for each row of ``weights`` (B, n).

    Equal to ``sklearn.metrics.roc_auc_score(label, score, sample_weight=w)`` row by row (tested).
    """
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    order = np.argsort(score, kind="mergesort")
    s, y = np.asarray(score, float)[order], np.asarray(label)[order] > 0.5
    w = w[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if len(s) else np.array([], dtype=int)
    if len(starts) == 0:
        return np.full(w.shape[0], np.nan)
    wp = np.add.reduceat(w * y, starts, axis=1)
    wn = np.add.reduceat(w * ~y, starts, axis=1)
    below = np.cumsum(wn, axis=1) - wn
    num = (wp * (below + 0.5 * wn)).sum(axis=1)
    den = wp.sum(axis=1) * wn.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def resolution_replicates(pred: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """MET resolution (RMS of predicted minus true per component, mean of x and y) for each row of
    ``weights`` (B, n); the same formula as :func:`fast2full.train.met_resolution` with weights."""
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    d2 = (np.asarray(pred, float) - np.asarray(truth, float)) ** 2  # (n, 2)
    tot = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ms = (w @ d2) / tot  # (B, 2)
    return np.sqrt(np.maximum(ms, 0.0)).mean(axis=1)


def replicates(pred: Predictions, counts: np.ndarray, weighted: bool = False, which: str = "model") -> np.ndarray:
    """The metric of ``pred`` (``which`` = ``model`` or ``baseline``) on every replicate (B,).

    ``counts`` (B, n) must be in the order of ``pred.event_id`` (see :func:`align`).
    """
    w = counts * (pred.weight if weighted else 1.0)
    out = pred.pred if which == "model" else pred.baseline
    if pred.kind == "classification":
        return auc_replicates(pred.truth, out, w)
    return resolution_replicates(out, pred.truth, w)


def central(pred: Predictions, weighted: bool = False, which: str = "model") -> float:
    """The metric on the test set itself, with the project's own metric functions."""
    out = pred.pred if which == "model" else pred.baseline
    w = pred.weight if weighted else None
    if pred.kind == "classification":
        v = W.auc(out, pred.truth, w)
        return float("nan") if v is None else float(v)
    return float(W.resolution(out, pred.truth, w))


def align(pred: Predictions, event_ids: np.ndarray) -> Predictions | None:
    """``pred`` reordered to ``event_ids`` (sorted reference IDs); None if the ID sets differ."""
    if len(pred) != len(event_ids):
        return None
    order = np.argsort(pred.event_id, kind="stable")
    if not np.array_equal(pred.event_id[order], event_ids):
        return None
    return pred.subset(order)
