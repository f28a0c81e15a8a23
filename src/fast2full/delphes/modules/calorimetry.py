"""Calorimetry: Delphes' combined ``Calorimeter`` (ECAL+HCAL towers with energy flow) and
``SimpleCalorimeter`` (one calorimeter, as the stock ATLAS and CMS cards run twice: ``ECal`` then
``HCal``, whose tracks are the ECal's eflow tracks).  Semantics follow Delphes'
``modules/Calorimeter.cc`` and ``modules/SimpleCalorimeter.cc`` (read, not copied).

Both are built from the same pieces, written once here: the ``EtaPhiBins`` tower grid and its
look-up (:class:`_TowerCalorimeter`), the towers a chunk's particles and tracks hit and the tower
collections made from them (:class:`_Towers`), and the energy-flow arithmetic (:func:`_track_sums`,
:func:`_neutral_excess`).  Not supported: ``InsensitiveEtaPhiBins`` (blind towers) and tower timing.
"""

from __future__ import annotations

import numpy as np

from fast2full.delphes.candidates import Coll, log_normal
from fast2full.delphes.formula import Formula
from fast2full.delphes.modules.base import Context, Module, _set_pt_eta_phi_e


class _TowerCalorimeter(Module):
    """What both calorimeters share: the ``EtaPhiBins`` grid, the tower look-up and the
    resolution formulas' evaluation (absolute sigma of the tower-centre eta and the energy)."""

    def _setup_grid(self) -> None:
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


class _Towers:
    """The towers hit in a chunk: one per (event, tower) that a particle (``hit``) or a track
    (``t_hit``) in the grid reaches, with their grid geometry; ``p_inv`` / ``t_inv`` give each
    hitting particle's / track's tower."""

    def __init__(
        self,
        grid: _TowerCalorimeter,
        n_events: int,
        parts: Coll,
        p_tow: np.ndarray,
        hit: np.ndarray,
        tracks: Coll,
        t_tow: np.ndarray,
        t_hit: np.ndarray,
    ):
        ncomb = len(grid.comb)
        p_key = parts.evt[hit] * ncomb + p_tow[hit]
        t_key = tracks.evt[t_hit] * ncomb + t_tow[t_hit]
        keys, inv = np.unique(np.concatenate([p_key, t_key]), return_inverse=True)
        self.n = len(keys)
        self.n_events = n_events
        self.p_inv, self.t_inv = inv[: len(p_key)], inv[len(p_key) :]
        j = keys % ncomb
        self.evt = keys // ncomb
        k = grid.eta_of_comb[j]
        self.eta_lo, self.eta_hi = grid.eta_edges[k - 1], grid.eta_edges[k]
        self.phi_lo, self.phi_hi = grid.comb[j - 1] - k * 10.0, grid.comb[j] - k * 10.0
        self.eta_c = 0.5 * (self.eta_lo + self.eta_hi)
        self._hit_uid = parts["uid"][hit]

    def place(self, ctx: Context, smear_center: bool) -> None:
        """Tower directions (uniform in the tower with ``SmearTowerCenter``, else its centre) and
        unique IDs; called after the energy smearing (the order of Delphes' random numbers)."""
        if smear_center:
            self.eta = ctx.rng.uniform(self.eta_lo, self.eta_hi)
            self.phi = ctx.rng.uniform(self.phi_lo, self.phi_hi)
        else:
            self.eta, self.phi = self.eta_c, 0.5 * (self.phi_lo + self.phi_hi)
        self.uid = ctx.new_uids(self.n)
        # id table: the tower itself and every particle that hit it
        self._owner = np.concatenate([np.arange(self.n), self.p_inv])
        self._ids = np.concatenate([self.uid, self._hit_uid])

    def coll(self, sel: np.ndarray, e_em: np.ndarray, e_had: np.ndarray, pid: int) -> Coll:
        """The selected towers as candidates of energy ``e_em + e_had`` and PID ``pid``."""
        idx = np.flatnonzero(sel)
        e = (e_em + e_had)[idx]
        eta, phi = self.eta[idx], self.phi[idx]
        cols = _set_pt_eta_phi_e(e / np.cosh(eta), eta, phi, e)
        cols.update(
            eem=e_em[idx],
            ehad=e_had[idx],
            uid=self.uid[idx],
            pid=np.full(len(idx), pid, np.int32),
            charge=np.zeros(len(idx), np.int32),
            eta_pos=eta,
            phi_pos=phi,
        )
        remap = np.full(self.n, -1, np.int64)
        remap[idx] = np.arange(len(idx))
        o = remap[self._owner]
        return Coll(np.bincount(self.evt[idx], minlength=self.n_events), cols, (o[o >= 0], self._ids[o >= 0]))


