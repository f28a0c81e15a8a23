"""The qg and met tasks on real generated events: Pythia8 -> builtin Delphes engine (ATLAS-like card,
minimum-bias pile-up merged) -> Delphes reader -> tensors.

Checks what the tasks claim physically: after the quark/gluon reweighting the jet kinematics alone do
not separate quarks from gluons (while with the physical weights they do), the track-multiplicity
baseline does; the reconstructed MET is minus the sum of the particle-flow candidates; the MET target
is the generated neutrinos' transverse momentum; pile-up reaches the soft term.
"""

from __future__ import annotations

import copy
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import yaml

from fast2full import tensorio
from fast2full.taskmetrics import QG_PT_BINS_GEV, auc_in_bins, met_resolution_in_bins
from fast2full.tensorize import SPLITS, tensorize
from fast2full.weights import auc as weighted_auc

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: events generated per process (quark-rich Z/W+jets, gluon-rich dijet) and minimum-bias events
N_EVENTS = {"dijet": 400, "zjets": 400, "wjets": 300}
N_MINBIAS = 100
PILEUP_MEAN = 5.0
NEUTRINOS = (12, 14, 16)


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.fixture(scope="module")
def generated(tmp_path_factory, config) -> dict:
    pytest.importorskip("pythia8mc")
    from fast2full.delphes.engine import simulate
    from fast2full.generate import run_generate
    from fast2full.readers.delphes import skim_delphes

    d = tmp_path_factory.mktemp("physics")
    cfg = copy.deepcopy(config)
    cfg["processes"]["minbias"]["events_per_chunk"] = N_MINBIAS
    run_generate(cfg, "minbias", 0, d / "minbias.parquet")
    out = {"gen": {}, "sim": {}, "objects": []}
    for p, n in N_EVENTS.items():
        cfg["processes"][p]["events_per_chunk"] = n
        gen = run_generate(cfg, p, 0, d / f"gen_{p}.parquet")
        sim = d / f"sim_{p}.root"
        simulate(
            ROOT / "cards" / "atlas_like.tcl", gen, sim, pileup_paths=[d / "minbias.parquet"], pileup_mean=PILEUP_MEAN
        )
        obj = d / f"obj_{p}.parquet"
        skim_delphes(str(sim), str(obj), cfg, p, chunk=0)
        out["gen"][p], out["sim"][p] = gen, sim
        out["objects"].append(obj)
    for task in ("qg", "met"):
        tensorize(out["objects"], d / task, cfg, task, "atlas_like")
    out["tensors"] = d
    return out


def _all_rows(root: Path, task: str):
    parts = [tensorio.load(root / task / f"{s}.parquet", raw=True) for s in SPLITS]
    cat = lambda get: np.concatenate([get(p) for p in parts])  # noqa: E731
    return {
        "y": cat(lambda p: p.y),
        "w": cat(lambda p: p.weight),
        "w0": cat(lambda p: p.aux["event_weight"]),
        "pt": cat(lambda p: p.aux["jet_pt"]),
        "eta": cat(lambda p: p.aux["jet_abs_eta"]),
        "base": cat(lambda p: p.baseline),
    }


def test_qg_kinematics_alone_do_not_separate_after_reweighting(generated):
    r = _all_rows(generated["tensors"], "qg")
    assert (r["y"] == 1).sum() > 100 and (r["y"] == 0).sum() > 100
    # without the reweighting the jet pT separates: quark-rich W/Z+jets jets are harder than gluon-rich
    # dijet jets (equal weights per event; with the physical weights in pb the dijet cross-section
    # dominates both classes)
    assert abs(weighted_auc(r["pt"], r["y"]) - 0.5) > 0.08
    for v in ("pt", "eta"):
        assert abs(weighted_auc(r[v], r["y"], r["w"]) - 0.5) < 0.05, v
    bins = auc_in_bins(r["pt"], r["y"], r["w"], r["pt"], QG_PT_BINS_GEV, baseline=r["base"])
    filled = [b for b in bins["bins"] if b["auc"] is not None]
    assert len(filled) >= 3, bins
    # the track multiplicity does separate (fewer tracks: quark), inclusively and in most pT bins
    assert bins["inclusive"]["baseline_auc"] > 0.62
    assert sum(b["baseline_auc"] > 0.55 for b in filled) >= len(filled) - 1


