"""Tracking: ``ParticlePropagator`` (helix to the calorimeter surface), ``MomentumSmearing`` and
``TrackSmearing`` (track resolution)."""

from __future__ import annotations

import numpy as np

from fast2full.delphes.candidates import log_normal
from fast2full.delphes.modules.base import (
    C_LIGHT_GEV,
    Context,
    Module,
    _ctg_theta,
    _eval,
    _set_pt_eta_phi_m,
)


class ParticlePropagator(Module):
    """Propagates particles from the origin to the calorimeter surface (cylinder ``Radius``,
    ``HalfLength`` [m]) in a solenoidal field ``Bz`` [T]: neutrals straight, charged on a helix.
    Sets the position (``eta_pos``, ``phi_pos``) that the calorimeter bins and efficiencies use;
    splits charged particles into electrons, muons and charged hadrons.  Production vertices are
    at the origin (the generation contract stores no vertices), so d0 = dz = 0.  ``RadiusMax`` /
    ``HalfLengthMax`` (default Radius / HalfLength): as in Delphes, a particle produced outside
    that volume is dropped; with every vertex at the origin none is.  ``BeamSpotInputArray``
    (Delphes' optional beam-spot particle, subtracted from the track perigee): Delphes uses the
    origin when the array does not exist, and so does the builtin engine; naming an array that
    exists is refused (there are no vertex positions to subtract)."""

    TYPE = "ParticlePropagator"
    PARAMS = dict.fromkeys(
        [
            "InputArray",
            "OutputArray",
            "NeutralOutputArray",
            "ChargedHadronOutputArray",
            "ElectronOutputArray",
            "MuonOutputArray",
            "Radius",
            "RadiusMax",
            "HalfLength",
            "HalfLengthMax",
            "Bz",
            "BeamSpotInputArray",
        ],
        "",
    )

    def setup(self):
        self.radius = self.f("Radius", 1.0)
        self.half_length = self.f("HalfLength", 3.0)
        self.bz = self.f("Bz", 0.0)
        if self.radius < 1e-2 or self.half_length < 1e-2:
            raise self.spec.error("Radius and HalfLength must be >= 0.01 m")
        self.radius_max = self.f("RadiusMax", self.radius)
        self.half_length_max = self.f("HalfLengthMax", self.half_length)

    def process(self, ctx):
        c = self.get(ctx, self.s("InputArray", "Delphes/stableParticles"), "InputArray")
        _no_beam_spot(self, ctx)
        pt = c.pt
        # production vertex [m]: the origin for every particle of the generation contract
        vx = vy = vz = np.zeros(len(c))
        inside = (np.hypot(vx, vy) <= self.radius_max) & (np.abs(vz) <= self.half_length_max)
        c = c.take((pt * pt >= 1e-9) & inside)
        pt, eta, phi = c.pt, c.eta, c.phi
        pz = c["pz"]
        q = c["charge"].astype(np.float64)
        charged = (np.abs(q) > 1e-9) & (abs(self.bz) > 1e-9)
        eta_pos, phi_pos = eta.copy(), phi.copy()
        if charged.any():
            ch = np.flatnonzero(charged)
            r = pt[ch] / (q[ch] * self.bz * C_LIGHT_GEV)  # signed helix radius [m]
            ra = np.abs(r)
            with np.errstate(divide="ignore", invalid="ignore"):
                # turning angle to reach the endcap |z| = HalfLength
                psi_z = np.where(pz[ch] != 0, self.half_length * pt[ch] / (ra * np.abs(pz[ch])), np.inf)
                # turning angle to reach the barrel radius (if the circle gets there)
                reaches = 2 * ra >= self.radius
                cos_a = np.clip(1 - self.radius**2 / (2 * ra * ra), -1, 1)
                psi_r = np.where(reaches, np.arccos(cos_a), np.inf)
            psi = np.minimum(psi_r, psi_z)
            # a looper with pz == 0 never leaves: put it half a turn out (Delphes' t_z = 1e99)
            psi = np.where(np.isfinite(psi), psi, np.pi) * np.sign(r)
            phi0 = phi[ch]
            x = r * (np.sin(phi0) - np.sin(phi0 - psi))
            y = r * (-np.cos(phi0) + np.cos(phi0 - psi))
            z = ra * np.abs(psi) * pz[ch] / pt[ch]
            rho = np.hypot(x, y)
            with np.errstate(divide="ignore", invalid="ignore"):
                eta_pos[ch] = np.where(rho > 0, np.arcsinh(z / rho), eta[ch])
            phi_pos[ch] = np.arctan2(y, x)
        c = c.with_cols(eta_pos=eta_pos, phi_pos=phi_pos)
        ctx.arrays[self.out("OutputArray", "stableParticles")] = c
        apid = np.abs(c["pid"])
        isq = np.abs(q) > 1e-9
        ctx.arrays[self.out("NeutralOutputArray", "neutralParticles")] = c.take(~isq)
        ctx.arrays[self.out("ElectronOutputArray", "electrons")] = c.take(isq & (apid == 11))
        ctx.arrays[self.out("MuonOutputArray", "muons")] = c.take(isq & (apid == 13))
        ctx.arrays[self.out("ChargedHadronOutputArray", "chargedHadrons")] = c.take(isq & (apid != 11) & (apid != 13))


