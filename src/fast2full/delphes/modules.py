"""Delphes modules, re-implemented column-wise over a whole chunk of events.

Every class here mirrors the Delphes module of the same name (``modules/<Type>.cc`` in
github.com/delphes/delphes, read for semantics): the same parameter names, defaults and meanings.
The docstrings say where the builtin engine simplifies.  A card parameter a class does not list is
an error naming the card line, so a card that runs here means the same thing in real Delphes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from fast2full.delphes.candidates import Coll, delta_phi, delta_r, log_normal, pairs, per_event_sum
from fast2full.delphes.card import CardError, Param
from fast2full.delphes.card import Module as CardModule
from fast2full.delphes.formula import Formula, FormulaError

log = logging.getLogger("fast2full.delphes")

#: speed of light times 1e-9: a track of pT [GeV] in B [T] with charge q [e] has radius
#: pT / (C_LIGHT_GEV * q * B) [m]
C_LIGHT_GEV = 0.299792458


@dataclass
class Context:
    """What flows through the execution path: named arrays ``Module/array`` and the RNG."""

    n_events: int
    rng: np.random.Generator
    arrays: dict[str, Coll] = field(default_factory=dict)
    next_uid: int = 0
    pileup: Coll | None = None  # minimum-bias particles to draw from (PileUpMerger)
    pileup_mean: float | None = None  # config override of the card's MeanPileUp
    branches: dict[str, object] = field(default_factory=dict)  # filled by TreeWriter

    def new_uids(self, n: int) -> np.ndarray:
        out = np.arange(self.next_uid, self.next_uid + n, dtype=np.int64)
        self.next_uid += n
        return out


class Module:
    """Base class: parameter checking and typed access.  ``PARAMS`` holds the parameter names the
    module accepts (Delphes' ``Get*`` calls in its ``Init``); any other name in the card is an error."""

    TYPE = ""
    PARAMS: dict[str, str] = {}

    def __init__(self, spec: CardModule):
        self.spec = spec
        self.name = spec.name
        for pname, p in spec.params.items():
            if pname not in self.PARAMS:
                raise CardError(
                    p.path,
                    p.line,
                    f"module {spec.type} {spec.name}: unknown parameter '{pname}' "
                    f"(supported: {', '.join(sorted(self.PARAMS))})",
                )
        self.setup()

    # -- parameter access ------------------------------------------------------------------------
    def _p(self, name: str) -> Param | None:
        return self.spec.params.get(name)

    def f(self, name: str, default: float) -> float:
        p = self._p(name)
        return default if p is None else p.as_float()

    def i(self, name: str, default: int) -> int:
        p = self._p(name)
        return default if p is None else p.as_int()

    def b(self, name: str, default: bool) -> bool:
        p = self._p(name)
        return default if p is None else p.as_bool()

    def s(self, name: str, default: str) -> str:
        p = self._p(name)
        return default if p is None else p.as_str()

    def formula(self, name: str, default: str) -> Formula:
        p = self._p(name)
        text = default if p is None else p.as_str()
        try:
            return Formula(text)
        except FormulaError as exc:
            line = p.line if p else self.spec.line
            raise CardError(
                self.spec.path, line, f"module {self.spec.type} {self.name}: parameter '{name}': {exc}"
            ) from None

    def words(self, name: str) -> list:
        p = self._p(name)
        return [] if p is None else list(p.values)

    def refuse(self, name: str, why: str, allowed: float | None = None) -> None:
        """CardError at the card line of parameter ``name`` if the card sets it (to anything but
        ``allowed``): a parameter Delphes reads whose effect the builtin engine cannot reproduce."""
        p = self._p(name)
        if p is None or (allowed is not None and p.as_float() == allowed):
            return
        raise CardError(
            p.path,
            p.line,
            f"module {self.spec.type} {self.name}: parameter '{name}' is not supported by the builtin engine: {why}",
        )

    def out(self, name: str, default: str) -> str:
        return f"{self.name}/{self.s(name, default)}"

    def get(self, ctx: Context, ref: str, param: str) -> Coll:
        if ref not in ctx.arrays:
            p = self._p(param)
            raise CardError(
                self.spec.path,
                p.line if p else self.spec.line,
                f"module {self.spec.type} {self.name}: input array '{ref}' is not produced"
                f" by any module that runs before it",
            )
        return ctx.arrays[ref]

    def setup(self) -> None:  # pragma: no cover - overridden
        pass

    def process(self, ctx: Context) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def _eval(
    formula: Formula,
    c: Coll,
    eta: np.ndarray,
    phi: np.ndarray,
    pt: np.ndarray | None = None,
    energy: np.ndarray | None = None,
) -> np.ndarray:
    return formula(
        len(c),
        pt=c.pt if pt is None else pt,
        eta=eta,
        phi=phi,
        energy=c["e"] if energy is None else energy,
        d0=c["d0"],
        dz=c["dz"],
        ctgTheta=_ctg_theta(c),
    )


def _ctg_theta(c: Coll) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return c["pz"] / c.pt


def _set_pt_eta_phi_m(pt, eta, phi, m) -> dict[str, np.ndarray]:
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return {"px": px, "py": py, "pz": pz, "e": np.sqrt(px**2 + py**2 + pz**2 + m**2)}


def _set_pt_eta_phi_e(pt, eta, phi, e) -> dict[str, np.ndarray]:
    return {"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "e": e}


# ---------------------------------------------------------------------------------------------------
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


class Merger(Module):
    """Concatenates input arrays; ``MomentumOutputArray`` holds, per event, the vector sum of their
    momenta (TreeWriter's MissingET shows MET = its pT at the opposite phi), ``EnergyOutputArray``
    the scalar sums of pT and E."""

    TYPE = "Merger"
    PARAMS = dict.fromkeys(["InputArray", "OutputArray", "MomentumOutputArray", "EnergyOutputArray"], "")

    def process(self, ctx):
        ins = [self.get(ctx, w.text, "InputArray") for w in self.words("InputArray")]
        merged = Coll.merge(ins) if ins else Coll.empty(ctx.n_events)
        ctx.arrays[self.out("OutputArray", "candidates")] = merged
        n = np.ones(ctx.n_events, np.int64)
        mom = {k: per_event_sum(merged, merged[k]) for k in ("px", "py", "pz", "e")}
        ctx.arrays[self.out("MomentumOutputArray", "momentum")] = Coll(n, mom)
        ctx.arrays[self.out("EnergyOutputArray", "energy")] = Coll(
            n,
            {
                "px": per_event_sum(merged, merged.pt),
                "py": np.zeros(ctx.n_events),
                "pz": np.zeros(ctx.n_events),
                "e": per_event_sum(merged, merged["e"]),
            },
        )


class PdgCodeFilter(Module):
    """Removes candidates whose PID is listed in ``PdgCode`` (``Invert``: keeps only those), below
    ``PTMin``, or failing the optional status / charge / not-pile-up requirements."""

    TYPE = "PdgCodeFilter"
    PARAMS = dict.fromkeys(
        [
            "InputArray",
            "OutputArray",
            "PTMin",
            "Invert",
            "RequireNotPileup",
            "RequireStatus",
            "Status",
            "RequireCharge",
            "Charge",
            "PdgCode",
        ],
        "",
    )

    def setup(self):
        p = self._p("PdgCode")
        try:
            self.codes = np.array([int(w.text) for w in self.words("PdgCode")], dtype=np.int64)
        except ValueError:
            raise p.error("PDG codes must be integers") from None

    def process(self, ctx):
        c = self.get(ctx, self.s("InputArray", "Delphes/allParticles"), "InputArray")
        keep = c.pt >= self.f("PTMin", 0.0)
        if self.b("RequireStatus", False):
            keep &= c["status"] == self.i("Status", 1)
        if self.b("RequireCharge", False):
            keep &= c["charge"] == self.i("Charge", 1)
        if self.b("RequireNotPileup", False):
            keep &= c["is_pu"] <= 0
        listed = np.isin(c["pid"], self.codes)
        passed = ~listed if not self.b("Invert", False) else listed
        ctx.arrays[self.out("OutputArray", "filteredParticles")] = c.take(keep & passed)


class Calorimeter(Module):
    """ECAL+HCAL towers on the ``EtaPhiBins`` grid with Delphes' energy-flow logic.

    Each particle deposits ``EnergyFraction`` {ECAL HCAL} of its energy (default {0 1}) in the tower
    containing its position; tower ECAL and HCAL sums are smeared log-normally with
    ``ECalResolutionFormula``/``HCalResolutionFormula`` (absolute sigma of energy and eta) and zeroed
    below ``*EnergyMin`` or ``*EnergySignificanceMin`` sigma.  Outputs: towers (E > 0, direction
    uniform in the tower if ``SmearTowerCenter``), photons (towers hit only by photons/electrons,
    no track), and energy flow: tracks, plus an EFlowPhoton / EFlowNeutralHadron where the ECAL /
    HCAL energy exceeds the track energy significantly, else the tracks rescaled to the weighted
    track+calorimeter estimate.  (Delphes rescales HCAL-side tracks' pT twice in that branch; the
    builtin engine rescales once.)"""

    TYPE = "Calorimeter"
    PARAMS = dict.fromkeys(
        [
            "ParticleInputArray",
            "TrackInputArray",
            "TowerOutputArray",
            "PhotonOutputArray",
            "EFlowTrackOutputArray",
            "EFlowPhotonOutputArray",
            "EFlowNeutralHadronOutputArray",
            "EtaPhiBins",
            "EnergyFraction",
            "ECalEnergyMin",
            "HCalEnergyMin",
            "ECalEnergySignificanceMin",
            "HCalEnergySignificanceMin",
            "SmearTowerCenter",
            "ECalResolutionFormula",
            "HCalResolutionFormula",
            "TimingEnergyMin",
        ],
        "",
    )

    def setup(self):
        words = self.words("EtaPhiBins")
        p = self._p("EtaPhiBins")
        if p is None or len(words) < 4 or len(words) % 2:
            raise self.spec.error("EtaPhiBins needs pairs 'eta {phi edges}' (at least two)")
        binmap: dict[float, set[float]] = {}
        try:
            for k in range(0, len(words), 2):
                etas = [float(w.text) for w in words[k].words()]
                phis = [float(w.text) for w in words[k + 1].words()]
                for e in etas:
                    binmap.setdefault(e, set()).update(phis)
        except ValueError:
            raise p.error("bin edges must be numbers") from None
        self.eta_edges = np.array(sorted(binmap))
        phi_lists = [np.array(sorted(binmap[e])) for e in self.eta_edges]
        # one sorted array of all (eta bin k, phi edge) pairs: k * 10 + phi (phi in [-pi, pi])
        self.comb = np.concatenate([k * 10.0 + ph for k, ph in enumerate(phi_lists)])
        self.start = np.concatenate([[0], np.cumsum([len(ph) for ph in phi_lists])])
        self.eta_of_comb = np.repeat(np.arange(len(phi_lists)), [len(ph) for ph in phi_lists])
        # energy fractions
        fr = self.words("EnergyFraction")
        self.fractions = {0: (0.0, 1.0)}
        try:
            for k in range(0, len(fr) - 1, 2):
                vals = [float(w.text) for w in fr[k + 1].words()]
                self.fractions[int(fr[k].words()[0].text)] = (vals[0], vals[1])
        except (ValueError, IndexError):
            raise self._p("EnergyFraction").error("expected pairs '{pid} {ecal hcal}'") from None
        self.ecal_res = self.formula("ECalResolutionFormula", "0")
        self.hcal_res = self.formula("HCalResolutionFormula", "0")
        self.ecal_min = self.f("ECalEnergyMin", 0.0)
        self.hcal_min = self.f("HCalEnergyMin", 0.0)
        self.ecal_sig = self.f("ECalEnergySignificanceMin", 0.0)
        self.hcal_sig = self.f("HCalEnergySignificanceMin", 0.0)
        self.smear_center = self.b("SmearTowerCenter", True)
        self.refuse(
            "TimingEnergyMin",
            "it only selects the hits that set the tower time "
            "(Tower.T, Jet.T), which the builtin engine does not compute",
        )

    def _frac(self, pid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        apid = np.abs(pid)
        fe = np.full(len(pid), self.fractions[0][0])
        fh = np.full(len(pid), self.fractions[0][1])
        for code, (e, h) in self.fractions.items():
            if code:
                m = apid == code
                fe[m], fh[m] = e, h
        return fe, fh

    def _tower_index(self, eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """Index into ``comb`` of each position's tower (the upper phi edge), -1 if outside."""
        k = np.searchsorted(self.eta_edges, eta, side="left")
        ok = (k > 0) & (k < len(self.eta_edges))
        kk = np.where(ok, k, 0)
        j = np.searchsorted(self.comb, kk * 10.0 + phi, side="left")
        ok &= (j > self.start[kk]) & (j < self.start[kk + 1])
        return np.where(ok, j, -1)

    def _res(self, f: Formula, eta, e) -> np.ndarray:
        return f(len(e), pt=np.zeros_like(e), eta=eta, phi=np.zeros_like(e), energy=e)

    def process(self, ctx):
        parts = self.get(ctx, self.s("ParticleInputArray", "ParticlePropagator/particles"), "ParticleInputArray")
        tracks = self.get(ctx, self.s("TrackInputArray", "ParticlePropagator/tracks"), "TrackInputArray")
        ncomb = len(self.comb)
        n = ctx.n_events
        # --- particle hits
        fe, fh = self._frac(parts["pid"])
        p_eta, p_phi = parts.pos_eta_phi()
        p_tow = self._tower_index(p_eta, p_phi)
        hit = (p_tow >= 0) & ((fe >= 1e-9) | (fh >= 1e-9))
        p_key = np.where(hit, parts.evt * ncomb + p_tow, -1)
        # --- track hits
        tfe, tfh = self._frac(tracks["pid"])
        t_eta, t_phi = tracks.pos_eta_phi()
        t_tow = self._tower_index(t_eta, t_phi)
        t_hit = t_tow >= 0
        t_key = np.where(t_hit, tracks.evt * ncomb + t_tow, -1)
        keys, inv = np.unique(np.concatenate([p_key[hit], t_key[t_hit]]), return_inverse=True)
        nt = len(keys)
        p_inv, t_inv = inv[: hit.sum()], inv[hit.sum() :]
        pe = parts["e"][hit]
        ecal_true = np.bincount(p_inv, weights=pe * fe[hit], minlength=nt)
        hcal_true = np.bincount(p_inv, weights=pe * fh[hit], minlength=nt)
        apid = np.abs(parts["pid"][hit])
        n_photon_hits = np.bincount(p_inv, weights=((apid == 11) | (apid == 22)), minlength=nt)
        n_track_hits = np.bincount(t_inv, minlength=nt)
        # tower geometry
        j = keys % ncomb
        tevt = keys // ncomb
        k = self.eta_of_comb[j]
        e_lo, e_hi = self.eta_edges[k - 1], self.eta_edges[k]
        ph_lo, ph_hi = self.comb[j - 1] - k * 10.0, self.comb[j] - k * 10.0
        t_eta_c = 0.5 * (e_lo + e_hi)
        # smearing and thresholds
        ecal = log_normal(ctx.rng, ecal_true, self._res(self.ecal_res, t_eta_c, ecal_true))
        hcal = log_normal(ctx.rng, hcal_true, self._res(self.hcal_res, t_eta_c, hcal_true))
        ecal_sigma = self._res(self.ecal_res, t_eta_c, ecal)
        hcal_sigma = self._res(self.hcal_res, t_eta_c, hcal)
        ecal = np.where((ecal < self.ecal_min) | (ecal < self.ecal_sig * ecal_sigma), 0.0, ecal)
        hcal = np.where((hcal < self.hcal_min) | (hcal < self.hcal_sig * hcal_sigma), 0.0, hcal)
        energy = ecal + hcal
        if self.smear_center:
            eta = ctx.rng.uniform(e_lo, e_hi)
            phi = ctx.rng.uniform(ph_lo, ph_hi)
        else:
            eta, phi = t_eta_c, 0.5 * (ph_lo + ph_hi)
        tower_uid = ctx.new_uids(nt)
        # id table: the tower itself and every particle that hit it
        towner = np.concatenate([np.arange(nt), p_inv])
        tids = np.concatenate([tower_uid, parts["uid"][hit]])

        def towers(sel: np.ndarray, e_em: np.ndarray, e_had: np.ndarray, pid: int) -> Coll:
            idx = np.flatnonzero(sel)
            e = (e_em + e_had)[idx]
            counts = np.bincount(tevt[idx], minlength=n)
            cols = _set_pt_eta_phi_e(e / np.cosh(eta[idx]), eta[idx], phi[idx], e)
            cols.update(
                eem=e_em[idx],
                ehad=e_had[idx],
                uid=tower_uid[idx],
                pid=np.full(len(idx), pid, np.int32),
                charge=np.zeros(len(idx), np.int32),
                eta_pos=eta[idx],
                phi_pos=phi[idx],
            )
            remap = np.full(nt, -1, np.int64)
            remap[idx] = np.arange(len(idx))
            o = remap[towner]
            return Coll(counts, cols, (o[o >= 0], tids[o >= 0]))

        is_tower = energy > 0
        ctx.arrays[self.out("TowerOutputArray", "towers")] = towers(is_tower, ecal, hcal, 0)
        ctx.arrays[self.out("PhotonOutputArray", "photons")] = towers(
            is_tower & (n_photon_hits > 0) & (n_track_hits == 0), ecal, hcal, 22
        )

        # --- energy flow
        te = tracks["e"][t_hit]
        tres = tracks["res"][t_hit]
        ecal_only = (tfe[t_hit] > 1e-9) & (tfh[t_hit] < 1e-9)
        hcal_only = (tfe[t_hit] < 1e-9) & (tfh[t_hit] > 1e-9)
        no_calo = (tfe[t_hit] < 1e-9) & (tfh[t_hit] < 1e-9)
        t_eta_tower = t_eta_c[t_inv]

        def track_sums(mask, frac, formula):
            tr_e = te * frac[t_hit]
            sig = self._res(formula, t_eta_tower, te)
            with np.errstate(divide="ignore", invalid="ignore"):
                guess = np.where(sig / te < tres, tr_e, te)
            esum = np.bincount(t_inv[mask], weights=tr_e[mask], minlength=nt)
            s2 = np.bincount(t_inv[mask], weights=((tres * guess) ** 2)[mask], minlength=nt)
            return esum, np.sqrt(s2)

        ecal_tr, ecal_tr_sig = track_sums(ecal_only, tfe, self.ecal_res)
        hcal_tr, hcal_tr_sig = track_sums(hcal_only, tfh, self.hcal_res)

        def neutral(cal, cal_sigma, tr, tr_sig, emin, sigmin):
            neu = np.maximum(cal - tr, 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                significance = neu / np.sqrt(tr_sig**2 + cal_sigma**2)
                significance = np.where(neu > 0, significance, 0.0)
                w_t = np.where(tr_sig > 0, 1 / tr_sig**2, 0.0)
                w_c = np.where(cal_sigma > 0, 1 / cal_sigma**2, 0.0)
                best = (w_t * tr + w_c * cal) / (w_t + w_c)
                rescale = np.where(tr > 0, best / tr, 1.0)
            excess = (neu > emin) & (significance > sigmin)
            rescale = np.where(excess | ~np.isfinite(rescale), 1.0, rescale)
            return neu, excess, rescale

        e_neu, e_exc, e_scale = neutral(ecal, ecal_sigma, ecal_tr, ecal_tr_sig, self.ecal_min, self.ecal_sig)
        h_neu, h_exc, h_scale = neutral(hcal, hcal_sigma, hcal_tr, hcal_tr_sig, self.hcal_min, self.hcal_sig)
        ctx.arrays[self.out("EFlowPhotonOutputArray", "eflowPhotons")] = towers(e_exc, e_neu, np.zeros(nt), 22)
        ctx.arrays[self.out("EFlowNeutralHadronOutputArray", "eflowNeutralHadrons")] = towers(
            h_exc, np.zeros(nt), h_neu, 0
        )
        # eflow tracks: tracks inside the calorimeter acceptance with ECAL-only, HCAL-only or no
        # calorimeter fractions (a track with both fractions non-zero is dropped, as in Delphes)
        scale = np.ones(int(t_hit.sum()))
        scale[ecal_only] = e_scale[t_inv[ecal_only]]
        scale[hcal_only] = h_scale[t_inv[hcal_only]]
        keep_t = np.flatnonzero(t_hit)[ecal_only | hcal_only | no_calo]
        sc_full = np.ones(len(tracks))
        sc_full[np.flatnonzero(t_hit)] = scale
        ef = tracks.take(keep_t)
        s = sc_full[keep_t]
        ctx.arrays[self.out("EFlowTrackOutputArray", "eflowTracks")] = ef.with_cols(
            **{kk: ef[kk] * s for kk in ("px", "py", "pz", "e")}
        )


class Isolation(Module):
    """Relative isolation of candidates: the pT sum of ``IsolationInputArray`` objects with
    pT > ``PTMin`` within ``DeltaRMax`` (excluding the candidate itself, or inside ``DeltaRMin`` with
    ``UseMiniCone``), charged pile-up subtracted as delta-beta; candidates above ``PTRatioMax``
    (or ``PTSumMax`` with ``UsePTSum``) are dropped.  Sets IsolationVar and the SumPt* columns.
    No rho correction (a ``RhoInputArray`` is not supported), so IsolationVarRhoCorr is the
    uncorrected ratio."""

    TYPE = "Isolation"
    PARAMS = dict.fromkeys(
        [
            "CandidateInputArray",
            "IsolationInputArray",
            "OutputArray",
            "DeltaRMax",
            "PTRatioMax",
            "PTSumMax",
            "UsePTSum",
            "UseRhoCorrection",
            "DeltaRMin",
            "UseMiniCone",
            "PTMin",
        ],
        "",
    )

    def process(self, ctx):
        cand = self.get(ctx, self.s("CandidateInputArray", "Calorimeter/electrons"), "CandidateInputArray")
        iso = self.get(ctx, self.s("IsolationInputArray", "Delphes/partons"), "IsolationInputArray")
        iso = iso.take(iso.pt > self.f("PTMin", 0.5))
        dr_max, dr_min = self.f("DeltaRMax", 0.5), self.f("DeltaRMin", 0.01)
        ia, jb = pairs(cand, iso)
        dr = delta_r(cand.eta[ia], cand.phi[ia], iso.eta[jb], iso.phi[jb])
        if self.b("UseMiniCone", False):
            ok = (dr <= dr_max) & (dr > dr_min)
        else:
            ok = (dr <= dr_max) & (cand["uid"][ia] != iso["uid"][jb])
        ia, jb = ia[ok], jb[ok]
        ipt = iso.pt[jb]
        charged = iso["charge"][jb] != 0
        pu = iso["is_pu"][jb] > 0
        nc = len(cand)

        def s(mask):
            return np.bincount(ia[mask], weights=ipt[mask], minlength=nc).astype(np.float64)

        sum_all = s(np.ones(len(ia), bool))
        ch_nopu, ch_pu, neu = s(charged & ~pu), s(charged & pu), s(~charged)
        sum_dbeta = ch_nopu + np.maximum(neu - 0.5 * ch_pu, 0.0)
        sum_rho = ch_nopu + np.maximum(neu, 0.0)
        pt = cand.pt
        ratio_dbeta, ratio_rho = sum_dbeta / pt, sum_rho / pt
        use_rho = self.b("UseRhoCorrection", True)
        if self.b("UsePTSum", False):
            keep = (sum_rho if use_rho else sum_dbeta) <= self.f("PTSumMax", 5.0)
        else:
            keep = (ratio_rho if use_rho else ratio_dbeta) <= self.f("PTRatioMax", 0.1)
        out = cand.with_cols(
            iso_var=ratio_dbeta,
            iso_var_rho=ratio_rho,
            sum_pt_charged=ch_nopu,
            sum_pt_neutral=neu,
            sum_pt_charged_pu=ch_pu,
            sum_pt=sum_all,
        )
        ctx.arrays[self.out("OutputArray", "electrons")] = out.take(keep)


#: Delphes' JetAlgorithm numbers -> fastjet algorithms (FastJetFinder.cc)
_JET_ALGOS = {4: "kt_algorithm", 5: "cambridge_algorithm", 6: "antikt_algorithm"}


class FastJetFinder(Module):
    """Clusters the input with fastjet (JetAlgorithm 4 kt, 5 Cambridge/Aachen, 6 anti-kt) of radius
    ``ParameterR``, keeping jets with pT > ``JetPTMin``, pT-ordered.  All events of a chunk are
    clustered in one call of the ``fastjet`` python package on awkward arrays.  Jet columns follow
    Delphes: NCharged/NNeutrals (constituents with/without charge), Charge (sum), EhadOverEem,
    energy fractions.  DeltaEta/DeltaPhi are what Delphes' FastJetFinder writes: the largest
    constituent-to-axis |deta| / |dphi| of this jet *and every harder jet of the event* (Delphes
    resets its running maxima once per event, not per jet, so they never decrease along the
    pT-ordered list).  PTD and MeanSqDeltaR stay 0: in Delphes only the PileUpJetID module fills
    them, and the builtin engine has no PileUpJetID.  Jet substructure options (N-subjettiness,
    trimming, areas...) are not supported (an unknown-parameter error)."""

    TYPE = "FastJetFinder"
    PARAMS = dict.fromkeys(
        ["InputArray", "OutputArray", "JetAlgorithm", "ParameterR", "JetPTMin", "ConstituentsOutputArray"], ""
    )

    def setup(self):
        alg = self.i("JetAlgorithm", 6)
        if alg not in _JET_ALGOS:
            raise CardError(
                self.spec.path,
                self._p("JetAlgorithm").line,
                f"module FastJetFinder {self.name}: JetAlgorithm {alg} is not supported "
                f"(supported: {sorted(_JET_ALGOS)}: kt, Cambridge/Aachen, anti-kt)",
            )
        self.alg = _JET_ALGOS[alg]
        self.r = self.f("ParameterR", 0.5)
        self.ptmin = self.f("JetPTMin", 10.0)

    def process(self, ctx):
        c = self.get(ctx, self.s("InputArray", "Calorimeter/towers"), "InputArray")
        jets, const_jet, const_idx = cluster(c, self.alg, self.r, self.ptmin)
        ctx.arrays[self.out("OutputArray", "jets")] = jets
        ctx.arrays[self.out("ConstituentsOutputArray", "constituents")] = c.take(np.unique(const_idx))


JET_FLOAT_COLS = (
    "px",
    "py",
    "pz",
    "e",
    "ptd",
    "ehad_over_eem",
    "delta_eta",
    "delta_phi",
    "mean_sq_dr",
    "charged_energy_fraction",
    "neutral_energy_fraction",
    "eem",
    "ehad",
)
JET_INT_COLS = ("ncharged", "nneutrals", "charge", "flavor", "flavor_algo", "btag", "btag_algo")


def cluster(c: Coll, algorithm: str, r: float, ptmin: float) -> tuple[Coll, np.ndarray, np.ndarray]:
    """Cluster every event of ``c``; return the jets (pT-ordered) and, per constituent, its jet's
    flat index and its flat index in ``c``."""
    import awkward as ak
    import fastjet

    n = c.n_events
    if len(c) == 0:
        cols = {k: np.zeros(0) for k in JET_FLOAT_COLS}
        cols.update({k: np.zeros(0, np.int32) for k in JET_INT_COLS})
        return Coll(np.zeros(n, np.int64), cols), np.zeros(0, np.int64), np.zeros(0, np.int64)
    arr = ak.unflatten(
        ak.zip({"px": c["px"], "py": c["py"], "pz": c["pz"], "E": c["e"]}, with_name="Momentum4D"), c.counts
    )
    seq = fastjet.ClusterSequence(arr, fastjet.JetDefinition(getattr(fastjet, algorithm), r))
    jets = seq.inclusive_jets(min_pt=ptmin)
    cidx = seq.constituent_index(min_pt=ptmin)
    jcounts = ak.to_numpy(ak.num(jets, axis=1)).astype(np.int64)
    jpx = ak.to_numpy(ak.flatten(jets.px)).astype(np.float64)
    jpy = ak.to_numpy(ak.flatten(jets.py)).astype(np.float64)
    jpz = ak.to_numpy(ak.flatten(jets.pz)).astype(np.float64)
    je = ak.to_numpy(ak.flatten(jets.E)).astype(np.float64)
    # constituents: per jet, indices into its event's input list
    per_jet = ak.flatten(cidx, axis=1)
    ncon = ak.to_numpy(ak.num(per_jet, axis=1)).astype(np.int64)
    local = ak.to_numpy(ak.flatten(per_jet)).astype(np.int64)
    jet_evt = np.repeat(np.arange(n), jcounts)
    const_jet = np.repeat(np.arange(len(jpx)), ncon)
    const_idx = local + c.offsets[:-1][jet_evt[const_jet]]
    # pT ordering within each event (FastJetFinder: sorted_by_pt)
    jpt = np.hypot(jpx, jpy)
    order = np.lexsort((-jpt, jet_evt))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    jpx, jpy, jpz, je, jpt = jpx[order], jpy[order], jpz[order], je[order], jpt[order]
    const_jet = rank[const_jet]
    jeta = np.arcsinh(jpz / np.where(jpt > 0, jpt, 1e-300))
    jphi = np.arctan2(jpy, jpx)
    # constituent-derived quantities
    nj = len(jpx)
    ceta, cphi = c.eta[const_idx], c.phi[const_idx]
    cch = c["charge"][const_idx]

    def jsum(w):
        return np.bincount(const_jet, weights=w, minlength=nj)

    is_ch = cch != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        eem, ehad = jsum(c["eem"][const_idx]), jsum(c["ehad"][const_idx])
        ehad_over_eem = np.where(eem > 0, ehad / eem, 999.9)
        ce = c["e"][const_idx]
        ch_frac = np.where(je > 0, jsum(np.where(is_ch, ce, 0.0)) / je, 0.0)
        neu_frac = np.where(je > 0, jsum(np.where(is_ch, 0.0, ce)) / je, 0.0)
    deta = np.zeros(nj)
    dphi = np.zeros(nj)
    np.maximum.at(deta, const_jet, np.abs(ceta - jeta[const_jet]))
    np.maximum.at(dphi, const_jet, np.abs(delta_phi(cphi, jphi[const_jet])))
    # Delphes' running maxima over the pT-ordered jets of an event (see FastJetFinder)
    deta, dphi = _running_max(deta, jet_evt), _running_max(dphi, jet_evt)
    cols = {
        "px": jpx,
        "py": jpy,
        "pz": jpz,
        "e": je,
        "ncharged": jsum(is_ch).astype(np.int32),
        "nneutrals": jsum(~is_ch).astype(np.int32),
        "charge": jsum(cch).astype(np.int32),
        "ptd": np.zeros(nj),
        "ehad_over_eem": ehad_over_eem,
        "delta_eta": deta,
        "delta_phi": dphi,
        "mean_sq_dr": np.zeros(nj),
        "charged_energy_fraction": ch_frac,
        "neutral_energy_fraction": neu_frac,
        "eem": eem,
        "ehad": ehad,
        "flavor": np.zeros(nj, np.int32),
        "flavor_algo": np.zeros(nj, np.int32),
        "btag": np.zeros(nj, np.int32),
        "btag_algo": np.zeros(nj, np.int32),
    }
    # id table of a jet: its constituents' id tables
    owner, ids = c.ids()
    pos = np.full(len(c), -1, np.int64)
    pos[const_idx] = const_jet
    jo = pos[owner]
    ok = jo >= 0
    return Coll(jcounts, cols, (jo[ok], ids[ok])), const_jet, const_idx


def _running_max(x: np.ndarray, evt: np.ndarray) -> np.ndarray:
    """Cumulative maximum of the non-negative ``x`` within each event (``evt`` sorted)."""
    if not len(x):
        return x
    shift = (float(x.max()) + 1.0) * evt
    return np.maximum.accumulate(x + shift) - shift


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
        w = self.words("EfficiencyFormula")
        self.eff: dict[int, Formula] = {}
        for k in range(0, len(w) - 1, 2):
            try:
                flav = int(w[k].words()[0].text)
                self.eff[flav] = Formula(w[k + 1].text)
            except (ValueError, FormulaError) as exc:
                raise self._p("EfficiencyFormula").error(str(exc)) from None
        self.eff.setdefault(0, Formula("0.0"))
        self.bit = self.i("BitNumber", 0)

    def _tag(self, ctx, jets, flavor):
        eff = np.zeros(len(jets))
        eta, phi = jets.eta, jets.phi
        for flav, f in self.eff.items():
            m = flavor == flav if flav else ~np.isin(flavor, [k for k in self.eff if k])
            if m.any():
                eff[m] = _eval(f, jets, eta, phi)[m]
        return (ctx.rng.uniform(size=len(jets)) <= eff).astype(np.int32) << self.bit

    def process(self, ctx):
        ref = self.s("JetInputArray", "FastJetFinder/jets")
        jets = self.get(ctx, ref, "JetInputArray")
        btag = jets["btag"] | self._tag(ctx, jets, jets["flavor"])
        btag_algo = jets["btag_algo"] | self._tag(ctx, jets, jets["flavor_algo"])
        ctx.arrays[ref] = jets.with_cols(btag=btag, btag_algo=btag_algo)


class UniqueObjectFinder(Module):
    """Removes, array by array in the order given (``InputArray`` pairs input output), candidates
    that overlap with one already kept: sharing a unique ID anywhere in their ancestry
    (``Candidate::Overlaps``; with ``UseUniqueID`` only their own IDs).  A jet containing an
    accepted electron's track or a photon's tower is removed as a whole."""

    TYPE = "UniqueObjectFinder"
    PARAMS = dict.fromkeys(["InputArray", "UseUniqueID"], "")

    def process(self, ctx):
        w = self.words("InputArray")
        use_uid = self.b("UseUniqueID", False)
        taken = np.zeros(0, np.int64)
        for k in range(0, len(w) - 1, 2):
            c = self.get(ctx, w[k].text, "InputArray")
            if use_uid:
                owner, ids = np.flatnonzero(c["uid"] >= 0), c["uid"][c["uid"] >= 0]
            else:
                owner, ids = c.ids()
            clash = np.zeros(len(c), bool)
            clash[owner[np.isin(ids, taken)]] = True
            kept = c.take(~clash)
            ctx.arrays[f"{self.name}/{w[k + 1].text}"] = kept
            ko, kid = (np.flatnonzero(kept["uid"] >= 0), kept["uid"][kept["uid"] >= 0]) if use_uid else kept.ids()
            taken = np.union1d(taken, kid)


class PileUpMerger(Module):
    """Adds minimum-bias events to every event and flags their particles IsPU.

    The number of events follows ``PileUpDistribution`` as in Delphes: 0 Poisson(``MeanPileUp``)
    (default), 1 uniform integer in [0, 2 x MeanPileUp], 2 exactly int(MeanPileUp); the config's
    ``pileup.mean`` replaces MeanPileUp.  The events are drawn from the ``--pileup`` generation
    files, rotated by a random azimuth and flipped in z at random, as in Delphes.  Refused (an
    error naming the card line): ``PileUpFile`` (Delphes' binary pile-up file is not read; the
    minimum-bias events come from ``--pileup``), non-zero ``ZVertexSpread``/``TVertexSpread`` and
    beam-spot shifts (``InputBeamSpotX/Y``, ``OutputBeamSpotX/Y``): contract-1 particles have no
    vertices to spread or shift.  Delphes' default vertex spreads (0.15 m, 1.5 ns) are therefore
    not simulated either (every vertex at the origin)."""

    TYPE = "PileUpMerger"
    PARAMS = dict.fromkeys(
        [
            "InputArray",
            "ParticleOutputArray",
            "VertexOutputArray",
            "PileUpFile",
            "MeanPileUp",
            "PileUpDistribution",
            "ZVertexSpread",
            "TVertexSpread",
            "InputBeamSpotX",
            "InputBeamSpotY",
            "OutputBeamSpotX",
            "OutputBeamSpotY",
        ],
        "",
    )

    def setup(self):
        self.refuse(
            "PileUpFile",
            "the builtin engine draws minimum-bias events from the --pileup "
            "generation files (config pileup.process); remove the line",
        )
        for name in (
            "ZVertexSpread",
            "TVertexSpread",
            "InputBeamSpotX",
            "InputBeamSpotY",
            "OutputBeamSpotX",
            "OutputBeamSpotY",
        ):
            self.refuse(
                name,
                "contract-1 particles have no production vertices to spread or shift (only 0 is accepted)",
                allowed=0.0,
            )
        self.distribution = self.i("PileUpDistribution", 0)
        if self.distribution not in (0, 1, 2):
            # Delphes falls back to Poisson for any other value
            self.distribution = 0

    def process(self, ctx):
        hard = self.get(ctx, self.s("InputArray", "Delphes/stableParticles"), "InputArray")
        mean = ctx.pileup_mean if ctx.pileup_mean is not None else self.f("MeanPileUp", 10.0)
        ctx.arrays[self.out("ParticleOutputArray", "stableParticles")] = merge_pileup(
            ctx, hard, ctx.pileup, mean, self.distribution
        )
        ctx.arrays[self.out("VertexOutputArray", "vertices")] = Coll.empty(ctx.n_events)


def merge_pileup(ctx: Context, hard: Coll, minbias: Coll | None, mean: float, distribution: int = 0) -> Coll:
    """Append random minimum-bias events (random phi rotation and z flip) to each event: their
    number is Poisson(mean) (``distribution`` 0), uniform in 0..2 mean (1) or int(mean) (2)."""
    if mean <= 0:
        return hard
    if minbias is None or minbias.n_events == 0:
        raise CardError("<pileup>", None, f"pile-up mean {mean} > 0 but no --pileup files were given")
    n = ctx.n_events
    if distribution == 1:
        npu = ctx.rng.integers(0, int(2 * mean + 1), size=n)  # TRandom::Integer(2 mean + 1)
    elif distribution == 2:
        npu = np.full(n, int(mean), np.int64)
    else:
        npu = ctx.rng.poisson(mean, size=n)
    pick = ctx.rng.integers(0, minbias.n_events, size=int(npu.sum()))
    # particles of the picked minbias events, grouped by the hard event they join
    cnt = minbias.counts[pick]
    src = (
        np.concatenate([np.arange(minbias.offsets[p], minbias.offsets[p + 1]) for p in pick])
        if len(pick)
        else np.zeros(0, np.int64)
    )
    pu_event = np.repeat(np.arange(len(pick)), cnt)
    rot = ctx.rng.uniform(-np.pi, np.pi, size=len(pick))[pu_event]
    flip = np.where(ctx.rng.uniform(size=len(pick)) < 0.5, -1.0, 1.0)[pu_event]
    px, py = minbias["px"][src], minbias["py"][src]
    cols = {k: v[src] for k, v in minbias.cols.items()}
    cols.update(
        px=px * np.cos(rot) - py * np.sin(rot),
        py=px * np.sin(rot) + py * np.cos(rot),
        pz=minbias["pz"][src] * flip,
        is_pu=np.ones(len(src), np.int32),
        uid=ctx.new_uids(len(src)),
    )
    counts = (
        np.bincount(np.repeat(np.arange(n), npu), weights=cnt, minlength=n).astype(np.int64)
        if len(pick)
        else np.zeros(n, np.int64)
    )
    return Coll.merge([hard, Coll(counts, cols)])


# TreeWriter is handled by fast2full.delphes.treewriter; listed here for the registry.
class TreeWriter(Module):
    """Writes ``add Branch InputArray BranchName BranchClass`` entries to the ROOT tree."""

    TYPE = "TreeWriter"
    PARAMS = dict.fromkeys(["Branch"], "")

    def setup(self):
        from fast2full.delphes.treewriter import BRANCH_CLASSES

        w = self.words("Branch")
        if len(w) % 3:
            raise self._p("Branch").error("expected triples 'InputArray BranchName BranchClass'")
        self.branches = [(w[k].text, w[k + 1].text, w[k + 2].text) for k in range(0, len(w), 3)]
        for _, bname, bclass in self.branches:
            if bclass not in BRANCH_CLASSES:
                raise self._p("Branch").error(
                    f"branch {bname}: class '{bclass}' not supported (supported: {', '.join(sorted(BRANCH_CLASSES))})"
                )

    def process(self, ctx):
        for ref, bname, bclass in self.branches:
            ctx.branches[bname] = (bclass, self.get(ctx, ref, "Branch"))


MODULES: dict[str, type[Module]] = {
    cls.TYPE: cls
    for cls in (
        ParticlePropagator,
        Efficiency,
        MomentumSmearing,
        TrackSmearing,
        EnergySmearing,
        EnergyScale,
        Merger,
        PdgCodeFilter,
        Calorimeter,
        Isolation,
        FastJetFinder,
        JetFlavorAssociation,
        BTagging,
        UniqueObjectFinder,
        PileUpMerger,
        TreeWriter,
    )
}


# modules of Delphes' stock ATLAS/CMS cards, in their own files (issue 17)
from fast2full.delphes.modules_calo_simple import SimpleCalorimeter  # noqa: E402
from fast2full.delphes.modules_jet_substructure import FastJetFinderWithSubstructure  # noqa: E402
from fast2full.delphes.modules_tau import TauTagging, TrackCountingTauTagging  # noqa: E402

MODULES.update(
    {cls.TYPE: cls for cls in (SimpleCalorimeter, FastJetFinderWithSubstructure, TauTagging, TrackCountingTauTagging)}
)


def build_module(spec: CardModule) -> Module:
    cls = MODULES.get(spec.type)
    if cls is None:
        raise spec.error(
            f"module type '{spec.type}' is not supported by the builtin engine "
            f"(supported: {', '.join(sorted(MODULES))})"
        )
    return cls(spec)


__all__ = ["MODULES", "Context", "Module", "build_module", "cluster", "merge_pileup"]
