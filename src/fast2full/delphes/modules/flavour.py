"""Jet flavour and b-tagging: ``JetFlavorAssociation`` and ``BTagging``, and the per-flavour
efficiency maps (``EfficiencyFormula`` {code} {formula}) that the taggers share."""

from __future__ import annotations

import logging

import numpy as np

from fast2full.delphes.candidates import Coll, delta_r, pairs
from fast2full.delphes.card import CardError
from fast2full.delphes.formula import Formula, FormulaError
from fast2full.delphes.modules.base import Module, _eval

log = logging.getLogger("fast2full.delphes")


def _efficiency_map(module: Module) -> dict[int, Formula]:
    """A tagger's ``EfficiencyFormula`` {code} {formula} pairs; code 0 (every code not listed)
    defaults to efficiency 0."""
    out: dict[int, Formula] = {}
    p = module._p("EfficiencyFormula")
    w = [] if p is None else list(p.values)
    for k in range(0, len(w) - 1, 2):
        try:
            out[int(w[k].words()[0].text)] = Formula(w[k + 1].text)
        except (ValueError, FormulaError) as exc:
            assert p is not None
            raise p.error(str(exc)) from None
    out.setdefault(0, Formula("0.0"))
    return out


def _eff(effs: dict[int, Formula], code: np.ndarray, jets: Coll) -> np.ndarray:
    """Each jet's tag probability: the formula of its code (flavour or track-count identifier)."""
    eff = np.zeros(len(jets))
    eta, phi = jets.eta, jets.phi
    listed = [k for k in effs if k]
    for key, f in effs.items():
        m = code == key if key else ~np.isin(code, listed)
        if m.any():
            eff[m] = _eval(f, jets, eta, phi)[m]
    return eff


class JetFlavorAssociation(Module):
    """Jet flavour as Delphes' JetFlavorAssociation writes it when it reads HepMC events.

    Partons are the ``PartonInputArray`` (default ``Delphes/partons``: every particle of the
    record that is not final, |PID| 1-5, 21 or 15, exactly what DelphesHepMC3's reader exports;
    generation stores every quark and gluon of the shower with pT >= 1 GeV, so for PartonPTMin
    >= 1 GeV the label equals Delphes' on the full Pythia record, a warning otherwise)
    that pass Delphes' PartonClassifier: quarks d..b or gluons with pT > ``PartonPTMin`` and
    |eta| <= ``PartonEtaMax``.  ``Flavor`` = the highest |PID| among those within ``DeltaR`` of the
    jet axis, gluons counting lowest (5 b, 4 c, 1-3 light, 21 only gluons, 0 none).

    ``FlavorAlgo`` and ``FlavorPhys`` need Delphes' LHEF parton array
    (``ParticleLHEFInputArray``, default ``Delphes/allParticlesLHEF``), which only Delphes' LHEF
    reader exports: DelphesHepMC3 has none, so Delphes skips both definitions and writes
    ``FlavorAlgo = 0`` (and ``BTagAlgo`` then uses the flavour-0 efficiency).  The builtin engine
    does the same; a card that points ``ParticleLHEFInputArray`` at an array that exists is
    refused (the LHEF-matching definitions are not implemented).  ``ParticleInputArray`` (the
    mother/daughter look-ups of those definitions) must name an existing array, as Delphes'
    ImportArray requires."""

    TYPE = "JetFlavorAssociation"
    PARAMS = dict.fromkeys(
        [
            "PartonInputArray",
            "ParticleInputArray",
            "ParticleLHEFInputArray",
            "JetInputArray",
            "DeltaR",
            "PartonPTMin",
            "PartonEtaMax",
        ],
        "",
    )

    def setup(self):
        from fast2full.generate import PARTON_PT_MIN

        if self.f("PartonPTMin", 0.0) < PARTON_PT_MIN:
            log.warning(
                "%s: JetFlavorAssociation %s: PartonPTMin %g GeV is below the %g GeV down to "
                "which generation stores shower partons: softer partons are missing from "
                "the record, so Flavor can differ from Delphes run on the full record",
                self.spec.path,
                self.name,
                self.f("PartonPTMin", 0.0),
                PARTON_PT_MIN,
            )

    def process(self, ctx):
        ref = self.s("JetInputArray", "FastJetFinder/jets")
        jets = self.get(ctx, ref, "JetInputArray")
        partons = self.get(ctx, self.s("PartonInputArray", "Delphes/partons"), "PartonInputArray")
        self.get(ctx, self.s("ParticleInputArray", "Delphes/allParticles"), "ParticleInputArray")
        lhef = self.s("ParticleLHEFInputArray", "Delphes/allParticlesLHEF")
        if lhef in ctx.arrays:
            p = self._p("ParticleLHEFInputArray")
            raise CardError(
                self.spec.path,
                p.line if p else self.spec.line,
                f"module JetFlavorAssociation {self.name}: ParticleLHEFInputArray "
                f"'{lhef}' exists, so Delphes would compute FlavorAlgo/FlavorPhys from "
                f"LHEF partons; those definitions are not implemented in the builtin "
                f"engine",
            )
        ppt = partons.pt
        # Delphes' PartonClassifier: quarks d..b and gluons only
        apid0 = np.abs(partons["pid"])
        partons = partons.take(
            (((apid0 >= 1) & (apid0 <= 5)) | (apid0 == 21))
            & (ppt > self.f("PartonPTMin", 0.0))
            & (np.abs(partons.eta) <= self.f("PartonEtaMax", 2.5))
        )
        ia, jb = pairs(jets, partons)
        dr = delta_r(jets.eta[ia], jets.phi[ia], partons.eta[jb], partons.phi[jb])
        ok = dr <= self.f("DeltaR", 0.5)
        ia, jb = ia[ok], jb[ok]
        apid = np.abs(partons["pid"][jb])
        code = np.where(apid == 21, 0, apid)
        best = np.full(len(jets), -1, np.int64)
        np.maximum.at(best, ia, code)
        flavor = np.where(best == 0, 21, np.where(best < 0, 0, best))
        # Delphes sets the flavour on the jets in place: it shows up in the input array itself
        ctx.arrays[ref] = jets.with_cols(flavor=flavor.astype(np.int32), flavor_algo=np.zeros(len(jets), np.int32))


class BTagging(Module):
    """Sets bit ``BitNumber`` of BTag with probability ``EfficiencyFormula`` {flavour} {formula}
    (flavour 0: every other flavour), from Flavor (BTag) and FlavorAlgo (BTagAlgo)."""

    TYPE = "BTagging"
    PARAMS = dict.fromkeys(["JetInputArray", "BitNumber", "EfficiencyFormula"], "")

    def setup(self):
        self.eff = _efficiency_map(self)
        self.bit = self.i("BitNumber", 0)

    def _tag(self, ctx, jets, flavor):
        return (ctx.rng.uniform(size=len(jets)) <= _eff(self.eff, flavor, jets)).astype(np.int32) << self.bit

    def process(self, ctx):
        ref = self.s("JetInputArray", "FastJetFinder/jets")
        jets = self.get(ctx, ref, "JetInputArray")
        btag = jets["btag"] | self._tag(ctx, jets, jets["flavor"])
        btag_algo = jets["btag_algo"] | self._tag(ctx, jets, jets["flavor_algo"])
        ctx.arrays[ref] = jets.with_cols(btag=btag, btag_algo=btag_algo)