def _no_beam_spot(m: Module, ctx: Context) -> None:
    """Delphes' optional ``BeamSpotInputArray``: absent -> beam spot at the origin (as here)."""
    name = m.s("BeamSpotInputArray", "BeamSpotFilter/beamSpotParticle")
    if name in ctx.arrays:
        m.refuse(
            "BeamSpotInputArray",
            f"array '{name}' exists, but contract-1 particles have no "
            "vertex positions, so a beam spot cannot be subtracted",
        )


class MomentumSmearing(Module):
    """Smears pT log-normally with relative width ``ResolutionFormula``; keeps eta, phi, mass and
    stores the resolution as the track resolution (used by the calorimeter's energy flow)."""

    TYPE = "MomentumSmearing"
    PARAMS = dict.fromkeys(["InputArray", "OutputArray", "ResolutionFormula", "UseMomentumVector"], "")

    def setup(self):
        self.res = self.formula("ResolutionFormula", "0.0")
        self.use_mom = self.b("UseMomentumVector", False)

    def process(self, ctx):
        c = self.get(ctx, self.s("InputArray", "ParticlePropagator/stableParticles"), "InputArray")
        eta_f, phi_f = c.pos_eta_phi(self.use_mom)
        pt, m = c.pt, c.mass
        res = _eval(self.res, c, eta_f, phi_f, pt=pt)
        new_pt = log_normal(ctx.rng, pt, res * pt)
        cols = _set_pt_eta_phi_m(new_pt, c.eta, c.phi, np.maximum(m, 0.0))
        ctx.arrays[self.out("OutputArray", "stableParticles")] = c.with_cols(res=res, **cols)


class TrackSmearing(Module):
    """Gaussian smearing of the track parameters d0, dz [mm], p (relative width
    ``PResolutionFormula``), cot(theta) and phi with the ``*ResolutionFormula``s; tracks with
    p < 0 after smearing are dropped; the resolution p/p becomes the track resolution.  Formula
    mode only: a resolution formula that is not given means no smearing of that parameter (Delphes
    would read a resolution file instead, which is not supported).  The perigee position is not
    recomputed (vertices are at the origin), so ``Bz``, which Delphes uses only for that position
    (Track.X/Y/Z, not written here), is refused; ``BeamSpotInputArray`` as in
    ParticlePropagator."""

    TYPE = "TrackSmearing"
    PARAMS = dict.fromkeys(
        [
            "InputArray",
            "OutputArray",
            "Bz",
            "D0ResolutionFormula",
            "DZResolutionFormula",
            "PResolutionFormula",
            "CtgThetaResolutionFormula",
            "PhiResolutionFormula",
            "ApplyToPileUp",
            "BeamSpotInputArray",
        ],
        "",
    )

    def setup(self):
        self.res = {k: self.formula(f"{k}ResolutionFormula", "0.0") for k in ("D0", "DZ", "P", "CtgTheta", "Phi")}
        self.refuse(
            "Bz",
            "it only moves the track's reference point (Track.X/Y/Z), which needs "
            "production vertices and is not written",
        )

    def process(self, ctx):
        c = self.get(ctx, self.s("InputArray", "ParticlePropagator/stableParticles"), "InputArray")
        _no_beam_spot(self, ctx)
        eta, phi, m = c.eta, c.phi, np.maximum(c.mass, 0.0)
        err = {k: _eval(f, c, eta, phi) for k, f in self.res.items()}
        p0 = c.p
        err["P"] = err["P"] * p0
        ok = np.all([v >= 0 for v in err.values()], axis=0)
        smear = np.ones(len(c), bool) if self.b("ApplyToPileUp", True) else c["is_pu"] <= 0
        z = {k: ctx.rng.standard_normal(len(c)) * np.where(smear, v, 0.0) for k, v in err.items()}
        p = p0 + z["P"]
        ctg = _ctg_theta(c) + z["CtgTheta"]
        ph = (phi + z["Phi"] + np.pi) % (2 * np.pi) - np.pi
        keep = ok & (p >= 0)
        sin_t = 1.0 / np.sqrt(1.0 + ctg * ctg)
        cols = {
            "px": p * np.cos(ph) * sin_t,
            "py": p * np.sin(ph) * sin_t,
            "pz": p * ctg * sin_t,
            "e": np.sqrt(p * p + m * m),
            "d0": c["d0"] + z["D0"],
            "dz": c["dz"] + z["DZ"],
        }
        with np.errstate(divide="ignore", invalid="ignore"):
            cols["res"] = np.where(p > 0, err["P"] / p, 0.0)
        ctx.arrays[self.out("OutputArray", "stableParticles")] = c.with_cols(**cols).take(keep)
