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
    # the binned block: inclusive = the point's resolution and its baseline's; the bins split the test rows
    for m in (pre, ft):
        inc = m["binned"]["inclusive"]
        assert inc["model"]["mean"] == pytest.approx(m["met_resolution"], rel=1e-9)
        assert inc["reco"]["mean"] == pytest.approx(m["baseline"]["met_resolution"], rel=1e-9)
        assert inc["improvement"]["mean"] == pytest.approx(1 - m["met_resolution"] / m["baseline"]["met_resolution"])
        assert sum(b["n"] for b in m["binned"]["bins"]) == m["n_test"]


#: events generated per process for the qg training test: quark-rich Z+jet, gluon-rich dijet
QG_EVENTS = {"zjets": 200, "dijet": 200}


@pytest.fixture(scope="module")
def real_qg_tensors(testdata, tmp_path_factory) -> Path:
    """qg tensors from real events: Pythia8 Z+jet and dijet -> the builtin Delphes engine with the
    ATLAS-like card -> the Delphes reader -> tensorize (real jets with parton labels and constituents;
    the shared Delphes files are ttbar only, whose light jets are nearly all quarks)."""
    import copy

    pytest.importorskip("pythia8mc")
    from fast2full.delphes.engine import simulate
    from fast2full.generate import run_generate
    from fast2full.readers.physlite import skim_physlite

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    d = tmp_path_factory.mktemp("real_qg")
    objs = []
    for p, n in QG_EVENTS.items():
        cfg = copy.deepcopy(config)
        cfg["processes"][p]["events_per_chunk"] = n
        gen = run_generate(cfg, p, 0, d / f"gen_{p}.parquet")
        simulate(ROOT / "cards" / "atlas_like.tcl", gen, d / f"sim_{p}.root")
        skim_delphes(str(d / f"sim_{p}.root"), str(d / f"obj_{p}.parquet"), cfg, p, chunk=0)
        objs.append(d / f"obj_{p}.parquet")
    qg = d / "tensors" / "qg"
    tensorize(objs, qg / "atlas_like", config, "qg", "atlas_like")
    # the reduced inputs (fast2full.plan.REDUCED_INPUTS): the same objects, jet observables only, and the
    # real PHYSLITE example (no constituents) normalised with them
    tensorize(objs, qg / "atlas_like_jet", config, "qg", "atlas_like_jet", reduced_inputs=True)
    fs = d / "physlite.parquet"
    skim_physlite(str(testdata / "PHYSLITE_example.root"), str(fs), config, "zjets_ee")
    norm = qg / "atlas_like_jet" / "norm.json"
    tensorize([fs], qg / "atlas_fullsim", config, "qg", "atlas_fullsim", norm_path=norm, reduced_inputs=True)
    return d / "tensors"