def _track_sums(
    towers: _Towers, te: np.ndarray, tres: np.ndarray, frac: np.ndarray, mask: np.ndarray, sigma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per tower, the energy the ``mask``ed tracks deposit (fraction ``frac`` of their energy ``te``)
    and its uncertainty sqrt(sum (res x guess)^2), guess = the deposit where the calorimeter's
    resolution ``sigma`` / E is worse than the track's ``tres``, else E (Delphes' energy flow)."""
    tr_e = te * frac
    with np.errstate(divide="ignore", invalid="ignore"):
        guess = np.where(sigma / te < tres, tr_e, te)
    inv = towers.t_inv[mask]
    esum = np.bincount(inv, weights=tr_e[mask], minlength=towers.n)
    s2 = np.bincount(inv, weights=((tres * guess) ** 2)[mask], minlength=towers.n)
    return esum, np.sqrt(s2)


def _neutral_excess(
    cal: np.ndarray, cal_sigma: np.ndarray, tr: np.ndarray, tr_sig: np.ndarray, emin: float, sigmin: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tower, the calorimeter's excess over the tracks, whether it makes a neutral eflow
    candidate (above ``emin`` and ``sigmin`` sigma) and otherwise the tracks' rescaling to the
    weighted track+calorimeter mean (1 where there is an excess or no track)."""
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


