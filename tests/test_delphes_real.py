"""The project cards in real Delphes, and the builtin engine against it on the same Pythia events.

Real Delphes is ``DelphesHepMC3`` found by :func:`fast2full.delphes.real.find_delphes`
($FAST2FULL_DELPHES, PATH, or the prebuilt ``../shared/delphes/bin/DelphesHepMC3``, which needs the
``root`` PyPI package of the ``test`` extra); the tests run it with this interpreter as
``DELPHES_ROOT_PYTHON`` and skip, saying so, only where no executable exists.

The Pythia samples (1000 ttbar, 1000 W+jets, :func:`fast2full.delphes.samples.pythia_sample`) and
the real-Delphes trees are cached in pytest's cache folder (``.pytest_cache``), keyed by the
generation code and settings, and by the card, the HepMC file and the executable; the builtin
engine always reruns.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

from fast2full.delphes.card import card_dependencies
from fast2full.delphes.engine import simulate
from fast2full.delphes.fidelity import compare, table
from fast2full.delphes.real import find_delphes, run_delphes
from fast2full.delphes.samples import pythia_sample
from fast2full.hepmc import head_hepmc

ROOT = Path(__file__).resolve().parents[1]
DELPHES = find_delphes(ROOT)
CARDS = {"atlas_like": "cards/atlas_like.tcl", "cms_like": "cards/cms_like.tcl"}
N_EVENTS = 1000
pytestmark = pytest.mark.skipif(
    DELPHES is None,
    reason="real Delphes not found: no DelphesHepMC3 on PATH, no $FAST2FULL_DELPHES "
    "and no ../shared/delphes/bin/DelphesHepMC3",
)


@pytest.fixture(scope="session", autouse=True)
def _root_python():
    """The prebuilt wrapper finds ROOT through DELPHES_ROOT_PYTHON: this interpreter."""
    old = os.environ.get("DELPHES_ROOT_PYTHON")
    os.environ["DELPHES_ROOT_PYTHON"] = sys.executable
    yield
    if old is None:
        os.environ.pop("DELPHES_ROOT_PYTHON", None)
    else:
        os.environ["DELPHES_ROOT_PYTHON"] = old


@pytest.fixture(scope="session")
def cache_dir(request) -> Path:
    return Path(request.config.cache.mkdir("fast2full_delphes_real"))


@pytest.fixture(scope="session")
def samples(cache_dir):
    """{process: (parquet, hepmc)} for 1000 Pythia ttbar and 1000 W+jets events."""
    return {p: pythia_sample(p, N_EVENTS, cache_dir) for p in ("ttbar", "wjets")}


def _digest(*paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        h.update(
            p.read_bytes() if p.stat().st_size < 1 << 22 else p.read_bytes()[: 1 << 22] + str(p.stat().st_size).encode()
        )
    return h.hexdigest()[:16]


def _real(card: Path, hepmc: Path, cache_dir: Path) -> Path:
    """Real Delphes on (card, hepmc), cached by card (+ sourced files), input and executable."""
    key = _digest(*card_dependencies(card), hepmc, DELPHES)
    out = cache_dir / f"real_{card.stem}_{hepmc.stem}_{key}.root"
    if not out.is_file():
        run_delphes(card, hepmc, out, exe=DELPHES, timeout=600)
    return out


@pytest.fixture(scope="session")
def trees(samples, cache_dir, tmp_path_factory):
    """{(detector, process): (builtin tree, real tree)} on the same events."""
    d = tmp_path_factory.mktemp("builtin")
    out = {}
    for det, card in CARDS.items():
        for proc, (pq, hm) in samples.items():
            ours = d / f"{det}_{proc}.root"
            simulate(ROOT / card, pq, ours)
            out[det, proc] = ours, _real(ROOT / card, hm, cache_dir)
    return out


# --- the cards run unchanged in real Delphes, and we write a subset of its branches ----------------


@pytest.mark.slow
@pytest.mark.parametrize("det", list(CARDS))
def test_card_runs_in_real_delphes(trees, det):
    ours_path, real_path = trees[det, "ttbar"]
    real = uproot.open(real_path)["Delphes"]
    ours = uproot.open(ours_path)["Delphes"]
    assert real.num_entries == ours.num_entries == N_EVENTS
    real_leaves = {k.rsplit("/", 1)[-1] for k in real.keys(recursive=True)}
    missing = set(ours.keys()) - real_leaves
    assert not missing, f"builtin branches that real Delphes does not write: {sorted(missing)}"


@pytest.mark.slow
def test_card_from_another_directory(samples, cache_dir, tmp_path, monkeypatch):
    """`source common/genlevel.tcl` resolves against the card's folder from any working directory."""
    monkeypatch.chdir(tmp_path)
    pq, hm = samples["ttbar"]
    head = tmp_path / "head.hepmc"
    assert head_hepmc(hm, head, 20) == 20  # the first 20 events of the sample
    out = tmp_path / "o.root"
    run_delphes(ROOT / CARDS["atlas_like"], head, out, exe=DELPHES, timeout=300)
    assert uproot.open(out)["Delphes"].num_entries == 20
    assert not list((ROOT / "cards").glob(".*.seed*.tcl")), "the seed wrapper card was left behind"


