"""Tensor schema (contract 3) built from objects: one schema per task across domains, splits, errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from fast2full import features as F
from fast2full import plan, tensorio
from fast2full.common import Fast2FullError, InputError
from fast2full.tensorize import SPLITS, split_index, synthetic_objects, tensorize

ROOT = Path(__file__).resolve().parents[1]
TASKS = list(plan.TASKS)
PROCESSES = ["ttbar", "wjets", "zjets", "dijet", "minbias"]
N_EVENTS = 400


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def _write_domain(d: Path, seed: int) -> list[Path]:
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for i, p in enumerate(PROCESSES):
        f = d / f"{p}.parquet"
        ak.to_parquet(synthetic_objects(N_EVENTS, p, seed=seed * 10 + i), f)
        out.append(f)
    return out


@pytest.fixture(scope="module")
def synthetic_domains(tmp_path_factory) -> dict[str, list[Path]]:
    """Objects files for three domains (different random content, same processes and event IDs)."""
    base = tmp_path_factory.mktemp("objects")
    return {d: _write_domain(base / d, seed) for seed, d in enumerate(["atlas_like", "cms_like", "atlas_fullsim"])}


def _tensorize_all(domains: dict[str, list[Path]], outroot: Path, config: dict, task: str) -> dict[str, Path]:
    names = list(domains)
    src = names[0]
    outs = {}
    for d in names:
        outs[d] = outroot / task / d
        tensorize(
            domains[d], outs[d], config, task, d, norm_path=None if d == src else outroot / task / src / "norm.json"
        )
    return outs


@pytest.fixture(scope="module")
def synthetic_tensors(synthetic_domains, tmp_path_factory, config) -> dict[str, dict[str, Path]]:
    out = tmp_path_factory.mktemp("tensors")
    return {t: _tensorize_all(synthetic_domains, out, config, t) for t in TASKS}


def _schema_signature(path: Path) -> tuple:
    schema = pq.read_schema(path)
    meta = tensorio.read_meta(path)
    ts = tensorio.load(path, raw=True)
    shapes = tuple(a.shape[1:] for a in (ts.x, ts.mask, ts.y, ts.baseline, ts.weight, ts.event_id))
    fixed = {
        k: meta[k]
        for k in (
            "features",
            "units",
            "feature_kinds",
            "targets",
            "max_objects",
            "n_features",
            "baseline",
            "labels",
            "norm",
        )
    }
    return (tuple((f.name, str(f.type)) for f in schema), sorted(meta), shapes, json.dumps(fixed, sort_keys=True))


def _assert_same_schema(dirs: dict[str, Path]) -> None:
    for s in SPLITS:
        sigs = {d: _schema_signature(p / f"{s}.parquet") for d, p in dirs.items()}
        first = next(iter(sigs.values()))
        for d, sig in sigs.items():
            assert sig == first, f"{d}/{s} schema differs from {next(iter(sigs))}"


# ------------------------------------------------------------------------------------- schema


@pytest.mark.parametrize("task", TASKS)
def test_schema_identical_across_domains(synthetic_tensors, task):
    dirs = synthetic_tensors[task]
    _assert_same_schema(dirs)
    src = dirs["atlas_like"]
    norm = json.loads((src / "norm.json").read_text())
    assert not (dirs["cms_like"] / "norm.json").exists()
    for d in dirs.values():
        meta = tensorio.read_meta(d / "train.parquet")
        assert meta["norm"]["mean"] == norm["mean"] and meta["norm"]["domain"] == "atlas_like"
        tc = yaml.safe_load((ROOT / "config.yaml").read_text())["tensors"]["tasks"]
        assert (
            meta["max_objects"]
            == {
                "sigbkg": tc["sigbkg"]["max_objects"],
                "qg": 1 + tc["qg"]["max_constituents"],
                "met": tc["met"]["max_objects"] + tc["met"]["max_candidates"],
            }[task]
        )
        assert len(meta["features"]) == len(meta["units"]) == meta["n_features"]
        assert ("class_balance" in meta) == (task != "met")


@pytest.mark.parametrize("task", TASKS)
def test_source_normalisation_standardises_train(synthetic_tensors, task):
    ts = tensorio.load(synthetic_tensors[task]["atlas_like"] / "train.parquet")
    vals = ts.x[ts.mask]
    names = ts.meta["features"]
    for j, (kind, flag) in enumerate(zip(ts.meta["feature_kinds"], F.slot_flags(task))):
        # a slot-flagged feature (qg: jet observables, constituent features) is standardised over the
        # slots it applies to and stays exactly 0 in the others
        on = np.ones(len(vals), dtype=bool) if flag is None else vals[:, names.index(flag.lstrip("!"))] > 0.5
        on = ~on if flag and flag.startswith("!") else on
        if kind == "continuous":
            v = vals[on, j]
            assert abs(v.mean()) < 1e-3 and abs(v.std() - 1) < 1e-3, names[j]
            assert (vals[~on, j] == 0).all(), names[j]
        else:
            assert set(np.unique(vals[:, j])) <= {-1.0, 0.0, 1.0}
    assert (ts.x[~ts.mask] == 0).all()


# ------------------------------------------------------------------------------------- content


def test_sigbkg_rows(synthetic_tensors, synthetic_domains, config):
    ts = tensorio.load(synthetic_tensors["sigbkg"]["atlas_like"] / "train.parquet", raw=True)
    f = ts.meta["features"]
    # MET object first, then the configured region: n_leptons, >= min_jets, >= min_btags
    region = config["tensors"]["tasks"]["sigbkg"]["region"]
    assert (ts.x[:, 0, f.index("is_met")] == 1).all()
    lep = ((ts.x[:, :, f.index("is_electron")] + ts.x[:, :, f.index("is_muon")]) * ts.mask).sum(1)
    assert (lep == region["n_leptons"]).all()
    assert ((ts.x[:, :, f.index("is_jet")] * ts.mask).sum(1) >= region["min_jets"]).all()
    assert ((ts.x[:, :, f.index("btag")] * ts.mask).sum(1) >= region["min_btags"]).all()
    assert set(ts.meta["processes"]) <= {"ttbar", "wjets", "zjets"}
    assert set(np.unique(ts.y)) == {0.0, 1.0}
    cb = ts.meta["class_balance"]["counts"]
    assert cb["1"] == int(ts.y.sum()) and cb["0"] == int(len(ts) - ts.y.sum())
    # MET slot equals the objects' reconstructed MET; baseline is HT >= the visible jets' pT sum
    ev = ak.from_parquet(synthetic_domains["atlas_like"][PROCESSES.index("ttbar")])
    sig = ts.event_id[ts.y == 1]
    np.testing.assert_allclose(ts.x[ts.y == 1, 0, f.index("pt")], ak.to_numpy(ev.met.met)[sig], rtol=1e-6)
    jet_pt = (ts.x[:, :, f.index("pt")] * ts.x[:, :, f.index("is_jet")] * ts.mask).sum(1)
    assert (ts.baseline >= jet_pt - 1e-3).all()


def test_qg_rows(synthetic_tensors, synthetic_domains):
    ts = tensorio.load(synthetic_tensors["qg"]["atlas_like"] / "train.parquet", raw=True)
    f = ts.meta["features"]
    col = {n: ts.x[:, :, f.index(n)] for n in f}
    # slot 0 is the tagged jet (its observables only), every other real slot one of its constituents
    assert (col["is_jet"][:, 0] == 1).all() and (col["is_jet"][:, 1:] == 0).all() and ts.mask[:, 0].all()
    kinds = col["is_track"] + col["is_photon"] + col["is_neutral_hadron"]
    np.testing.assert_array_equal(kinds[:, 1:] == 1, ts.mask[:, 1:])
    assert (kinds[:, 0] == 0).all()
    for n in f:
        if n.startswith("jet_"):
            assert (col[n][:, 1:] == 0).all(), n
        if n.startswith("c_"):
            assert (col[n][:, 0] == 0).all(), n
    np.testing.assert_array_equal(ts.baseline, -col["jet_ntrk"][:, 0])
    np.testing.assert_allclose(col["jet_pt"][:, 0], ts.aux["jet_pt"])
    assert "ttbar" not in ts.meta["processes"] and "minbias" not in ts.meta["processes"]
    # constituents are pT-ordered, inside the jet radius, and charged exactly when they are tracks
    rel = np.where(ts.mask[:, 1:], col["c_rel_pt"][:, 1:], -1e9)
    assert (np.diff(rel, axis=1) <= 0).all()
    assert (col["c_dr"][ts.mask] < F.QG_CONSTITUENT_DELTA_R).all()
    np.testing.assert_array_equal(col["c_charge"][:, 1:] != 0, col["is_track"][:, 1:] == 1)
    # against the objects: the constituent count is that of the non-pile-up candidates in the cone
    ev = ak.from_parquet(synthetic_domains["atlas_like"][PROCESSES.index("zjets")])
    zj = np.array(_row_process(ts)) == "zjets"
    checked = 0
    for i in np.flatnonzero(zj)[:30]:
        e = ev[ev.event_id == ts.event_id[i]][0]
        jets = e.jets[(e.jets.pt > 25) & (abs(e.jets.eta) < 2.5)]
        k = np.argmin(np.abs(ak.to_numpy(jets.pt) - ts.aux["jet_pt"][i]))
        pf = e.pflow[(e.pflow.pt > 0.5) & (abs(e.pflow.eta) < 5.0) & ~e.pflow.is_pu]
        dphi = (ak.to_numpy(pf.phi) - jets.phi[k] + np.pi) % (2 * np.pi) - np.pi
        n_in = int((np.hypot(ak.to_numpy(pf.eta) - jets.eta[k], dphi) < F.QG_CONSTITUENT_DELTA_R).sum())
        assert ts.mask[i, 1:].sum() == min(n_in, ts.x.shape[1] - 1)
        checked += 1
    assert checked > 0
    assert ts.mask[:, 1:].sum(1).mean() > 3  # the synthetic jets carry ~6 candidates each


def test_qg_reduced_inputs_without_constituents(tmp_path, config, synthetic_domains):
    """constituent_types: [] gives the jet-observable-only rows every domain (PHYSLITE too) can fill."""
    cfg = json.loads(json.dumps(config))
    cfg["tensors"]["tasks"]["qg"]["constituent_types"] = []
    tensorize(synthetic_domains["atlas_like"], tmp_path, cfg, "qg", "atlas_like")
    ts = tensorio.load(tmp_path / "train.parquet", raw=True)
    assert ts.mask[:, 0].all() and not ts.mask[:, 1:].any()
    assert ts.meta["features"] == F.names("qg")


def test_qg_reweighting_gives_one_spectrum(synthetic_tensors):
    """Weighted (pT, |eta|) histograms of quark and gluon jets agree bin by bin in the reweighting
    binning, each class keeps half the total weight, and the total equals the physical one."""
    from fast2full.tensorize import common_spectrum_factors

    parts = [tensorio.load(synthetic_tensors["qg"]["atlas_like"] / f"{s}.parquet", raw=True) for s in SPLITS]
    pt, eta = (np.concatenate([p.aux[k] for p in parts]) for k in ("jet_pt", "jet_abs_eta"))
    y, w, w0 = (
        np.concatenate([getattr(p, k) if k != "event_weight" else p.aux[k] for p in parts])
        for k in ("y", "weight", "event_weight")
    )
    edges = (F.QG_REWEIGHT_PT_EDGES_GEV, F.QG_REWEIGHT_ABS_ETA_EDGES)
    hq = np.histogram2d(pt[y == 1], eta[y == 1], bins=edges, weights=w[y == 1])[0]
    hg = np.histogram2d(pt[y == 0], eta[y == 0], bins=edges, weights=w[y == 0])[0]
    np.testing.assert_allclose(hq, hg, rtol=1e-9, atol=1e-9)
    assert hq.sum() > 0
    np.testing.assert_allclose(w.sum(), w0[w > 0].sum(), rtol=1e-9)
    np.testing.assert_allclose(w[y == 1].sum(), w[y == 0].sum(), rtol=1e-9)
    # by hand: quarks 3 + 1, gluons 1 + 1 in two bins; target (3/4 + 1/2)/2, (1/4 + 1/2)/2; scale 3
    f = common_spectrum_factors(
        np.array([30.0, 30, 30, 300, 30, 300]), np.zeros(6), np.array([1, 1, 1, 1, 0, 0]), np.ones(6)
    )
    np.testing.assert_allclose(f, [0.625, 0.625, 0.625, 1.125, 1.875, 1.125])
    # a bin holding one class only cannot be matched: its jets get weight 0
    f = common_spectrum_factors(np.array([30.0, 300, 30]), np.zeros(3), np.array([1, 1, 0]), np.ones(3))
    assert f[1] == 0 and f[0] > 0 and f[2] > 0


def test_met_rows(synthetic_tensors, synthetic_domains):
    ts = tensorio.load(synthetic_tensors["met"]["atlas_like"] / "test.parquet", raw=True)
    f = ts.meta["features"]
    col = {n: ts.x[:, :, f.index(n)] for n in f}
    assert ts.y.shape[1] == 2 and ts.baseline.shape[1] == 2
    ev = ak.from_parquet(synthetic_domains["atlas_like"][PROCESSES.index("wjets")])
    # rows are canonically ordered by (process, event_id): pick the wjets block
    start = ts.meta["processes"]["dijet"] + ts.meta["processes"]["ttbar"]
    blk = slice(start, start + ts.meta["processes"]["wjets"])
    ids = ts.event_id[blk]
    gm = ev.gen_met[ids]
    np.testing.assert_allclose(ts.y[blk, 0], ak.to_numpy(gm.met * np.cos(gm.phi)), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(np.hypot(*ts.baseline[blk].T), ak.to_numpy(ev.met.met[ids]), rtol=1e-5)
    # slot 0: the reconstructed MET; slot 1: its soft term = MET + the vector sum of the selected objects
    assert (col["is_met"][:, 0] == 1).all() and (col["is_soft_term"][:, 1] == 1).all()
    np.testing.assert_allclose(col["px"][blk, 0], ts.baseline[blk, 0], rtol=1e-4, atol=1e-3)
    hard = sum(col[f"is_{t}"] for t in ("jet", "electron", "muon", "photon")) * ts.mask
    hx = (col["px"] * hard).sum(1)
    # the soft term holds every selected object; the slots hold them only where they all fit, so the
    # sum over the slots closes on the rows that keep a free object slot (not truncated)
    n_obj = ts.meta["task_config"]["max_objects"]
    fits = ts.mask[:, :n_obj].sum(1) < n_obj
    assert fits.mean() > 0.5, "too few untruncated rows to check the soft term"
    np.testing.assert_allclose(col["px"][fits, 1], col["px"][fits, 0] + hx[fits], rtol=1e-4, atol=1e-2)
    # truncated rows: the soft term still balances the full object sum, not the kept slots
    if (~fits).any():
        assert not np.allclose(col["px"][~fits, 1], col["px"][~fits, 0] + hx[~fits], rtol=1e-4, atol=1e-2)
    # objects, then the soft term's candidates, each block pT-ordered; candidates away from jets
    for block in (slice(2 + 3, n_obj), slice(n_obj, None)):
        obj_pt = np.where(
            ts.mask[:, block] & (hard[:, block] > 0) | (block.start == n_obj) & ts.mask[:, block],
            col["pt"][:, block],
            -1e9,
        )
        assert (np.diff(obj_pt, axis=1) <= 0).all()
    cand = sum(col[f"is_pf_{t}"] for t in ("track", "photon", "neutral_hadron"))
    np.testing.assert_array_equal(cand[:, n_obj:] == 1, ts.mask[:, n_obj:])
    assert (cand[:, :n_obj] == 0).all() and (col["is_pu"] * (1 - cand) == 0).all()


# ------------------------------------------------------------------------------------- splits


def test_split_index_hash_properties():
    ids = np.arange(200_000)
    proc = np.array(["ttbar"] * len(ids))
    fr = {"train": 0.6, "val": 0.2, "test": 0.2}
    s = split_index(proc, ids, fr)
    np.testing.assert_array_equal(s, split_index(proc, ids, fr))
    np.testing.assert_allclose(np.bincount(s) / len(s), [0.6, 0.2, 0.2], atol=0.005)
    # each row's split depends only on its own (process, event ID)
    perm = np.random.default_rng(0).permutation(len(ids))
    np.testing.assert_array_equal(split_index(proc[perm], ids[perm], fr), s[perm])
    assert (split_index(np.array(["wjets"] * len(ids)), ids, fr) != s).mean() > 0.3


@pytest.mark.parametrize("task", TASKS)
def test_splits_disjoint_and_independent_of_file_order(synthetic_domains, synthetic_tensors, tmp_path, config, task):
    files = synthetic_domains["cms_like"]
    ref = synthetic_tensors[task]["cms_like"]
    tensorize(
        files[::-1], tmp_path, config, task, "cms_like", norm_path=synthetic_tensors[task]["atlas_like"] / "norm.json"
    )
    keys = []
    for s in SPLITS:
        a, b = tensorio.load(ref / f"{s}.parquet", raw=True), tensorio.load(tmp_path / f"{s}.parquet", raw=True)
        np.testing.assert_array_equal(a.event_id, b.event_id)
        np.testing.assert_array_equal(a.x, b.x)
        assert a.meta["inputs"] == b.meta["inputs"] and a.meta["cutflow"] == b.meta["cutflow"]
        keys.append(set(zip(_row_process(a), a.event_id.tolist())))
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert all(keys)


def _row_process(ts) -> list[str]:
    """Rows are in canonical (process name, event ID) order, so the per-process counts give each row's process."""
    procs = ts.meta["processes"]
    return np.repeat(sorted(procs), [procs[p] for p in sorted(procs)]).tolist()