def test_qg_label_fractions_per_process(generated):
    meta = tensorio.read_meta(generated["tensors"] / "qg" / "train.parquet")
    cf = meta["task_summary"]
    for p in N_EVENTS:  # the cut flow counts quark and gluon jets (rows, weight, ESS) before and after the reweighting
        c = meta["cutflow"][p]
        assert c["quark_jets"]["n"] + c["gluon_jets"]["n"] > 0
        assert c["quark_jets_reweighted"]["n"] == c["quark_jets"]["n"]
    # Z/W + jet is quark-dominated (qg -> Vq), QCD dijets at low pT gluon-dominated (gg -> gg, qg)
    assert cf["zjets"]["quark_fraction"] > 0.55 and cf["wjets"]["quark_fraction"] > 0.55
    assert cf["dijet"]["quark_fraction"] < 0.45
    assert all(c["mean_constituents"] > 5 for c in cf.values())


def test_reco_met_is_minus_the_particle_flow_sum(generated):
    from fast2full.readers.delphes import _open_tree, objects_from_arrays

    tree, br = _open_tree(str(generated["sim"]["wjets"]))
    a = tree.arrays(list(br.values()), library="ak")
    ev = objects_from_arrays({leaf: a[p] for leaf, p in br.items()}, process="wjets", signal=False, chunk=0)
    sx = ak.to_numpy(ak.sum(ev.pflow.pt * np.cos(ev.pflow.phi), axis=1))
    sy = ak.to_numpy(ak.sum(ev.pflow.pt * np.sin(ev.pflow.phi), axis=1))
    mx, my = (ak.to_numpy(ev.met.met * f(ev.met.phi)) for f in (np.cos, np.sin))
    np.testing.assert_allclose(mx, -sx, atol=0.02)
    np.testing.assert_allclose(my, -sy, atol=0.02)
    assert ak.any(ev.pflow.is_pu)  # pile-up tracks reach the candidates, flagged


def test_met_target_is_the_generated_neutrinos(generated):
    gen = ak.from_parquet(generated["gen"]["wjets"])
    prt = gen.particles
    nu = prt[(prt.status > 0) & ((abs(prt.pid) == 12) | (abs(prt.pid) == 14) | (abs(prt.pid) == 16))]
    ref = {int(i): (float(x), float(y)) for i, x, y in zip(gen.event_id, ak.sum(nu.px, axis=1), ak.sum(nu.py, axis=1))}
    ts = tensorio.load(generated["tensors"] / "met" / "train.parquet", raw=True)
    mine = [i for i, e in enumerate(ts.event_id) if int(e) in ref]
    assert len(mine) > 50
    want = np.array([ref[int(ts.event_id[i])] for i in mine])
    np.testing.assert_allclose(ts.y[mine], want, atol=0.05)
    # W -> l nu: real MET, well above the reconstructed MET's resolution
    assert np.median(np.hypot(*want.T)) > 20


def test_met_inputs_carry_the_soft_term_and_pileup(generated):
    ts = tensorio.load(generated["tensors"] / "met" / "train.parquet", raw=True)
    f = ts.meta["features"]
    col = {n: ts.x[:, :, f.index(n)] for n in f}
    pu = (col["pt"] * col["is_soft_pu_tracks"] * ts.mask).sum(1)
    assert (pu > 0).mean() > 0.5  # mean 5 pile-up events: most events have pile-up tracks in the soft term
    cand = (col["is_pf_track"] + col["is_pf_photon"] + col["is_pf_neutral_hadron"]) * ts.mask
    assert cand.sum(1).mean() > 10
    # the reconstructed MET (the baseline) is worse than perfect and finite in every bin of true MET
    res = met_resolution_in_bins(ts.baseline, ts.y, ts.baseline, ts.weight)
    assert 3.0 < res["inclusive"]["reco"]["mean"] < 60.0
    assert res["inclusive"]["improvement"]["mean"] == 0.0
