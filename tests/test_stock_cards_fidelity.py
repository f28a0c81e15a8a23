"""Delphes' stock ATLAS and CMS cards, unchanged, in the builtin engine and in real Delphes on the same
1000 Pythia ttbar and 1000 W+jets events: the project's fidelity comparison
(:mod:`fast2full.delphes.fidelity`: multiplicities, jet response and resolution per GenJet pT bin,
MET, leptons, photons, b-tag rates per flavour, flavour fractions, track and energy-flow counts),
plus what only the stock cards have: tau tagging (TauTagging / TrackCountingTauTagging: tag rate,
jet charge) and the CMS fat jets.

Samples and real-Delphes trees are cached like ``tests/test_delphes_real.py``'s (same cache folder,
same sample keys); the cards are copied unchanged into the cache (real Delphes' seed wrapper card is
written beside the card, not into the shared folder).
"""

import os
import shutil
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from fast2full.delphes.engine import simulate
from fast2full.delphes.fidelity import compare, table
from fast2full.delphes.real import find_delphes, run_delphes
from fast2full.delphes.samples import pythia_sample

ROOT = Path(__file__).resolve().parents[1]
STOCK = ROOT / ".." / "shared" / "delphes" / "cards"
DELPHES = find_delphes(ROOT)
CARDS = {"ATLAS": "delphes_card_ATLAS.tcl", "CMS": "delphes_card_CMS.tcl"}
N_EVENTS = 1000
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        DELPHES is None,
        reason="real Delphes not found: no DelphesHepMC3 on PATH, no "
        "$FAST2FULL_DELPHES and no ../shared/delphes/bin/DelphesHepMC3",
    ),
    pytest.mark.skipif(not (STOCK / CARDS["ATLAS"]).is_file(), reason=f"no stock cards at {STOCK}"),
]


@pytest.fixture(scope="module")
def trees(request, tmp_path_factory):
    old = os.environ.get("DELPHES_ROOT_PYTHON")
    os.environ["DELPHES_ROOT_PYTHON"] = sys.executable
    cache = Path(request.config.cache.mkdir("fast2full_delphes_real"))
    stock = cache / "stock_cards"
    stock.mkdir(exist_ok=True)
    out_dir = tmp_path_factory.mktemp("stock_builtin")
    out = {}
    try:
        for proc in ("ttbar", "wjets"):
            pq, hm = pythia_sample(proc, N_EVENTS, cache)
            for det, name in CARDS.items():
                card = stock / name
                shutil.copy(STOCK / name, card)
                real = cache / f"real_stock_{det}_{hm.stem}.root"
                if not real.is_file() or real.stat().st_mtime < hm.stat().st_mtime:
                    run_delphes(card, hm, real, exe=DELPHES, timeout=900)
                ours = out_dir / f"{det}_{proc}.root"
                simulate(STOCK / name, pq, ours)
                out[det, proc] = ours, real
    finally:
        if old is None:
            os.environ.pop("DELPHES_ROOT_PYTHON", None)
        else:
            os.environ["DELPHES_ROOT_PYTHON"] = old
    return out


@pytest.mark.parametrize("proc", ["ttbar", "wjets"])
@pytest.mark.parametrize("det", list(CARDS))
def test_stock_card_fidelity(trees, det, proc):
    ours, real = trees[det, proc]
    rows = compare(ours, real)
    assert {r.kind for r in rows} == {"mean", "resolution", "ks"} and len(rows) > 40
    print(f"\nstock {det} {proc} ({N_EVENTS} events)\n{table(rows)}")
    failed = [r.line() for r in rows if not r.passed]
    assert not failed, "\n".join([f"stock {det} {proc}: builtin differs from real Delphes"] + failed)


def _agree(name, b, r, tol=0.05):
    mb, mr = float(np.mean(b)), float(np.mean(r))
    se = float(np.sqrt(np.var(b) / len(b) + np.var(r) / len(r)))
    print(f"{name:<34}{mb:>10.4g}{mr:>10.4g}")
    assert abs(mb - mr) <= max(tol * abs(mr), 3 * se), (name, mb, mr, se)