def test_same_event_same_split_in_every_domain(synthetic_tensors):
    ids = {d: tensorio.load(p / "val.parquet", raw=True).event_id for d, p in synthetic_tensors["met"].items()}
    sets = [set(v.tolist()) for v in ids.values()]
    assert sets[0] == sets[1] == sets[2]


def test_nested_subsets_of_a_tensor_file(synthetic_tensors):
    ts = tensorio.load(synthetic_tensors["qg"]["cms_like"] / "train.parquet")
    n = 100
    small, big = ts.nested(n, seed=1), ts.nested(2 * n, seed=1)
    assert len(small) == n and len(big) == 2 * n
    np.testing.assert_array_equal(big.x[:n], small.x)
    np.testing.assert_array_equal(big.event_id[:n], small.event_id)


# ------------------------------------------------------------------------------------- errors


def _no_outputs(d: Path) -> bool:
    return not d.exists() or not any(d.iterdir())


def test_missing_input_file(tmp_path, config, synthetic_domains):
    missing = tmp_path / "nope.parquet"
    with pytest.raises(InputError, match="nope.parquet.*does not exist"):
        tensorize([synthetic_domains["atlas_like"][0], missing], tmp_path / "out", config, "met", "atlas_like")
    assert _no_outputs(tmp_path / "out")


