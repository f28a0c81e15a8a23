"""Physical weights through the Delphes skim: pb per event, summing to the cross-section per process."""

import awkward as ak
import numpy as np
import pytest
import yaml

from fast2full.delphes.engine import simulate
from fast2full.delphes.samples import toy_events
from fast2full.generate import write_particles
from fast2full.readers.delphes import skim_delphes


@pytest.fixture(scope="module")
def sim_file(repo_root, tmp_path_factory):
    d = tmp_path_factory.mktemp("wsim")
    ev = toy_events(40, seed=3, process="toy")
    # generator weights that vary (as with bias2Selection): 0.5 .. 2.45
    w = 0.5 + 0.05 * np.arange(40)
    ev = ak.with_field(ev, w, "weight")
    ev = ak.with_field(ev, np.full(40, 123.0), "sigma_pb")
    write_particles(ev, d / "0.parquet")
    simulate(repo_root / "cards" / "atlas_like.tcl", d / "0.parquet", d / "0.root")
    return d / "0.root", w


@pytest.mark.parametrize("chunks", [1, 4])
def test_delphes_skim_weights_are_pb_per_event(sim_file, repo_root, tmp_path, chunks):
    path, w = sim_file
    config = yaml.safe_load((repo_root / "config.yaml").read_text())
    config["processes"]["toy"] = {"role": "background", "chunks": chunks, "events_per_chunk": 40, "settings": []}
    n = skim_delphes(str(path), str(tmp_path / "o.parquet"), config, "toy", step_size=15)
    assert n == 40
    got = ak.to_numpy(ak.from_parquet(tmp_path / "o.parquet").weight)
    # gen weight x sigma / (sum of gen weights x chunks): the chunk's events sum to sigma / chunks
    np.testing.assert_allclose(got, w * 123.0 / (w.sum() * chunks), rtol=1e-6)  # Event.Weight is float32
    assert got.sum() == pytest.approx(123.0 / chunks)


def test_tensorize_cutflow_and_splits_carry_weights_and_ess(repo_root, tmp_path):
    """Cut-flows and split metadata give rows, total weight (pb) and ESS per process; the ESS is the one
    of the weights that passed (checked against the tensors themselves)."""
    from fast2full import tensorio
    from fast2full import weights as W
    from fast2full.tensorize import synthetic_objects, tensorize

    config = yaml.safe_load((repo_root / "config.yaml").read_text())
    config["tensors"]["tasks"]["sigbkg"]["region"] = {"n_leptons": 1, "min_jets": 3, "min_btags": 0}
    files = []
    for i, (proc, scale) in enumerate((("ttbar", 0.3), ("wjets", 50.0))):
        ev = synthetic_objects(600, proc, seed=i)
        rng = np.random.default_rng(i)
        ev = ak.with_field(ev, scale * rng.exponential(1.0, len(ev)), "weight")  # spread: ESS < n
        f = tmp_path / f"{proc}.parquet"
        ak.to_parquet(ev, f)
        files.append(f)
    tensorize(files, tmp_path / "out", config, "sigbkg", "atlas_like")
    parts = [tensorio.load(tmp_path / "out" / f"{s}.parquet") for s in ("train", "val", "test")]
    meta = parts[0].meta
    for proc, label in (("ttbar", 1), ("wjets", 0)):
        cf = meta["cutflow"][proc]
        assert cf["all"]["n"] == 600 and cf["all"]["ess"] < 600
        w = np.concatenate([p.weight[p.y == label] for p in parts])
        assert cf["btag"]["n"] == len(w)  # last step = the rows written
        assert cf["btag"]["sum_w"] == pytest.approx(w.sum()) and cf["btag"]["ess"] == pytest.approx(W.ess(w), abs=1e-3)
    for p in parts:
        ss = p.meta["sample_sizes"]
        assert ss["all"]["n"] == len(p) and ss["all"]["ess"] == pytest.approx(W.ess(p.weight), abs=1e-3)
        assert ss["all"]["classes"]["1"]["n"] == int(p.y.sum())