@pytest.mark.parametrize("proc", ["ttbar", "wjets"])
@pytest.mark.parametrize("det", list(CARDS))
def test_stock_card_tau_tagging_and_fat_jets(trees, det, proc):
    """Tau-tag rate of jets and |Jet.Charge| (both set by the tau taggers: TrackCounting's track
    charge sum, TauTagging's tau or random charge), and the number of CMS fat jets per event."""
    ours, real = trees[det, proc]
    leaves = ["Jet.TauTag", "Jet.Charge"] + (["FatJet.PT"] if det == "CMS" else [])
    b, r = (uproot.open(p)["Delphes"].arrays(leaves, library="ak") for p in (ours, real))
    print(f"\nstock {det} {proc}: builtin / real")

    def flat(a, leaf):
        return ak.to_numpy(ak.flatten(a[leaf])).astype(np.int64)

    _agree("jet tau-tag rate", flat(b, "Jet.TauTag") & 1, flat(r, "Jet.TauTag") & 1)
    _agree("jet |charge|", np.abs(flat(b, "Jet.Charge")), np.abs(flat(r, "Jet.Charge")))
    if det == "CMS":
        _agree("fat jets per event", ak.to_numpy(ak.num(b["FatJet.PT"])), ak.to_numpy(ak.num(r["FatJet.PT"])))
        _agree("fat jet pT", ak.to_numpy(ak.flatten(b["FatJet.PT"])), ak.to_numpy(ak.flatten(r["FatJet.PT"])))


@pytest.mark.parametrize("proc", ["ttbar", "wjets"])
def test_tau_classification_equals_real_delphes_event_by_event(trees, proc):
    """The generator taus both taggers start from, event by event: real Delphes' record (the
    stock ATLAS card writes Delphes/allParticles with D1/D2 as the Particle branch) classified as
    TauTagging.cc / TrackCountingTauTagging.cc do, against the builtin engine's taus of the same
    events (no random numbers involved)."""
    from fast2full.delphes.engine import Simulation, input_arrays, particles_to_coll, read_generation
    from fast2full.delphes.modules import Context
    from fast2full.delphes.modules.tau import _visible_taus

    _, real = trees["ATLAS", proc]
    leaves = ["Particle.PID", "Particle.Status", "Particle.PT", "Particle.Eta", "Particle.D1", "Particle.D2"]
    p = uproot.open(real)["Delphes"].arrays(leaves, library="ak")
    counts = {excl: [] for excl in ((), (11, 13, 15))}
    for ev in range(len(p)):
        pid, st, pt, eta, d1, d2 = (ak.to_numpy(p[leaf][ev]) for leaf in leaves)
        cand = np.flatnonzero(
            (np.abs(pid) == 15) & (st != 1) & (pt > 1.0) & (np.abs(eta) <= 2.5) & (d1 >= 0) & (d2 >= d1)
        )
        for excl in counts:  # Pythia writes no W in tau decays: the W -> e/mu check never fires
            counts[excl].append(sum(not np.isin(np.abs(pid[d1[i] : d2[i] + 1]), excl).any() for i in cand))
    pq = Path(pythia_sample(proc, N_EVENTS, Path(real).parent)[0])
    events = read_generation(pq)
    gen = particles_to_coll(events)
    ctx = Context(n_events=len(events), rng=np.random.default_rng(1), next_uid=len(gen))
    ctx.arrays.update(input_arrays(gen))
    for det, excl in (("CMS", ()), ("ATLAS", (11, 13, 15))):
        sim = Simulation.from_card(STOCK / CARDS[det])
        tagger = next(m for m in sim.modules if m.name == "TauTagging")
        ours = _visible_taus(tagger, ctx, excl).counts
        np.testing.assert_array_equal(ours, counts[excl], err_msg=f"{det} {proc}")
        print(f"{det} {proc}: {ours.sum()} taus classified, identical in all {len(ours)} events")
    assert sum(counts[(11, 13, 15)]) > (50 if proc == "ttbar" else 20)