def test_corrupt_and_foreign_parquet(tmp_path, config):
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="junk.parquet.*not a readable parquet"):
        tensorize([junk], tmp_path / "out", config, "met", "atlas_like")
    foreign = tmp_path / "foreign.parquet"
    ak.to_parquet(ak.Array({"a": [1, 2, 3]}), foreign)
    with pytest.raises(InputError, match="foreign.parquet.*not an objects file"):
        tensorize([foreign], tmp_path / "out", config, "met", "atlas_like")
    assert _no_outputs(tmp_path / "out")


@pytest.mark.parametrize("task", TASKS)
def test_no_rows_after_selection(tmp_path, config, synthetic_domains, task):
    only_minbias = [synthetic_domains["atlas_like"][PROCESSES.index("minbias")]]
    with pytest.raises(Fast2FullError, match=r"no rows after selection in .*minbias.parquet"):
        tensorize(only_minbias, tmp_path / "out", config, task, "atlas_like")
    assert _no_outputs(tmp_path / "out")


def test_empty_objects_file(tmp_path, config):
    from fast2full import objects

    f = tmp_path / "empty.parquet"
    ak.to_parquet(objects.empty(), f)
    with pytest.raises(Fast2FullError, match="empty.parquet"):
        tensorize([f], tmp_path / "out", config, "met", "atlas_like")


