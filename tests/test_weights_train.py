"""Weights in the training loop: equal weights give exactly the unweighted results; the loss, the
early-stopping loss and every metric see the weights."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fast2full import tensorio
from fast2full import weights as W
from fast2full.models.data import set_weights
from fast2full.models.synthetic import write_synthetic_tensors
from fast2full.train import JobSpec, TrainSettings, baseline_metrics, run_job

SOURCE, TARGET = "atlas_like", "cms_like"


def _settings():
    return TrainSettings(
        learning_rates=[3e-3],
        min_steps=6,
        max_steps=15,
        pretrain_min_steps=6,
        pretrain_max_steps=15,
        patience=2,
        batch_size=64,
        model_size="tiny",
        source=SOURCE,
    )


def _reweight(root: Path, task: str, fn) -> None:
    """Rewrite every tensor file of ``task`` with weight = fn(y, event_id)."""
    for p in (root / task).glob("*/*.parquet"):
        ts = tensorio.load(p, raw=True)
        tensorio.write(
            p,
            x=ts.x,
            mask=ts.mask,
            y=ts.y,
            baseline=ts.baseline,
            weight=fn(ts.y, ts.event_id),
            event_id=ts.event_id,
            meta={k: v for k, v in ts.meta.items() if k not in ("n_rows", "max_objects", "n_features")},
        )


def _run(root: Path, out: Path, task: str) -> dict:
    spec = JobSpec(
        task=task, arch="dnn", target=SOURCE, mode="pretrain", size="all", seeds=[0], tensors=root, outdir=out
    )
    return run_job(spec, _settings())[0]


@pytest.mark.parametrize("task", ["sigbkg", "met"])
def test_equal_weights_any_scale_identical(tmp_path, task):
    """Physical weights of any common scale (pb per event) give bit-identical training and metrics, and for
    a balanced classification set the training weights are exactly 1 (the unweighted mean loss)."""
    runs = {}
    for scale in (1.0, 3.7e-4):
        root = tmp_path / f"t{scale}"
        write_synthetic_tensors(root, task, {SOURCE: 0.0}, sizes={"train": 200, "val": 80, "test": 120}, max_objects=4)
        _reweight(root, task, lambda y, e, s=scale: np.full(len(y), s))
        runs[scale] = _run(root, tmp_path / f"o{scale}", task)
    a, b = runs[1.0], runs[3.7e-4]
    for k in ("test_auc", "test_loss", "val_loss", "met_resolution", "epochs", "best_epoch", "steps", "baseline"):
        assert a[k] == b[k], k
    assert a["ess_test"] == pytest.approx(a["n_test"])
    if task == "sigbkg":
        assert a["test_auc"] == a["test_auc_unweighted"]
    else:
        assert a["met_resolution"] == pytest.approx(a["met_resolution_unweighted"], rel=1e-12)


def test_balanced_equal_weights_are_one():
    y = np.r_[np.ones(30), np.zeros(30)].astype(np.float32)
    ts = tensorio.TensorSet(
        np.zeros((60, 1, 1), np.float32), np.ones((60, 1), bool), y, y, np.full(60, 0.02), np.arange(60)
    )
    assert torch.equal(set_weights(ts), torch.ones(60))


def test_weights_change_training_and_metrics(tmp_path):
    """Non-uniform weights reach the loss, the early-stopping loss and the metrics (the test can fail)."""
    root = tmp_path / "t"
    write_synthetic_tensors(root, "sigbkg", {SOURCE: 0.0}, sizes={"train": 200, "val": 80, "test": 120}, max_objects=4)
    base = _run(root, tmp_path / "o1", "sigbkg")
    _reweight(root, "sigbkg", lambda y, e: np.where(e % 3 == 0, 5.0, 0.2))
    rew = _run(root, tmp_path / "o2", "sigbkg")
    assert rew["val_loss"] != base["val_loss"]
    assert rew["test_auc"] != rew["test_auc_unweighted"]
    test = tensorio.load(root / "sigbkg" / SOURCE / "test.parquet")
    assert rew["ess_test"] == pytest.approx(W.ess(test.weight), abs=1e-3) and rew["ess_test"] < len(test)
    assert rew["sample_sizes"]["test"]["classes"]["1"]["n"] == int(test.y.sum())
    bl = baseline_metrics(test, "sigbkg")
    assert bl["test_auc"] == pytest.approx(W.auc(test.baseline, test.y, test.weight))
    assert json.loads(json.dumps(rew))  # metrics stay JSON-serialisable