def test_real_qg_binned_auc_matches_sklearn(real_qg_tensors, tmp_path):
    """metrics.json's binned block: the AUC inclusive and in each jet-pT bin equals scikit-learn's
    weighted roc_auc_score on the same test rows, for the model and the -ntrk baseline."""
    from sklearn.metrics import roc_auc_score

    from fast2full import predictions as P
    from fast2full.taskmetrics import QG_PT_BINS_GEV

    settings = TrainSettings(
        learning_rates=[3e-3],
        pretrain_min_steps=30,
        pretrain_max_steps=60,
        val_every_steps=10,
        patience=3,
        batch_size=32,
        model_size="tiny",
        source="atlas_like",
    )
    spec = JobSpec("qg", "dnn", "atlas_like", "pretrain", "all", [0, 1], real_qg_tensors, tmp_path / "pre")
    m, m1 = run_job(spec, settings)
    b = m["binned"]
    assert b is not None and [x["bin"] for x in b["bins"]] == ["25-40", "40-60", "60-100", "100-200", ">200"]
    assert b["edges"][:-1] == list(QG_PT_BINS_GEV[:-1]) and b["edges"][-1] is None
    test = tensorio.load(real_qg_tensors / "qg" / "atlas_like" / "test.parquet")
    pred = P.read(tmp_path / "pre" / "seed0" / P.FILENAME)
    np.testing.assert_array_equal(pred.event_id, test.event_id)
    assert b["inclusive"]["n"] == len(test)
    assert b["inclusive"]["auc"] == pytest.approx(m["test_auc"], abs=1e-12)
    assert b["inclusive"]["baseline_auc"] == pytest.approx(m["baseline"]["test_auc"], abs=1e-12)
    pt = test.aux["jet_pt"]
    checked = 0
    for x in b["bins"]:
        sel = (pt >= x["lo"]) & (pt < (np.inf if x["hi"] is None else x["hi"]))
        assert x["n"] == int(sel.sum())
        if x["auc"] is None:
            assert x["n"] < 5 or len(set(test.y[sel])) < 2
            continue
        w = test.weight[sel]
        assert x["auc"] == pytest.approx(roc_auc_score(test.y[sel], pred.pred[sel], sample_weight=w), abs=1e-9)
        assert x["baseline_auc"] == pytest.approx(
            roc_auc_score(test.y[sel], pred.baseline[sel], sample_weight=w), abs=1e-9
        )
        checked += 1
    assert checked >= 2, b

    # aggregate's binned table: per bin the seed mean and spread of these two results, beside the baseline
    from fast2full.aggregate import binned, load_metrics

    table, _ = load_metrics([tmp_path / "pre" / f"seed{s}" / "metrics.json" for s in (0, 1)])
    summ = binned.summarise(binned.load_binned(table))
    assert list(summ["bin"]) == ["inclusive", "25-40", "40-60", "60-100", "100-200", ">200"]
    for r, b0, b1 in zip(
        summ.itertuples(), [m["binned"]["inclusive"], *b["bins"]], [m1["binned"]["inclusive"], *m1["binned"]["bins"]]
    ):
        if b0["auc"] is None:
            assert not np.isfinite(r.model_mean)
            continue
        assert r.model_mean == pytest.approx((b0["auc"] + b1["auc"]) / 2)
        assert r.model_std == pytest.approx(np.std([b0["auc"], b1["auc"]], ddof=1))
        assert r.baseline_mean == pytest.approx(b0["baseline_auc"]) and r.n_seeds == 2
    md = "\n".join(binned.markdown(summ, lambda h, rows: "\n".join(" | ".join(map(str, x)) for x in [h, *rows])))
    assert "### qg" in md and ">200" in md and f"{summ.model_mean.iloc[0]:.3g} ± " in md


@pytest.mark.parametrize("arch", ["dnn", "gnn", "transformer"])
def test_real_qg_atlas_fullsim_transfers_from_the_reduced_source(real_qg_tensors, tmp_path, arch):
    """The fair fast-to-full qg comparison: the atlas_fullsim points start from the model pretrained on
    the reduced-input source (atlas_like_jet), which loads on the PHYSLITE tensors and fine-tunes; the
    full-input source model does not fit them (one clear error)."""
    from fast2full.common import InputError

    st = TrainSettings(
        learning_rates=[3e-3],
        min_steps=10,
        max_steps=20,
        pretrain_min_steps=20,
        pretrain_max_steps=40,
        val_every_steps=5,
        patience=2,
        batch_size=32,
        model_size="tiny",
        source="atlas_like",
    )
    t = real_qg_tensors
    (pre,) = run_job(JobSpec("qg", arch, "atlas_like_jet", "pretrain", "all", [0], t, tmp_path / "pre"), st)
    assert pre["source"] == "atlas_like_jet" and pre["n_params"] > 0 and pre["binned"]["inclusive"]["auc"] is not None
    for mode in ("zeroshot", "finetune", "dann"):
        (m,) = run_job(JobSpec("qg", arch, "atlas_fullsim", mode, 40, [0], t, tmp_path / mode, tmp_path / "pre"), st)
        assert m["source"] == "atlas_like_jet" and m["pretrained_from"] == str(
            tmp_path / "pre" / "seed0" / "model.ckpt"
        )
        assert m["test_auc"] is not None and m["binned"]["inclusive"]["n"] == m["n_test"]
        if mode == "dann":  # the domain head sees the reduced source's events
            assert m["n_source"] > 0
    with pytest.raises(Exception, match="pretrain runs on the source domain"):
        run_job(JobSpec("qg", arch, "cms_like", "pretrain", "all", [0], t, tmp_path / "bad"), st)
    run_job(JobSpec("qg", arch, "atlas_like", "pretrain", "all", [0], t, tmp_path / "pre_full"), st)
    with pytest.raises(InputError, match="do not match the pretrained model"):
        run_job(JobSpec("qg", arch, "atlas_fullsim", "finetune", 40, [0], t, tmp_path / "x", tmp_path / "pre_full"), st)