def test_bad_norm_file(tmp_path, config, synthetic_domains, synthetic_tensors):
    with pytest.raises(InputError, match="norm.json.*differ from task met"):
        tensorize(
            synthetic_domains["cms_like"],
            tmp_path / "out",
            config,
            "met",
            "cms_like",
            norm_path=synthetic_tensors["qg"]["atlas_like"] / "norm.json",
        )
    with pytest.raises(InputError, match="missing.json.*does not exist"):
        tensorize(
            synthetic_domains["cms_like"],
            tmp_path / "out",
            config,
            "met",
            "cms_like",
            norm_path=tmp_path / "missing.json",
        )
    assert _no_outputs(tmp_path / "out")


def test_single_class_is_written_with_warning(tmp_path, config, synthetic_domains, caplog):
    only_z = [synthetic_domains["atlas_fullsim"][PROCESSES.index("zjets")]]
    norm = tmp_path / "norm.json"
    norm.write_text(json.dumps({"features": F.names("sigbkg"), "mean": [0.0] * 13, "std": [1.0] * 13}))
    with caplog.at_level(logging.WARNING, logger="fast2full"):
        summary = tensorize(only_z, tmp_path / "out", config, "sigbkg", "atlas_fullsim", norm_path=norm)
    assert "only one class" in caplog.text
    meta = tensorio.read_meta(tmp_path / "out" / "train.parquet")
    assert meta["class_balance"]["counts"]["1"] == 0
    assert meta["class_balance"]["counts"]["0"] == summary["rows"]["train"] > 0


