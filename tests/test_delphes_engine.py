"""The builtin engine end to end: Delphes tree layout, reproducibility, pile-up, bad input."""

import shutil

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

from fast2full.cli import main
from fast2full.common import InputError
from fast2full.delphes.engine import simulate
from fast2full.delphes.samples import single_particle_events, toy_events
from fast2full.generate import write_particles

CARDS = {"atlas_like": "cards/atlas_like.tcl", "cms_like": "cards/cms_like.tcl"}
REAL = {"atlas_like": "delphes_ATLAS_ttbar100.root", "cms_like": "delphes_CMS_ttbar100.root"}


@pytest.fixture(autouse=True)
def _at_repo_root(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "toy.parquet"
    write_particles(toy_events(150, seed=5), path)
    return path


@pytest.fixture(scope="module")
def simulated(toy_file, repo_root, tmp_path_factory):
    out = {}
    d = tmp_path_factory.mktemp("sim")
    for det, card in CARDS.items():
        out[det] = d / f"{det}.root"
        simulate(repo_root / card, toy_file, out[det])
    return out


def _leaf_type(arr: ak.Array) -> str:
    return str(ak.type(ak.flatten(arr, axis=None)).content) if arr.ndim > 1 else str(arr.type.content)


@pytest.mark.parametrize("det", list(CARDS))
def test_branches_match_real_delphes(simulated, testdata, det):
    """Every branch we write exists in a real Delphes file under the same name, with the same
    dtype and depth (uproot keys: 'Jet.PT', counters 'Jet_size')."""
    ours = uproot.open(simulated[det])["Delphes"]
    real = uproot.open(testdata / REAL[det])["Delphes"]
    real_leaves = {k.rsplit("/", 1)[-1]: k for k in real.keys(recursive=True)}
    assert ours.num_entries == 150
    for key in ours.keys():
        assert key in real_leaves, f"{key} is not a real Delphes branch"
        a, r = ours[key].array(), real[real_leaves[key]].array()
        assert a.ndim == r.ndim, key
        assert _leaf_type(a) == _leaf_type(r), key
    for key in [
        "Event.Number",
        "Event.Weight",
        "Weight.Weight",
        "Jet.PT",
        "Jet.Flavor",
        "Jet.BTag",
        "Jet.NCharged",
        "Jet.NNeutrals",
        "Jet.PTD",
        "Electron.IsolationVar",
        "Muon.Charge",
        "Photon.E",
        "MissingET.MET",
        "MissingET.Phi",
        "GenMissingET.MET",
        "Track.PT",
        "Track.PID",
        "EFlowTrack.PT",
        "EFlowPhoton.ET",
        "EFlowNeutralHadron.E",
        "GenJet.PT",
        "Jet_size",
    ]:
        assert key in ours.keys(), key


@pytest.mark.parametrize("det", list(CARDS))
def test_tree_content(simulated, det):
    t = uproot.open(simulated[det])["Delphes"]
    np.testing.assert_array_equal(ak.flatten(t["Event.Number"].array()), np.arange(150))
    np.testing.assert_allclose(ak.flatten(t["Weight.Weight"].array()), 0.5)
    flavor = ak.to_numpy(ak.flatten(t["Jet.Flavor"].array()))
    assert {5, 21} <= set(np.unique(flavor).tolist())
    btag = ak.to_numpy(ak.flatten(t["Jet.BTag"].array())) & 1
    assert btag[flavor == 5].mean() > 0.5 > 0.05 > btag[flavor == 21].mean()
    assert ak.all(t["Track.PT"].array() > 0.1)
    # every event has exactly one MET and one true MET
    assert ak.all(t["MissingET_size"].array() == 1) and ak.all(t["GenMissingET_size"].array() == 1)


def test_reader_reads_builtin_output(simulated):
    from fast2full.readers.delphes import iterate_objects

    objs = ak.concatenate(list(iterate_objects(str(simulated["cms_like"]), "toy", False, 0, None)))
    assert len(objs) == 150
    assert ak.sum(ak.num(objs.electrons)) > 50 and ak.sum(ak.num(objs.muons)) > 100
    assert ak.any(objs.jets.btag) and ak.sum(objs.jets.ntrk) > 0


def test_rerun_is_identical_and_cards_differ(toy_file, simulated, repo_root, tmp_path):
    again = tmp_path / "again.root"
    simulate(repo_root / CARDS["atlas_like"], toy_file, again)
    a, b = uproot.open(simulated["atlas_like"])["Delphes"], uproot.open(again)["Delphes"]
    assert a.keys() == b.keys()
    for key in a.keys():
        assert ak.all(ak.ravel(a[key].array()) == ak.ravel(b[key].array())), key
    c = uproot.open(simulated["cms_like"])["Delphes"]
    assert not ak.all(ak.num(a["Track.PT"].array()) == ak.num(c["Track.PT"].array()))


def _config(tmp_path, repo_root, mean=0.0):
    cfg = yaml.safe_load((repo_root / "config.yaml").read_text())
    cfg["pileup"]["mean"] = mean
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_cli_with_pileup(toy_file, repo_root, tmp_path):
    minbias = tmp_path / "minbias.parquet"
    write_particles(single_particle_events(211, 2.0, 1.0, 50, seed=9, process="minbias"), minbias)
    out = tmp_path / "sim" / "pu.root"
    rc = main(
        [
            "simulate",
            "--config",
            str(_config(tmp_path, repo_root, mean=20.0)),
            "--card",
            CARDS["cms_like"],
            "--in",
            str(toy_file),
            "--pileup",
            str(minbias),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    t = uproot.open(out)["Delphes"]
    is_pu = t["Track.IsPU"].array()
    assert t.num_entries == 150
    # ~20 pile-up pions per event, ~88% tracked
    assert 12 < ak.mean(ak.sum(is_pu, axis=1)) < 24
    assert ak.sum(is_pu == 0) > 0


def test_pileup_mean_without_files_fails(toy_file, repo_root, tmp_path):
    out = tmp_path / "pu.root"
    rc = main(
        [
            "simulate",
            "--config",
            str(_config(tmp_path, repo_root, mean=5.0)),
            "--card",
            CARDS["cms_like"],
            "--in",
            str(toy_file),
            "--out",
            str(out),
        ]
    )
    assert rc == 1 and not out.exists()


def test_truncated_generation_file(toy_file, repo_root, tmp_path, capsys):
    bad = tmp_path / "truncated.parquet"
    data = toy_file.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated.parquet"):
        simulate(repo_root / CARDS["atlas_like"], bad, tmp_path / "x.root")
    out = tmp_path / "out" / "x.root"
    rc = main(
        [
            "simulate",
            "--config",
            str(_config(tmp_path, repo_root)),
            "--card",
            CARDS["atlas_like"],
            "--in",
            str(bad),
            "--out",
            str(out),
        ]
    )
    assert rc == 1
    assert "truncated.parquet" in capsys.readouterr().err
    assert not out.exists()
    assert not out.parent.exists() or not list(out.parent.iterdir())


def test_malformed_card_leaves_no_output(toy_file, repo_root, tmp_path, capsys):
    card = tmp_path / "broken.tcl"
    text = (repo_root / CARDS["atlas_like"]).read_text()
    card.write_text(text.replace("set Bz 2.0", "set Bz 2.0 }"))
    out = tmp_path / "out.root"
    rc = main(
        [
            "simulate",
            "--config",
            str(_config(tmp_path, repo_root)),
            "--card",
            str(card),
            "--in",
            str(toy_file),
            "--out",
            str(out),
        ]
    )
    assert rc == 1 and not out.exists()
    assert "broken.tcl:" in capsys.readouterr().err


def test_pileup_merger_module_in_card(toy_file, repo_root, tmp_path):
    """A card's own PileUpMerger (MeanPileUp from the card) draws from the --pileup events."""
    text = (repo_root / CARDS["cms_like"]).read_text()
    text = text.replace(
        "set ExecutionPath {\n  ParticlePropagator", "set ExecutionPath {\n  PileUpMerger\n  ParticlePropagator", 1
    )
    text = text.replace("set InputArray Delphes/stableParticles", "set InputArray PileUpMerger/stableParticles", 1)
    text += (
        "\nmodule PileUpMerger PileUpMerger {\n  set InputArray Delphes/stableParticles\n"
        "  set ParticleOutputArray stableParticles\n  set VertexOutputArray vertices\n"
        "  set MeanPileUp 10\n  set PileUpDistribution 0\n}\n"
    )
    card = tmp_path / "cms_pu.tcl"
    card.write_text(text)
    # the card sources common/genlevel.tcl relative to its own folder, as Delphes does
    shutil.copytree(repo_root / "cards" / "common", tmp_path / "common")
    minbias = tmp_path / "minbias.parquet"
    write_particles(single_particle_events(-211, 2.0, 0.5, 40, seed=4, process="minbias"), minbias)
    out = tmp_path / "pu.root"
    simulate(card, toy_file, out, pileup_paths=[minbias])
    n_pu = ak.sum(uproot.open(out)["Delphes"]["Track.IsPU"].array(), axis=1)
    assert 6 < ak.mean(n_pu) < 12  # Poisson(10) x ~88% tracking efficiency
    assert ak.std(n_pu) > 1.5


def test_truth_ignores_pileup(toy_file, repo_root, tmp_path):
    minbias = tmp_path / "minbias.parquet"
    write_particles(single_particle_events(211, 30.0, 1.0, 20, seed=9, process="minbias"), minbias)
    plain, pu = tmp_path / "plain.root", tmp_path / "pu.root"
    simulate(repo_root / CARDS["atlas_like"], toy_file, plain)
    simulate(repo_root / CARDS["atlas_like"], toy_file, pu, pileup_paths=[minbias], pileup_mean=3.0)
    a, b = uproot.open(plain)["Delphes"], uproot.open(pu)["Delphes"]
    for key in ["GenJet.PT", "GenMissingET.MET"]:
        assert ak.all(ak.ravel(a[key].array()) == ak.ravel(b[key].array())), key
    assert not ak.all(ak.ravel(a["MissingET.MET"].array()) == ak.ravel(b["MissingET.MET"].array()))


def test_batches_append_to_one_tree(toy_file, repo_root, tmp_path):
    out = tmp_path / "batched.root"
    assert simulate(repo_root / CARDS["cms_like"], toy_file, out, batch_size=40) == 150
    t = uproot.open(out)["Delphes"]
    np.testing.assert_array_equal(ak.flatten(t["Event.Number"].array()), np.arange(150))
    assert ak.all(t["MissingET_size"].array() == 1)
    # unique IDs keep growing across batches: muons are still found in the last batch
    assert ak.sum(t["Muon_size"].array()[120:]) > 15


@pytest.mark.parametrize(
    "module,line",
    [
        ("Calorimeter", "set TimingEnergyMin 4.0"),
        ("PileUpMerger", "set PileUpFile MinBias.pileup"),
        ("PileUpMerger", "set ZVertexSpread 0.15"),
        ("PileUpMerger", "set OutputBeamSpotX 1.0"),
        ("TrackSmearing", "set Bz 3.8"),
        ("PileUpMerger", "set InputBSX 0.0"),  # not a Delphes parameter at all
    ],
)
def test_unsupported_parameter_names_file_and_line(tmp_path, module, line):
    """A parameter Delphes reads but the builtin engine cannot reproduce is an error at its line."""
    body = {
        "Calorimeter": "  set EtaPhiBins {}\n  add EtaPhiBins -1 {-3.1416 3.1416}\n"
        "  add EtaPhiBins 1 {-3.1416 3.1416}\n",
        "PileUpMerger": "",
        "TrackSmearing": "",
    }[module]
    card = tmp_path / "c.tcl"
    card.write_text(
        f"set ExecutionPath {{\n  M\n  TreeWriter\n}}\n\nmodule {module} M {{\n{body}"
        f"  {line}\n}}\nmodule TreeWriter TreeWriter {{\n}}\n"
    )
    lineno = card.read_text().splitlines().index(f"  {line}") + 1
    from fast2full.delphes.card import CardError
    from fast2full.delphes.engine import Simulation

    with pytest.raises(CardError) as err:
        Simulation.from_card(card)
    assert f"c.tcl:{lineno}:" in str(err.value)
    assert line.split()[1] in str(err.value)


def test_zero_vertex_spread_and_pileup_distribution(toy_file, tmp_path, repo_root):
    """ZVertexSpread 0 is what the engine does (accepted); PileUpDistribution 2 = fixed count."""
    text = (repo_root / CARDS["cms_like"]).read_text()
    text = text.replace(
        "set ExecutionPath {\n  ParticlePropagator", "set ExecutionPath {\n  PileUpMerger\n  ParticlePropagator", 1
    )
    text = text.replace("set InputArray Delphes/stableParticles", "set InputArray PileUpMerger/stableParticles", 1)
    text += (
        "\nmodule PileUpMerger PileUpMerger {\n  set MeanPileUp 3\n  set PileUpDistribution 2\n"
        "  set ZVertexSpread 0\n  set TVertexSpread 0.0\n}\n"
    )
    card = tmp_path / "cms_pu.tcl"
    card.write_text(text)
    shutil.copytree(repo_root / "cards" / "common", tmp_path / "common")
    minbias = tmp_path / "minbias.parquet"
    # one charged pion per minimum-bias event, always inside the tracker: 3 per event exactly,
    # minus the tracking inefficiency
    write_particles(single_particle_events(211, 20.0, 0.5, 30, seed=4, process="minbias"), minbias)
    out = tmp_path / "pu.root"
    simulate(card, toy_file, out, pileup_paths=[minbias])
    n_pu = ak.to_numpy(ak.sum(uproot.open(out)["Delphes"]["Track.IsPU"].array(), axis=1))
    assert n_pu.max() == 3 and n_pu.min() >= 1


@pytest.fixture(scope="module")
def pythia_files(request):
    """200 real Pythia8 ttbar and 200 W+jets events (the project's generation code, cached)."""
    from fast2full.delphes.samples import pythia_sample

    cache = request.config.cache.mkdir("fast2full_pythia_small")
    return {p: pythia_sample(p, 200, cache, hepmc=False)[0] for p in ("ttbar", "wjets")}


@pytest.mark.parametrize("proc", ["ttbar", "wjets"])
def test_prompt_leptons_reach_stable_particles(pythia_files, repo_root, tmp_path, proc):
    """Every final lepton or neutrino whose mother is a W or Z (Pythia keeps status +23 when it did
    not radiate) enters Delphes/stableParticles, and GenMissingET is the vector sum of all final
    neutrinos (real Pythia events: the hard-status particles the old engine dropped)."""
    from fast2full.delphes.engine import input_arrays, particles_to_coll, read_generation

    events = read_generation(pythia_files[proc])
    gen = particles_to_coll(events)
    stable = input_arrays(gen)["Delphes/stableParticles"]
    p = events.particles
    mother = p.mother1
    mpid = abs(p.pid[ak.where(mother >= 0, mother, 0)])
    prompt = (abs(p.pid) >= 11) & (abs(p.pid) <= 16) & (p.status > 0) & (mother >= 0) & ((mpid == 23) | (mpid == 24))
    prompt_uid = np.flatnonzero(ak.to_numpy(ak.flatten(prompt)))  # uid = flat particle index
    assert len(prompt_uid) > 0.5 * len(events)  # ~1 W lepton/neutrino pair per event
    assert np.isin(prompt_uid, stable["uid"]).all()
    # GenMissingET = |sum of the final neutrinos| (cards/common/genlevel.tcl)
    out = tmp_path / "sim.root"
    simulate(repo_root / CARDS["cms_like"], pythia_files[proc], out)
    t = uproot.open(out)["Delphes"]
    nu = (p.status > 0) & ((abs(p.pid) == 12) | (abs(p.pid) == 14) | (abs(p.pid) == 16))
    px, py = ak.sum(p.px[nu], axis=1), ak.sum(p.py[nu], axis=1)
    np.testing.assert_allclose(
        ak.to_numpy(t["GenMissingET.MET"].array()[:, 0]),
        np.hypot(ak.to_numpy(px), ak.to_numpy(py)),
        rtol=1e-4,
        atol=2e-3,
    )
    assert ak.mean(t["GenMissingET.MET"].array()[:, 0]) > 20.0  # W neutrinos are there


@pytest.mark.parametrize("det", list(CARDS))
def test_jet_leaves_as_in_shared_real_files(simulated, testdata, det):
    """What the shared real Delphes files show, the builtin engine writes too: PTD and MeanSqDeltaR
    0 (only PileUpJetID fills them), FlavorAlgo 0 (no LHEF partons with HepMC input), and
    DeltaEta/DeltaPhi as running maxima along the pT-ordered jets of an event (in the stock-card
    files a pT-dependent jet energy scale can swap two close jets after clustering: 2 of 100
    events)."""
    for path, min_sorted in ((testdata / REAL[det], 0.95), (simulated[det], 1.0)):
        t = uproot.open(path)["Delphes"]
        a = t.arrays(["Jet.PT", "Jet.DeltaEta", "Jet.DeltaPhi", "Jet.PTD", "Jet.MeanSqDeltaR", "Jet.FlavorAlgo"])
        assert ak.sum(ak.num(a["Jet.PT"])) > 100, path
        for leaf in ("Jet.PTD", "Jet.MeanSqDeltaR", "Jet.FlavorAlgo"):
            assert ak.all(a[leaf] == 0), (path, leaf)
        for leaf in ("Jet.DeltaEta", "Jet.DeltaPhi"):
            x = a[leaf]
            assert ak.mean(ak.all(x[:, 1:] >= x[:, :-1], axis=1)) >= min_sorted, (path, leaf)
            assert ak.any(x[:, 1:] > x[:, :-1]), (path, leaf)
