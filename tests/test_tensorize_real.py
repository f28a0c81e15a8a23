"""The tensor schema on real inputs: the shared Delphes (ATLAS, CMS cards) and PHYSLITE files via the readers."""

from __future__ import annotations

import copy
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import yaml

from fast2full import features as F
from fast2full import plan, tensorio
from fast2full.common import Fast2FullError
from fast2full.tensorize import SPLITS, tensorize

ROOT = Path(__file__).resolve().parents[1]
from fast2full.readers.delphes import skim_delphes  # noqa: E402
from fast2full.readers.physlite import skim_physlite  # noqa: E402

#: the Delphes example files are ttbar only; a copy relabelled as a background process gives the
#: background class and the quark/gluon jets (qg leaves ttbar out) on the same real objects
RELABELLED = "zjets"


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.fixture(scope="module")
def real_objects(testdata, tmp_path_factory, config) -> dict[str, list[Path]]:
    d = tmp_path_factory.mktemp("real_objects")
    out: dict[str, list[Path]] = {}
    for domain, card in (("atlas_like", "ATLAS"), ("cms_like", "CMS")):
        f = d / f"{domain}_ttbar.parquet"
        skim_delphes(str(testdata / f"delphes_{card}_ttbar100.root"), str(f), config, "ttbar")
        ev = ak.from_parquet(f)
        bkg = ak.with_field(
            ak.with_field(ev, np.zeros(len(ev), dtype=bool), "is_signal"),
            ak.enforce_type(ak.Array([RELABELLED] * len(ev)), "string"),
            "process",
        )
        fb = d / f"{domain}_{RELABELLED}.parquet"
        ak.to_parquet(bkg, fb)
        out[domain] = [f, fb]
    f = d / "atlas_fullsim_zjets_ee.parquet"
    skim_physlite(str(testdata / "PHYSLITE_example.root"), str(f), config, "zjets_ee")
    out["atlas_fullsim"] = [f]
    return out


def _signature(path: Path) -> tuple:
    import pyarrow.parquet as pq

    ts = tensorio.load(path, raw=True)
    meta = ts.meta
    return (
        tuple((f.name, str(f.type)) for f in pq.read_schema(path)),
        sorted(meta),
        tuple(a.shape[1:] for a in (ts.x, ts.mask, ts.y, ts.baseline, ts.weight, ts.event_id)),
        tuple(meta[k] for k in ("features", "units", "targets", "max_objects", "n_features")),
        meta["norm"],
    )


@pytest.mark.parametrize(
    "task,domains",
    [
        ("sigbkg", ["atlas_like", "cms_like"]),  # the Z->mumu PHYSLITE example has no event in the region
        ("qg", ["atlas_like", "cms_like"]),  # atlas_fullsim: the reduced inputs, next test
        ("qg", ["atlas_like_jet", "atlas_fullsim"]),
        ("met", ["atlas_like", "cms_like", "atlas_fullsim"]),
    ],
)
def test_real_domains_share_one_schema(real_objects, tmp_path, config, task, domains):
    norm = tmp_path / domains[0] / "norm.json"
    reduced = plan.reduced_tensor_domains(config, task)
    for d in domains:
        tensorize(
            real_objects[plan.object_domain(config, d)],
            tmp_path / d,
            config,
            task,
            d,
            norm_path=None if d == domains[0] else norm,
            reduced_inputs=d in reduced,
        )
    for s in SPLITS:
        sigs = [_signature(tmp_path / d / f"{s}.parquet") for d in domains]
        assert all(sig == sigs[0] for sig in sigs), f"{task}/{s}: schemas differ across {domains}"
    for d in domains:
        ts = tensorio.load(tmp_path / d / "train.parquet")
        assert len(ts) > 0 and np.isfinite(ts.x).all() and np.isfinite(ts.y).all()
        assert ts.meta["domain"] == d and ts.meta["norm"]["domain"] == domains[0]
        # the shape the sizing benchmark (bench/bench_train.py --shapes-from) builds from the config alone
        if d not in reduced:
            assert ts.x.shape[1:] == (
                F.input_slots(task, config["tensors"]["tasks"][task]),
                len(F.names(task)),
            ), f"{task}/{d}"


