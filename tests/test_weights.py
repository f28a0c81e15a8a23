"""The weight maths (fast2full.weights): equal weights reproduce the unweighted results exactly,
weights change them the way a physical reweighting must."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score, roc_curve

from fast2full import weights as W


def _sample(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(np.float32)
    score = rng.normal(y * 0.8, 1.0).round(1)  # rounded: ties
    return score, y


def test_ess():
    assert W.ess(np.ones(50)) == pytest.approx(50)
    assert W.ess(np.full(50, 3.7e-4)) == pytest.approx(50)
    # one weight dominating: ESS -> 1
    assert W.ess(np.r_[1e6, np.ones(99)]) == pytest.approx(1.0, abs=1e-3)
    # two groups of equal size, weights 1 and 3: (4n)^2 / (10 n) = 1.6 n
    assert W.ess(np.r_[np.ones(10), 3 * np.ones(10)]) == pytest.approx(16.0)
    assert W.ess(np.zeros(0)) == 0.0
    s = W.count_summary(np.r_[np.ones(3), 2 * np.ones(2)], np.array([0, 0, 0, 1, 1]))
    assert s["n"] == 5 and s["sum_w"] == 7.0 and s["classes"]["1"] == {"n": 2, "sum_w": 4.0, "ess": 2.0}


def test_auc_equal_weights_is_sklearn():
    score, y = _sample()
    ref = roc_auc_score(y, score)
    assert W.auc(score, y) == pytest.approx(ref, abs=1e-12)
    assert W.auc(score, y, np.full(len(y), 0.02)) == pytest.approx(ref, abs=1e-12)


def test_auc_weighted_is_sklearn_and_duplication():
    score, y = _sample(seed=1)
    w = np.random.default_rng(2).integers(1, 4, len(y)).astype(float)
    assert W.auc(score, y, w) == pytest.approx(roc_auc_score(y, score, sample_weight=w), abs=1e-12)
    # integer weights == duplicating the events
    rep = w.astype(int)
    assert W.auc(score, y, w) == pytest.approx(roc_auc_score(np.repeat(y, rep), np.repeat(score, rep)), abs=1e-12)
    # the weighted AUC differs from the unweighted one here (the test can fail)
    assert abs(W.auc(score, y, w) - W.auc(score, y)) > 1e-4


def test_auc_negative_weights_and_one_class():
    score, y = _sample(seed=3)
    w = np.ones(len(y))
    w[::7] = -0.5
    a = W.auc(score, y, w)
    # by hand: sum over pairs of w_s w_b [s_s > s_b] + 1/2 [=]
    s, b = y == 1, y == 0
    gt = (score[s][:, None] > score[b][None, :]) + 0.5 * (score[s][:, None] == score[b][None, :])
    ref = (w[s][:, None] * w[b][None, :] * gt).sum() / (w[s].sum() * w[b].sum())
    assert a == pytest.approx(ref, abs=1e-12)
    assert W.auc(score, np.ones(len(y))) is None


def test_roc_matches_sklearn_points():
    score, y = _sample(n=60, seed=4)
    w = np.random.default_rng(5).random(60) + 0.1
    r = W.roc(score, y, w, points=10_000)
    fpr, tpr, _ = roc_curve(y, score, sample_weight=w, drop_intermediate=False)
    np.testing.assert_allclose(r["fpr"], fpr, atol=1e-6)
    np.testing.assert_allclose(r["tpr"], tpr, atol=1e-6)
    assert len(W.roc(*_sample(n=5000), points=101)["fpr"]) <= 101


def test_training_weights_balance():
    y = np.array([1, 1, 0, 0, 0, 0])
    assert np.all(W.training_weights(np.ones(4), np.array([1, 0, 1, 0])) == 1.0)
    tw = W.training_weights(np.ones(6), y)
    assert tw[y == 1].sum() == pytest.approx(3) and tw[y == 0].sum() == pytest.approx(3)
    assert tw.mean() == pytest.approx(1.0)
    # physical weights inside a class are kept in ratio
    w = np.array([1e-3, 3e-3, 5.0, 5.0, 10.0, 20.0])
    tw = W.training_weights(w, y)
    assert tw[1] / tw[0] == pytest.approx(3) and tw[5] / tw[2] == pytest.approx(4)
    assert tw[y == 1].sum() == pytest.approx(tw[y == 0].sum())
    assert W.training_weights(w, y, balance=False) == pytest.approx(w * 6 / w.sum())
    with pytest.raises(W.WeightError, match="class"):
        W.training_weights(np.array([1.0, 0.0, 0.0]), np.array([1, 1, 0]))


def test_losses_equal_weights_are_unweighted():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(33, generator=g), (torch.rand(33, generator=g) > 0.5).float()
    ref = F.binary_cross_entropy_with_logits(logits, y)
    assert W.bce_with_logits(logits, y) == ref
    assert torch.allclose(W.bce_with_logits(logits, y, torch.full((33,), 0.25)), ref, atol=1e-7)
    out, tgt = torch.randn(33, 2, generator=g), torch.randn(33, 2, generator=g)
    ref = F.mse_loss(out, tgt)
    assert torch.allclose(W.mse(out, tgt), ref) and torch.allclose(W.mse(out, tgt, torch.ones(33)), ref)


def test_losses_weighted():
    logits, y = torch.tensor([0.0, 2.0, -1.0]), torch.tensor([1.0, 0.0, 0.0])
    per = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    w = torch.tensor([2.0, 1.0, 0.0])
    assert torch.allclose(W.bce_with_logits(logits, y, w), (2 * per[0] + per[1]) / 3)
    # a weight-2 row is the row counted twice
    dup = F.binary_cross_entropy_with_logits(torch.tensor([0.0, 0.0, 2.0]), torch.tensor([1.0, 1.0, 0.0]))
    assert torch.allclose(W.bce_with_logits(logits, y, w), dup)


def test_resolution():
    rng = np.random.default_rng(6)
    pred, true = rng.normal(size=(200, 2)), rng.normal(size=(200, 2))
    ref = float(np.sqrt(np.mean((pred - true) ** 2, axis=0)).mean())
    assert W.resolution(pred, true) == pytest.approx(ref)
    assert W.resolution(pred, true, np.full(200, 7.0)) == pytest.approx(ref)
    w = rng.integers(1, 4, 200)
    dup = W.resolution(np.repeat(pred, w, axis=0), np.repeat(true, w, axis=0))
    assert W.resolution(pred, true, w.astype(float)) == pytest.approx(dup)


def test_physical_weight():
    gw = np.array([0.5, 1.0, 2.5])
    w = W.physical_weight(gw, 120.0, gw.sum())
    assert w.sum() == pytest.approx(120.0) and w[2] / w[0] == pytest.approx(5)
    with pytest.raises(W.WeightError):
        W.physical_weight(gw, 1.0, 0.0)


def test_training_weights_negative_generator_weights_enter_as_abs():
    """A training subset of an NLO sample with a negative class total still trains (|w|)."""
    w = np.array([1.0, -3.0, 2.0, 0.5, -0.5, 1.5])
    y = np.array([0, 0, 0, 1, 1, 1])
    tw = W.training_weights(w, y)
    assert np.all(tw >= 0)
    assert tw == pytest.approx(W.training_weights(np.abs(w), y))
    assert tw[y == 0].sum() == pytest.approx(tw[y == 1].sum())