# --- deterministic leaves: truth jets through JetFlavorAssociation and BTagging --------------------

TRUTH_CARD = """set ExecutionPath {
  NeutrinoFilter
  GenJetFinder
  GenMissingET
  JetFlavorAssociation
  BTagging
  TreeWriter
}
source common/genlevel.tcl
module JetFlavorAssociation JetFlavorAssociation {
  set PartonInputArray Delphes/partons
  set ParticleInputArray Delphes/allParticles
  set ParticleLHEFInputArray Delphes/allParticlesLHEF
  set JetInputArray GenJetFinder/jets
  set DeltaR 0.4
  set PartonPTMin 5.0
  set PartonEtaMax 2.5
}
module BTagging BTagging {
  set JetInputArray GenJetFinder/jets
  set BitNumber 0
  add EfficiencyFormula {0} {0.0}
  add EfficiencyFormula {4} {0.0}
  add EfficiencyFormula {5} {1.0}
}
module TreeWriter TreeWriter {
  add Branch GenJetFinder/jets GenJet Jet
  add Branch GenMissingET/momentum GenMissingET MissingET
}
"""
JET_LEAVES = [
    "PT",
    "Eta",
    "Phi",
    "Mass",
    "DeltaEta",
    "DeltaPhi",
    "Flavor",
    "FlavorAlgo",
    "BTag",
    "BTagAlgo",
    "Charge",
    "EhadOverEem",
    "NCharged",
    "NNeutrals",
    "NeutralEnergyFraction",
    "ChargedEnergyFraction",
    "MeanSqDeltaR",
    "PTD",
]


@pytest.mark.slow
@pytest.mark.parametrize("proc", ["ttbar", "wjets"])
def test_truth_jet_leaves_equal_real_delphes(samples, cache_dir, tmp_path, proc):
    """Without random numbers the two engines must agree jet by jet: every Jet leaf we write
    (DeltaEta/DeltaPhi running maxima, PTD = MeanSqDeltaR = 0, Flavor from the partons of the
    record, FlavorAlgo = 0 and BTagAlgo from the flavour-0 formula, NCharged, energy fractions) and
    the true MET."""
    card = tmp_path / "truth.tcl"
    card.write_text(TRUTH_CARD)
    shutil.copytree(ROOT / "cards" / "common", tmp_path / "common")
    pq, hm = samples[proc]
    simulate(card, pq, tmp_path / "ours.root")
    real_path = _real(card, hm, cache_dir)
    ours = uproot.open(tmp_path / "ours.root")["Delphes"].arrays(library="ak")
    real = uproot.open(real_path)["Delphes"].arrays(
        [f"GenJet.{k}" for k in JET_LEAVES] + ["GenMissingET.MET", "GenMissingET.Phi"], library="ak"
    )
    np.testing.assert_array_equal(ak.num(ours["GenJet.PT"]), ak.num(real["GenJet.PT"]))
    for leaf in JET_LEAVES:
        a = ak.to_numpy(ak.flatten(ours[f"GenJet.{leaf}"])).astype(np.float64)
        b = ak.to_numpy(ak.flatten(real[f"GenJet.{leaf}"])).astype(np.float64)
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5, err_msg=f"GenJet.{leaf}")
    # the shower partons are in the record (generate.PARTON_PT_MIN): gluon labels in both samples
    flavor = ak.to_numpy(ak.flatten(real["GenJet.Flavor"]))
    assert {0, 1, 2, 4, 5, 21} <= set(np.unique(flavor).tolist())
    central = np.abs(ak.to_numpy(ak.flatten(ours["GenJet.Eta"]))) < 2.5  # PartonEtaMax
    # hard-process partons only (the old pruning): no gluon label in ttbar, 39 % / 64 % unlabelled
    assert 0.05 < np.mean(flavor[central] == 21) < 0.4 and np.mean(flavor[central] == 0) < 0.3
    for leaf in ("MET", "Phi"):
        np.testing.assert_allclose(
            ak.to_numpy(ours[f"GenMissingET.{leaf}"][:, 0]),
            ak.to_numpy(real[f"GenMissingET.{leaf}"][:, 0]),
            rtol=1e-5,
            atol=1e-4,
        )


