"""The modules Delphes' stock ATLAS and CMS cards need: SimpleCalorimeter, TauTagging,
TrackCountingTauTagging, FastJetFinder's substructure switches."""

from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from fast2full.delphes.card import CardError
from fast2full.delphes.engine import Simulation, input_arrays, particles_to_coll
from fast2full.delphes.modules import Context
from fast2full.delphes.samples import single_particle_events

CARDS_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "delphes" / "cards"
ATLAS, CMS = CARDS_DIR / "delphes_card_ATLAS.tcl", CARDS_DIR / "delphes_card_CMS.tcl"
needs_cards = pytest.mark.skipif(not ATLAS.is_file(), reason=f"Delphes' stock cards not found at {CARDS_DIR}")


def _run(sim, events, seed=3):
    gen = particles_to_coll(events)
    ctx = Context(n_events=len(events), rng=np.random.default_rng(seed), next_uid=len(gen))
    ctx.arrays.update(input_arrays(gen))
    for m in sim.modules:
        m.process(ctx)
    return ctx


@needs_cards
@pytest.mark.parametrize("card", [ATLAS, CMS], ids=["ATLAS", "CMS"])
def test_simple_calorimeter_photon_resolution_is_the_cards(card):
    """50 GeV photons at |eta| = 0.5: one ECal tower each, log-normal with the card's ECal
    resolution formula, an eflow photon (ECal excess, no track) and nothing in the HCal."""
    sim = Simulation.from_card(card)
    ecal = next(m for m in sim.modules if m.name == "ECal")
    hcal = next(m for m in sim.modules if m.name == "HCal")
    assert (ecal.is_ecal, hcal.is_ecal) == (True, False)
    ctx = _run(sim, single_particle_events(22, 50.0, 0.5, 2000, seed=5))
    towers = ctx.arrays["ECal/ecalTowers"]
    assert np.all(towers.counts == 1)
    e = towers["e"]
    sigma = ecal.res(1, eta=np.array([0.5]), energy=np.array([50.0]), pt=np.zeros(1), phi=np.zeros(1))[0]
    assert abs(e.mean() - 50.0) < 4 * sigma / np.sqrt(len(e))
    assert abs(e.std() / sigma - 1) < 0.08
    assert np.all(towers["ehad"] == 0) and np.allclose(towers["eem"], e)
    assert len(ctx.arrays["HCal/hcalTowers"]) == 0
    photons = ctx.arrays["ECal/eflowPhotons"]
    assert np.all(photons.counts == 1) and np.all(photons["pid"] == 22)
    np.testing.assert_allclose(photons["e"], e)


@needs_cards
def test_simple_calorimeter_pion_track_is_rescaled_in_the_hcal():
    """20 GeV charged pions, |eta| = 0.5, ATLAS card: the track passes the ECal (fraction 0) unchanged
    and is combined with the HCal tower: its energy moves towards the calorimeter's by the
    inverse-variance weights, and no neutral hadron appears unless the excess is significant."""
    sim = Simulation.from_card(ATLAS)
    ctx = _run(sim, single_particle_events(211, 20.0, 0.5, 1500, seed=7))
    tracks = ctx.arrays["TrackMerger/tracks"]
    after_ecal = ctx.arrays["ECal/eflowTracks"]
    np.testing.assert_allclose(after_ecal["e"], tracks["e"], rtol=1e-12)  # ECal fraction of pi+: 0
    hcal_towers = ctx.arrays["HCal/hcalTowers"]
    eflow = ctx.arrays["HCal/eflowTracks"]
    assert len(eflow) == len(tracks)
    # per event with a track and an HCal tower, the rescaled track energy lies between the two
    both = (tracks.counts == 1) & (hcal_towers.counts == 1)
    t = np.repeat(both, tracks.counts)
    h = np.repeat(both, hcal_towers.counts)
    lo = np.minimum(tracks["e"][t], hcal_towers["e"][h]) - 1e-6
    hi = np.maximum(tracks["e"][t], hcal_towers["e"][h]) + 1e-6
    neutral = ctx.arrays["HCal/eflowNeutralHadrons"]
    no_excess = np.repeat(neutral.counts == 0, tracks.counts)[t]
    e = eflow["e"][np.repeat(both, eflow.counts)]
    assert np.all((e >= lo) & (e <= hi) | ~no_excess)
    # the combination of two measurements is better than either (the card's tracks: 6 % at
    # |eta| < 0.5; the HCal: ~14 % at 20 GeV)
    width = [0.5 * np.diff(np.quantile(x, [0.16, 0.84]))[0] for x in (e, tracks["e"][t], hcal_towers["e"][h])]
    assert width[0] < 0.95 * min(width[1:]), width


