"""Evaluation of a trained model and of the tensors' rule-based baseline on a split: loss, weighted
AUC and ROC (classification), MET resolution (regression), sample sizes and effective sample sizes
(all weighted with :mod:`fast2full.weights`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from fast2full import weights as W

#: most points kept of a ROC curve in metrics.json
ROC_POINTS = 200
#: rows per batch when evaluating (memory only; no effect on results)
EVAL_BATCH = 4096


def classification_metrics(score: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> dict[str, Any]:
    """Weighted AUC and ROC (<= ROC_POINTS points) of ``score`` for labels ``y`` (:mod:`fast2full.weights`);
    None if a class has no positive total weight.

    Rank-based, so ``score`` may be a probability, a logit or any discriminant such as HT in GeV.
    ``weight`` None (or all equal): scikit-learn's unweighted ``roc_auc_score``.
    """
    a = W.auc(score, y, weight)
    if a is None:
        return {"test_auc": None, "roc": None}
    return {"test_auc": a, "roc": W.roc(score, y, weight, points=ROC_POINTS)}


def met_resolution(pred: np.ndarray, true: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Weighted RMS of predicted minus true MET per component (GeV), averaged over x and y."""
    return W.resolution(pred, true, weight)


def baseline_metrics(ts, task: str, orient=None) -> dict[str, Any]:
    """The tensors' rule-based baseline evaluated (with the event weights) on the split ``ts``.

    For classification the baseline is a one-variable discriminant; its direction (is a larger value
    more signal-like?) is fixed on ``orient`` (the validation split, weighted), never on the evaluated
    split.  ``test_auc_unweighted`` / ``met_resolution_unweighted``: the same ignoring the weights.
    """
    name = ts.meta.get("baseline")
    name = name if isinstance(name, str) else json.dumps(name) if name else "baseline"
    if task == "met":
        return {
            "name": name,
            "test_auc": None,
            "met_resolution": met_resolution(ts.baseline, ts.y, ts.weight),
            "met_resolution_unweighted": met_resolution(ts.baseline, ts.y),
        }
    sign = 1.0
    if orient is not None:
        val_auc = W.auc(orient.baseline, orient.y, orient.weight)
        if val_auc is not None and val_auc < 0.5:
            sign = -1.0
            name = f"{name} [reversed: lower is more signal-like on the validation split]"
    return {
        "name": name,
        "test_auc": W.auc(sign * ts.baseline, ts.y, ts.weight),
        "met_resolution": None,
        "test_auc_unweighted": W.auc(sign * ts.baseline, ts.y),
    }


def sample_sizes(ts) -> dict[str, Any]:
    """Rows, total weight and effective sample size (sum w)^2 / sum w^2 of a split (per class for labels)."""
    return W.count_summary(ts.weight, ts.y if ts.y.ndim == 1 else None)


def evaluate(module, ts, with_prediction: bool = False) -> dict[str, Any]:
    """test_loss, test_auc, roc and met_resolution of ``module`` on the TensorSet ``ts``, all weighted:
    the loss with the set's training weights (class-balanced), the metrics with the event weights.
    ``with_prediction``: also ``prediction``, the per-event score or MET (x, y) in GeV (numpy)."""
    import torch

    from fast2full.models.data import set_weights

    x, m, y, _ = ts.torch()
    b = torch.from_numpy(ts.baseline)
    module.eval()
    dev = next(module.parameters()).device
    with torch.no_grad():
        out = torch.cat(
            [
                module(x[i : i + EVAL_BATCH].to(dev), m[i : i + EVAL_BATCH].to(dev)).float().cpu()
                for i in range(0, len(x), EVAL_BATCH)
            ]
        )
        loss = float(module.task_loss(out, y, b, set_weights(ts)))
        pred = module.to_prediction(out, b).numpy()
    res: dict[str, Any] = {"test_loss": loss}
    if module.is_classifier:
        res |= classification_metrics(pred, ts.y, ts.weight)
        res["test_auc_unweighted"] = W.auc(pred, ts.y)
        res["met_resolution"] = None
    else:
        res |= {
            "test_auc": None,
            "roc": None,
            "met_resolution": met_resolution(pred, ts.y, ts.weight),
            "met_resolution_unweighted": met_resolution(pred, ts.y),
        }
    if with_prediction:
        res["prediction"] = pred
    return res


def baseline_sign(task: str, orient) -> float:
    """+1, or -1 where the classification baseline is reversed on the validation split (as
    :func:`baseline_metrics`); MET: +1."""
    if task == "met" or orient is None:
        return 1.0
    a = W.auc(orient.baseline, orient.y, orient.weight)
    return -1.0 if a is not None and a < 0.5 else 1.0


def val_loss(module, ts) -> float:
    return evaluate(module, ts)["test_loss"]
