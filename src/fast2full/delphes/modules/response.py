"""Detector response of reconstructed objects: ``Efficiency``, ``EnergySmearing`` and
``EnergyScale``."""

from __future__ import annotations

import numpy as np

from fast2full.delphes.modules.base import Module, _eval, _set_pt_eta_phi_e


class Efficiency(Module):
    """Keeps each candidate with probability ``EfficiencyFormula`` (pt, eta, phi, energy; eta/phi
    of the position unless ``UseMomentumVector``)."""

    TYPE = "Efficiency"
    PARAMS = dict.fromkeys(["InputArray", "OutputArray", "EfficiencyFormula", "UseMomentumVector"], "")

    def setup(self):
        self.eff = self.formula("EfficiencyFormula", "1.0")
        self.use_mom = self.b("UseMomentumVector", False)

    def process(self, ctx):
        c = self.get(ctx, self.s("InputArray", "ParticlePropagator/stableParticles"), "InputArray")
        eta, phi = c.pos_eta_phi(self.use_mom)
        eff = _eval(self.eff, c, eta, phi)
        keep = ctx.rng.uniform(size=len(c)) <= eff
        ctx.arrays[self.out("OutputArray", "stableParticles")] = c.take(keep)


class EnergySmearing(Module):
    """Smears the energy with a Gaussian of absolute width ``ResolutionFormula`` (evaluated at the
    position's eta/phi and the energy; do not use ``pt`` in it: Delphes passes the position's
    transverse radius there); drops candidates with E <= 0; keeps direction and mass."""

    TYPE = "EnergySmearing"
    PARAMS = dict.fromkeys(["InputArray", "OutputArray", "ResolutionFormula"], "")

    def setup(self):
        self.res = self.formula("ResolutionFormula", "0.0")

    def process(self, ctx):
        c = self.get(ctx, self.s("InputArray", "ParticlePropagator/stableParticles"), "InputArray")
        eta_p, phi_p = c.pos_eta_phi()
        e0 = c["e"]
        sigma = _eval(self.res, c, eta_p, phi_p, energy=e0)
        e = e0 + sigma * ctx.rng.standard_normal(len(c))
        keep = e > 0
        c, e, e0 = c.take(keep), e[keep], e0[keep]
        m = np.maximum(c.mass, 0.0)
        eta, phi = c.eta, c.phi
        pt = np.where(e > m, np.sqrt(np.maximum(e * e - m * m, 0)) / np.cosh(eta), 0.0)
        eta_p, phi_p = c.pos_eta_phi()
        res = _eval(self.res, c, eta_p, phi_p, pt=pt, energy=e) / e0
        ctx.arrays[self.out("OutputArray", "stableParticles")] = c.with_cols(
            res=res, **_set_pt_eta_phi_e(pt, eta, phi, e)
        )


class EnergyScale(Module):
    """Multiplies the four-momentum by ``ScaleFormula`` (if > 0)."""

    TYPE = "EnergyScale"
    PARAMS = dict.fromkeys(["InputArray", "OutputArray", "ScaleFormula"], "")

    def setup(self):
        self.scale = self.formula("ScaleFormula", "0.0")

    def process(self, ctx):
        c = self.get(ctx, self.s("InputArray", "FastJetFinder/jets"), "InputArray")
        s = _eval(self.scale, c, c.eta, c.phi)
        s = np.where(s > 0, s, 1.0)
        ctx.arrays[self.out("OutputArray", "jets")] = c.with_cols(**{k: c[k] * s for k in ("px", "py", "pz", "e")})