def _tau_event(decay_pids, tau_pt=40.0):
    """One event: beams, a hard tau (status -23) at eta 0, phi 0, its decay products (sharing its
    momentum) just after it, and a far-away pion."""
    n_d = len(decay_pids)
    rows = [(2212, -12, 0, 0, 6500, -1, -1), (2212, -12, 0, 0, -6500, -1, -1), (15, -23, tau_pt, 0.0, 0.0, 0, 1)]
    for k, pid in enumerate(decay_pids):
        share = tau_pt / n_d
        rows.append((pid, 1, share, 0.01 * (k + 1), 0.0, 2, -1))
    rows.append((211, 1, -30.0, 1.0, 0.5, 0, 1))
    pid, status, px, py, pz, m1, m2 = (np.array(c) for c in zip(*rows))
    e = np.sqrt(px**2 + py**2 + pz**2)
    one = np.array([len(rows)])
    particles = ak.unflatten(
        ak.zip(
            {
                "pid": pid.astype(np.int32),
                "status": status.astype(np.int32),
                "px": px.astype(np.float32),
                "py": py.astype(np.float32),
                "pz": pz.astype(np.float32),
                "e": e.astype(np.float32),
                "mass": np.zeros(len(rows), np.float32),
                "mother1": m1.astype(np.int32),
                "mother2": m2.astype(np.int32),
            }
        ),
        one,
    )
    del n_d
    return ak.zip(
        {
            "event_id": np.array([0]),
            "process": np.array(["tau"]),
            "seed": np.array([1]),
            "weight": np.ones(1),
            "sigma_pb": np.ones(1),
            "particles": particles,
        },
        depth_limit=1,
    )


def _tagger(card, name):
    sim = Simulation.from_card(card)
    return sim, next(m for m in sim.modules if m.name == name)


@needs_cards
@pytest.mark.parametrize("decay, flavour", [((211, 16), 15), ((-11, 12, 16), 15)])
def test_tau_tagging_matches_the_visible_tau(decay, flavour):
    """CMS card TauTagging: the jet at the visible tau gets TauFlavor 15, the tau's charge and the
    {15} efficiency (0.6); leptonic decays count too (no W in Pythia's tau decays, as in Delphes)."""
    from fast2full.delphes.modules.tau import _visible_taus

    sim, tagger = _tagger(CMS, "TauTagging")
    ctx = _run(sim, _tau_event(decay))
    taus = _visible_taus(tagger, ctx, ())
    assert len(taus) == 1
    np.testing.assert_allclose(taus["vis_px"], 40.0 * (len(decay) - 1) / len(decay), rtol=1e-5)
    jets = ctx.arrays["JetEnergyScale/jets"]
    near = np.abs(jets.phi) < 0.3
    assert near.sum() <= 1
    if near.any():
        assert jets["tau_flavor"][near][0] == flavour
        assert jets["tau_weight"][near][0] == pytest.approx(0.6)
        assert jets["charge"][near][0] == -1  # tau- (PID 15)
    far = ~near
    assert np.all(jets["tau_flavor"][far] == 0) and np.allclose(jets["tau_weight"][far], 0.01)


@needs_cards
@pytest.mark.parametrize("decay, hadronic", [((211, 16), True), ((-13, 14, 16), False)])
def test_track_counting_tau_tagging(decay, hadronic):
    """ATLAS card TrackCountingTauTagging: only hadronic taus count; a jet's identifier is +n tracks
    at a visible tau, -n elsewhere; events before the first hadronic tau stay untouched."""
    from fast2full.delphes.modules.tau import _visible_taus

    sim, tagger = _tagger(ATLAS, "TauTagging")
    assert tagger.spec.type == "TrackCountingTauTagging"
    ctx = _run(sim, _tau_event(decay))
    assert len(_visible_taus(tagger, ctx, (11, 13, 15))) == int(hadronic)
    jets = ctx.arrays["JetEnergyScale/jets"]
    if not hadronic:
        assert np.all(jets["tau_tag"] == 0) if "tau_tag" in jets else True


@needs_cards
def test_tau_tagging_efficiencies_over_many_events():
    """1-prong hadronic taus: the tagged fraction of the matched jet is the card's 0.60 (CMS, {15})
    and 0.70 (ATLAS, identifier +1), within 4 sigma over 400 events."""
    events = ak.concatenate([_tau_event((211, 16), tau_pt=100.0) for _ in range(400)])
    events = ak.with_field(events, np.arange(400), "event_id")
    for card, expect in ((CMS, 0.60), (ATLAS, 0.70)):
        sim = Simulation.from_card(card)
        ctx = _run(sim, events, seed=11)
        jets = ctx.arrays["JetEnergyScale/jets"]
        near = np.abs(jets.phi) < 0.3
        tagged = (jets["tau_tag"][near] & 1).mean()
        n = near.sum()
        assert n > 300
        assert abs(tagged - expect) < 4 * np.sqrt(expect * (1 - expect) / n), (card.name, tagged)


def test_substructure_switches_are_accepted_and_said(tmp_path, caplog):
    card = tmp_path / "c.tcl"
    card.write_text(
        "set ExecutionPath {J TreeWriter}\nmodule FastJetFinder J {\n"
        "  set InputArray Delphes/stableParticles\n  set ComputeSoftDrop 1\n"
        "  set BetaSoftDrop 0.0\n}\nmodule TreeWriter TreeWriter {\n"
        "  add Branch J/jets Jet Jet\n}\n"
    )
    Simulation.from_card(card)
    assert "c.tcl:4" in caplog.text and "ComputeSoftDrop" in caplog.text
    card.write_text(card.read_text().replace("ComputeSoftDrop 1", "ComputeAreas 1"))
    with pytest.raises(CardError, match="unknown parameter 'ComputeAreas'"):
        Simulation.from_card(card)