# --- fidelity: detector response of the builtin engine against real Delphes ------------------------


@pytest.mark.slow
@pytest.mark.parametrize("proc", ["ttbar", "wjets"])
@pytest.mark.parametrize("det", list(CARDS))
def test_fidelity(trees, det, proc):
    """Jet multiplicity, leading-jet pT, jet response and resolution per GenJet pT bin, MET and
    MET - GenMET per component, lepton and photon counts and pT, b-tag rates per flavour,
    Jet.Flavor fractions, track and energy-flow counts: means within 5 %, resolutions within 10 %
    (or 3 standard errors where statistics are smaller), KS p > 0.01 (fast2full.delphes.fidelity)."""
    ours, real = trees[det, proc]
    rows = compare(ours, real)
    kinds = {r.kind for r in rows}
    assert kinds == {"mean", "resolution", "ks"} and len(rows) > 40
    print(f"\n{det} {proc} ({N_EVENTS} events)\n{table(rows)}")
    failed = [r.line() for r in rows if not r.passed]
    assert not failed, "\n".join([f"{det} {proc}: builtin differs from real Delphes"] + failed)


# --- the simulator: delphes backend through Snakemake, no conda ------------------------------------


@pytest.mark.slow
def test_snakemake_simulator_delphes(repo_root, tmp_path):
    """`simulator: delphes` runs export-hepmc -> DelphesHepMC3 -> skim through Snakemake without
    conda, on 300 ttbar events."""
    for name in ["Snakefile", "config.yaml", "pyproject.toml"]:
        shutil.copy(repo_root / name, tmp_path / name)
    for d in ["workflow", "cards", "envs", "src/fast2full/schemas"]:
        shutil.copytree(repo_root / d, tmp_path / d)
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    cfg["simulator"] = "delphes"
    cfg["processes"]["ttbar"]["events_per_chunk"] = 300
    # real Delphes takes pile-up only from its card's own PileUpFile: the default overlay is off here
    cfg["pileup"]["mean"] = 0
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = dict(os.environ, FAST2FULL_DELPHES=str(DELPHES), DELPHES_ROOT_PYTHON=sys.executable)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    targets = [f"results/skim/{det}/ttbar/0.parquet" for det in CARDS]
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *targets],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr[-4000:] + res.stdout[-2000:]
    for det in CARDS:
        tree = uproot.open(tmp_path / f"results/sim/{det}/ttbar/0.root")["Delphes"]
        assert tree.num_entries == 300
        # real Delphes wrote it (the builtin engine writes no Event.ReadTime)
        assert "Event/Event.ReadTime" in tree.keys(recursive=True)
        skim = ak.from_parquet(tmp_path / f"results/skim/{det}/ttbar/0.parquet")
        assert len(skim) == 300 and ak.sum(ak.num(skim.jets)) > 600
        log = (tmp_path / f"results/logs/simulate/{det}/ttbar/0.log").read_text()
        assert "RandomSeed" in log
    assert not list((tmp_path / "cards").glob(".*.seed*.tcl"))