class Calorimeter(_TowerCalorimeter):
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
        self._setup_grid()
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

    def process(self, ctx):
        parts = self.get(ctx, self.s("ParticleInputArray", "ParticlePropagator/particles"), "ParticleInputArray")
        tracks = self.get(ctx, self.s("TrackInputArray", "ParticlePropagator/tracks"), "TrackInputArray")
        fe, fh = self._frac(parts["pid"])
        p_tow = self._tower_index(*parts.pos_eta_phi())
        hit = (p_tow >= 0) & ((fe >= 1e-9) | (fh >= 1e-9))
        tfe, tfh = self._frac(tracks["pid"])
        t_tow = self._tower_index(*tracks.pos_eta_phi())
        t_hit = t_tow >= 0
        tw = _Towers(self, ctx.n_events, parts, p_tow, hit, tracks, t_tow, t_hit)
        nt, p_inv, t_inv = tw.n, tw.p_inv, tw.t_inv
        pe = parts["e"][hit]
        ecal_true = np.bincount(p_inv, weights=pe * fe[hit], minlength=nt)
        hcal_true = np.bincount(p_inv, weights=pe * fh[hit], minlength=nt)
        apid = np.abs(parts["pid"][hit])
        n_photon_hits = np.bincount(p_inv, weights=((apid == 11) | (apid == 22)), minlength=nt)
        n_track_hits = np.bincount(t_inv, minlength=nt)
        # smearing and thresholds
        ecal = log_normal(ctx.rng, ecal_true, self._res(self.ecal_res, tw.eta_c, ecal_true))
        hcal = log_normal(ctx.rng, hcal_true, self._res(self.hcal_res, tw.eta_c, hcal_true))
        ecal_sigma = self._res(self.ecal_res, tw.eta_c, ecal)
        hcal_sigma = self._res(self.hcal_res, tw.eta_c, hcal)
        ecal = np.where((ecal < self.ecal_min) | (ecal < self.ecal_sig * ecal_sigma), 0.0, ecal)
        hcal = np.where((hcal < self.hcal_min) | (hcal < self.hcal_sig * hcal_sigma), 0.0, hcal)
        energy = ecal + hcal
        tw.place(ctx, self.smear_center)
        is_tower = energy > 0
        ctx.arrays[self.out("TowerOutputArray", "towers")] = tw.coll(is_tower, ecal, hcal, 0)
        ctx.arrays[self.out("PhotonOutputArray", "photons")] = tw.coll(
            is_tower & (n_photon_hits > 0) & (n_track_hits == 0), ecal, hcal, 22
        )

        # --- energy flow
        te = tracks["e"][t_hit]
        tres = tracks["res"][t_hit]
        ecal_only = (tfe[t_hit] > 1e-9) & (tfh[t_hit] < 1e-9)
        hcal_only = (tfe[t_hit] < 1e-9) & (tfh[t_hit] > 1e-9)
        no_calo = (tfe[t_hit] < 1e-9) & (tfh[t_hit] < 1e-9)
        t_eta_tower = tw.eta_c[t_inv]
        ecal_tr, ecal_tr_sig = _track_sums(
            tw, te, tres, tfe[t_hit], ecal_only, self._res(self.ecal_res, t_eta_tower, te)
        )
        hcal_tr, hcal_tr_sig = _track_sums(
            tw, te, tres, tfh[t_hit], hcal_only, self._res(self.hcal_res, t_eta_tower, te)
        )
        e_neu, e_exc, e_scale = _neutral_excess(ecal, ecal_sigma, ecal_tr, ecal_tr_sig, self.ecal_min, self.ecal_sig)
        h_neu, h_exc, h_scale = _neutral_excess(hcal, hcal_sigma, hcal_tr, hcal_tr_sig, self.hcal_min, self.hcal_sig)
        ctx.arrays[self.out("EFlowPhotonOutputArray", "eflowPhotons")] = tw.coll(e_exc, e_neu, np.zeros(nt), 22)
        ctx.arrays[self.out("EFlowNeutralHadronOutputArray", "eflowNeutralHadrons")] = tw.coll(
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


class SimpleCalorimeter(_TowerCalorimeter):
    """One calorimeter (ECAL or HCAL) with its own towers and energy flow.

    * ``EnergyFraction`` {|PID|} {f}: the fraction of a particle's energy this calorimeter sees
      (``{0}`` = every other particle; default 1).  Particles with f < 1e-9 do not hit; tracks hit
      the tower at their position whatever their fraction.
    * per tower, on the ``EtaPhiBins`` grid: the deposited energy sum(f E) is smeared log-normally
      with ``ResolutionFormula`` (sigma at the tower-centre eta and the energy), zeroed below
      ``EnergyMin`` or ``EnergySignificanceMin`` sigma (sigma at the smeared energy); the tower is
      kept if E > 0, with its direction uniform in the tower (``SmearTowerCenter``) and its energy
      as Eem (``IsEcal``) or Ehad;
    * energy flow: tracks with f < 1e-9 in the acceptance pass straight to
      ``EFlowTrackOutputArray``; the others are summed per tower (energy f E, resolution
      sqrt(sum (res x guess)^2) with guess = f E where the calorimeter's own resolution is worse
      than the track's, else E).  If the calorimeter's excess over the tracks is above
      ``EnergyMin`` and ``EnergySignificanceMin`` sigma, an eflow tower (PID 22 in an ECAL, 0 in an
      HCAL) carries the excess and the tracks pass unchanged; otherwise the tracks' pT is scaled to
      the weighted track+calorimeter mean.  Tracks outside the grid are lost."""

    TYPE = "SimpleCalorimeter"
    PARAMS = dict.fromkeys(
        [
            "ParticleInputArray",
            "TrackInputArray",
            "TowerOutputArray",
            "EFlowTrackOutputArray",
            "EFlowTowerOutputArray",
            "EtaPhiBins",
            "EnergyFraction",
            "EnergyMin",
            "EnergySignificanceMin",
            "IsEcal",
            "SmearTowerCenter",
            "ResolutionFormula",
        ],
        "",
    )

    def setup(self):
        self._setup_grid()
        fr = self.words("EnergyFraction")
        self.fractions = {0: 1.0}
        try:
            for k in range(0, len(fr) - 1, 2):
                self.fractions[int(fr[k].words()[0].text)] = float(fr[k + 1].words()[0].text)
        except (ValueError, IndexError):
            raise self._p("EnergyFraction").error("expected pairs '{pid} {fraction}'") from None
        self.res = self.formula("ResolutionFormula", "0")
        self.e_min = self.f("EnergyMin", 0.0)
        self.sig_min = self.f("EnergySignificanceMin", 0.0)
        self.is_ecal = self.b("IsEcal", False)
        self.smear_center = self.b("SmearTowerCenter", True)

    def _frac(self, pid: np.ndarray) -> np.ndarray:
        apid = np.abs(pid)
        out = np.full(len(pid), self.fractions[0])
        for code, f in self.fractions.items():
            if code:
                out[apid == code] = f
        return out

    def process(self, ctx):
        parts = self.get(ctx, self.s("ParticleInputArray", "ParticlePropagator/particles"), "ParticleInputArray")
        tracks = self.get(ctx, self.s("TrackInputArray", "ParticlePropagator/tracks"), "TrackInputArray")
        fp = self._frac(parts["pid"])
        p_tow = self._tower_index(*parts.pos_eta_phi())
        hit = (p_tow >= 0) & (fp >= 1e-9)
        ft = self._frac(tracks["pid"])
        t_tow = self._tower_index(*tracks.pos_eta_phi())
        t_hit = t_tow >= 0
        tw = _Towers(self, ctx.n_events, parts, p_tow, hit, tracks, t_tow, t_hit)
        e_true = np.bincount(tw.p_inv, weights=parts["e"][hit] * fp[hit], minlength=tw.n)
        # smearing and thresholds
        energy = log_normal(ctx.rng, e_true, self._res(self.res, tw.eta_c, e_true))
        sigma = self._res(self.res, tw.eta_c, energy)
        energy = np.where((energy < self.e_min) | (energy < self.sig_min * sigma), 0.0, energy)
        tw.place(ctx, self.smear_center)
        zeros = np.zeros(tw.n)

        def em_had(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return (e, zeros) if self.is_ecal else (zeros, e)

        ctx.arrays[self.out("TowerOutputArray", "towers")] = tw.coll(energy > 0, *em_had(energy), 0)

        # --- energy flow
        t_idx = np.flatnonzero(t_hit)
        te = tracks["e"][t_idx]
        tres = tracks["res"][t_idx]
        deposits = ft[t_idx] > 1e-9
        track_e, track_sigma = _track_sums(
            tw, te, tres, ft[t_idx], deposits, self._res(self.res, tw.eta_c[tw.t_inv], te)
        )
        neutral, excess, rescale = _neutral_excess(energy, sigma, track_e, track_sigma, self.e_min, self.sig_min)
        ctx.arrays[self.out("EFlowTowerOutputArray", "eflowTowers")] = tw.coll(
            excess, *em_had(neutral), 22 if self.is_ecal else 0
        )
        # eflow tracks: every track in the acceptance, scaled where its tower says so
        scale = np.where(deposits, rescale[tw.t_inv], 1.0)
        ef = tracks.take(t_idx)
        pt, m = ef.pt * scale, np.maximum(ef.mass, 0.0)
        px, py = ef["px"] * scale, ef["py"] * scale
        pz = ef["pz"] * scale
        ctx.arrays[self.out("EFlowTrackOutputArray", "eflowTracks")] = ef.with_cols(
            px=px, py=py, pz=pz, e=np.sqrt(pt**2 + pz**2 + m**2)
        )
