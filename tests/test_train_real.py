"""Training on real tensors: the shared Delphes ttbar files (ATLAS and CMS cards) through the reader
and ``tensorize`` (MET regression: source ATLAS-like, target CMS-like), then pretrain and fine-tune."""

from __future__ import annotations

from pathlib import Path

import lightning  # noqa: E402, F401  (a hard dependency: a broken import fails the run)
import numpy as np
import pytest
import yaml

from fast2full import tensorio  # noqa: E402
from fast2full.readers.delphes import skim_delphes  # noqa: E402
from fast2full.tensorize import tensorize  # noqa: E402
from fast2full.train import JobSpec, TrainSettings, run_job  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real_met_tensors(testdata, tmp_path_factory) -> Path:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    d = tmp_path_factory.mktemp("real")
    norm = None
    for domain, card in (("atlas_like", "ATLAS"), ("cms_like", "CMS")):
        objs = d / f"{domain}.parquet"
        skim_delphes(str(testdata / f"delphes_{card}_ttbar100.root"), str(objs), config, "ttbar")
        out = d / "tensors" / "met" / domain
        tensorize([objs], out, config, "met", domain, norm_path=norm)
        norm = norm or out / "norm.json"
    return d / "tensors"


@pytest.mark.parametrize("arch", ["dnn", "gnn"])
def test_real_met_pretrain_and_finetune(real_met_tensors, tmp_path, arch):
    settings = TrainSettings(
        learning_rates=[3e-3],
        min_steps=30,
        max_steps=200,
        pretrain_min_steps=100,
        pretrain_max_steps=400,
        val_every_steps=5,
        patience=8,
        batch_size=16,
        model_size="tiny",
        source="atlas_like",
    )
    (pre,) = run_job(
        JobSpec("met", arch, "atlas_like", "pretrain", "all", [0], real_met_tensors, tmp_path / "pre"), settings
    )
    test = tensorio.load(real_met_tensors / "met" / "atlas_like" / "test.parquet")
    zero_pred = float(np.sqrt(np.mean(test.y**2, axis=0)).mean())
    assert np.isfinite(pre["met_resolution"]) and pre["met_resolution"] < zero_pred
    assert pre["baseline"]["met_resolution"] > 0
    assert pre["steps"] > 0 and pre["n_train"] == len(
        tensorio.load(real_met_tensors / "met" / "atlas_like" / "train.parquet")
    )
    (ft,) = run_job(
        JobSpec(
            "met",
            arch,
            "cms_like",
            "finetune",
            30,
            [0],
            real_met_tensors,
            tmp_path / "ft",
            pretrained_dir=tmp_path / "pre",
        ),
        settings,
    )
    assert ft["target"] == "cms_like" and 0 < ft["n_train"] <= 30 and np.isfinite(ft["met_resolution"])