def test_real_qg_reduced_inputs_match_the_reduced_source(real_objects, tmp_path, config):
    """qg on atlas_fullsim (PHYSLITE: no constituents) and the reduced-input source copy made from the
    source's objects: the jet observables in one slot, the same features, shape and normalisation (so
    a model pretrained on the one loads on the other; the training side: test_train_real)."""
    assert plan.reduced_tensor_domains(config, "qg") == ["atlas_like_jet", "atlas_fullsim"]
    assert plan.source_for("atlas_like", "qg", "atlas_fullsim") == "atlas_like_jet"
    assert plan.source_for("atlas_like", "qg", "cms_like") == "atlas_like"
    assert plan.object_domain(config, "atlas_like_jet") == "atlas_like"
    root = tmp_path / "qg"
    for d, norm in (("atlas_like", None), ("atlas_like_jet", None), ("atlas_fullsim", root / "atlas_like_jet")):
        tensorize(
            real_objects[plan.object_domain(config, d)],
            root / d,
            config,
            "qg",
            d,
            norm_path=norm / "norm.json" if norm else None,
            reduced_inputs=d != "atlas_like",
        )
    for split in SPLITS:
        full, red, fs = (
            tensorio.load(root / d / f"{split}.parquet", raw=True)
            for d in ("atlas_like", "atlas_like_jet", "atlas_fullsim")
        )
        assert full.meta["max_objects"] == 1 + config["tensors"]["tasks"]["qg"]["max_constituents"]
        assert red.meta["max_objects"] == fs.meta["max_objects"] == 1 and red.x.shape[1:] == fs.x.shape[1:]
        for k in ("features", "units", "n_features", "norm"):
            assert red.meta[k] == fs.meta[k], k
        assert fs.meta["reduced_inputs"]["settings"]["constituent_types"] == []
        assert full.meta["reduced_inputs"] is None
        # the reduced source holds the full source's jets, slot 0 only (the jet observables)
        np.testing.assert_array_equal(red.event_id, full.event_id)
        np.testing.assert_array_equal(red.x[:, 0], full.x[:, 0])
        assert full.mask[:, 1:].any()
    with pytest.raises(Fast2FullError, match="task met has no reduced inputs"):
        tensorize(real_objects["atlas_fullsim"], tmp_path / "met", config, "met", "atlas_fullsim", reduced_inputs=True)


def test_real_physlite_sigbkg_region_empty_is_a_clear_error(real_objects, tmp_path, config):
    config = copy.deepcopy(config)  # the analysis region (1 lepton, >= 4 jets, >= 1 b-tag): no Z->ee event
    config["tensors"]["tasks"]["sigbkg"]["region"] = {"n_leptons": 1, "min_jets": 4, "min_btags": 1}
    with pytest.raises(Fast2FullError, match=r"sigbkg/atlas_fullsim: no rows after selection in .*zjets_ee"):
        tensorize(real_objects["atlas_fullsim"], tmp_path / "out", config, "sigbkg", "atlas_fullsim")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_real_met_targets_are_true_met(real_objects, tmp_path, config):
    tensorize(real_objects["atlas_fullsim"], tmp_path, config, "met", "atlas_fullsim")
    ev = ak.from_parquet(real_objects["atlas_fullsim"][0])
    ts = tensorio.load(tmp_path / "train.parquet", raw=True)
    idx = np.searchsorted(ak.to_numpy(ev.event_id), ts.event_id, sorter=np.argsort(ak.to_numpy(ev.event_id)))
    ev = ev[np.argsort(ak.to_numpy(ev.event_id))][idx]
    np.testing.assert_allclose(np.hypot(*ts.y.T), ak.to_numpy(ev.gen_met.met), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(np.hypot(*ts.baseline.T), ak.to_numpy(ev.met.met), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("task", ["sigbkg", "qg", "met"])
def test_real_tensors_set_backbones_equal_the_reference_ones(real_objects, tmp_path, config, task, legacy_backbones):
    """On tensors of real Delphes events (CMS card), the engine's GNN and transformer — real slots only,
    the GNN's first-block neighbours found once, an ensemble of 2 — give the outputs and weight gradients
    of the reference backbones that compute every padded slot (``bench/_legacy_backbones.py``)."""
    import torch

    from fast2full.models import build_backbone

    tensorize(real_objects["cms_like"], tmp_path, config, task, "cms_like")
    ts = tensorio.load(tmp_path / "train.parquet")
    assert 0.0 < ts.mask.mean() < 1.0  # real events leave slots empty
    n, f = ts.x.shape[1:]
    rows = len(ts) // 2  # member j: every other event
    xs = [torch.from_numpy(ts.x[j::2][:rows]) for j in range(2)]
    ms = [torch.from_numpy(ts.mask[j::2][:rows]) for j in range(2)]
    key = legacy_backbones.engine_key
    for arch in ("gnn", "transformer"):
        refs = []
        for j in range(2):
            torch.manual_seed(j)
            refs.append(legacy_backbones.build_legacy_backbone(arch, f, n, "small").eval())
        states = [{key(k): v for k, v in r.state_dict().items()} for r in refs]
        net = build_backbone(arch, f, n, "small", members=2).eval()
        net.load_state_dict({k: torch.stack([s[k] for s in states]) for k in states[0]})
        extra = ()
        if arch == "gnn":  # the neighbours the engine finds once per event, gathered for these rows
            extra = (torch.stack([net.first_neighbours(xs[j], ms[j]) for j in range(2)]),)
        out = net(torch.stack(xs), torch.stack(ms), *extra)
        out.square().sum().backward()
        params = dict(net.named_parameters())
        for j, ref in enumerate(refs):
            ref_out = ref(xs[j], ms[j])
            ref_out.square().sum().backward()
            torch.testing.assert_close(out[j], ref_out, atol=1e-4, rtol=1e-4, msg=f"{task}/{arch}")
            for name, q in ref.named_parameters():
                torch.testing.assert_close(
                    params[key(name)].grad[j], q.grad, atol=1e-4, rtol=1e-3, msg=f"{task}/{arch}/{name}"
                )
