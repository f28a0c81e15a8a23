import numpy as np
import pytest

from fast2full import tensorio
from fast2full.train import baseline_metrics, classification_metrics


def _set(score, y):
    n = len(y)
    return tensorio.TensorSet(
        np.zeros((n, 1, 1), np.float32),
        np.ones((n, 1), bool),
        y.astype(np.float32),
        score.astype(np.float32),
        np.ones(n),
        np.arange(n),
        {"baseline": "HT"},
    )


def test_auc_of_an_unbounded_discriminant_is_rank_based():
    # HT-like scores in the hundreds of GeV: a sigmoid would saturate them all to 1 (AUC 0.5)
    y = np.array([0, 0, 1, 1])
    assert classification_metrics(np.array([200.0, 300.0, 400.0, 500.0]), y)["test_auc"] == pytest.approx(1.0)


def test_baseline_direction_is_fixed_on_the_orientation_split():
    rng = np.random.default_rng(0)
    y = (rng.random(400) > 0.5).astype(float)
    score = -y * 50 + rng.normal(300, 30, 400)  # signal has LOWER values
    val, test = _set(score[:200], y[:200]), _set(score[200:], y[200:])
    assert baseline_metrics(test, "sigbkg")["test_auc"] < 0.5
    oriented = baseline_metrics(test, "sigbkg", orient=val)
    assert oriented["test_auc"] > 0.5 and "reversed" in oriented["name"]