def test_real_delphes_tree_gives_the_same_physical_weights(repo_root, tmp_path, monkeypatch):
    """Real DelphesHepMC3 writes the HepMC GenCrossSection (sigma_pb) into Event.CrossSection and the
    event weight into Event.Weight, so the skim's pb-per-event weights are the same as for the builtin
    engine's trees."""
    from fast2full import generate as G
    from fast2full.delphes.real import find_delphes, run_delphes
    from fast2full.hepmc import write_hepmc

    exe = find_delphes(repo_root)
    if exe is None:
        pytest.skip(
            "real Delphes not found: no DelphesHepMC3 on PATH, no $FAST2FULL_DELPHES and no "
            "../shared/delphes/bin/DelphesHepMC3"
        )
    monkeypatch.setenv("DELPHES_ROOT_PYTHON", __import__("sys").executable)
    config = yaml.safe_load((repo_root / "config.yaml").read_text())
    config["processes"]["wjets"]["events_per_chunk"] = 20
    ev = G.generate_chunk(G.chunk_spec(config, "wjets", 0))
    w = ak.to_numpy(ev.weight)
    assert w.std() > 0  # biased sample: the weights vary
    write_hepmc(ev, tmp_path / "0.hepmc")
    run_delphes(repo_root / "cards" / "atlas_like.tcl", tmp_path / "0.hepmc", tmp_path / "0.root", exe=exe)
    skim_delphes(str(tmp_path / "0.root"), str(tmp_path / "0.parquet"), config, "wjets")
    got = ak.to_numpy(ak.from_parquet(tmp_path / "0.parquet").weight)
    chunks = config["processes"]["wjets"]["chunks"]
    np.testing.assert_allclose(got, w * float(ev.sigma_pb[0]) / (w.sum() * chunks), rtol=1e-6)


@pytest.mark.parametrize("mode", [None, "cross_section", "sample"])
def test_process_weights_mode(repo_root, tmp_path, mode):
    """qg/met mix their samples by design: by default (sample) each process's weights are scaled to mean 1
    over its events, so a 1e8 pb dijet sample does not leave W+jets without weight; cross_section keeps pb."""
    from fast2full import tensorio
    from fast2full.tensorize import synthetic_objects, tensorize

    config = yaml.safe_load((repo_root / "config.yaml").read_text())
    if mode:
        config["tensors"]["tasks"]["met"]["process_weights"] = mode
    files, raw = [], {}
    for i, (proc, scale) in enumerate((("wjets", 50.0), ("dijet", 1e6))):
        ev = synthetic_objects(300, proc, seed=i, first_id=1000 * i)
        w = scale * np.random.default_rng(i).exponential(1.0, len(ev))
        ev = ak.with_field(ev, w, "weight")
        raw[proc] = (ak.to_numpy(ev.event_id), w)
        ak.to_parquet(ev, tmp_path / f"{proc}.parquet")
        files.append(tmp_path / f"{proc}.parquet")
    tensorize(files, tmp_path / "out", config, "met", "atlas_like")
    parts = [tensorio.load(tmp_path / "out" / f"{s}.parquet") for s in ("train", "val", "test")]
    assert parts[0].meta["process_weights"]["mode"] == (mode or "sample")
    got = np.concatenate([p.weight for p in parts])
    ids = np.concatenate([p.event_id for p in parts])
    for eid, w in raw.values():
        sel = np.isin(ids, eid)
        expect = w * len(w) / w.sum() if (mode or "sample") == "sample" else w
        assert got[sel].sum() == pytest.approx(expect.sum())
    # the cut-flow stays in pb either way
    assert parts[0].meta["cutflow"]["dijet"]["events"]["sum_w"] == pytest.approx(raw["dijet"][1].sum())
