"""Event-weight maths: one place for the effective sample size, the training weights (class-balanced),
the weighted losses and the weighted metrics (ROC AUC, ROC curve, MET resolution).

Units.  Every event of the Delphes domains carries its **physical weight in pb per event**
(:func:`physical_weight`): generator weight x cross-section (x filter efficiency) / the sum of the
generator weights of its process, so the weights of one process sum to its cross-section and
``weight * L`` (L in pb^-1) is the expected number of events at an integrated luminosity L.
Processes and pTHat slices are combined by simply adding their weighted events.

Conventions used everywhere (losses, early-stopping loss, metrics, baselines, cut-flows):

* the **effective sample size** of a weighted set is ``(sum w)^2 / sum w^2`` (:func:`ess`); it equals the
  number of events when all weights are equal, and it is the number that sets the statistical
  precision of a weighted mean;
* **training weights** (:func:`training_weights`) are the physical weights rescaled per class so that
  each class has the same total weight (class balance), with mean 1 over the set: with equal
  physical weights and equal class counts every training weight is exactly 1, so the weighted loss
  is the plain mean loss;
* a weighted loss is ``sum(w * loss_i) / sum(|w|)`` (:func:`weighted_mean`); with equal positive
  weights this is the plain mean. Negative weights (Sherpa, NLO generators) enter the **training**
  weights as ``|w|`` (the usual choice: a small training subset of an NLO sample can have a negative
  class total, and a loss with net-negative weight is unbounded below); the metrics, baselines and
  cut-flows keep their sign;
* the ROC AUC is the weighted Mann-Whitney statistic (ties count one half, as scikit-learn's
  ``roc_auc_score``), computed without scikit-learn so that negative weights are allowed; the MET
  resolution is the weighted RMS of (prediction - truth) per component, averaged over x and y.

With all weights equal, every function here gives exactly the unweighted result
(``tests/test_weights.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fast2full.common import Fast2FullError

#: points kept of a ROC curve written to metrics.json
ROC_POINTS = 101
#: how a task mixes its processes (config ``tensors.tasks.<task>.process_weights``):
#: ``cross_section`` keeps the pb weights (the physical mixture: sigbkg's backgrounds in proportion);
#: ``sample`` scales each process's weights to mean 1 over its events read (they sum to its number of
#: events), so the config's event counts set the mixture as for unweighted samples, and each process
#: keeps its generator-weight shape (e.g. the W+jets bias undone); for qg and met, whose samples are
#: mixed by design: with cross-sections the dijet sample, 1.6e8 pb, would leave W/Z+jets and ttbar no
#: weight.  Unweighted samples get weight exactly 1 then.
PROCESS_WEIGHTS = ("cross_section", "sample")
DEFAULT_PROCESS_WEIGHTS = {"sigbkg": "cross_section", "qg": "sample", "met": "sample"}


class WeightError(Fast2FullError):
    """Weights that cannot be used (no positive total weight of a class, non-finite values)."""


# --------------------------------------------------------------------------------------- sizes


def _uniform(weight: np.ndarray | None) -> np.ndarray | None:
    """None when the weights are all equal and positive (the unweighted formulas then apply exactly,
    without rounding from summing the weights), else the weights as float64."""
    if weight is None:
        return None
    w = np.asarray(weight, dtype=np.float64)
    if len(w) and w[0] > 0 and np.all(w == w[0]):
        return None
    return w


def ess(weight: np.ndarray | None) -> float:
    """Effective sample size ``(sum w)^2 / sum w^2``; 0 for an empty set or all-zero weights."""
    if weight is None:
        return 0.0
    w = np.asarray(weight, dtype=np.float64)
    s2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


def count_summary(weight: np.ndarray, y: np.ndarray | None = None) -> dict[str, Any]:
    """``{"n", "sum_w", "ess"}`` of a set, and per class (``"classes": {"0": {...}, "1": {...}}``)
    when labels ``y`` are given."""
    w = np.asarray(weight, dtype=np.float64)
    out: dict[str, Any] = {"n": int(len(w)), "sum_w": float(w.sum()), "ess": round(ess(w), 3)}
    if y is not None:
        y = np.asarray(y)
        out["classes"] = {
            str(c): {"n": int((y == c).sum()), "sum_w": float(w[y == c].sum()), "ess": round(ess(w[y == c]), 3)}
            for c in (0, 1)
        }
    return out


# --------------------------------------------------------------------------------------- normalisation


def physical_weight(
    gen_weight: np.ndarray,
    sigma_pb: np.ndarray | float,
    sum_gen_weight: float,
) -> np.ndarray:
    """Per-event weight in pb: ``gen_weight * sigma_pb / sum_gen_weight``.

    ``sigma_pb``: the cross-section (filter efficiency included) of the sample the events belong to;
    ``sum_gen_weight``: the sum of the generator weights of ALL generated events of that sample
    (before any selection), so the returned weights of the whole sample sum to ``sigma_pb``.
    """
    if not np.isfinite(sum_gen_weight) or sum_gen_weight == 0:
        raise WeightError(f"sum of generator weights is {sum_gen_weight}: cannot normalise")
    w = np.asarray(gen_weight, dtype=np.float64) * np.asarray(sigma_pb, dtype=np.float64) / float(sum_gen_weight)
    if not np.all(np.isfinite(w)):
        raise WeightError("non-finite physical weights (generator weight or cross-section not finite)")
    return w


def process_scale(process: np.ndarray, weight: np.ndarray, mode: str) -> dict[str, float]:
    """Per-process factors for :data:`PROCESS_WEIGHTS` mode ``mode`` from the events of each process
    (before the task's selection): 1 for ``cross_section``, (events / sum of weights) of the process
    for ``sample``."""
    if mode not in PROCESS_WEIGHTS:
        raise WeightError(f"process_weights must be one of {PROCESS_WEIGHTS}, not {mode!r}")
    process = np.asarray(process)
    w = np.asarray(weight, dtype=np.float64)
    out = {}
    for p in np.unique(process):
        sel = process == p
        total = float(w[sel].sum())
        if mode == "sample" and not total > 0:
            raise WeightError(f"process {p!r}: total weight {total:.3g} is not positive")
        out[str(p)] = 1.0 if mode == "cross_section" else float(sel.sum()) / total
    return out


def training_weights(weight: np.ndarray, y: np.ndarray | None = None, *, balance: bool = True) -> np.ndarray:
    """Physical weights -> training weights with mean 1 over the set (float64).

    ``y`` given and ``balance``: each class is scaled to the same total weight (``n / n_classes``), the
    class-balanced weighted loss. ``y`` None (regression) or ``balance`` False: one common scale.
    Negative physical weights enter as ``|w|`` (see the module docstring).
    Raises :class:`WeightError` if a class (or the set) has no positive total weight.
    """
    w = np.asarray(weight, dtype=np.float64)
    n = len(w)
    if n == 0:
        return w.copy()
    if not np.all(np.isfinite(w)):
        raise WeightError("non-finite event weights")
    w = np.abs(w)
    if y is None or not balance:
        total = w.sum()
        if total <= 0:
            raise WeightError(f"the total event weight of the set is {total:.3g} (not positive)")
        return np.ones(n) if _uniform(w) is None else w * (n / total)
    y = np.asarray(y)
    classes = np.unique(y)
    out = np.empty(n, dtype=np.float64)
    for c in classes:
        sel = y == c
        total = w[sel].sum()
        if total <= 0:
            raise WeightError(f"class {c!r}: total event weight {total:.3g} is not positive")
        scale = n / len(classes)
        # equal weights within the class: exactly n / (n_classes * n_c) (no rounding from the sum)
        out[sel] = scale / sel.sum() if _uniform(w[sel]) is None else w[sel] * (scale / total)
    return out


# --------------------------------------------------------------------------------------- losses (torch)


def weighted_mean(values, weight=None):
    """``sum(w * v) / sum(|w|)`` over the first axis (torch or numpy); the plain mean if ``weight`` is None.

    For values with more axes (per-component losses) the other axes are averaged first.
    """
    if weight is None:
        return values.mean()
    while values.ndim > 1:
        values = values.mean(-1)
    denom = abs(weight).sum()
    return (weight * values).sum() / (denom if float(denom) > 0 else 1.0)


def bce_with_logits(logits, y, weight=None):
    """Binary cross-entropy on logits, weighted with :func:`weighted_mean` (torch)."""
    import torch.nn.functional as F

    per = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return weighted_mean(per, None if weight is None else weight.to(per.dtype))


def mse(out, target, weight=None):
    """Squared error averaged over components, weighted over rows with :func:`weighted_mean` (torch)."""
    per = (out - target) ** 2
    return weighted_mean(per, None if weight is None else weight.to(per.dtype))


# --------------------------------------------------------------------------------------- metrics (numpy)


def _by_score(score: np.ndarray, y: np.ndarray, weight: np.ndarray | None):
    """Weights of signal and background per distinct score, scores descending."""
    s = np.asarray(score, dtype=np.float64)
    lab = np.asarray(y).astype(np.int64)
    w = _uniform(weight)
    w = np.ones(len(s)) if w is None else w
    if len(w) != len(s) or len(lab) != len(s):
        raise ValueError("score, labels and weights differ in length")
    order = np.argsort(-s, kind="mergesort")
    s, lab, w = s[order], lab[order], w[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ws = np.add.reduceat(np.where(lab == 1, w, 0.0), starts) if len(s) else np.zeros(0)
    wb = np.add.reduceat(np.where(lab != 1, w, 0.0), starts) if len(s) else np.zeros(0)
    return ws, wb


def auc(score: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> float | None:
    """Weighted ROC AUC: P(score_sig > score_bkg) + P(=)/2 with event weights; None if a class has no
    positive total weight.  Equal weights: scikit-learn's ``roc_auc_score`` exactly (ties 1/2)."""
    ws, wb = _by_score(score, y, weight)
    tot_s, tot_b = ws.sum(), wb.sum()
    if len(ws) == 0 or tot_s <= 0 or tot_b <= 0:
        return None
    # background weight strictly below each score group (scores descending)
    below = tot_b - np.cumsum(wb)
    return float(np.sum(ws * (below + 0.5 * wb)) / (tot_s * tot_b))


def roc(
    score: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, points: int = ROC_POINTS
) -> dict[str, list[float]] | None:
    """Weighted ROC curve ``{"fpr": [...], "tpr": [...]}`` (at most ``points`` points, from (0, 0) to
    (1, 1)); None if a class has no positive total weight."""
    ws, wb = _by_score(score, y, weight)
    tot_s, tot_b = ws.sum(), wb.sum()
    if len(ws) == 0 or tot_s <= 0 or tot_b <= 0:
        return None
    tpr = np.r_[0.0, np.cumsum(ws) / tot_s]
    fpr = np.r_[0.0, np.cumsum(wb) / tot_b]
    if len(fpr) > points:
        idx = np.unique(np.linspace(0, len(fpr) - 1, points).round().astype(int))
        fpr, tpr = fpr[idx], tpr[idx]
    return {"fpr": [round(float(v), 6) for v in fpr], "tpr": [round(float(v), 6) for v in tpr]}


def resolution(pred: np.ndarray, true: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Weighted RMS of ``pred - true`` per component (GeV for MET), averaged over the components."""
    d2 = (np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)) ** 2
    w = _uniform(weight)
    if w is None:
        return float(np.sqrt(d2.mean(axis=0)).mean())
    tot = w.sum()
    if tot <= 0:
        raise WeightError(f"total weight {tot:.3g} is not positive: no weighted resolution")
    return float(np.sqrt(np.maximum((w[:, None] * d2.reshape(len(w), -1)).sum(axis=0) / tot, 0.0)).mean())


__all__ = [
    "WeightError",
    "ess",
    "count_summary",
    "physical_weight",
    "process_scale",
    "training_weights",
    "weighted_mean",
    "bce_with_logits",
    "mse",
    "auc",
    "roc",
    "resolution",
]