def test_config_exclude_processes(tmp_path, config, synthetic_domains):
    cfg = json.loads(json.dumps(config))
    cfg["tensors"]["tasks"]["met"]["exclude_processes"] = ["minbias", "dijet", "zjets"]
    tensorize(synthetic_domains["atlas_like"], tmp_path, cfg, "met", "atlas_like")
    meta = tensorio.read_meta(tmp_path / "train.parquet")
    assert set(meta["processes"]) == {"ttbar", "wjets"}


# ------------------------------------------------------------------------------------- CLI, figure


def test_cli_tensorize_and_plot_features(synthetic_domains, tmp_path):
    from fast2full.cli import main

    out = tmp_path / "tensors"
    inputs = [str(p) for p in synthetic_domains["atlas_like"]]
    assert (
        main(
            [
                "tensorize",
                "--config",
                str(ROOT / "config.yaml"),
                "--task",
                "qg",
                "--domain",
                "atlas_like",
                "--outdir",
                str(out / "atlas_like"),
                "--inputs",
                *inputs,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "tensorize",
                "--config",
                str(ROOT / "config.yaml"),
                "--task",
                "qg",
                "--domain",
                "cms_like",
                "--norm",
                str(out / "atlas_like" / "norm.json"),
                "--outdir",
                str(out / "cms_like"),
                "--inputs",
                *[str(p) for p in synthetic_domains["cms_like"]],
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (out / "atlas_like").iterdir()) == [
        "norm.json",
        "test.parquet",
        "train.parquet",
        "val.parquet",
    ]
    fig = tmp_path / "figures" / "features_qg.pdf"
    assert (
        main(
            [
                "plot-features",
                "--task",
                "qg",
                "--out",
                str(fig),
                "--inputs",
                str(out / "cms_like" / "train.parquet"),
                str(out / "atlas_like" / "train.parquet"),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in fig.parent.iterdir()) == ["features_qg.pdf", "features_qg.png"]
    assert fig.read_bytes()[:4] == b"%PDF" and fig.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    # a wrong task for the files is a clear error, no figure
    bad = tmp_path / "bad" / "features_met.pdf"
    assert (
        main(["plot-features", "--task", "met", "--out", str(bad), "--inputs", str(out / "cms_like" / "train.parquet")])
        == 1
    )
    assert not bad.parent.exists() or not any(bad.parent.iterdir())


def test_cli_bad_input_exit_code(tmp_path, capsys):
    from fast2full.cli import main

    missing = tmp_path / "gone.parquet"
    rc = main(
        [
            "tensorize",
            "--config",
            str(ROOT / "config.yaml"),
            "--task",
            "met",
            "--domain",
            "atlas_like",
            "--outdir",
            str(tmp_path / "out"),
            "--inputs",
            str(missing),
        ]
    )
    assert rc == 1 and "gone.parquet: objects file does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_empty_split_is_written_with_warning(tmp_path, config, synthetic_tensors, caplog):
    ev = synthetic_objects(200, "zjets", seed=5)
    s = split_index(np.array(["zjets"] * len(ev)), ak.to_numpy(ev.event_id), config["tensors"]["split_fractions"])
    f = tmp_path / "train_only.parquet"
    ak.to_parquet(ev[s == 0], f)
    with caplog.at_level(logging.WARNING, logger="fast2full"):
        summary = tensorize(
            [f],
            tmp_path / "out",
            config,
            "met",
            "cms_like",
            norm_path=synthetic_tensors["met"]["atlas_like"] / "norm.json",
        )
    assert summary["rows"]["val"] == summary["rows"]["test"] == 0 and summary["rows"]["train"] > 0
    assert "the val split is empty" in caplog.text
    assert len(tensorio.load(tmp_path / "out" / "test.parquet")) == 0


def test_exclude_processes_is_a_valid_config_key(config):
    from fast2full.config import validate

    cfg = json.loads(json.dumps(config))
    cfg["tensors"]["tasks"]["qg"]["exclude_processes"] = ["minbias", "wjets"]
    validate(cfg, base_dir=ROOT)


@pytest.mark.parametrize("task", TASKS)
def test_docs_list_every_feature(task):
    text = (ROOT / "docs" / "tensors.md").read_text()
    section = text.split(f"### `{task}`")[1].split("\n## ")[0].split("\n### ")[0]
    for i, name in enumerate(F.names(task)):
        assert f"| {i} | `{name}` |" in section, f"docs/tensors.md lacks feature {i} {name} of {task}"
