"""Delphes' tau-tagging modules: ``TauTagging`` (the stock CMS card) and ``TrackCountingTauTagging``
(the stock ATLAS card), following ``modules/TauTagging.cc`` and ``modules/TrackCountingTauTagging.cc``
(read, not copied).

Both find the generator taus among ``PartonInputArray`` (|PID| 15, pT > ``TauPTMin``, |eta| <=
``TauEtaMax``, with decay products) and their visible momentum (the sum of the tau's daughters
except tau neutrinos).  A tau's daughters are the particles produced at its end vertex, as Delphes'
HepMC reader builds them from the record: here from the contract's mother indices with the vertex
rules of :mod:`fast2full.hepmc` (so the engine sees the same daughters real Delphes sees in the
exported HepMC file).

* ``TauTagging``: a tau is dropped if a daughter W decays to e/mu (Pythia writes leptonic tau
  decays without a W, so leptonic taus count, as in Delphes).  A jet within ``DeltaR`` of a visible
  tau gets TauFlavor 15 and the tau's charge, else the nearest e/mu of the parton array (Delphes'
  partons hold no leptons, so never) or flavour 0 and a random charge +-1; it is tagged (bit
  ``BitNumber`` of TauTag) with probability ``EfficiencyFormula`` {flavour} {formula} and its Charge is
  replaced.
* ``TrackCountingTauTagging``: a tau is dropped if a daughter is e, mu or tau (leptonic decays and
  intermediate copies).  In events with such a tau, every jet counts the tracks (pT >= ``TrackPTMin``)
  within ``DeltaRTrack``: identifier = -n, or +n if a visible tau is within ``DeltaR``, clipped to
  [-2, 2]; the tag probability is ``EfficiencyFormula`` {identifier} (missing: {0}, default 0) and the
  jet's Charge becomes the tracks' charge sum.  Delphes skips this while no event so far has had
  such a tau (its filter's category array exists only from the first one on, and is then cleared,
  not removed, per event): the jets of the events before the first hadronic tau of the run are
  left untouched, every later event is processed.
"""

from __future__ import annotations

import numpy as np

from fast2full.delphes.candidates import Coll, delta_r, pairs
from fast2full.delphes.modules.base import Module
from fast2full.delphes.modules.flavour import _eff, _efficiency_map
from fast2full.particles import STATUS_BEAM


class _Daughters:
    """Daughters (particles produced at the end vertex) of candidates of ``Delphes/allParticles``."""

    def __init__(self, all_particles: Coll, module: Module):
        for col in ("mother1", "mother2", "status"):
            if col not in all_particles:
                raise module.spec.error(f"the particle array has no '{col}' column: tau daughters cannot be found")
        self.all = all_particles
        evt = all_particles.evt
        first = all_particles.offsets[:-1]
        self.local = np.arange(len(all_particles)) - first[evt]
        m1 = all_particles["mother1"].astype(np.int64)
        m2 = all_particles["mother2"].astype(np.int64)
        beam = all_particles["status"] == STATUS_BEAM
        glob1 = np.clip(first[evt] + m1, 0, max(len(all_particles) - 1, 0))
        orphan = (m1 < 0) | (m1 >= self.local) | (beam[glob1] if len(glob1) else False) | beam
        is_range = (m2 > m1) & (m2 < self.local)
        self.lo = np.where(orphan, -1, m1)
        self.hi = np.where(orphan, -1, np.where(is_range, m2, m1))

    def of(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(k, j): particle j (flat index in allParticles) is a daughter of idx[k]."""
        mothers = self.all.take(np.sort(idx))
        order = np.argsort(idx, kind="stable")
        ia, jb = pairs(mothers, self.all)
        ml = self.local[np.sort(idx)][ia]
        d = (self.lo[jb] >= 0) & (self.lo[jb] <= ml) & (ml <= self.hi[jb])
        return order[ia[d]], jb[d]


def _visible_taus(module: Module, ctx, exclude_daughters: tuple[int, ...]) -> Coll:
    """The taus of the parton array that pass the classifier, with their visible momentum."""
    allp = module.get(ctx, module.s("ParticleInputArray", "Delphes/allParticles"), "ParticleInputArray")
    partons = module.get(ctx, module.s("PartonInputArray", "Delphes/partons"), "PartonInputArray")
    ptmin, etamax = module.f("TauPTMin", 1.0), module.f("TauEtaMax", 2.5)
    taus = partons.take((np.abs(partons["pid"]) == 15) & (partons.pt > ptmin) & (np.abs(partons.eta) <= etamax))
    dau = _Daughters(allp, module)
    idx = np.searchsorted(allp["uid"], taus["uid"])
    if len(idx) and not np.array_equal(allp["uid"][np.minimum(idx, len(allp) - 1)], taus["uid"]):
        raise module.spec.error("the taus of PartonInputArray are not in ParticleInputArray")
    k, j = dau.of(idx)
    has = np.bincount(k, minlength=len(taus)) > 0
    apid = np.abs(allp["pid"][j])
    bad = np.isin(apid, exclude_daughters)
    w = apid == 24  # a W among the daughters decaying to e/mu
    if w.any():
        kw, jw = dau.of(j[w])
        lep = np.isin(np.abs(allp["pid"][jw]), (11, 13))
        bad_w = np.zeros(int(w.sum()), bool)
        bad_w[kw[lep]] = True
        bad[np.flatnonzero(w)[bad_w]] = True
    rejected = np.bincount(k[bad], minlength=len(taus)) > 0
    vis = apid != 16
    mom = {c: np.bincount(k[vis], weights=allp[c][j[vis]], minlength=len(taus)) for c in ("px", "py", "pz", "e")}
    return taus.with_cols(**{f"vis_{c}": v for c, v in mom.items()}).take(has & ~rejected)


def _vis_eta_phi(taus: Coll) -> tuple[np.ndarray, np.ndarray]:
    v = Coll(taus.counts, {"px": taus["vis_px"], "py": taus["vis_py"], "pz": taus["vis_pz"], "e": taus["vis_e"]})
    return v.eta, v.phi


class TauTagging(Module):
    TYPE = "TauTagging"
    PARAMS = dict.fromkeys(
        [
            "ParticleInputArray",
            "PartonInputArray",
            "JetInputArray",
            "DeltaR",
            "TauPTMin",
            "TauEtaMax",
            "BitNumber",
            "EfficiencyFormula",
        ],
        "",
    )

    def setup(self):
        self.effs = _efficiency_map(self)
        self.bit = self.i("BitNumber", 0)
        self.dr = self.f("DeltaR", 0.5)

    def process(self, ctx):
        ref = self.s("JetInputArray", "FastJetFinder/jets")
        jets = self.get(ctx, ref, "JetInputArray")
        taus = _visible_taus(self, ctx, ())
        charge = np.where(ctx.rng.uniform(size=len(jets)) > 0.5, 1, -1)
        flavor = np.zeros(len(jets), np.int32)
        ia, jb = pairs(jets, taus)
        teta, tphi = _vis_eta_phi(taus)
        m = delta_r(jets.eta[ia], jets.phi[ia], teta[jb], tphi[jb]) <= self.dr
        flavor[ia[m]] = 15
        charge[ia[m]] = taus["charge"][jb[m]]  # the last matching tau, as Delphes' loop
        # no tau: the nearest electron or muon of the parton array within DeltaR
        partons = self.get(ctx, self.s("PartonInputArray", "Delphes/partons"), "PartonInputArray")
        leps = partons.take(
            np.isin(np.abs(partons["pid"]), (11, 13))
            & (partons.pt >= self.f("TauPTMin", 1.0))
            & (np.abs(partons.eta) <= self.f("TauEtaMax", 2.5))
        )
        if len(leps):
            ia, jb = pairs(jets, leps)
            dr = delta_r(jets.eta[ia], jets.phi[ia], leps.eta[jb], leps.phi[jb])
            ok = (flavor[ia] == 0) & (dr < self.dr)
            ia, jb, dr = ia[ok], jb[ok], dr[ok]
            best = np.full(len(jets), np.inf)
            np.minimum.at(best, ia, dr)
            win = dr == best[ia]
            flavor[ia[win]] = np.abs(leps["pid"][jb[win]])
            charge[ia[win]] = leps["charge"][jb[win]]
        eff = _eff(self.effs, flavor, jets)
        tag = (ctx.rng.uniform(size=len(jets)) <= eff).astype(np.int32) << self.bit
        ctx.arrays[ref] = jets.with_cols(
            tau_tag=jets["tau_tag"] | tag if "tau_tag" in jets else tag,
            tau_flavor=flavor,
            tau_weight=eff,
            charge=charge.astype(np.int32),
        )


class TrackCountingTauTagging(Module):
    TYPE = "TrackCountingTauTagging"
    PARAMS = dict.fromkeys(
        [
            "ParticleInputArray",
            "PartonInputArray",
            "TrackInputArray",
            "JetInputArray",
            "DeltaR",
            "DeltaRTrack",
            "TrackPTMin",
            "TauPTMin",
            "TauEtaMax",
            "BitNumber",
            "EfficiencyFormula",
        ],
        "",
    )

    def setup(self):
        self.effs = _efficiency_map(self)
        self.bit = self.i("BitNumber", 0)
        self.dr = self.f("DeltaR", 0.5)
        self.dr_track = self.f("DeltaRTrack", 0.2)
        self.track_ptmin = self.f("TrackPTMin", 1.0)
        self._seen_tau = False

    def process(self, ctx):
        ref = self.s("JetInputArray", "FastJetFinder/jets")
        jets = self.get(ctx, ref, "JetInputArray")
        tracks = self.get(ctx, self.s("TrackInputArray", "TrackMerger/tracks"), "TrackInputArray")
        taus = _visible_taus(self, ctx, (11, 13, 15))
        # Delphes returns early while its tau filter has never held a hadronic tau; its category
        # array survives the per-event Reset (cleared, not removed), so from the first event with
        # one on, every event's jets are processed (state kept across batches here too)
        seen = np.cumsum(taus.counts > 0) > 0 if len(taus.counts) else np.zeros(0, bool)
        seen |= self._seen_tau
        if len(seen):
            self._seen_tau = bool(seen[-1])
        active = seen[jets.evt]
        tracks = tracks.take(tracks.pt >= self.track_ptmin)
        ia, jb = pairs(jets, tracks)
        near = delta_r(jets.eta[ia], jets.phi[ia], tracks.eta[jb], tracks.phi[jb]) <= self.dr_track
        ntrk = np.bincount(ia[near], minlength=len(jets))
        qsum = np.bincount(ia[near], weights=tracks["charge"][jb[near]], minlength=len(jets))
        ia, jb = pairs(jets, taus)
        teta, tphi = _vis_eta_phi(taus)
        m = delta_r(jets.eta[ia], jets.phi[ia], teta[jb], tphi[jb]) <= self.dr
        matched = np.bincount(ia[m], minlength=len(jets)) > 0
        ident = np.clip(np.where(matched, ntrk, -ntrk), -2, 2)
        eff = _eff(self.effs, ident, jets)
        tag = (ctx.rng.uniform(size=len(jets)) <= eff).astype(np.int32) << self.bit
        tag = np.where(active, tag, 0).astype(np.int32)
        old = jets["tau_tag"] if "tau_tag" in jets else np.zeros(len(jets), np.int32)
        ctx.arrays[ref] = jets.with_cols(
            tau_tag=old | tag, charge=np.where(active, qsum, jets["charge"]).astype(np.int32)
        )
